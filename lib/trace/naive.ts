// The reference's way of computing a trace, kept for checking and benchmarks: every restoration
// reruns the whole network on N + 1 rows (row 0 clean, rows 1..N corrupted), copying row 0's
// state into rows 1..N at the restored token.
import { padBatch } from "../runtime/batch.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Engine, FlopMeter } from "../runtime/engine.js";
import { corrupt, type NoiseSpec } from "./noise.js";
import type { Patch, Restoration, RunStates } from "./plan.js";
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
  // Writes the component value of rows 1..N at token t (row 0's, or the corrupted run's) into
  // `comp` and sets out = input + comp there. Tensors are (N + 1, T, D).
  const patch = (out: Float32Array, input: Float32Array, comp: Float32Array, p: Patch, site: "attn" | "mlp") => {
    const t = r!.t;
    for (let row = 1; row <= N; row++) {
      const at = (row * T + t) * D;
      if (p.source === "clean") comp.copyWithin(at, t * D, (t + 1) * D);
      else {
        const src = (site === "attn" ? ctx.corrupted!.attnOut : ctx.corrupted!.mlpOut)[p.layer]!;
        comp.set(src.subarray(((row - 1) * T + t) * D, ((row - 1) * T + t + 1) * D), at);
      }
      for (let i = 0; i < D; i++) out[at + i] = input[at + i]! + comp[at + i]!;
    }
  };
  const res = await engine.run(batch, {
    edits: ctx.edits,
    head: Array.from({ length: N }, (_, i) => [i + 1, T - 1] as const),
    meter: ctx.meter,
    hooks: {
      // rows 1..N get noise; the draw is (N, e − b, D), the same for every restoration
      tokEmbed: (tok) => corrupt(tok.subarray(T * D), N, T, D, ctx.subject, ctx.noise, ctx.seed, ctx.draw),
      attn: (layer, s) => {
        for (const p of r?.patches ?? []) {
          if (p.site === "attn" && p.layer === layer) patch(s.residMid, s.resid, s.attnOut, p, "attn");
        }
      },
      mlp: (layer, s) => {
        for (const p of r?.patches ?? []) {
          if (p.layer !== layer) continue;
          if (p.site === "mlp") patch(s.residPost, s.residMid, s.mlpOut, p, "mlp");
          if (p.site === "resid") {
            for (let row = 1; row <= N; row++) s.residPost.copyWithin((row * T + r!.t) * D, r!.t * D, (r!.t + 1) * D);
          }
        }
      },
    },
  });
  const V = engine.config.vocabSize;
  let sum = 0;
  for (let n = 0; n < N; n++) sum += probOf(res.logits!.subarray(n * V, (n + 1) * V), ctx.answer);
  return sum / N;
}
