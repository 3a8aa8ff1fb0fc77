// MEMIT (Meng et al. 2023, kmeng01/memit): many facts at once, spread over several layers. Targets
// z at the last edited layer's output are optimised for all requests together, then each layer in
// ascending order gets ΔW = resid · adj_kᵀ with adj_k = (λ C + K Kᵀ)⁻¹ K solved in float64 by the
// addon. The result is one edit: per layer a factor pair of rank ≤ the batch size, applied with
// `model.edits.apply(edit)` like a ROME edit.
import { checkInt, checkOptionNames, RomeError } from "../errors.js";
import { CALL_OPTIONS, throwIfAborted } from "../runtime/call.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Model, ModelCallOptions } from "../runtime/model.js";
import { choleskyFactor, choleskySolve, momentAccumulate } from "../native.js";
import { resolveMemitHparams, type MemitHparams } from "./memit-hparams.js";
import { prepareBatch, type MemitRequest, type PreparedBatch, type SharedSubject } from "./memit-requests.js";
import { spreadUpdates, type LayerFactors, type LayerReport, type LayerSolver } from "./memit-spread.js";
import { checkTemplateGroups, memitTemplates } from "./memit-templates.js";
import { computeTargets, type TargetsResult } from "./memit-z.js";
import { checkStatsFor, type Stats } from "./stats.js";

/** `edits`: the edits the batch is computed on (default: the model's enabled edits when the call starts). */
export interface MemitOptions extends ModelCallOptions {
  /** Edited layers, ascending. Default: the model family's hyperparameters. */
  layers?: readonly number[];
  /** Statistics E[k kᵀ], one per edited layer (computeStats / loadStats), matched by layer. */
  stats: readonly Stats[];
  /** Context templates: strings, or groups of strings (keys are averaged within each group, then over groups). Default: sampled from the model, seeded. */
  contextTemplates?: readonly (string | readonly string[])[];
  /** Seed of the template sampling. Default 0. */
  seed?: number;
  /** Overrides of the family's hyperparameters. */
  hparams?: Partial<MemitHparams>;
  /** Requests whose targets are optimised in one batched run (memory grows with it). Default 32. */
  targetChunk?: number;
  /** Use statistics computed for another model (another fingerprint). Default false: ERR_STATS_MISMATCH. */
  forceStats?: boolean;
}
export const MEMIT_OPTIONS = ["layers", "stats", "contextTemplates", "seed", "hparams", "targetChunk", "forceStats", "edits", ...CALL_OPTIONS] as const;

export interface MemitEdit {
  id: string;
  /** Per edited layer, ΔW = U V with U (F, r), V (r, D); r = the batch size. */
  layers: LayerFactors[];
  info: Record<string, unknown>;
  requests: MemitRequest[];
  /** Requests sharing a subject but not the relation: allowed, but their keys coincide. */
  sharedSubjects: SharedSubject[];
  targets: TargetsResult;
  report: LayerReport[];
  seconds: { templates: number; targets: number; keys: number; solve: number; total: number };
}

/** Everything a batch editor needs before its solves: checked hyperparameters, statistics by layer, prepared prompts. */
export interface BatchSetup {
  hp: MemitHparams;
  layers: number[];
  stats: Map<number, Stats>;
  batch: PreparedBatch;
  /** The edit set of the call, captured when it started. */
  edits: EditView;
}

export async function setupBatch(model: Model, requests: readonly MemitRequest[], options: MemitOptions, where: string): Promise<BatchSetup> {
  checkOptionNames(where, options, MEMIT_OPTIONS);
  const edits = model.edits.view(options.edits); // the call's edit set, captured before any await
  const cfg = model.config;
  const hp = resolveMemitHparams(cfg, options.hparams);
  const layers = [...(options.layers ?? hp.layers)];
  if (!Array.isArray(layers) || layers.length === 0) throw new RomeError("ERR_ARGUMENT", `${where} needs at least one layer`);
  layers.forEach((l, i) => {
    checkInt(`layers[${i}]`, l, 0, cfg.nLayer - 1);
    if (i > 0 && l <= layers[i - 1]!) throw new RomeError("ERR_ARGUMENT", `layers must be distinct and ascending, received ${JSON.stringify(layers)}`);
  });
  const stats = new Map<number, Stats>();
  if (!Array.isArray(options.stats)) throw new RomeError("ERR_STATS", `${where} needs { stats: [...] }, the statistics of each edited layer (computeStats(model, { layers: [${layers.join(", ")}], corpus }))`);
  for (const s of options.stats) {
    checkStatsFor(model, s, options.forceStats);
    stats.set(s.layer, s);
  }
  const missing = layers.filter((l) => !stats.has(l));
  // A single reference file without its layer in the metadata is taken for a single edited layer.
  if (missing.length === 1 && options.stats.length === 1 && !Number.isFinite(options.stats[0]!.layer)) stats.set(missing[0]!, options.stats[0]!);
  else if (missing.length) throw new RomeError("ERR_STATS", `no statistics for layer(s) ${missing.join(", ")}; pass one Stats per edited layer`);
  const groups = options.contextTemplates ? checkTemplateGroups(options.contextTemplates) : await memitTemplates(model, checkInt("seed", options.seed ?? 0, 0, 2 ** 32 - 1));
  const batch = await prepareBatch(model, requests, groups);
  return { hp, layers, stats, batch, edits };
}

/** The batch's targets z at the output of block max(layers). */
export async function batchTargets(model: Model, setup: BatchSetup, options: MemitOptions): Promise<TargetsResult> {
  const { hp, layers, batch } = setup;
  return computeTargets(model, layers[layers.length - 1]!, batch.targetPrompts, {
    steps: hp.vNumGradSteps, lr: hp.vLr, weightDecay: hp.vWeightDecay, klFactor: hp.klFactor, clampNormFactor: hp.clampNormFactor,
    chunk: checkInt("targetChunk", options.targetChunk ?? 32, 1, 1 << 20),
  }, { ...options, edits: setup.edits });
}

/** MEMIT's solver: adj = (λ C + K Kᵀ)⁻¹ K in float64 (Cholesky by the addon). */
export function memitSolver(model: Model, stats: Map<number, Stats>, lambda: number): LayerSolver {
  const F = model.config.nInner;
  return async (_i, layer, keys) => {
    const N = keys.length / F;
    const c = stats.get(layer)!.mom2;
    const a = new Float64Array(F * F); // (F, F) λC + K Kᵀ, upper triangle
    for (let i = 0; i < F * F; i++) a[i] = lambda * c[i]!;
    const A = { dims: [F, F], type: "float64" as const, data: a };
    await momentAccumulate(A, { dims: [N, F], type: "float32", data: keys });
    const b = new Float64Array(F * N); // (F, N) Kᵀ laid out column per request
    for (let r = 0; r < N; r++) for (let f = 0; f < F; f++) b[f * N + r] = keys[r * F + f]!;
    await choleskyFactor(A);
    await choleskySolve(A, { dims: [F, N], type: "float64", data: b });
    return b;
  };
}

/**
 * Edits every request into the model's MLPs at `layers` as one edit. Progress: phases "targets"
 * (request × step) and "layers". The model's applied edits are taken into account and left as they are.
 */
export async function memit(model: Model, requests: readonly MemitRequest[], options: MemitOptions): Promise<MemitEdit> {
  const t0 = performance.now();
  const setup = await setupBatch(model, requests, options, "memit");
  throwIfAborted(options.signal);
  const t1 = performance.now();
  const targets = await batchTargets(model, setup, options);
  const t2 = performance.now();
  const solve = memitSolver(model, setup.stats, setup.hp.mom2UpdateWeight);
  const spread = await spreadUpdates(model, setup.batch, targets.z, setup.layers, solve, { ...options, edits: setup.edits });
  return {
    id: `memit-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`,
    layers: spread.layers,
    info: { method: "memit", layers: setup.layers, requests: setup.batch.requests.length, hparams: setup.hp },
    requests: setup.batch.requests, sharedSubjects: setup.batch.sharedSubjects, targets, report: spread.report,
    seconds: { templates: (t1 - t0) / 1000, targets: (t2 - t1) / 1000, keys: spread.seconds.keys, solve: spread.seconds.solve, total: (performance.now() - t0) / 1000 },
  };
}
