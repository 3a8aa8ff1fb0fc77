// The reference's way of computing a trace, kept for checking and benchmarks: every restoration
// reruns the whole network on N + 1 rows (row 0 clean, rows 1..N corrupted), copying row 0's
// state into rows 1..N at the restored token.
import { padBatch } from "../runtime/batch.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Engine, FlopMeter } from "../runtime/engine.js";
import { corrupt, type NoiseSpec } from "./noise.js";
import type { Restoration, RunStates } from "./plan.js";
import { RestorePlan } from "./restore-plan.js";
import { probOf } from "../runtime/sampling.js";

export interface NaiveContext {
  engine: Engine;
  edits: EditView;
  ids: number[];
  N: number;
  subject: [number, number];
  noise: NoiseSpec;
  seed: number;
  /** Which draw of the seed's stream corrupts the run (see `corrupt`). Default 0. */
  draw?: number;
  answer: number;
  meter: FlopMeter;
  /** The corrupted run's states (N rows), for patches that freeze to corrupted values. */
  corrupted?: RunStates;
}

/** p(answer) averaged over rows 1..N of a full rerun, per restoration (none: the low score). */
export async function runNaive(ctx: NaiveContext, r?: Restoration): Promise<number> {
  const { engine, N, ids } = ctx;
  const D = engine.config.nEmbd;
  const T = ids.length;
  const batch = padBatch(Array.from({ length: N + 1 }, () => ids));
  const plans = r ? restorePlans(ctx, r, T) : undefined;
  const res = await engine.run(batch, {
    edits: ctx.edits,
    head: Array.from({ length: N }, (_, i) => [i + 1, T - 1] as const),
    meter: ctx.meter,
    hooks: {
      // rows 1..N get noise; the draw is (N, e − b, D), the same for every restoration
      tokEmbed: (tok) => corrupt(tok.subarray(T * D), N, T, D, ctx.subject, ctx.noise, ctx.seed, ctx.draw),
      attn: (layer, s) => plans?.attn.get(layer)?.run(s.residMid, [s.resid, s.attnOut, s.residMid]),
      mlp: (layer, s) => plans?.mlp.get(layer)?.run(s.residPost, [s.residMid, s.mlpOut, s.residPost]),
    },
  });
  const V = engine.config.vocabSize;
  let sum = 0;
  for (let n = 0; n < N; n++) sum += probOf(res.logits!.subarray(n * V, (n + 1) * V), ctx.answer);
  return sum / N;
}

/**
 * A restoration's patches as one plan per half-block, over (N + 1, T, D) tensors, into the
 * half-block's output; bound slots: 0 its input, 1 its component output, 2 the output itself.
 * Rows 1..N at token t: out = input + the component value (row 0's, or the corrupted run's of the
 * same sample); a resid patch copies row 0's output state.
 */
function restorePlans(ctx: NaiveContext, r: Restoration, T: number): { attn: Map<number, RestorePlan>; mlp: Map<number, RestorePlan> } {
  const D = ctx.engine.config.nEmbd;
  const { N } = ctx;
  const t = r.t;
  const attn = new Map<number, RestorePlan>();
  const mlp = new Map<number, RestorePlan>();
  for (const p of r.patches) {
    const map = p.site === "attn" ? attn : mlp;
    const plan = map.get(p.layer) ?? map.set(p.layer, new RestorePlan(D, 3)).get(p.layer)!;
    for (let row = 1; row <= N; row++) {
      const at = row * T + t;
      if (p.site === "resid") plan.copy(at, 1, 2, t);
      else if (p.source === "clean") plan.add(at, 1, 0, at, 1, t);
      else plan.add(at, 1, 0, at, plan.slot((p.site === "attn" ? ctx.corrupted!.attnOut : ctx.corrupted!.mlpOut)[p.layer]!), (row - 1) * T + t);
    }
  }
  return { attn, mlp };
}
