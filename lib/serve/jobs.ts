// Jobs: the long requests (traces, dataset traces, edits, evaluations) run in the background, at
// most `runningJobs` at once, the rest queued up to `queuedJobs` (beyond: ERR_QUEUE_FULL, 429).
// Each job owns an AbortController: DELETE cancels it, the per-job timeout aborts it with
// ERR_JOB_TIMEOUT, shutdown aborts what the grace period did not let finish. Subscribers (the SSE
// streams) receive every change; finished records are handed to the store.
import { randomUUID } from "node:crypto";
import { RomeError } from "../errors.js";
import type { Progress } from "../runtime/call.js";
import type { Limits } from "./limits.js";

export type JobKind = "trace" | "trace-dataset" | "edits" | "evaluate";
export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export const FINISHED: readonly JobState[] = ["succeeded", "failed", "cancelled"];

/** What GET /jobs/:id answers and the store keeps. */
export interface JobRecord {
  id: string;
  kind: JobKind;
  model: string;
  state: JobState;
  /** ISO times. */
  created: string;
  started?: string;
  finished?: string;
  progress?: Progress;
  result?: unknown;
  error?: { code: string; message: string };
}

export type JobEvent =
  | { type: "state"; job: JobRecord }
  | { type: "progress"; progress: Progress }
  | { type: "result"; result: unknown }
  | { type: "error"; error: { code: string; message: string } };

/** The work of a job: resolves with its result, honours the signal, reports progress. */
export type JobWork = (signal: AbortSignal, onProgress: (p: Progress) => void) => Promise<unknown>;

interface Job {
  record: JobRecord;
  work?: JobWork;
  controller: AbortController;
  /** Why the job was aborted, when it was. */
  reason?: RomeError;
  listeners: Set<(e: JobEvent) => void>;
  done: Promise<void>;
  settle(): void;
}

export interface JobStore {
  saveJob(record: JobRecord): void;
  removeJob(id: string): void;
}

export class JobRegistry {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private running = 0;
  private accepting = true;
  /** Recent run times in seconds, for Retry-After. */
  private readonly durations: number[] = [];

  constructor(private readonly limits: Limits, private readonly store?: JobStore) {}

  /** Puts back finished jobs read from the store (oldest first). */
  restore(records: readonly JobRecord[]): void {
    for (const record of records) this.jobs.set(record.id, this.make(record));
    this.forgetOld();
  }

  /** Queues a job; throws ERR_QUEUE_FULL (with a retryAfter in seconds) or ERR_SHUTTING_DOWN. */
  submit(kind: JobKind, model: string, work: JobWork): JobRecord {
    if (!this.accepting) throw new RomeError("ERR_SHUTTING_DOWN", "the server is shutting down and takes no new jobs; retry on another instance or after the restart");
    if (this.queue.length >= this.limits.queuedJobs) {
      throw Object.assign(new RomeError("ERR_QUEUE_FULL", `${this.running} jobs are running and ${this.queue.length} waiting, the server's limit (--max-queued-jobs); retry after ${this.retryAfter()} s`), { retryAfter: this.retryAfter() });
    }
    const job = this.make({ id: randomUUID(), kind, model, state: "queued", created: new Date().toISOString() });
    job.work = work;
    this.jobs.set(job.record.id, job);
    this.queue.push(job);
    this.store?.saveJob(job.record);
    this.pump();
    return job.record;
  }

  get(id: string): JobRecord {
    return this.find(id).record;
  }

  list(): JobRecord[] {
    return [...this.jobs.values()].map((j) => j.record);
  }

  /** Counts for /health. */
  counts(): { running: number; queued: number } {
    return { running: this.running, queued: this.queue.length };
  }

  /** Cancels a queued or running job (a running one stops within one batch); ERR_JOB_STATE when it has finished. */
  cancel(id: string): JobRecord {
    const job = this.find(id);
    if (FINISHED.includes(job.record.state)) throw new RomeError("ERR_JOB_STATE", `job ${id} has already ${job.record.state}; nothing to cancel`);
    this.abort(job, new RomeError("ERR_ABORTED", "cancelled by DELETE /jobs/:id"));
    return job.record;
  }

  /** Calls `listener` on each change of job `id` until the returned function is called. */
  subscribe(id: string, listener: (e: JobEvent) => void): () => void {
    const job = this.find(id);
    job.listeners.add(listener);
    return () => job.listeners.delete(listener);
  }

  /** Resolves when job `id` has finished. */
  finished(id: string): Promise<void> {
    return this.find(id).done;
  }

  /** Seconds a client should wait before submitting again: the recent mean run time × jobs ahead, 1–600. */
  retryAfter(): number {
    const mean = this.durations.length ? this.durations.reduce((a, b) => a + b, 0) / this.durations.length : 5;
    return Math.min(600, Math.max(1, Math.ceil((mean * (this.queue.length + 1)) / Math.max(1, this.limits.runningJobs))));
  }

  /**
   * Stops taking jobs, cancels the queued ones, lets running jobs finish for `graceMs`, then
   * aborts them; resolves when every job has finished (and been stored).
   */
  async shutdown(graceMs: number): Promise<void> {
    this.accepting = false;
    const reason = () => new RomeError("ERR_SHUTTING_DOWN", "the server shut down before this job finished; submit it again");
    for (const job of [...this.queue]) this.abort(job, reason());
    const running = [...this.jobs.values()].filter((j) => j.record.state === "running");
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running.map((j) => j.done)), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const job of running) if (job.record.state === "running") this.abort(job, reason());
    await Promise.all(running.map((j) => j.done));
  }

  private make(record: JobRecord): Job {
    let settle!: () => void;
    const done = new Promise<void>((r) => (settle = r));
    if (FINISHED.includes(record.state)) settle();
    return { record, controller: new AbortController(), listeners: new Set(), done, settle };
  }

  private find(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw new RomeError("ERR_NOT_FOUND", `no job has id ${JSON.stringify(id)} (finished jobs are kept until --keep-jobs newer ones)`);
    return job;
  }

  private emit(job: Job, event: JobEvent): void {
    for (const l of job.listeners) l(event);
  }

  private abort(job: Job, reason: RomeError): void {
    job.reason ??= reason;
    if (job.record.state === "queued") {
      this.queue.splice(this.queue.indexOf(job), 1);
      this.finish(job, "cancelled", undefined, reason);
    } else {
      job.controller.abort(reason);
    }
  }

  private pump(): void {
    while (this.running < this.limits.runningJobs && this.queue.length > 0) void this.start(this.queue.shift()!);
  }

  private async start(job: Job): Promise<void> {
    this.running++;
    const t0 = performance.now();
    job.record = { ...job.record, state: "running", started: new Date().toISOString() };
    this.emit(job, { type: "state", job: job.record });
    const timer = setTimeout(() => this.abort(job, new RomeError("ERR_JOB_TIMEOUT", `the job ran longer than the server's limit of ${this.limits.jobSeconds} s (--job-timeout) and was cancelled`)), this.limits.jobSeconds * 1000);
    try {
      const result = await job.work!(job.controller.signal, (progress) => {
        job.record.progress = progress;
        this.emit(job, { type: "progress", progress });
      });
      // an abort that came after the last check leaves the result whole: the job succeeded
      this.finish(job, "succeeded", result);
    } catch (e) {
      const reason = job.controller.signal.aborted ? job.reason : undefined;
      if (reason) this.finish(job, reason.code === "ERR_JOB_TIMEOUT" ? "failed" : "cancelled", undefined, reason);
      else this.finish(job, "failed", undefined, e);
    } finally {
      clearTimeout(timer);
      this.durations.push((performance.now() - t0) / 1000);
      if (this.durations.length > 20) this.durations.shift();
      this.running--;
      this.pump();
    }
  }

  private finish(job: Job, state: JobState, result?: unknown, error?: unknown): void {
    const err = error === undefined ? undefined
      : error instanceof RomeError ? { code: error.code, message: error.message }
      : { code: "ERR_INTERNAL", message: `the job failed: ${(error as Error)?.message ?? String(error)}` };
    job.record = { ...job.record, state, finished: new Date().toISOString(), ...(result !== undefined ? { result } : {}), ...(err ? { error: err } : {}) };
    job.work = undefined;
    this.store?.saveJob(job.record);
    this.emit(job, { type: "state", job: { ...job.record, result: undefined } });
    this.emit(job, err ? { type: "error", error: err } : { type: "result", result });
    job.listeners.clear();
    job.settle();
    this.forgetOld();
  }

  /** Forgets the oldest finished jobs beyond keptJobs. */
  private forgetOld(): void {
    const finished = [...this.jobs.values()].filter((j) => FINISHED.includes(j.record.state));
    for (const j of finished.slice(0, Math.max(0, finished.length - this.limits.keptJobs))) {
      this.jobs.delete(j.record.id);
      this.store?.removeJob(j.record.id);
    }
  }
}
