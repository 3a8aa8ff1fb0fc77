// The client side of a sharded run: one parent job with a child job per shard (a BullMQ flow), then
// the shards' results handed over in shard order as they complete, so the output file is written
// in the order a local run writes it. A shard's result is its job's return value: a shard retried
// after its worker died is taken once, whichever attempt finished it. Progress counts the units
// (facts, lines) of finished shards and what running shards report.
import { randomUUID } from "node:crypto";
import { FlowProducer, Job, Queue, QueueEvents } from "bullmq";
import { AbortError, type CallOptions } from "../runtime/call.js";
import { checkReachable, openRedis, queueConnection, type QueueConnection, type QueueConnectionOptions } from "./connection.js";
import { JOB, shardFailure, type JobBase, type ShardProgress } from "./jobs.js";
import { cancelChannel, cancelKey, checkpointFingerprint, queueName } from "./names.js";

/** What every queued command takes besides its own options. */
export interface QueueClientOptions extends QueueConnectionOptions, CallOptions {
  /** The model directory (its fingerprint names the queue; the client does not load the model). */
  model: string;
  /** Attempts per shard (a worker that dies or fails counts one). Default 3. */
  attempts?: number;
  /** Told how many workers serve the model's queue, every few seconds and when it changes. */
  onWorkers?: (workers: number) => void;
}

/** One shard: the job's name and data (without fingerprint and run), and the units it counts for. */
export interface Shard<D> {
  name: string;
  data: D;
  units: number;
}

/** A connected client for one model's queue. */
export interface QueueClient {
  conn: QueueConnection;
  fingerprint: string;
  queue: string;
  /** A new run id. */
  run: string;
  /** Runs one job outside a flow (e.g. the noise level) and returns its result. */
  single<R>(name: string, data: object, options: CallOptions): Promise<R>;
  /** Runs the shards as one flow; `take` gets each shard's result in shard order. */
  shards<D extends object, R>(shards: readonly Shard<D>[], take: (index: number, result: R) => void, options: CallOptions & { phase: string }): Promise<void>;
  close(): Promise<void>;
}

export async function openQueueClient(options: QueueClientOptions): Promise<QueueClient> {
  const conn = queueConnection(options);
  await checkReachable(conn);
  const fingerprint = checkpointFingerprint(options.model);
  const queue = queueName(fingerprint);
  const run = randomUUID();
  const attempts = options.attempts ?? 3;
  const q = new Queue(queue, { connection: conn.connection, prefix: conn.prefix });
  const events = new QueueEvents(queue, { connection: conn.connection, prefix: conn.prefix });
  const flows = new FlowProducer({ connection: conn.connection, prefix: conn.prefix });
  await Promise.all([q.waitUntilReady(), events.waitUntilReady(), flows.waitUntilReady()]);
  const base: JobBase = { fingerprint, run };
  const jobOpts = { attempts, backoff: { type: "fixed", delay: 500 }, removeOnComplete: { age: 24 * 3600 }, removeOnFail: { age: 7 * 24 * 3600 } };

  let workers = -1;
  const watchWorkers = setInterval(() => void q.getWorkersCount().then((n) => {
    if (n !== workers) options.onWorkers?.((workers = n));
  }, () => {}), 2000);
  void q.getWorkersCount().then((n) => options.onWorkers?.((workers = n)), () => {});

  /** Tells the workers that the run is cancelled (running calls abort, waiting shards fail at once). */
  const cancel = async () => {
    const r = openRedis(conn);
    try {
      await r.set(cancelKey(conn.prefix, queue, run), "1", "EX", 7 * 24 * 3600);
      await r.publish(cancelChannel(conn.prefix, queue), run);
    } finally {
      r.disconnect();
    }
  };

  /** Resolves with a job's result once it completed; rejects when it failed for good or the call is aborted. */
  const settle = async <R>(id: string, wake: { next: () => Promise<void> }, signal?: AbortSignal, failed?: () => Error | undefined): Promise<R> => {
    for (;;) {
      if (signal?.aborted) {
        await cancel();
        throw new AbortError(signal.reason);
      }
      const other = failed?.();
      if (other) {
        await cancel();
        throw other;
      }
      // The state first: a job read before it completed would hold no return value yet.
      const state = await q.getJobState(id);
      const job = state === "completed" || state === "failed" ? await Job.fromId(q, id) : undefined;
      if (job && state === "completed") return job.returnvalue as R;
      if (job && state === "failed") throw shardFailure(job.failedReason, id);
      if (state === "unknown" || ((state === "completed" || state === "failed") && !job)) {
        throw shardFailure("the job disappeared from Redis (removed by hand, or the queue was emptied)", id);
      }
      await wake.next();
    }
  };

  /** A wake-up: on an event about the awaited jobs, on abort, or after a second at most. */
  const waker = (signal?: AbortSignal) => {
    let resolve: (() => void) | undefined;
    const fire = () => { resolve?.(); resolve = undefined; };
    signal?.addEventListener("abort", fire, { once: true });
    return {
      fire,
      next: () => new Promise<void>((r) => {
        resolve = r;
        setTimeout(fire, 1000).unref();
      }),
    };
  };

  return {
    conn, fingerprint, queue, run,
    async single<R>(name: string, data: object, call: CallOptions): Promise<R> {
      const id = `${run}-${name}`;
      await q.add(name, { ...base, ...data }, { ...jobOpts, jobId: id });
      const wake = waker(call.signal);
      const onDone = ({ jobId }: { jobId: string }) => { if (jobId === id) wake.fire(); };
      events.on("completed", onDone);
      events.on("failed", onDone);
      try {
        return await settle<R>(id, wake, call.signal);
      } finally {
        events.off("completed", onDone);
        events.off("failed", onDone);
      }
    },
    async shards<D extends object, R>(shards: readonly Shard<D>[], take: (index: number, result: R) => void, call: CallOptions & { phase: string }): Promise<void> {
      if (shards.length === 0) return;
      const ids = shards.map((_, i) => `${run}-${i}`);
      const index = new Map(ids.map((id, i) => [id, i]));
      const total = shards.reduce((a, s) => a + s.units, 0);
      const partial = new Map<number, number>();
      let written = 0;
      let next = 0;
      const report = () => {
        let done = written;
        for (const [i, d] of partial) if (i >= next) done += Math.min(d, shards[i]!.units);
        call.onProgress?.({ phase: call.phase, done, total });
      };
      const wake = waker(call.signal);
      const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
        const i = index.get(jobId);
        if (i === undefined) return;
        partial.set(i, (data as ShardProgress).done);
        report();
      };
      const onDone = ({ jobId }: { jobId: string }) => {
        const i = index.get(jobId);
        if (i === undefined) return;
        if (i >= next) partial.set(i, shards[i]!.units);
        report();
        wake.fire();
      };
      // A later shard that failed for good ends the run now, not when its turn comes.
      let fatal: Error | undefined;
      const onFailed = ({ jobId }: { jobId: string }) => {
        if (!index.has(jobId)) return;
        void Job.fromId(q, jobId).then(async (job) => {
          if (job && (await job.getState()) === "failed") fatal ??= shardFailure(job.failedReason, jobId);
          wake.fire();
        }, () => {});
      };
      events.on("progress", onProgress);
      events.on("completed", onDone);
      events.on("failed", onFailed);
      try {
        await flows.add({
          name: JOB.run, queueName: queue, data: { ...base, kind: shards[0]!.name, shards: shards.length },
          opts: { jobId: `${run}-run`, removeOnComplete: true, removeOnFail: { age: 7 * 24 * 3600 } },
          children: shards.map((s, i) => ({ name: s.name, queueName: queue, data: { ...base, ...s.data }, opts: { ...jobOpts, jobId: ids[i], failParentOnFailure: true } })),
        });
        report();
        for (; next < shards.length; next++) {
          const result = await settle<R>(ids[next]!, wake, call.signal, () => fatal);
          take(next, result);
          written += shards[next]!.units;
          partial.delete(next);
          report();
        }
      } finally {
        events.off("progress", onProgress);
        events.off("completed", onDone);
        events.off("failed", onFailed);
      }
    },
    async close() {
      clearInterval(watchWorkers);
      await Promise.allSettled([flows.close(), events.close(), q.close()]);
    },
  };
}
