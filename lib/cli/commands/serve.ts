// `rome-node serve`: the HTTP service (lib/serve) from the command line. `--model` may be given
// several times (the global option; each occurrence is one served model). SIGTERM or SIGINT shut
// it down in order (lib/serve/service.ts) and exit 0.
import { Command, InvalidArgumentError } from "commander";
import { DEFAULT_LIMITS, type Limits } from "../../serve/limits.js";
import { Service } from "../../serve/service.js";
import { checkInputFile } from "../validate.js";

const intIn = (min: number, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got ${v}`);
  return n;
};

interface ServeFlags {
  host: string;
  port: number;
  token?: string;
  stateDir?: string;
  workers: number;
  corpus?: string;
  statsDir?: string;
  statsTokens?: number;
  grace: number;
  log: boolean;
  maxBodyBytes: number;
  maxPromptTokens: number;
  maxPrompts: number;
  maxSamples: number;
  maxGenerateTokens: number;
  maxDataset: number;
  maxRunningJobs: number;
  maxQueuedJobs: number;
  jobTimeout: number;
  keepJobs: number;
}

export function registerServe(program: Command): void {
  const dirs: string[] = [];
  program.on("option:model", (dir: string) => dirs.push(dir));
  const d = DEFAULT_LIMITS;
  program.command("serve")
    .description("HTTP service: predictions, traces, edits and evaluations of the --model directories (repeat --model to serve several)")
    .option("--host <address>", "address to listen on; other than loopback needs --token", "127.0.0.1")
    .option("--port <n>", "port (0: any free port)", intIn(0, 65535), 8080)
    .option("--token <token>", "bearer token required on every route but /health (default: $ROME_NODE_TOKEN)")
    .option("--state-dir <dir>", "persist edits and finished jobs here; they come back after a restart")
    .option("--workers <n>", "worker threads per model (replicas; predictions and jobs go to the least busy)", intIn(1, 64), 1)
    .option("--corpus <file>", "corpus for the statistics of edits (default: train.txt in the model directory)")
    .option("--stats-dir <dir>", "cache of statistics (default: .rome-cache/stats)")
    .option("--stats-tokens <n>", "corpus tokens the statistics read (default: all)", intIn(1))
    .option("--grace <seconds>", "on SIGTERM, how long running jobs may finish before they are cancelled", intIn(0, 86_400), 30)
    .option("--log", "log every request (JSON lines on stdout)", false)
    .option("--max-body-bytes <n>", "largest request body", intIn(1024), d.bodyBytes)
    .option("--max-prompt-tokens <n>", "most tokens in one prompt", intIn(1), d.promptTokens)
    .option("--max-prompts <n>", "most prompts or pairs in one /predict or /logprob", intIn(1, 4096), d.prompts)
    .option("--max-samples <n>", "most noise samples of a trace", intIn(1, 1024), d.samples)
    .option("--max-generate-tokens <n>", "most tokens one /generate makes", intIn(0), d.generateTokens)
    .option("--max-dataset <n>", "most facts, edit requests or records in one job", intIn(1), d.datasetSize)
    .option("--max-running-jobs <n>", "jobs running at once", intIn(1, 1024), d.runningJobs)
    .option("--max-queued-jobs <n>", "jobs waiting; beyond, 429 with Retry-After", intIn(0), d.queuedJobs)
    .option("--job-timeout <seconds>", "a job running longer is cancelled (ERR_JOB_TIMEOUT)", intIn(1), d.jobSeconds)
    .option("--keep-jobs <n>", "finished jobs kept (oldest forgotten first)", intIn(1), d.keptJobs)
    .action(async (o: ServeFlags) => {
      const { model, threads } = program.opts<{ model: string; threads: number }>();
      if (o.corpus) checkInputFile("--corpus", o.corpus);
      const limits: Limits = {
        bodyBytes: o.maxBodyBytes, promptTokens: o.maxPromptTokens, prompts: o.maxPrompts, samples: o.maxSamples,
        generateTokens: o.maxGenerateTokens, datasetSize: o.maxDataset, runningJobs: o.maxRunningJobs,
        queuedJobs: o.maxQueuedJobs, jobSeconds: o.jobTimeout, keptJobs: o.keepJobs,
      };
      const service = await Service.start({
        models: (dirs.length ? dirs : [model]).map((dir) => ({ dir, workers: o.workers, threads, corpus: o.corpus, statsDir: o.statsDir, statsTokens: o.statsTokens })),
        host: o.host, port: o.port, token: o.token ?? process.env.ROME_NODE_TOKEN, stateDir: o.stateDir, limits, logger: o.log,
      });
      console.log(`rome-node serve: listening on ${service.url} (models: ${[...service.ctx.pool.models.keys()].join(", ")})`);
      const stop = (signal: string) => {
        console.log(`rome-node serve: ${signal}, stopping (running jobs have ${o.grace} s)`);
        service.shutdown(o.grace * 1000).then(() => {
          console.log("rome-node serve: stopped");
          process.exit(0);
        }, (e: unknown) => {
          console.error(`rome-node serve: shutdown failed: ${(e as Error).message}`);
          process.exit(1);
        });
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    });
}
