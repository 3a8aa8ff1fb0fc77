// `eval --redis`: an editing study of runEdits on the workers of the model's queue. Each-alone and
// batch runs split into shards of consecutive records or batches (each on the unedited model, so
// any worker can take any shard); a sequential run is one job (its edits build on each other),
// resumed on the worker from the lines and saved edits the output already holds. The lines, the
// saved edits and so the summary are those of a local run.
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { checkInt, RomeError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { openJsonl, readJsonl } from "../io/jsonl.js";
import type { EditRecord } from "../eval/datasets.js";
import { EDIT_METHODS, EDIT_MODES, type EditRunOptions, type RunLine } from "../eval/edit-run.js";
import { openQueueClient, type QueueClientOptions, type Shard } from "./client.js";
import { corpusRef } from "./corpus.js";
import { readEditFiles } from "./edit-files.js";
import { JOB, type EvalJob, type EvalJobResult, type JobBase } from "./jobs.js";

export interface QueuedEditRunOptions extends Omit<EditRunOptions, "stats" | "firstBatch" | "signal" | "onProgress">, QueueClientOptions {
  /** The corpus of the key statistics. Inside the model folder, each worker reads its own copy; elsewhere, every worker must have it at this path (checked by content on the worker: ERR_STATS). */
  corpus: string;
  /** exportEdits files: every record is edited and scored with these edits applied (made for this model; checked on the worker). */
  edits?: readonly string[];
  /** Records (alone) or batches (batch) per job. Default 4 records, 1 batch. */
  shardSize?: number;
}

type EvalShardData = Omit<EvalJob, keyof JobBase>;

/** Runs the study on the queue and returns every line of `out` (those it held before included), in order. */
export async function runEditsOnQueue(records: readonly EditRecord[], options: QueuedEditRunOptions): Promise<RunLine[]> {
  const { method, mode } = options;
  if (!EDIT_METHODS.includes(method)) throw new RomeError("ERR_ARGUMENT", `method must be one of ${EDIT_METHODS.join(", ")}, received ${JSON.stringify(method)}`);
  if (!EDIT_MODES.includes(mode)) throw new RomeError("ERR_ARGUMENT", `mode must be one of ${EDIT_MODES.join(", ")}, received ${JSON.stringify(mode)}`);
  const B = mode === "alone" ? 1 : checkInt("batchSize", options.batchSize ?? 10, 1, 1 << 20);
  const shardSize = checkInt("shardSize", options.shardSize ?? (mode === "alone" ? 4 : 1), 1, 1 << 20);
  const batches: EditRecord[][] = [];
  for (let i = 0; i < records.length; i += B) batches.push(records.slice(i, i + B));
  const keyOf = (k: number) => (mode === "alone" ? `r:${batches[k]![0]!.id}` : `${mode}:${k}`);
  const edits = readEditFiles(options.edits);
  const common = {
    method, mode, batchSize: B, untouched: [...(options.untouched ?? [])], corpus: corpusRef(options.corpus, options.model), edits,
    ...(options.hparams ? { hparams: options.hparams } : {}),
  };
  const saved = `${options.out}.edits`;
  const out = openJsonl<RunLine>(options.out);
  const shards: Shard<EvalShardData>[] = [];
  if (mode === "sequential") {
    const left = batches.length - batches.filter((_, k) => out.done.has(keyOf(k))).length;
    const resume = out.records.length ? { lines: out.records, saved: readSaved(saved) } : undefined;
    if (left > 0) shards.push({ name: JOB.eval, units: left, data: { ...common, firstBatch: 0, records: [...records], ...(resume ? { resume } : {}) } });
  } else {
    // Consecutive batches not yet in the file, shardSize at a time.
    let run: number[] = [];
    const flush = () => {
      if (run.length === 0) return;
      shards.push({ name: JOB.eval, units: run.length, data: { ...common, firstBatch: run[0]!, records: run.flatMap((k) => batches[k]!) } });
      run = [];
    };
    for (let k = 0; k < batches.length; k++) {
      if (out.done.has(keyOf(k))) { flush(); continue; }
      run.push(k);
      if (run.length === shardSize) flush();
    }
    flush();
  }
  let written = out.records.length;
  try {
    if (shards.length > 0) {
      const client = await openQueueClient(options);
      try {
        await client.shards<EvalShardData, EvalJobResult>(shards, (_i, result) => {
          if (result.saved) mkdirSync(saved, { recursive: true });
          for (const [name, text] of Object.entries(result.saved ?? {})) writeFileAtomic(join(saved, name), text);
          for (const line of result.lines) {
            if (out.done.has(line.key)) continue;
            out.append(line);
            options.onLine?.(++written, batches.length, line);
          }
        }, { signal: options.signal, onProgress: options.onProgress, phase: "lines" });
      } finally {
        await client.close();
      }
    }
  } finally {
    out.close();
  }
  return readJsonl<RunLine>(options.out);
}

function readSaved(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) if (/^\d+\.json$/.test(name)) files[name] = readFileSync(join(dir, name), "utf8");
  return files;
}
