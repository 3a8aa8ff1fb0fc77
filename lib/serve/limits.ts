// The limits of the service, all configurable from the command line. Each one, when exceeded,
// answers with its own error code, so a client can tell which it hit.

export interface Limits {
  /** Largest request body in bytes (ERR_BODY_TOO_LARGE, 413). Default 8 MiB. */
  bodyBytes: number;
  /** Most tokens in one prompt (ERR_PROMPT_TOO_LONG, 400). Default 512 (further capped by the model's context). */
  promptTokens: number;
  /** Most prompts or pairs in one /predict or /logprob request (ERR_VALIDATION, 400). Default 64. */
  prompts: number;
  /** Most noise samples of a trace (ERR_TOO_MANY_SAMPLES, 400). Default 50. */
  samples: number;
  /** Most tokens one /generate may produce (ERR_TOO_MANY_TOKENS, 400). Default 256. */
  generateTokens: number;
  /** Most facts, edit requests or records in one job (ERR_DATASET_TOO_LARGE, 400). Default 1000. */
  datasetSize: number;
  /** Jobs running at once (the rest wait in the queue). Default 1. */
  runningJobs: number;
  /** Jobs waiting to run; beyond this a new job gets 429 with Retry-After (ERR_QUEUE_FULL). Default 16. */
  queuedJobs: number;
  /** Seconds a job may run before it is cancelled (ERR_JOB_TIMEOUT). Default 600. */
  jobSeconds: number;
  /** Finished jobs kept (oldest forgotten first). Default 1000. */
  keptJobs: number;
}

export const DEFAULT_LIMITS: Limits = {
  bodyBytes: 8 * 1024 * 1024,
  promptTokens: 512,
  prompts: 64,
  samples: 50,
  generateTokens: 256,
  datasetSize: 1000,
  runningJobs: 1,
  queuedJobs: 16,
  jobSeconds: 600,
  keptJobs: 1000,
};
