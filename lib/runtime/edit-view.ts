// An edit set as a value: per layer, the stacked low-rank factors U (F, r), V (r, D) of the edits
// a call runs with. Every public call captures one view when it starts (or is given one) and passes
// it down to the MLP segment runs, so applying, undoing or switching edits while a call is in
// flight never changes that call's results. A view is never modified after it is built.
import type { ModelConfig } from "../model/config.js";

/** Low-rank factors of one layer's MLP output projection: ΔW = U V (in_out layout, [F, D]). */
export interface EditFactors {
  rank: number;
  u: Float32Array; // (F, rank)
  v: Float32Array; // (rank, D)
}

/** One layer of an edit: ΔW = U V with U (F, r) and V (r, D), row-major; r = v.length / D. */
export interface LayerFactors {
  layer: number;
  u: Float32Array; // (F, r)
  v: Float32Array; // (r, D)
}

/** An immutable snapshot of the enabled edits: the stacked factors of each edited layer. */
export class EditView {
  /** The base model: no edits. */
  static readonly NONE = new EditView(new Map(), []);

  /**
   * @param byLayer stacked factors per layer (rank ≥ 1); the caller hands them over and never
   *   writes to them again.
   * @param ids the edits this view holds, in the order their factors are stacked.
   */
  constructor(private readonly byLayer: ReadonlyMap<number, EditFactors>, readonly ids: readonly string[]) {
    Object.freeze(this.ids);
    Object.freeze(this);
  }

  /** The stacked factors of `layer`, or undefined when no edit in the view touches it. */
  factors(layer: number): EditFactors | undefined {
    return this.byLayer.get(layer);
  }

  /** The layers with factors, ascending. */
  get layers(): number[] {
    return [...this.byLayer.keys()].sort((a, b) => a - b);
  }

  /**
   * This view with `extra` factors stacked after its own at their layers (not applied edits: the
   * ids stay the same). Batch editors read the model with their lower layers' updates in effect.
   */
  plus(extra: readonly LayerFactors[], config: ModelConfig): EditView {
    const next = new Map(this.byLayer);
    for (const e of extra) {
      const own = next.get(e.layer);
      next.set(e.layer, stackFactors(own ? [{ layer: e.layer, u: own.u, v: own.v }, e] : [e], config)!);
    }
    return new EditView(next, this.ids);
  }

  /** A view with `layer`'s factors replaced by `factors` (removed when undefined). */
  withLayer(layer: number, factors: EditFactors | undefined, ids: readonly string[]): EditView {
    const next = new Map(this.byLayer);
    if (factors) next.set(layer, factors);
    else next.delete(layer);
    return new EditView(next, ids);
  }
}

/** Stacks the factors of `parts` (one layer, in order) into U (F, Σr), V (Σr, D); undefined when empty. */
export function stackFactors(parts: readonly LayerFactors[], config: ModelConfig): EditFactors | undefined {
  const F = config.nInner;
  const D = config.nEmbd;
  const rank = parts.reduce((a, p) => a + p.v.length / D, 0);
  if (rank === 0) return undefined;
  const u = new Float32Array(F * rank); // (F, rank)
  const v = new Float32Array(rank * D); // (rank, D)
  let j = 0;
  for (const p of parts) {
    const r = p.v.length / D;
    for (let f = 0; f < F; f++) for (let k = 0; k < r; k++) u[f * rank + j + k] = p.u[f * r + k]!;
    v.set(p.v, j * D);
    j += r;
  }
  return { rank, u, v };
}
