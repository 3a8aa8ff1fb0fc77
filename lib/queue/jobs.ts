// What travels through the queue: the data of each kind of job and what a worker returns, all plain
// JSON. A shard's result is the job's return value, the very lines a local run writes, so a shard
// retried after a worker died replaces its lines and the client writes each line once. Failures
// travel as text; a RomeError's code survives the trip.
import { UnrecoverableError } from "bullmq";
import { RomeError, type RomeErrorCode } from "../errors.js";
import type { EditRecord } from "../eval/datasets.js";
import type { EditMethod, EditMode, RunLine } from "../eval/edit-run.js";
import type { FactTrace } from "../trace/dataset.js";
import type { TraceKind } from "../trace/grid.js";
import type { TraceOptions } from "../trace/trace.js";
import type { KnownFact } from "../trace/known.js";
import type { CorpusRef } from "./corpus.js";

/** Job names, one per kind of work. */
export const JOB = {
  /** The reference's s3 noise: std of the subjects' token embeddings. */
  noise: "noise",
  /** A shard of a trace sweep. */
  trace: "trace",
  /** A shard of an editing study (records or batches; a sequential run is one shard). */
  eval: "eval",
  /** The parent of a run's shards (completes when they all have). */
  run: "run",
} as const;

/** Every job names the model it was made for (the whole fingerprint) and its run. */
export interface JobBase {
  fingerprint: string;
  run: string;
}

export interface NoiseJob extends JobBase {
  subjects: string[];
}

export interface TraceJob extends JobBase {
  facts: KnownFact[];
  kinds: TraceKind[];
  /** Resolved by the client (the s3 level from a noise job, as a local run resolves it before its first fact). */
  noise: TraceOptions["noise"];
  samples?: number;
  window?: number;
  seed?: number;
  strategy?: "minimal" | "naive";
  /** Edits every fact is traced under: exportEdits files, base64 (their model fingerprints are checked on the worker). */
  edits: string[];
}
export interface TraceJobResult {
  lines: FactTrace[];
}

export interface EvalJob extends JobBase {
  method: EditMethod;
  mode: EditMode;
  batchSize: number;
  /** Index of this shard's first batch in the run. */
  firstBatch: number;
  records: EditRecord[];
  untouched: EditRecord[];
  hparams?: Record<string, unknown>;
  corpus: CorpusRef;
  /** Edits every record is evaluated under: exportEdits files, base64 (their model fingerprints are checked). */
  edits: string[];
  /** A sequential run resumed: the lines written so far and the saved batch edits (`<k>.json` → content). */
  resume?: { lines: RunLine[]; saved: Record<string, string> };
}
export interface EvalJobResult {
  lines: RunLine[];
  /** Sequential: the saved edits of every batch (`<k>.json` → content), written beside the output as a local run does. */
  saved?: Record<string, string>;
}

export interface RunJob extends JobBase {
  kind: "trace" | "eval";
  shards: number;
}

/** A shard's progress, as the worker reports it (`job.updateProgress`). */
export interface ShardProgress {
  done: number;
  total: number;
}

/** The error a worker throws for a failure retrying cannot fix (bad input, a cancelled run): no further attempts. */
export function unrecoverable(e: unknown): UnrecoverableError {
  return new UnrecoverableError(e instanceof RomeError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));
}

/** The client's error for a shard that failed on a worker: the worker's RomeError when it was one. */
export function shardFailure(reason: string | undefined, job: string): RomeError {
  const m = /^(ERR_[A-Z_]+): ([\s\S]*)$/.exec(reason ?? "");
  if (m) return new RomeError(m[1] as RomeErrorCode, `${m[2]} (job ${job}, on a worker)`);
  return new RomeError("ERR_QUEUE", `job ${job} failed on a worker after its retries: ${reason ?? "no reason given"}`);
}
