// AlphaEdit (Fang et al., ICLR 2025): MEMIT with each layer's update projected onto the null space
// of the preserved knowledge, so that sequential batches stop erasing what the model knew. As in
// the authors' code, P = Û Ûᵀ with Û the eigenvectors of the statistics C whose eigenvalue is below
// `nullspaceThreshold`, and the update solves (P (K Kᵀ + K_p K_pᵀ) + α I) ΔW = P K residᵀ, K_p the
// keys of the batches edited before. The solution lies in range(P), so with ΔW = Û Y it is the
// m × m system (Ûᵀ (K Kᵀ + K_p K_pᵀ) Û + α I) Y = Ûᵀ K residᵀ (m = the null space's dimension),
// symmetric positive definite, solved by the addon's Cholesky; Ûᵀ K_p K_pᵀ Û is accumulated per batch.
import { checkNumber, RomeError } from "../errors.js";
import { throwIfAborted } from "../runtime/call.js";
import type { Model } from "../runtime/model.js";
import { choleskyFactor, choleskySolve } from "../native.js";
import { eigh } from "./eigh.js";
import { batchTargets, setupBatch, type MemitEdit, type MemitOptions } from "./memit.js";
import type { MemitRequest } from "./memit-requests.js";
import { spreadUpdates, type LayerSolver } from "./memit-spread.js";
import type { Stats } from "./stats.js";

/** The null-space basis of one layer and what earlier batches left there. */
export interface NullSpace {
  layer: number;
  /** Dimension m of the null space. */
  dim: number;
  /** (F, m) row-major: orthonormal eigenvectors of C with eigenvalue below the threshold */
  basis: Float64Array;
  /** (m, m) Ûᵀ K_p K_pᵀ Û over the keys of every batch edited with this state */
  previous: Float64Array;
}

/** What AlphaEdit carries from batch to batch: per edited layer, its null space. */
export interface AlphaEditState {
  threshold: number;
  layers: Map<number, NullSpace>;
  /** Requests edited with this state so far. */
  edited: number;
}

/** The null spaces of `stats` (one per layer) below `threshold`; O(F³) per layer, once per sequence of batches. */
export function alphaEditState(stats: readonly Stats[], threshold: number): AlphaEditState {
  checkNumber("threshold", threshold, 0, Number.MAX_VALUE);
  const layers = new Map<number, NullSpace>();
  for (const s of stats) {
    const F = s.dim;
    const { values, vectors } = eigh(s.mom2, F);
    let m = 0;
    while (m < F && values[m]! < threshold) m++;
    const basis = new Float64Array(F * m);
    for (let f = 0; f < F; f++) basis.set(vectors.subarray(f * F, f * F + m), f * m);
    layers.set(s.layer, { layer: s.layer, dim: m, basis, previous: new Float64Array(m * m) });
  }
  return { threshold, layers, edited: 0 };
}

export interface AlphaEditOptions extends MemitOptions {
  /**
   * The state of a sequence of batches (alphaEditState); this batch's keys are added to it, so apply
   * the returned edit. Default: a new state from `stats` and hparams.nullspaceThreshold.
   */
  state?: AlphaEditState;
}

/**
 * AlphaEdit's solver: adj = Û (Ûᵀ (K Kᵀ + K_p K_pᵀ) Û + α I)⁻¹ Ûᵀ K. `commit()` adds the solved
 * batches' Ûᵀ K Kᵀ Û to the state (once the whole batch succeeded).
 */
export function alphaEditSolver(model: Model, state: AlphaEditState, alpha: number): { solve: LayerSolver; commit: () => void } {
  const F = model.config.nInner;
  const pending = new Map<number, Float64Array>();
  const solve: LayerSolver = async (_i, layer, keys) => {
    const ns = state.layers.get(layer);
    if (!ns) throw new RomeError("ERR_STATS", `the AlphaEdit state has no null space for layer ${layer}; create it with the statistics of every edited layer`);
    const N = keys.length / F;
    const m = ns.dim;
    if (m === 0) throw new RomeError("ERR_EDIT_REFUSED", `layer ${layer} has no null space below the threshold ${state.threshold} (every direction holds preserved knowledge): raise hparams.nullspaceThreshold or edit other layers`);
    const g = new Float64Array(m * N); // (m, N) Ûᵀ K
    for (let f = 0; f < F; f++) {
      for (let r = 0; r < N; r++) {
        const k = keys[r * F + f]!;
        if (k === 0) continue;
        for (let j = 0; j < m; j++) g[j * N + r] += ns.basis[f * m + j]! * k;
      }
    }
    const gg = new Float64Array(m * m); // (m, m) G Gᵀ
    for (let a = 0; a < m; a++) for (let b = a; b < m; b++) {
      let s = 0;
      for (let r = 0; r < N; r++) s += g[a * N + r]! * g[b * N + r]!;
      gg[a * m + b] = s;
      gg[b * m + a] = s;
    }
    const A = new Float64Array(m * m); // (m, m) previous + G Gᵀ + α I
    for (let i = 0; i < m * m; i++) A[i] = ns.previous[i]! + gg[i]!;
    for (let i = 0; i < m; i++) A[i * m + i]! += alpha;
    const y = Float64Array.from(g); // (m, N) → Y
    const At = { dims: [m, m], type: "float64" as const, data: A };
    await choleskyFactor(At);
    await choleskySolve(At, { dims: [m, N], type: "float64", data: y });
    const adj = new Float64Array(F * N); // (F, N) Û Y
    for (let f = 0; f < F; f++) for (let j = 0; j < m; j++) {
      const u = ns.basis[f * m + j]!;
      for (let r = 0; r < N; r++) adj[f * N + r] += u * y[j * N + r]!;
    }
    pending.set(layer, gg);
    return adj;
  };
  const commit = () => {
    for (const [layer, gg] of pending) {
      const prev = state.layers.get(layer)!.previous;
      for (let i = 0; i < gg.length; i++) prev[i]! += gg[i]!;
    }
    pending.clear();
  };
  return { solve, commit };
}

/**
 * AlphaEdit's batch edit: MEMIT's targets and keys, each layer's update in the null space of the
 * preserved knowledge and of the batches edited before with the same `state`. Progress and the
 * result as memit().
 */
export async function alphaEdit(model: Model, requests: readonly MemitRequest[], options: AlphaEditOptions): Promise<MemitEdit> {
  const t0 = performance.now();
  const { state: given, ...rest } = options;
  const setup = await setupBatch(model, requests, rest, "alphaEdit");
  const state = given ?? alphaEditState([...setup.stats.values()], setup.hp.nullspaceThreshold);
  throwIfAborted(options.signal);
  const t1 = performance.now();
  const targets = await batchTargets(model, setup, rest);
  const t2 = performance.now();
  const solver = alphaEditSolver(model, state, setup.hp.l2);
  const spread = await spreadUpdates(model, setup.batch, targets.z, setup.layers, solver.solve, { ...rest, edits: setup.edits });
  solver.commit();
  state.edited += requests.length;
  return {
    id: `alphaedit-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`,
    layers: spread.layers,
    info: { method: "alphaedit", layers: setup.layers, requests: setup.batch.requests.length, hparams: setup.hp, nullSpace: setup.layers.map((l) => state.layers.get(l)?.dim ?? 0) },
    requests: setup.batch.requests, sharedSubjects: setup.batch.sharedSubjects, targets, report: spread.report,
    seconds: { templates: (t1 - t0) / 1000, targets: (t2 - t1) / 1000, keys: spread.seconds.keys, solve: spread.seconds.solve, total: (performance.now() - t0) / 1000 },
  };
}
