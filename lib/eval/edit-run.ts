// One editing study, resumable: a method (rome, r-rome, memit, alphaedit) in a mode —
//   alone:      each record edited on the unedited model, scored, undone (one line per record);
//   batch:      records in batches of B, each batch edited on the unedited model, scored, undone;
//   sequential: batches of B applied one after another, never undone; after each, the batch's
//               scores, the ES of every edit so far and the top-1 accuracy on untouched facts —
// writing one JSON line per record or batch, appended and flushed. A run killed at any point and
// restarted skips what its file holds (sequential runs re-apply the saved edits of the batches
// done, kept beside the file) and ends with exactly one line per record or batch.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { openJsonl } from "../io/jsonl.js";
import { alphaEdit, alphaEditState, type AlphaEditState } from "../edit/alphaedit.js";
import { memit } from "../edit/memit.js";
import { resolveMemitHparams } from "../edit/memit-hparams.js";
import type { LayerFactors } from "../edit/memit-spread.js";
import { rome } from "../edit/rome.js";
import type { Stats } from "../edit/stats.js";
import { throwIfAborted, type CallOptions } from "../runtime/call.js";
import type { Model } from "../runtime/model.js";
import type { EditRecord } from "./datasets.js";
import { fixLocalityTargets, scoreRecords, untouchedAccuracy, type EditScores } from "./edit-scores.js";

export type EditMethod = "rome" | "r-rome" | "memit" | "alphaedit";
export type EditMode = "alone" | "sequential" | "batch";
export const EDIT_METHODS: readonly EditMethod[] = ["rome", "r-rome", "memit", "alphaedit"];
export const EDIT_MODES: readonly EditMode[] = ["alone", "sequential", "batch"];

/**
 * `signal` stops the run within one batch of the edit or scoring in progress: the line being made is
 * not written and the model is left with the edits it had. `onProgress` reports phase "records"
 * (alone) or "batches" (lines of the file), starting at the lines the file already holds.
 */
export interface EditRunOptions extends CallOptions {
  method: EditMethod;
  mode: EditMode;
  /** Records per batch (batch and sequential modes). Default 1 for alone, else 10. */
  batchSize?: number;
  /** The JSON-lines output; resumed when it exists. */
  out: string;
  /** Statistics per layer (ROME's layer, or MEMIT's layers). */
  stats: readonly Stats[];
  /** Facts no edit touches, probed after each batch (sequential and batch modes). */
  untouched?: readonly EditRecord[];
  /** MEMIT/AlphaEdit/ROME hyperparameter overrides. */
  hparams?: Record<string, unknown>;
  /** Index of the first batch, when these records are a shard of a larger run (keys and `batch` count from it). Default 0. */
  firstBatch?: number;
  /** Called after each line is written, with the lines done, the total and the line. */
  onLine?: (done: number, total: number, line: RunLine) => void;
}

/** One line of the output: a record (alone) or a batch. */
export interface RunLine {
  key: string;
  /** Batch index (0 for alone). */
  batch: number;
  ids: number[];
  /** Edits applied when the line was scored (sequential: all so far). */
  edits: number;
  scores: EditScores[];
  /** Sequential: ES of every record edited so far. */
  esSoFar?: number;
  untouched?: number;
  /** Records whose edit was refused (ERR_EDIT_REFUSED). */
  refused: number[];
  seconds: Record<string, number>;
}

/** The edits of one batch as factor pairs per layer, applied as rank-one edits of the current edit set. */
type BatchEdit = LayerFactors[];

export async function runEdits(model: Model, records: readonly EditRecord[], options: EditRunOptions): Promise<RunLine[]> {
  const { method, mode } = options;
  if (!EDIT_METHODS.includes(method)) throw new RomeError("ERR_ARGUMENT", `method must be one of ${EDIT_METHODS.join(", ")}, received ${JSON.stringify(method)}`);
  if (!EDIT_MODES.includes(mode)) throw new RomeError("ERR_ARGUMENT", `mode must be one of ${EDIT_MODES.join(", ")}, received ${JSON.stringify(mode)}`);
  const B = mode === "alone" ? 1 : options.batchSize ?? 10;
  if (!Number.isInteger(B) || B < 1) throw new RomeError("ERR_ARGUMENT", `batchSize must be a positive integer, received ${B}`);
  const first = options.firstBatch ?? 0;
  if (!Number.isInteger(first) || first < 0 || (first > 0 && mode === "sequential")) {
    throw new RomeError("ERR_ARGUMENT", `firstBatch must be a non-negative integer, and 0 in sequential mode (a sequential run is one piece), received ${first}`);
  }
  const batches: EditRecord[][] = [];
  for (let i = 0; i < records.length; i += B) batches.push(records.slice(i, i + B));
  const { signal, onProgress } = options;
  throwIfAborted(signal);
  await fixLocalityTargets(model, records, signal);
  throwIfAborted(signal);
  const file = openJsonl<RunLine>(options.out);
  const lines = [...file.records];
  const keyOf = (k: number) => mode === "alone" ? `r:${batches[k]![0]!.id}` : `${mode}:${first + k}`;
  let done = batches.filter((_, k) => file.done.has(keyOf(k))).length;
  const progress = () => onProgress?.({ phase: mode === "alone" ? "records" : "batches", done, total: batches.length });
  const saved = `${options.out}.edits`;
  const applied: string[] = [];
  let state: AlphaEditState | undefined;
  try {
    progress();
    for (const [k, batch] of batches.entries()) {
      const key = keyOf(k);
      if (file.done.has(key)) {
        // Sequential: the model must hold the batches done before, as they were made (and AlphaEdit
        // its state: the earlier batches' keys in the null space).
        if (mode === "sequential") {
          const b = readBatch(join(saved, `${k}.json`));
          applied.push(...applyBatch(model, b.edit));
          if (b.previous) {
            state ??= newState(model, options);
            for (const [layer, data] of b.previous) state.layers.get(layer)!.previous.set(data);
            state.edited += batch.length;
          }
        }
        continue;
      }
      throwIfAborted(signal);
      const t0 = performance.now();
      const { edit, refused, seconds } = await editBatch(model, batch, options, mode === "sequential" ? (state ??= method === "alphaedit" ? newState(model, options) : undefined) : undefined);
      const t1 = performance.now();
      const ids = applyBatch(model, edit);
      let line: RunLine;
      try {
        const scores = await scoreRecords(model, batch, signal);
        const sofar = batches.slice(0, k + 1).flat();
        const esSoFar = mode === "sequential" ? mean((await scoreRecords(model, sofar, signal)).map((s) => s.es)) : undefined;
        const untouched = mode !== "alone" && options.untouched?.length ? await untouchedAccuracy(model, options.untouched, signal) : undefined;
        line = {
          key, batch: first + k, ids: batch.map((r) => r.id), edits: mode === "sequential" ? sofar.length : batch.length, scores, refused,
          ...(esSoFar !== undefined ? { esSoFar } : {}), ...(untouched !== undefined ? { untouched } : {}),
          seconds: { ...seconds, edit: (t1 - t0) / 1000, evaluate: (performance.now() - t1) / 1000 },
        };
      } finally {
        if (mode === "sequential") applied.push(...ids);
        else for (const id of ids.reverse()) model.edits.undo(id);
      }
      if (mode === "sequential") { // saved before its line, so that every line a resumed run finds has its edits
        mkdirSync(saved, { recursive: true });
        writeBatch(join(saved, `${k}.json`), edit, state);
      }
      file.append(line);
      lines.push(line);
      done++;
      options.onLine?.(lines.length, batches.length, line);
      progress();
    }
  } finally {
    file.close();
    for (const id of applied.reverse()) model.edits.undo(id);
  }
  return lines;
}

function newState(model: Model, options: EditRunOptions): AlphaEditState {
  return alphaEditState(options.stats, resolveMemitHparams(model.config, options.hparams).nullspaceThreshold);
}

async function editBatch(model: Model, batch: readonly EditRecord[], options: EditRunOptions, state: AlphaEditState | undefined): Promise<{ edit: BatchEdit; refused: number[]; seconds: Record<string, number> }> {
  const { method } = options;
  if (method === "memit" || method === "alphaedit") {
    const requests = batch.map((r) => r.request);
    const common = { stats: options.stats, hparams: options.hparams, signal: options.signal };
    const e = method === "memit" ? await memit(model, requests, common) : await alphaEdit(model, requests, { ...common, ...(state ? { state } : {}) });
    const { total: _total, ...seconds } = e.seconds;
    return { edit: e.layers, refused: [], seconds };
  }
  const edit: BatchEdit = [];
  const refused: number[] = [];
  const seconds: Record<string, number> = {};
  for (const r of batch) {
    const { relationId: _relation, ...request } = r.request;
    try {
      const e = await rome(model, request, { stats: options.stats[0], form: method === "rome" ? "reference" : "r-rome", signal: options.signal, ...(options.hparams ? { hparams: options.hparams } : {}) });
      edit.push({ layer: e.layer, u: e.u, v: e.v });
      for (const [k, v] of Object.entries(e.seconds)) if (k !== "total") seconds[k] = (seconds[k] ?? 0) + v;
    } catch (err) {
      if (!(err instanceof RomeError && err.code === "ERR_EDIT_REFUSED")) throw err;
      refused.push(r.id);
    }
  }
  return { edit, refused, seconds };
}

/** Applies a batch: one multi-layer edit (MEMIT, AlphaEdit), or one edit per entry when a layer repeats (ROME's edits, one per record); returns their ids. */
function applyBatch(model: Model, edit: BatchEdit): string[] {
  if (edit.length === 0) return [];
  const distinct = new Set(edit.map((l) => l.layer)).size === edit.length;
  return distinct ? [model.edits.apply({ layers: edit })] : edit.map((l) => model.edits.apply({ layers: [l] }));
}

/** Saves a sequential batch's edit (and AlphaEdit's state after it) beside the output, written atomically. */
function writeBatch(path: string, edit: BatchEdit, state: AlphaEditState | undefined): void {
  const b64 = (x: Float32Array | Float64Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString("base64");
  writeFileAtomic(path, JSON.stringify({
    layers: edit.map((l) => ({ layer: l.layer, u: b64(l.u), v: b64(l.v) })),
    previous: state ? [...state.layers.values()].map((n) => ({ layer: n.layer, data: b64(n.previous) })) : undefined,
  }));
}

function readBatch(path: string): { edit: BatchEdit; previous?: [number, Float64Array][] } {
  if (!existsSync(path)) throw new RomeError("ERR_IO", `${path} is missing: the run's saved edits are incomplete; delete the output file to start over`);
  const bytes = (s: string) => {
    const b = Buffer.from(s, "base64");
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  };
  const j = JSON.parse(readFileSync(path, "utf8")) as { layers: { layer: number; u: string; v: string }[]; previous?: { layer: number; data: string }[] };
  return {
    edit: j.layers.map((l) => ({ layer: l.layer, u: new Float32Array(bytes(l.u)), v: new Float32Array(bytes(l.v)) })),
    previous: j.previous?.map((p) => [p.layer, new Float64Array(bytes(p.data))]),
  };
}

function mean(xs: readonly number[]): number {
  const v = xs.filter(Number.isFinite);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}
