// Attribution patching (Nanda 2023; Kramár et al. 2024, "AtP"): a first-order estimate of every
// cell of a causal trace from one backward pass. Per noise sample n, restoring a state h at
// (token t, layer l) changes log p_n(answer) by about (h_clean − h_n) · ∂ log p_n / ∂ h_n, with
// the gradient taken in the corrupted run. A window of MLP (attention) outputs sums the terms of
// its layers; ∂/∂ mlp_out = ∂/∂ resid_post and ∂/∂ attn_out = ∂/∂ resid_mid, so the gradients of
// the residual stream after each half-block give all three kinds.
//
// The gradient graph is the whole model from the residual entering layer 0 to log p(answer) at
// the last position, with a zero input added after every half-block; lib/graph/autodiff.ts
// derives d loss / d zero (= d loss / d state) from it. Nothing is differentiated by hand.
import { attr } from "../graph/builder.js";
import { buildGradient } from "../graph/autodiff.js";
import { emitContext, emitEditedMlp } from "../arch/segments.js";
import { RomeError } from "../errors.js";
import { attentionBias, padBatch } from "../runtime/batch.js";
import { throwIfAborted, type CallOptions } from "../runtime/call.js";
import type { EditView } from "../runtime/edit-view.js";
import type { FlopMeter } from "../runtime/engine.js";
import { headFlops, layerFlops } from "../runtime/flops.js";
import type { Model } from "../runtime/model.js";
import { SegmentSession, type Feed } from "../runtime/session.js";
import type { TraceKind } from "./grid.js";
import { windowLayers, type RunStates } from "./plan.js";

/** Value names of the gradient graph (B rows, T tokens, D width, H heads). */
const AG = {
  resid: "resid0",          // (B, T, D) residual entering layer 0 (the corrupted run's)
  bias: "attn_bias",        // (B, 1, T, T) causal mask
  positions: "positions",   // (B, T) int64, read by rotary architectures only
  pastKey: "past_key",      // (B, H, 0, Dh) empty: the graph sees every token
  pastValue: "past_value",  // (B, H, 0, Dh)
  select: "select",         // (B, 2) int64 (row, last position)
  answer: "answer",         // (B, 1) int64
  logp: "answer_logprob",   // (B, 1) log p(answer) per row
  loss: "loss",             // () Σ rows log p(answer)
  zMid: (l: number) => `z_mid_${l}`,   // (B, T, D) zeros added to resid_mid of layer l
  zPost: (l: number) => `z_post_${l}`, // (B, T, D) zeros added to resid_post of layer l
} as const;

/**
 * The gradient session of a model (built once per model, freed by its dispose(); the layers' edit
 * factors are inputs, so edits apply).
 */
function gradientSession(model: Model): Promise<SegmentSession> {
  return model.resources.get("attribution-session", () => build(model), (s) => s.release());
}

async function build(model: Model): Promise<SegmentSession> {
  const cfg = model.config;
  const ctx = emitContext("attribution", cfg, model.weights);
  const { b } = ctx;
  const D = cfg.nEmbd;
  const H = cfg.nHead;
  const Dh = D / H;
  const bias = b.input(AG.bias, "float32", ["B", 1, "T", "T"]);
  const pastKey = b.input(AG.pastKey, "float32", ["B", H, 0, Dh]);
  const pastValue = b.input(AG.pastValue, "float32", ["B", H, 0, Dh]);
  let positions: string | undefined;
  let h = b.input(AG.resid, "float32", ["B", "T", D]);
  const wrt: string[] = [];
  for (let l = 0; l < cfg.nLayer; l++) {
    const a = model.arch.emitAttention(ctx, l, {
      resid: h, pastKey, pastValue, bias,
      get positions() {
        positions ??= b.input(AG.positions, "int64", ["B", "T"]);
        return positions;
      },
    });
    const mid = b.op("Add", [b.op("Add", [h, a.attnOut]), b.input(AG.zMid(l), "float32", ["B", "T", D])]);
    const m = emitEditedMlp(model.arch, ctx, l, { residMid: mid, resid: h }, `edit_u_${l}`, `edit_v_${l}`);
    h = b.op("Add", [b.op("Add", [mid, m.mlpOut]), b.input(AG.zPost(l), "float32", ["B", "T", D])]);
    wrt.push(AG.zMid(l), AG.zPost(l));
  }
  const rows = b.op("GatherND", [h, b.input(AG.select, "int64", ["B", 2])]); // (B, D)
  const logp = b.op("LogSoftmax", [model.arch.emitHead(ctx, rows)], { axis: attr.int(-1) }); // (B, V)
  const tl = b.op("GatherElements", [logp, b.input(AG.answer, "int64", ["B", 1])], { axis: attr.int(1) }); // (B, 1)
  const loss = b.op("ReduceSum", [tl], { keepdims: attr.int(0) });
  b.output(AG.loss, loss, "float32", []); // (outputs rename their values: declared after every use)
  b.output(AG.logp, tl, "float32", ["B", 1]);
  const grad = buildGradient(b, { loss: AG.loss, wrt, keep: [AG.logp] });
  try {
    return await SegmentSession.fromGraph(grad, model.sessionOptions);
  } catch (e) {
    throw new RomeError("ERR_ONNX", `onnxruntime rejected the attribution gradient graph: ${(e as Error).message}`, { cause: e });
  }
}

/** What attribution needs of a prepared trace: the prompt, the answer and both runs' states. */
export interface AttributionContext {
  model: Model;
  /** The call's edit set (its factors feed the gradient graph's edit inputs). */
  edits: EditView;
  ids: number[];
  /** Noise samples N: rows of `corrupted`. */
  N: number;
  answer: number;
  subjectRange: [number, number];
  lowScore: number;
  clean: RunStates;     // rows 1
  corrupted: RunStates; // rows N
  meter: FlopMeter;
}

/** One kind's estimates, (T, L) each. */
export interface AttributionGrid {
  /**
   * Estimate of the trace's score (p(answer) averaged over samples) with the cell restored: per
   * sample, the first-order change of log p turned into a change of log-odds (restoredProbability),
   * then averaged: mean_n σ(logit p_n + Δ_n / (1 − p_n)), Δ_n = (h_clean − h_n) · ∂ log p_n / ∂ h_n.
   */
  score: number[][];
  /** mean_n (h_clean − h_n) · ∂ log p_n / ∂ h_n: the first-order change of log p(answer) per sample. */
  logp: number[][];
}

/**
 * p(answer) of one sample after a first-order change `dlogp` of log p, taken as a change of the
 * log-odds: d log-odds = d log p / (1 − p). Linear in the log-odds, the estimate stays in (0, 1)
 * and a large gain at a small p (0.001 → 0.4, a common restoration) is not lost to p's own
 * small gradient, as it is when p itself is linearised.
 */
export function restoredProbability(p: number, dlogp: number): number {
  if (dlogp === 0) return p;
  const q = Math.min(Math.max(p, 1e-12), 1 - 1e-7);
  const z = Math.log(q / (1 - q)) + dlogp / (1 - q);
  return 1 / (1 + Math.exp(-z));
}

/** FLOPs of the gradient run: the forward pass over N rows of T tokens, and about twice that backward. */
export function attributionFlops(model: Model, N: number, T: number): number {
  const cfg = model.config;
  return 3 * (cfg.nLayer * layerFlops(cfg, N, T, 0) + headFlops(cfg, N));
}

/** Estimates of every cell of each kind's grid (windows as in tracing) from one gradient run. */
export async function attributionGrids(ctx: AttributionContext, kinds: readonly TraceKind[], window: number, call: CallOptions = {}):
  Promise<Partial<Record<TraceKind, AttributionGrid>>> {
  const { model, ids, N, clean, corrupted } = ctx;
  const cfg = model.config;
  const L = cfg.nLayer;
  const D = cfg.nEmbd;
  const H = cfg.nHead;
  const T = ids.length;
  throwIfAborted(call.signal);
  call.onProgress?.({ phase: "attribution", done: 0, total: 1 });
  const session = await gradientSession(model);
  throwIfAborted(call.signal);
  const batch = padBatch(Array.from({ length: N }, () => ids));
  const f32 = (data: Float32Array, dims: number[]): Feed => ({ data, dims });
  const zeros = new Float32Array(N * T * D); // (N, T, D), shared by every z input
  const select = new BigInt64Array(2 * N); // (N, 2)
  for (let n = 0; n < N; n++) [select[2 * n], select[2 * n + 1]] = [BigInt(n), BigInt(T - 1)];
  const feeds: Record<string, Feed> = {
    [AG.resid]: f32(corrupted.residPre[0]!, [N, T, D]),
    [AG.bias]: f32(attentionBias(batch), [N, 1, T, T]),
    [AG.pastKey]: f32(new Float32Array(0), [N, H, 0, D / H]),
    [AG.pastValue]: f32(new Float32Array(0), [N, H, 0, D / H]),
    [AG.select]: { data: select, dims: [N, 2] },
    [AG.answer]: { data: new BigInt64Array(N).fill(BigInt(ctx.answer)), dims: [N, 1] },
  };
  if (session.inputNames.includes(AG.positions)) feeds[AG.positions] = { data: batch.positions, dims: [N, T] };
  for (let l = 0; l < L; l++) {
    feeds[AG.zMid(l)] = f32(zeros, [N, T, D]);
    feeds[AG.zPost(l)] = f32(zeros, [N, T, D]);
    const f = ctx.edits.factors(l);
    const R = f?.rank ?? 0;
    feeds[`edit_u_${l}`] = f32(f?.u ?? new Float32Array(0), [cfg.nInner, R]);
    feeds[`edit_v_${l}`] = f32(f?.v ?? new Float32Array(0), [R, D]);
  }
  const fetch = [AG.logp, ...Array.from({ length: L }, (_, l) => [`grad_${AG.zMid(l)}`, `grad_${AG.zPost(l)}`]).flat()];
  const out = await session.run(feeds, fetch);
  ctx.meter.flops += attributionFlops(model, N, T);
  const p = Array.from(out[AG.logp]!, Math.exp); // (N)
  const gMid = Array.from({ length: L }, (_, l) => out[`grad_${AG.zMid(l)}`]!);   // (N, T, D) each
  const gPost = Array.from({ length: L }, (_, l) => out[`grad_${AG.zPost(l)}`]!); // (N, T, D) each

  // Per layer, sample and token: (h_clean − h_n) · g_n for the states each kind restores. (L, N, T)
  const b0 = ctx.subjectRange[0];
  const terms = (cleanStates: Float32Array[], corruptStates: Float32Array[], grads: Float32Array[]) =>
    Array.from({ length: L }, (_, l) => {
      const c = cleanStates[l]!;
      const h = corruptStates[l]!;
      const g = grads[l]!;
      const e = new Float64Array(N * T); // (N, T); positions before the subject stay 0 (no change to restore)
      for (let n = 0; n < N; n++) {
        for (let t = b0; t < T; t++) {
          const at = (n * T + t) * D;
          let s = 0;
          for (let i = 0; i < D; i++) s += (c[t * D + i]! - h[at + i]!) * g[at + i]!;
          e[n * T + t] = s;
        }
      }
      return e;
    });
  const out2: Partial<Record<TraceKind, AttributionGrid>> = {};
  for (const kind of kinds) {
    const e = kind === "resid" ? terms(clean.residPost, corrupted.residPost, gPost)
      : kind === "mlp" ? terms(clean.mlpOut, corrupted.mlpOut, gPost)
      : terms(clean.attnOut, corrupted.attnOut, gMid);
    const score: number[][] = [];
    const logp: number[][] = [];
    for (let t = 0; t < T; t++) {
      const sRow: number[] = [];
      const lRow: number[] = [];
      for (let l = 0; l < L; l++) {
        const [lo, hi] = kind === "resid" ? [l, l + 1] : windowLayers(l, window, L);
        let ps = 0;
        let dl = 0;
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let j = lo; j < hi; j++) s += e[j]![n * T + t]!;
          ps += restoredProbability(p[n]!, s);
          dl += s;
        }
        sRow.push(ps / N);
        lRow.push(dl / N);
      }
      score.push(sRow);
      logp.push(lRow);
    }
    out2[kind] = { score, logp };
  }
  call.onProgress?.({ phase: "attribution", done: 1, total: 1 });
  return out2;
}
