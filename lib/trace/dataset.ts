// Traces every fact of a known-facts dataset (ROME's known_1000.json schema): one JSON line per
// fact, appended as it finishes so an interrupted run resumes where it stopped, then the averaged
// indirect effects per kind in the reference's six token buckets, and optionally the pictures.
// `traceDatasetFacts` yields the facts one at a time (`for await`); `traceDataset` runs it to the end.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { checkInt, checkOptionNames, RomeError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { openJsonl, readJsonl, type JsonlWriter } from "../io/jsonl.js";
import { throwIfAborted } from "../runtime/call.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Model, ModelCallOptions } from "../runtime/model.js";
import { averageEffects, type AveragedEffects } from "./average.js";
import { TRACE_KINDS, type TraceGrid, type TraceKind } from "./grid.js";
import { averagedSvg, heatmapSvg, svgToPng } from "./heatmap.js";
import { readKnownFacts, type KnownFact } from "./known.js";
import { subjectEmbeddingStd } from "./noise.js";
import { traceKinds, type TraceOptions, type TraceResult } from "./trace.js";

/**
 * The facts to trace and how. `signal` stops within one batch of the fact in progress (its line is
 * never written); `onProgress` reports phase "facts": `done` counts the facts of the first `limit`
 * already in `out` when the call starts, then each fact as its line is written. `edits`: as every
 * model call, captured when the call is made.
 */
export interface TraceDatasetFactsOptions extends ModelCallOptions {
  /** Path of a known-facts JSON file, or the facts themselves. */
  dataset: string | readonly KnownFact[];
  /** JSON-lines output, one fact per line; facts already in it are skipped (the run resumes). Optional for traceDatasetFacts. */
  out?: string;
  /** Kinds traced per fact. Default: all three. */
  kinds?: readonly TraceKind[];
  /** Trace only the first `limit` facts. Default: all. */
  limit?: number;
  /** Noise as in trace(); default: 3 × std of the token embeddings of every subject of the dataset (the reference's s3). */
  noise?: TraceOptions["noise"];
  samples?: number;
  window?: number;
  seed?: number;
  strategy?: "minimal" | "naive";
  /** Folder for per-fact heatmaps (SVG + PNG) of facts with known_id ≤ heatmapLimit. */
  heatmaps?: string;
  /** Default 200, as the reference. */
  heatmapLimit?: number;
}
const FACT_OPTIONS = ["dataset", "out", "kinds", "limit", "noise", "samples", "window", "seed", "strategy", "heatmaps", "heatmapLimit", "edits", "signal", "onProgress"] as const;

export interface TraceDatasetOptions extends TraceDatasetFactsOptions {
  out: string;
  /** Folder for the averaged plots (SVG + PNG per kind). */
  plots?: string;
}
const OPTIONS = [...FACT_OPTIONS, "plots"] as const;

/** One line of the output file. */
export interface FactTrace {
  key: string;
  known_id: number;
  prompt: string;
  subject: string;
  attribute: string;
  /** The model's clean top token equals the attribute (the reference's check). */
  correctPrediction: boolean;
  traces: Partial<Record<TraceKind, Omit<TraceResult, "flops">>>;
  flops: { executed: number; minimal: number };
  seconds: number;
}

export interface TraceDatasetResult {
  out: string;
  /** Facts traced by this call (not counting those resumed from the file). */
  traced: number;
  /** Facts of the first `limit` that were already in the file. */
  resumed: number;
  averages: Partial<Record<TraceKind, AveragedEffects>>;
  noiseLevel: number;
}

/**
 * The traces of the dataset's facts, one per fact as it finishes, in dataset order; with `out`,
 * each is appended to the file before it is yielded, and facts the file already holds are skipped.
 * Breaking out of the loop stops the run after the fact in progress and closes the file.
 */
export function traceDatasetFacts(model: Model, options: TraceDatasetFactsOptions): AsyncGenerator<FactTrace, void, undefined> {
  return runFacts(model, options, model.edits.view(options.edits), "traceDatasetFacts", FACT_OPTIONS, {});
}

/** Traces the dataset to its end (see traceDatasetFacts), then writes the averages (`out`.summary.json) and plots. */
export async function traceDataset(model: Model, options: TraceDatasetOptions): Promise<TraceDatasetResult> {
  const edits = model.edits.view(options.edits); // the call's edit set, captured before any await
  const { plots, ...factOptions } = options;
  const run: RunInfo = {};
  let traced = 0;
  for await (const _ of runFacts(model, factOptions, edits, "traceDataset", OPTIONS, run, options)) traced++;
  const { averages, noiseLevel, facts } = summarizeDataset(options.out, run.todo!, run.kinds!, run.noise, plots);
  return { out: options.out, traced, resumed: facts - traced, averages, noiseLevel };
}

/**
 * The end of a sweep: the lines of `out` for `facts`, averaged per kind in the reference's token
 * buckets, written to `<out>.summary.json` (and the averaged plots to `plots`); `facts`: the lines found.
 */
export function summarizeDataset(out: string, facts: readonly KnownFact[], kinds: readonly TraceKind[], noise: TraceOptions["noise"], plots?: string):
  { averages: Partial<Record<TraceKind, AveragedEffects>>; noiseLevel: number; facts: number } {
  const keys = new Set(facts.map((f) => String(f.known_id)));
  const all = readJsonl<FactTrace>(out).filter((r) => keys.has(r.key));
  const averages: Partial<Record<TraceKind, AveragedEffects>> = {};
  for (const k of kinds) {
    const grids = all.map((r) => r.traces[k]).filter((g): g is TraceGrid & Omit<TraceResult, "flops"> => g !== undefined);
    if (grids.some((g) => g.correctPrediction !== false)) averages[k] = averageEffects(grids, { kind: k });
  }
  const noiseLevel = typeof noise === "number" ? noise : (Object.values(all[0]?.traces ?? {})[0]?.noiseLevel ?? NaN);
  writeFileAtomic(`${out}.summary.json`, JSON.stringify({ facts: all.length, noiseLevel, averages }, null, 1));
  if (plots) {
    mkdirSync(plots, { recursive: true });
    for (const [k, avg] of Object.entries(averages)) {
      const svg = averagedSvg(avg!);
      writeFileAtomic(join(plots, `average-${k}.svg`), svg);
      writeFileAtomic(join(plots, `average-${k}.png`), svgToPng(svg));
    }
  }
  return { averages, noiseLevel, facts: all.length };
}

/** What traceFact needs besides the fact: the dataset's settings, with the noise already resolved. */
export interface FactTraceOptions extends ModelCallOptions {
  kinds: readonly TraceKind[];
  noise: TraceOptions["noise"];
  samples?: number;
  window?: number;
  seed?: number;
  strategy?: "minimal" | "naive";
}

/**
 * One fact of a dataset sweep: its traces of every kind (one shared clean and corrupted run) as the
 * line traceDataset writes. The queue's workers call it too, so a sharded sweep writes the same lines.
 */
export async function traceFact(model: Model, fact: KnownFact, options: FactTraceOptions): Promise<FactTrace> {
  const { kinds } = options;
  const t0 = performance.now();
  const res = await traceKinds(model, {
    prompt: fact.prompt, subject: fact.subject, noise: options.noise,
    samples: options.samples, window: options.window, seed: options.seed, strategy: options.strategy,
    ...(options.edits ? { edits: options.edits } : {}),
    ...(options.signal ? { signal: options.signal } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  }, kinds);
  const first = res[kinds[0]!]!;
  const correct = first.answer.token.trim() === fact.attribute.trim();
  const traces: FactTrace["traces"] = {};
  for (const k of kinds) {
    const { flops: _flops, ...rest } = res[k]!;
    traces[k] = { ...rest, correctPrediction: correct };
  }
  return {
    key: String(fact.known_id), known_id: fact.known_id, prompt: fact.prompt, subject: fact.subject, attribute: fact.attribute,
    correctPrediction: correct, traces, flops: first.flops, seconds: (performance.now() - t0) / 1000,
  };
}

/** What a run settled on, for traceDataset's summary. */
interface RunInfo { todo?: KnownFact[]; kinds?: readonly TraceKind[]; noise?: TraceOptions["noise"] }

async function* runFacts(model: Model, options: TraceDatasetFactsOptions, edits: EditView, name: string, names: readonly string[], run: RunInfo,
  checked: object = options): AsyncGenerator<FactTrace, void, undefined> {
  checkOptionNames(name, checked, names);
  const { signal, onProgress } = options;
  throwIfAborted(signal);
  const facts = typeof options.dataset === "string" ? readKnownFacts(options.dataset) : [...options.dataset];
  const kinds = options.kinds ?? TRACE_KINDS;
  for (const k of kinds) if (!TRACE_KINDS.includes(k)) throw new RomeError("ERR_UNKNOWN_KIND", `unknown trace kind ${JSON.stringify(k)}`);
  const limit = checkInt("limit", options.limit ?? facts.length, 0, facts.length);
  const todo = facts.slice(0, limit);
  const noise = options.noise ?? 3 * (await subjectEmbeddingStd(model, facts.map((f) => f.subject)));
  Object.assign(run, { todo, kinds, noise });
  throwIfAborted(signal);
  const created = options.out !== undefined && !existsSync(options.out);
  const out: JsonlWriter<FactTrace> | undefined = options.out === undefined ? undefined : openJsonl<FactTrace>(options.out, { keyOf: (r) => r.key });
  let appended = 0;
  let done = out ? todo.filter((f) => out.done.has(String(f.known_id))).length : 0;
  try {
    onProgress?.({ phase: "facts", done, total: todo.length });
    for (const fact of todo) {
      const key = String(fact.known_id);
      if (out?.done.has(key)) continue;
      throwIfAborted(signal);
      const record = await traceFact(model, fact, { kinds, noise, edits, signal, samples: options.samples, window: options.window, seed: options.seed, strategy: options.strategy });
      out?.append(record);
      appended++;
      if (options.heatmaps && fact.known_id <= (options.heatmapLimit ?? 200)) writeHeatmaps(options.heatmaps, record);
      onProgress?.({ phase: "facts", done: ++done, total: todo.length });
      yield record;
    }
  } catch (e) {
    if (created && appended === 0) {
      out!.close();
      rmSync(options.out!, { force: true }); // a run stopped before its first fact leaves no file
    }
    throw e;
  } finally {
    out?.close();
  }
}

/** Writes one fact's heatmaps (SVG and PNG per kind) into `dir`. */
export function writeHeatmaps(dir: string, record: FactTrace): void {
  mkdirSync(dir, { recursive: true });
  for (const [kind, grid] of Object.entries(record.traces)) {
    const svg = heatmapSvg(grid!);
    writeFileAtomic(join(dir, `${record.known_id}-${kind}.svg`), svg);
    writeFileAtomic(join(dir, `${record.known_id}-${kind}.png`), svgToPng(svg));
  }
}
