// Traces every fact of a known-facts dataset (ROME's known_1000.json schema): one JSON line per
// fact, appended as it finishes so an interrupted run resumes where it stopped, then the averaged
// indirect effects per kind in the reference's six token buckets, and optionally the pictures.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { checkInt, checkOptionNames, RomeError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { openJsonl, readJsonl } from "../io/jsonl.js";
import type { CallOptions } from "../runtime/call.js";
import type { Model } from "../runtime/model.js";
import { averageEffects, type AveragedEffects } from "./average.js";
import { TRACE_KINDS, type TraceGrid, type TraceKind } from "./grid.js";
import { averagedSvg, heatmapSvg, svgToPng } from "./heatmap.js";
import { readKnownFacts, type KnownFact } from "./known.js";
import { subjectEmbeddingStd } from "./noise.js";
import { traceKinds, type TraceOptions, type TraceResult } from "./trace.js";

export interface TraceDatasetOptions {
  /** Path of a known-facts JSON file, or the facts themselves. */
  dataset: string | readonly KnownFact[];
  /** JSON-lines output, one fact per line; an existing file is resumed. */
  out: string;
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
  /** Folder for the averaged plots (SVG + PNG per kind). */
  plots?: string;
  onProgress?: (done: number, total: number, fact: KnownFact) => void;
}
const OPTIONS = ["dataset", "out", "kinds", "limit", "noise", "samples", "window", "seed", "strategy", "heatmaps", "heatmapLimit", "plots", "onProgress"] as const;

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
  resumed: number;
  averages: Partial<Record<TraceKind, AveragedEffects>>;
  noiseLevel: number;
}

export async function traceDataset(model: Model, options: TraceDatasetOptions): Promise<TraceDatasetResult> {
  checkOptionNames("traceDataset", options, OPTIONS);
  const facts = typeof options.dataset === "string" ? readKnownFacts(options.dataset) : [...options.dataset];
  const kinds = options.kinds ?? TRACE_KINDS;
  for (const k of kinds) if (!TRACE_KINDS.includes(k)) throw new RomeError("ERR_UNKNOWN_KIND", `unknown trace kind ${JSON.stringify(k)}`);
  const limit = checkInt("limit", options.limit ?? facts.length, 0, facts.length);
  const todo = facts.slice(0, limit);
  const noise = options.noise ?? 3 * (await subjectEmbeddingStd(model, facts.map((f) => f.subject)));
  const out = openJsonl<FactTrace>(options.out, { keyOf: (r) => r.key });
  const resumed = out.done.size;
  let traced = 0;
  try {
    for (const [i, fact] of todo.entries()) {
      if (out.done.has(String(fact.known_id))) continue;
      const record = await traceFact(model, fact, { kinds, noise, samples: options.samples, window: options.window, seed: options.seed, strategy: options.strategy });
      out.append(record);
      traced++;
      if (options.heatmaps && fact.known_id <= (options.heatmapLimit ?? 200)) writeHeatmaps(options.heatmaps, record);
      options.onProgress?.(i + 1, todo.length, fact);
    }
  } finally {
    out.close();
  }
  const { averages, noiseLevel } = summarizeDataset(options.out, todo, kinds, noise, options.plots);
  return { out: options.out, traced, resumed, averages, noiseLevel };
}

/**
 * The end of a sweep: the lines of `out` for `facts`, averaged per kind in the reference's token
 * buckets, written to `<out>.summary.json` (and the averaged plots to `plots`).
 */
export function summarizeDataset(out: string, facts: readonly KnownFact[], kinds: readonly TraceKind[], noise: TraceOptions["noise"], plots?: string):
  { averages: Partial<Record<TraceKind, AveragedEffects>>; noiseLevel: number } {
  const all = readJsonl<FactTrace>(out).filter((r) => facts.some((f) => String(f.known_id) === r.key));
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
  return { averages, noiseLevel };
}

/** What traceFact needs besides the fact: the dataset's settings, with the noise already resolved. */
export interface FactTraceOptions extends CallOptions {
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

/** Writes one fact's heatmaps (SVG and PNG per kind) into `dir`. */
export function writeHeatmaps(dir: string, record: FactTrace): void {
  mkdirSync(dir, { recursive: true });
  for (const [kind, grid] of Object.entries(record.traces)) {
    const svg = heatmapSvg(grid!);
    writeFileAtomic(join(dir, `${record.known_id}-${kind}.svg`), svg);
    writeFileAtomic(join(dir, `${record.known_id}-${kind}.png`), svgToPng(svg));
  }
}
