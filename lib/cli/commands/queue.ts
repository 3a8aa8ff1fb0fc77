// The command line past one machine: `rome-node worker` (takes a model's jobs from Redis), and the
// `--redis` options that send `trace-dataset` and `eval` to the workers instead of running them here.
import { Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_PREFIX, queueConnection } from "../../queue/connection.js";
import { startQueueWorker } from "../../queue/worker.js";
import { Progress } from "../progress.js";

const intArg = (min: number) => (v: string) => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer of at least ${min}, got ${v}`);
  return n;
};

/** The queue's options, added to a command that can run on the workers. */
export interface RedisFlags {
  redis?: string;
  prefix: string;
  shardSize?: number;
}

/** Adds --redis, --prefix and --shard-size to `trace-dataset` or `eval`. */
export function withRedisOptions(cmd: Command, unit: string): Command {
  return cmd
    .option("--redis <url>", "run on the workers of this Redis (redis:// or rediss://, password as redis://:pw@host) instead of here")
    .option("--prefix <name>", "queue namespace in Redis (teams sharing one Redis use different ones)", DEFAULT_PREFIX)
    .option("--shard-size <n>", `${unit} per job with --redis`, intArg(1));
}

/** Progress of a queued run on stderr, with the number of workers serving the queue. */
export function queueProgress(label: string): { onProgress: (p: { done: number; total: number }) => void; onWorkers: (n: number) => void } {
  let bar: Progress | undefined;
  let workers = 0;
  let done = 0;
  return {
    onProgress: (p) => (bar ??= new Progress(label, p.total)).update((done = p.done), `(${workers} workers)`),
    onWorkers: (n) => {
      workers = n;
      if (n === 0) console.error(`${label}: no worker serves this model's queue yet; start one: rome-node worker --redis URL --model DIR`);
      bar?.update(done, `(${workers} workers)`);
    },
  };
}

/** `rome-node worker --redis URL [--model DIR] [--concurrency N]`. */
export function registerWorkerCommand(program: Command): void {
  program.command("worker")
    .description("take the jobs of the model's queue in Redis (trace-dataset --redis, eval --redis) until stopped (SIGINT/SIGTERM: finish the running job, then exit)")
    .requiredOption("--redis <url>", "redis://host:6379, rediss://host:6380 (TLS), redis://:password@host:6379")
    .option("--prefix <name>", "queue namespace in Redis (the clients' --prefix)", DEFAULT_PREFIX)
    .option("--concurrency <n>", "jobs taken at once (they run one after another on the model; more only hides the queue's round trips)", intArg(1), 1)
    .addOption(new Option("--lock-duration <ms>", "a job whose worker is silent this long is retried elsewhere").argParser(intArg(100)).default(30000))
    .addOption(new Option("--stalled-interval <ms>", "how often this worker looks for such jobs").argParser(intArg(100)).default(30000))
    .action(async (o: { redis: string; prefix: string; concurrency: number; lockDuration: number; stalledInterval: number }) => {
      const { model, threads } = program.opts<{ model: string; threads: number }>();
      const display = queueConnection(o).display;
      const worker = await startQueueWorker({
        ...o, model, threads,
        onFatal: (e) => {
          console.error(`the model's thread died (${e.message}); exiting so that a supervisor can restart this worker`);
          process.exit(1);
        },
        onJob: (e) => console.error(`${new Date().toISOString()} ${e.state} ${e.name} ${e.job}${e.reason ? `: ${e.reason}` : ""}`),
      });
      console.log(`worker ${process.pid}: model ${model} (fingerprint ${worker.fingerprint.slice(0, 16)}) on queue ${worker.queue} at ${display}, prefix ${o.prefix}`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      console.error("stopping: finishing the running job (signal again to exit at once)");
      const exit = () => process.exit(130);
      process.once("SIGINT", exit);
      process.once("SIGTERM", exit);
      await worker.close();
    });
}
