// MEMIT's update, layer by layer in ascending order (kmeng01/memit execute_memit): at each layer
// the keys of every request (averaged within each template group, then over groups) and the
// current z at the bare prompt are read from the model with the layers below already updated; the
// residual z − z_cur is spread evenly over the remaining layers, and the layer's update is
// ΔW = adj · resid with adj (F, N) from a solver (MEMIT's (λC + K Kᵀ)⁻¹ K, or AlphaEdit's
// projected one). Each layer's update is a factor pair U = adj (F, N), V = resid (N, D).
import { RomeError } from "../errors.js";
import { padBatch } from "../runtime/batch.js";
import { throwIfAborted, type CallOptions } from "../runtime/call.js";
import type { EditView, LayerFactors } from "../runtime/edit-view.js";
import { ROWS_PER_RUN } from "../runtime/engine-rows.js";
import type { Model } from "../runtime/model.js";
import type { Located } from "./lookup.js";
import type { PreparedBatch } from "./memit-requests.js";

export type { LayerFactors };

/** Computes adj (F, N) float64, row-major, for the keys K (N, F) (float32 values) at the i-th edited layer. */
export type LayerSolver = (i: number, layer: number, keys: Float32Array) => Promise<Float64Array>;

export interface LayerReport {
  layer: number;
  /** Mean over requests of ‖z − z_cur‖ before this layer's update. */
  zError: number;
  /** Mean key norm. */
  keyNorm: number;
  /** ‖ΔW‖_F of this layer's update. */
  updateNorm: number;
}

export interface SpreadResult {
  layers: LayerFactors[];
  report: LayerReport[];
  /** Per edited layer, the keys K (N, F) the update was solved for. */
  keys: Float32Array[];
  seconds: { keys: number; solve: number };
}

/**
 * Spreads the targets z (N, D) at the output of block max(layers) over `layers` (ascending), on the
 * edit set `call.edits`; the batch's updates of the layers below are stacked after it (in a view of
 * this call only) while the next layer's keys and z are read. Nothing shared changes.
 */
export async function spreadUpdates(model: Model, batch: PreparedBatch, z: Float32Array, layers: readonly number[], solve: LayerSolver, call: CallOptions & { edits?: EditView } = {}): Promise<SpreadResult> {
  const edits = model.edits.view(call.edits); // the call's edit set, captured before any await
  const { nInner: F, nEmbd: D } = model.config;
  const N = batch.requests.length;
  const zLayer = layers[layers.length - 1]!;
  const done: LayerFactors[] = [];
  const report: LayerReport[] = [];
  const keysOut: Float32Array[] = [];
  let tKeys = 0;
  let tSolve = 0;
  for (let i = 0; i < layers.length; i++) {
    throwIfAborted(call.signal);
    const layer = layers[i]!;
    const t0 = performance.now();
    const { keys, curZ } = await readKeys(model, batch, layer, zLayer, edits.plus(done, model.config));
    const t1 = performance.now();
    const resid = new Float64Array(N * D); // (N, D)
    let zError = 0;
    for (let r = 0; r < N; r++) {
      let s = 0;
      for (let j = 0; j < D; j++) {
        const t = Math.fround(z[r * D + j]! - curZ[r * D + j]!); // float32, as the reference's z − cur_z
        s += t * t;
        resid[r * D + j] = t / (layers.length - i);
      }
      zError += Math.sqrt(s) / N;
    }
    const adj = await solve(i, layer, keys);
    if (!adj.every(Number.isFinite)) throw new RomeError("ERR_NOT_FINITE", `the update of layer ${layer} is not finite; check the statistics and the keys`);
    const u = Float32Array.from(adj);   // (F, N)
    const v = Float32Array.from(resid); // (N, D)
    done.push({ layer, u, v });
    keysOut.push(keys);
    let keyNorm = 0;
    for (let r = 0; r < N; r++) keyNorm += Math.hypot(...keys.subarray(r * F, (r + 1) * F)) / N;
    report.push({ layer, zError, keyNorm, updateNorm: frobenius(u, v, F, N, D) });
    tKeys += t1 - t0;
    tSolve += performance.now() - t1;
    call.onProgress?.({ phase: "layers", done: i + 1, total: layers.length });
  }
  return { layers: done, report, keys: keysOut, seconds: { keys: tKeys / 1000, solve: tSolve / 1000 } };
}

/**
 * Keys (N, F) at `layer` (mean within each template group, then over groups, as float32) and the
 * current z (N, D) at the output of block `zLayer` at each bare prompt's subject-last token.
 */
export async function readKeys(model: Model, batch: PreparedBatch, layer: number, zLayer: number, edits: EditView): Promise<{ keys: Float32Array; curZ: Float32Array }> {
  const { nInner: F, nEmbd: D } = model.config;
  const N = batch.requests.length;
  const perRequest = batch.keyPrompts[0]!.length + 1;
  const rows: Located[] = batch.keyPrompts.flatMap((k, r) => [...k, batch.bare[r]!]);
  const rawKeys = new Float32Array(rows.length * F); // (rows, F)
  const curZ = new Float32Array(N * D);
  for (let s = 0; s < rows.length; s += ROWS_PER_RUN) {
    const part = rows.slice(s, s + ROWS_PER_RUN);
    const pb = padBatch(part.map((x) => x.ids));
    let key: Float32Array | undefined; // (B, T, F)
    const res = await model.engine.run(pb, { edits, stopLayer: zLayer + 1, needKey: (l) => l === layer, hooks: { mlp: (l, st) => { if (l === layer) key = st.mlpKey; } } });
    part.forEach((x, b) => {
      const pos = b * pb.T + pb.pad[b]! + x.index;
      const row = s + b;
      rawKeys.set(key!.subarray(pos * F, (pos + 1) * F), row * F);
      if (row % perRequest === perRequest - 1) curZ.set(res.resid.subarray(pos * D, (pos + 1) * D), ((row - perRequest + 1) / perRequest) * D);
    });
  }
  const keys = new Float32Array(N * F);
  const sum = new Float64Array(F);
  for (let r = 0; r < N; r++) {
    const acc = new Float64Array(F);
    let offset = r * perRequest;
    for (const g of batch.groups) {
      sum.fill(0);
      for (let t = 0; t < g.length; t++) for (let f = 0; f < F; f++) sum[f] += rawKeys[(offset + t) * F + f]!;
      for (let f = 0; f < F; f++) acc[f] += sum[f]! / g.length;
      offset += g.length;
    }
    for (let f = 0; f < F; f++) keys[r * F + f] = acc[f]! / batch.groups.length;
  }
  return { keys, curZ };
}

/** ‖U V‖_F for U (F, r), V (r, D): sqrt(Σ (UᵀU) ∘ (V Vᵀ)). */
function frobenius(u: Float32Array, v: Float32Array, F: number, r: number, D: number): number {
  const uu = new Float64Array(r * r);
  const vv = new Float64Array(r * r);
  for (let f = 0; f < F; f++) for (let a = 0; a < r; a++) for (let b = 0; b < r; b++) uu[a * r + b] += u[f * r + a]! * u[f * r + b]!;
  for (let a = 0; a < r; a++) for (let b = 0; b < r; b++) for (let d = 0; d < D; d++) vv[a * r + b] += v[a * D + d]! * v[b * D + d]!;
  let s = 0;
  for (let i = 0; i < r * r; i++) s += uu[i]! * vv[i]!;
  return Math.sqrt(Math.max(0, s));
}
