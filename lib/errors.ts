// The one error class of rome-node. Every failure a caller can act on (bad input, malformed file,
// a matrix that is not positive definite) arrives as a RomeError with a stable `code`; the native
// addon receives this class at load and throws it too, so JS and C++ failures look the same.

/** Stable error codes. Tests and callers match on these, never on messages. */
export type RomeErrorCode =
  // checkpoints and tokenizers (lib/model)
  | "ERR_MODEL_DIR"
  | "ERR_CONFIG"
  | "ERR_UNSUPPORTED_ARCH"
  | "ERR_SAFETENSORS_HEADER"
  | "ERR_SAFETENSORS_TRUNCATED"
  | "ERR_SAFETENSORS_OFFSETS"
  | "ERR_DTYPE"
  | "ERR_MISSING_TENSOR"
  | "ERR_UNUSED_TENSOR"
  | "ERR_SHAPE"
  | "ERR_SHARD_INDEX"
  | "ERR_TOKENIZER"
  // runtime
  | "ERR_ARGUMENT"
  | "ERR_CONTEXT_LENGTH"
  | "ERR_EMPTY_PROMPT"
  | "ERR_NOT_FINITE"
  | "ERR_ONNX"
  // native addon
  | "ERR_NATIVE_LOAD"
  | "ERR_NATIVE_ARGUMENT"
  | "ERR_NATIVE_THREAD"
  | "ERR_NOT_POSITIVE_DEFINITE"
  | "ERR_CUDA"
  // tracing and editing
  | "ERR_SUBJECT_NOT_FOUND"
  | "ERR_EMPTY_SUBJECT"
  | "ERR_UNKNOWN_KIND"
  | "ERR_EDIT_REFUSED"
  | "ERR_EDIT_UNKNOWN"
  | "ERR_EDIT_CONFLICT"
  | "ERR_EDITS_FILE"
  | "ERR_STATS"
  | "ERR_HPARAMS"
  | "ERR_STATS_CORRUPT"
  | "ERR_STATS_MISMATCH"
  | "ERR_DATASET"
  | "ERR_IO"
  // long calls (lib/runtime/call.ts)
  | "ERR_ABORTED"
  | "ERR_DISPOSED"
  // the worker host (lib/host)
  | "ERR_WORKER"
  // the job queue (lib/queue): Redis unreachable or a bad URL, a job that failed on a worker
  | "ERR_QUEUE"
  // the HTTP service (lib/serve): each limit has its own code
  | "ERR_VALIDATION"
  | "ERR_UNAUTHORIZED"
  | "ERR_NOT_FOUND"
  | "ERR_BODY_TOO_LARGE"
  | "ERR_PROMPT_TOO_LONG"
  | "ERR_TOO_MANY_SAMPLES"
  | "ERR_TOO_MANY_TOKENS"
  | "ERR_DATASET_TOO_LARGE"
  | "ERR_QUEUE_FULL"
  | "ERR_JOB_TIMEOUT"
  | "ERR_JOB_STATE"
  | "ERR_SHUTTING_DOWN"
  | "ERR_INTERRUPTED";

export class RomeError extends Error {
  readonly code: RomeErrorCode;

  constructor(code: RomeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RomeError";
    this.code = code;
  }
}

/** Throws ERR_ARGUMENT unless `value` is an integer in [min, max]. */
export function checkInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RomeError(
      "ERR_ARGUMENT",
      `Expected integer between ${min} and ${max} for ${name} but received ${String(value)}`,
    );
  }
  return value;
}

/** Throws ERR_ARGUMENT unless `value` is a finite number in [min, max]. */
export function checkNumber(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new RomeError(
      "ERR_ARGUMENT",
      `Expected number between ${min} and ${max} for ${name} but received ${String(value)}`,
    );
  }
  return value;
}

/**
 * Rejects option names that are not in `known`, suggesting the closest one, so that a misspelt
 * option (`sample` for `samples`) fails loudly instead of silently taking the default.
 */
export function checkOptionNames(where: string, options: object | undefined, known: readonly string[]): void {
  if (!options) return;
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const guess = closest(key, known);
    throw new RomeError(
      "ERR_ARGUMENT",
      `Unknown option '${key}' for ${where}` + (guess ? ` (did you mean '${guess}'?)` : "") +
        `; known options: ${known.join(", ")}`,
    );
  }
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) { best = c; bestDist = d; }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}
