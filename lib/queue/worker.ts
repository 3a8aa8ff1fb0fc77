// `rome-node worker`: takes the jobs of one model's queue and runs them on the worker host, so the
// process's event loop stays free to renew its job locks while the model computes (a blocked loop
// would let the locks lapse and the jobs be taken twice). Jobs run one at a time on the model (an
// editing job's edits must never reach another job); a higher concurrency only fetches the next
// job while one runs. Progress goes to the job after every fact or line; a run cancelled by its
// client aborts the calls in flight.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker, type Job } from "bullmq";
import { RomeError } from "../errors.js";
import { defaultHparams } from "../edit/hparams.js";
import { defaultMemitHparams } from "../edit/memit-hparams.js";
import type { Stats } from "../edit/stats.js";
import { computeStatsLayers, runEdits, subjectEmbeddingStd, traceFact } from "../host/api.js";
import type { HostedModel } from "../host/hosted-model.js";
import { throwIfAborted } from "../runtime/call.js";
import { Model } from "../runtime/model.js";
import { checkReachable, openRedis, queueConnection, type QueueConnectionOptions } from "./connection.js";
import { resolveCorpus } from "./corpus.js";
import { withEditFiles } from "./edit-files.js";
import { JOB, unrecoverable, type EvalJob, type EvalJobResult, type JobBase, type NoiseJob, type RunJob, type TraceJob, type TraceJobResult } from "./jobs.js";
import { cancelChannel, cancelKey, queueName } from "./names.js";

export interface QueueWorkerOptions extends QueueConnectionOptions {
  /** The model directory this worker holds; it takes the jobs of this model's queue only. */
  model: string;
  /** onnxruntime threads of the model. Default 1. */
  threads?: number;
  /** Jobs taken at once (run one after another on the model). Default 1. */
  concurrency?: number;
  /** Milliseconds a job's lock lasts without renewal; a worker silent that long has its job retried. Default 30000. */
  lockDuration?: number;
  /** Milliseconds between checks for jobs whose lock lapsed (a dead worker's). Default 30000. */
  stalledInterval?: number;
  /** Where the model's statistics are cached. Default: `.rome-cache/stats` in the working directory. */
  statsCache?: string;
  /**
   * Told when the model's thread died (ERR_WORKER): the worker has stopped taking jobs (its running
   * ones will be retried elsewhere) and should be closed; the command line exits non-zero.
   */
  onFatal?: (error: Error) => void;
  /** Told when a job starts, ends or fails. */
  onJob?: (event: { job: string; name: string; state: "active" | "completed" | "failed"; reason?: string }) => void;
}

/** A running worker. */
export interface QueueWorker {
  fingerprint: string;
  queue: string;
  /** Stops taking jobs, waits for those running, frees the model and the connections. */
  close(): Promise<void>;
}

export async function startQueueWorker(options: QueueWorkerOptions): Promise<QueueWorker> {
  const conn = queueConnection(options);
  await checkReachable(conn);
  const model = await Model.load(options.model, { worker: true, threads: options.threads ?? 1 });
  const queue = queueName(model.fingerprint);
  const redis = openRedis(conn);
  const sub = openRedis(conn);
  /** The calls in flight per run, aborted when their client cancels the run. */
  const running = new Map<string, Set<AbortController>>();
  await sub.subscribe(cancelChannel(conn.prefix, queue));
  sub.on("message", (_channel: string, run: string) => {
    for (const c of running.get(run) ?? []) c.abort(new RomeError("ERR_ABORTED", `run ${run} was cancelled by its client`));
  });
  const ctx: JobContext = { model, dir: options.model, stats: new Map(), statsCache: options.statsCache, turn: Promise.resolve() };

  const worker = new Worker(queue, async (job: Job, _token?: string, signal?: AbortSignal) => {
    const data = job.data as JobBase;
    if (data.fingerprint !== model.fingerprint) {
      throw unrecoverable(new RomeError("ERR_QUEUE", `job ${job.id} was made for model ${data.fingerprint}, not ${model.fingerprint}`));
    }
    if (job.name === JOB.run) return { shards: (data as RunJob).shards };
    const controller = new AbortController();
    signal?.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
    const set = running.get(data.run) ?? new Set();
    running.set(data.run, set.add(controller));
    try {
      if (await redis.exists(cancelKey(conn.prefix, queue, data.run))) throw new RomeError("ERR_ABORTED", `run ${data.run} was cancelled by its client`);
      // One job at a time on the model: wait for the turn of the job before.
      const before = ctx.turn;
      let done!: () => void;
      ctx.turn = new Promise((r) => (done = r));
      try {
        await before;
        throwIfAborted(controller.signal);
        return await runJob(ctx, job, controller.signal);
      } finally {
        done();
      }
    } catch (e) {
      // A bad input or a cancelled run will fail again anywhere; a worker that lost its model thread
      // (ERR_WORKER) takes no more jobs, and this one is retried by another worker.
      if (e instanceof RomeError && e.code === "ERR_WORKER") {
        void worker.pause(true);
        options.onFatal?.(e);
      } else if (e instanceof RomeError) {
        throw unrecoverable(e);
      }
      throw e;
    } finally {
      set.delete(controller);
      if (set.size === 0) running.delete(data.run);
    }
  }, {
    connection: conn.connection, prefix: conn.prefix, concurrency: options.concurrency ?? 1,
    lockDuration: options.lockDuration ?? 30000, stalledInterval: options.stalledInterval ?? 30000, maxStalledCount: 3,
  });
  worker.on("active", (job) => options.onJob?.({ job: String(job.id), name: job.name, state: "active" }));
  worker.on("completed", (job) => options.onJob?.({ job: String(job.id), name: job.name, state: "completed" }));
  worker.on("failed", (job, err) => options.onJob?.({ job: String(job?.id), name: job?.name ?? "?", state: "failed", reason: err.message }));
  worker.on("error", () => {}); // connection errors: BullMQ reconnects by itself
  await worker.waitUntilReady();

  let closed: Promise<void> | undefined;
  return {
    fingerprint: model.fingerprint,
    queue,
    close: () => (closed ??= (async () => {
      await worker.close();
      sub.disconnect();
      redis.disconnect();
      await model.dispose();
    })()),
  };
}

interface JobContext {
  model: HostedModel;
  dir: string;
  /** Statistics per (layers, corpus), computed (or read from the cache) once per worker. */
  stats: Map<string, Promise<Stats[]>>;
  statsCache?: string;
  /** Resolves when the job before has left the model. */
  turn: Promise<void>;
}

async function runJob(ctx: JobContext, job: Job, signal: AbortSignal): Promise<unknown> {
  const progress = (done: number, total: number) => void job.updateProgress({ done, total }).catch(() => {});
  switch (job.name) {
    case JOB.noise:
      return subjectEmbeddingStd(ctx.model, (job.data as NoiseJob).subjects);
    case JOB.trace: {
      const d = job.data as TraceJob;
      return withEditFiles(ctx.model, d.edits ?? [], async () => {
        const lines: TraceJobResult["lines"] = [];
        for (const fact of d.facts) {
          throwIfAborted(signal);
          lines.push(await traceFact(ctx.model, fact, { kinds: d.kinds, noise: d.noise, samples: d.samples, window: d.window, seed: d.seed, strategy: d.strategy, signal }));
          progress(lines.length, d.facts.length);
        }
        return { lines } satisfies TraceJobResult;
      });
    }
    case JOB.eval:
      return runEvalJob(ctx, job.data as EvalJob, signal, progress);
    default:
      throw new RomeError("ERR_QUEUE", `unknown job name ${JSON.stringify(job.name)}; this worker runs ${Object.values(JOB).join(", ")}`);
  }
}

/** An editing shard: runEdits over the shard's records on the worker, into a temporary file whose lines are the result. */
async function runEvalJob(ctx: JobContext, d: EvalJob, signal: AbortSignal, progress: (done: number, total: number) => void): Promise<EvalJobResult> {
  const { model } = ctx;
  const layers = d.method === "memit" || d.method === "alphaedit" ? defaultMemitHparams(model.config).layers : [defaultHparams(model.config).layer];
  // Statistics per layers and corpus (its client's hash included), once per worker; the corpus is
  // checked against the client's when they are first needed.
  const key = `${layers.join(",")}|${JSON.stringify(d.corpus)}`;
  let stats = ctx.stats.get(key);
  if (!stats) {
    stats = (async () => computeStatsLayers(model, { layers, corpus: resolveCorpus(d.corpus, ctx.dir), ...(ctx.statsCache ? { cacheDir: ctx.statsCache } : {}) }))();
    ctx.stats.set(key, stats);
    stats.catch(() => ctx.stats.delete(key));
  }
  const tmp = mkdtempSync(join(tmpdir(), "rome-job-"));
  try {
    return await withEditFiles(model, d.edits, async () => {
      const out = join(tmp, "run.jsonl");
      if (d.resume) {
        writeFileSync(out, d.resume.lines.map((l) => JSON.stringify(l) + "\n").join(""));
        mkdirSync(`${out}.edits`);
        for (const [name, text] of Object.entries(d.resume.saved)) writeFileSync(join(`${out}.edits`, name), text);
      }
      const lines = await runEdits(model, d.records, {
        method: d.method, mode: d.mode, batchSize: d.batchSize, firstBatch: d.firstBatch, out, stats: await stats, untouched: d.untouched,
        ...(d.hparams ? { hparams: d.hparams } : {}), signal, onLine: (done, total) => progress(done, total),
      });
      if (d.mode !== "sequential") return { lines };
      const saved: Record<string, string> = {};
      for (const name of readdirSync(`${out}.edits`)) saved[name] = readFileSync(join(`${out}.edits`, name), "utf8");
      return { lines, saved };
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
