// Restoration plans: what one cell of a trace grid changes in the corrupted run, expressed as
// where its state first departs from the corrupted run (the entry step) and which component
// outputs it overwrites afterwards. Both executors (minimal and naive) read the same plans.
import type { TraceKind } from "./grid.js";

/** Steps: 2·l is layer l's attention half-block, 2·l + 1 its MLP half-block, 2·L the head. */
export type Step = number;

/** States of a run, per layer, each (rows, T, D); `rows` is 1 for the clean run, N corrupted. */
export interface RunStates {
  residPre: Float32Array[];
  residMid: Float32Array[];
  residPost: Float32Array[];
  attnOut: Float32Array[];
  mlpOut: Float32Array[];
}

/** A component output written at position t after a half-block runs. */
export interface Patch {
  layer: number;
  site: "attn" | "mlp";
  /** "clean": the clean run's output; "corrupted": the corrupted run's output of the same sample. */
  source: "clean" | "corrupted";
}

export interface Restoration {
  kind: TraceKind | "severed-mlp" | "severed-attn";
  /** Restored token position. */
  t: number;
  /** Grid column (the restored layer, or the window's centre). */
  column: number;
  /** Layers whose state at t is restored ([lo, hi); hi = lo + 1 for the residual kind). */
  lo: number;
  hi: number;
  /** Every state change, in step order; the first one is where the run departs from corrupted. */
  patches: (Patch | { layer: number; site: "resid"; source: "clean" })[];
}

/** The reference's window around a centre layer: [l − ⌊w/2⌋, l + ⌈w/2⌉) clipped to the model. */
export function windowLayers(center: number, window: number, nLayer: number): [number, number] {
  return [Math.max(0, center - Math.floor(window / 2)), Math.min(nLayer, center + Math.ceil(window / 2))];
}

/** One restoration per (token, layer) cell of a grid of `kind`. */
export function planGrid(kind: TraceKind, T: number, nLayer: number, window: number): Restoration[] {
  const out: Restoration[] = [];
  for (let t = 0; t < T; t++) {
    for (let l = 0; l < nLayer; l++) {
      if (kind === "resid") {
        out.push({ kind, t, column: l, lo: l, hi: l + 1, patches: [{ layer: l, site: "resid", source: "clean" }] });
      } else {
        const [lo, hi] = windowLayers(l, window, nLayer);
        const patches: Patch[] = [];
        for (let j = lo; j < hi; j++) patches.push({ layer: j, site: kind, source: "clean" });
        out.push({ kind, t, column: l, lo, hi, patches });
      }
    }
  }
  return out;
}

/**
 * The severed-path experiment at position t: restore the residual stream after layer l while the
 * MLP (or attention) outputs at t are frozen to corrupted values. With `everyLayer` false the
 * frozen values are the run's own corrupted ones, so only the layers after l need a patch; with
 * true (the reference's two-pass semantics, where they come from another corruption) every layer
 * but l is patched (layer l's own output at t is overwritten by the restoration).
 */
export function planSevered(component: "mlp" | "attn", t: number, nLayer: number, everyLayer = false): Restoration[] {
  const out: Restoration[] = [];
  for (let l = 0; l < nLayer; l++) {
    const patches: Restoration["patches"] = [];
    for (let j = 0; j < l && everyLayer; j++) patches.push({ layer: j, site: component, source: "corrupted" });
    patches.push({ layer: l, site: "resid", source: "clean" });
    for (let j = l + 1; j < nLayer; j++) patches.push({ layer: j, site: component, source: "corrupted" });
    out.push({ kind: component === "mlp" ? "severed-mlp" : "severed-attn", t, column: l, lo: l, hi: l + 1, patches });
  }
  return out;
}

/** Step after which a patch applies (resid patches apply after the block's MLP half). */
export function patchStep(p: Restoration["patches"][number]): Step {
  return p.site === "attn" ? 2 * p.layer : 2 * p.layer + 1;
}
