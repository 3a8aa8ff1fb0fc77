// The forward graph of ROME's value loss, from the residual stream after the edited layer to the
// loss: δ added at each prompt's subject-last token, the layers above (with their edits), the head
// at the target and KL positions, NLL of the new object plus the KL term. The gradient graph is
// derived from it by lib/graph/autodiff.ts — nothing here is differentiated by hand — and one
// onnxruntime session run gives the loss and d loss / d δ. The model's weights are inputs of the
// graph, not initializers: the session holds no copy of the layers above, and each edit feeds them
// read back from the model's source (freed when the edit is done).
import { buildGradient } from "../graph/autodiff.js";
import { attr } from "../graph/builder.js";
import { emitContext, emitEditedMlp } from "../arch/segments.js";
import type { EmitContext } from "../arch/types.js";
import { RomeError } from "../errors.js";
import { EditView } from "../runtime/edit-view.js";
import type { KVCache } from "../runtime/engine.js";
import type { Model } from "../runtime/model.js";
import { SegmentSession, type Feed } from "../runtime/session.js";

/**
 * Value names of the loss graph (B prompts, W window columns: those from the earliest subject-last
 * token on, P past columns before them, S = P + W, Nn target tokens, V vocabulary). The past
 * columns' keys and values at each layer above are inputs (past_key_l, past_value_l: (B, Hkv, P, Dh)).
 */
export const VG = {
  resid: "resid",             // (B, W, D) residual stream after the edited layer, without δ
  mask: "delta_mask",         // (B, W, 1) 1 at each prompt's subject-last token
  delta: "delta",             // (D)
  bias: "attn_bias",          // (B, 1, W, S)
  positions: "positions",     // (B, W) int64 absolute positions of the window columns (rotary models only)
  selectNll: "select_nll",    // (Nn, 2) (row, position) whose logits predict a target token
  targets: "target_ids",      // (Nn, 1) int64
  weights: "nll_weights",     // (Nn) 1 / (target length · prompts)
  selectKl: "select_kl",      // (1, 2) the KL prompt's subject-last token
  klInit: "kl_init",          // (1, V) log-probabilities there before the optimisation
  klFactor: "kl_factor",      // () scalar
  loss: "loss",               // () NLL + KL
  nll: "nll",
  kl: "kl",
  targetLogprobs: "target_logprobs", // (Nn, 1)
  klLogprobs: "kl_logprobs",  // (1, V)
} as const;

export interface ValueSession {
  layer: number;
  session: SegmentSession;
  /** The model weights the graph takes as inputs (fed under their own names). */
  weightNames: string[];
}

/**
 * The gradient session for edits at `layer` under the edit set `edits` (default none; built once per model, layer
 * and set of edited layers above, freed with the model).
 */
export function valueSession(model: Model, layer: number, edits: EditView = EditView.NONE): Promise<ValueSession> {
  const edited = editedAbove(model, layer, edits);
  return model.resources.get(`value-session:${layer}:${edited.join(",")}`, () => build(model, layer, edited), (s) => s.session.release());
}

/**
 * The layers above `layer` that `edits` touches: only their MLPs take edit factors in a gradient
 * graph (an unedited layer's empty factors would still cost a product and a sum per step).
 */
export function editedAbove(model: Model, layer: number, edits: EditView): number[] {
  return edits.layers.filter((l) => l > layer && l < model.config.nLayer);
}

/**
 * The layers above `layer` (with the edit factors of the layers in `edited`, inputs edit_u_l/edit_v_l,
 * the past columns' keys and values, inputs past_key_l/past_value_l, and for rotary models the window's positions,
 * input VG.positions) applied to the residual stream h (B, W, D); returns the residual stream
 * after the last layer. With `at`, returns only the rows (N, D) at its (row, column) pairs `select`
 * (N, 2), whose columns count among the window columns `queries` (Q) int64: the last layer's
 * attention then runs its queries, output and projection at those Q columns only (its keys and
 * values still at every column), and its MLP at the N pairs alone.
 */
export function emitLayersAbove(model: Model, ctx: EmitContext, layer: number, edited: readonly number[], h: string, bias: string, at?: { select: string; queries: string }): string {
  const { b } = ctx;
  const cfg = model.config;
  const H = cfg.nKvHead;
  const Dh = cfg.headDim;
  let positions: string | undefined;
  for (let l = layer + 1; l < cfg.nLayer; l++) {
    const last = at && l === cfg.nLayer - 1;
    const pastKey = b.input(`past_key_${l}`, "float32", ["B", H, "P", Dh]);
    const pastValue = b.input(`past_value_${l}`, "float32", ["B", H, "P", Dh]);
    const a = model.arch.emitAttention(ctx, l, {
      resid: h, pastKey, pastValue, bias, splitPast: true, queries: last ? at.queries : undefined,
      get positions() {
        positions ??= b.input(VG.positions, "int64", ["B", "W"]);
        return positions;
      },
    });
    let mid: string;
    if (last) {
      h = b.op("Gather", [h, at.queries], { axis: attr.int(1) }); // (B, Q, D)
      mid = b.op("GatherND", [b.op("Add", [h, a.attnOut]), at.select]); // (N, D)
      h = b.op("GatherND", [h, at.select]);
    } else mid = b.op("Add", [h, a.attnOut]);
    const io = { residMid: mid, resid: h };
    h = b.op("Add", [mid, (edited.includes(l) ? emitEditedMlp(model.arch, ctx, l, io, `edit_u_${l}`, `edit_v_${l}`) : model.arch.emitMlp(ctx, l, io)).mlpOut]);
  }
  return at && layer + 1 >= cfg.nLayer ? b.op("GatherND", [b.op("Gather", [h, at.queries], { axis: attr.int(1) }), at.select]) : h;
}

/** Log-probabilities (N, V) of the head at the (row, position) pairs `select` (N, 2) of h (B, W, D). */
export function emitLogprobsAt(model: Model, ctx: EmitContext, h: string, select: string): string {
  return ctx.b.op("LogSoftmax", [model.arch.emitHead(ctx, ctx.b.op("GatherND", [h, select]))], { axis: attr.int(-1) });
}

async function build(model: Model, layer: number, edited: readonly number[]): Promise<ValueSession> {
  const cfg = model.config;
  const ctx = emitContext(`value${layer}`, cfg, model.weights, true);
  const { b } = ctx;
  const D = cfg.nEmbd;
  const resid = b.input(VG.resid, "float32", ["B", "W", D]);
  const mask = b.input(VG.mask, "float32", ["B", "W", 1]);
  const delta = b.input(VG.delta, "float32", [D]);
  const bias = b.input(VG.bias, "float32", ["B", 1, "W", "S"]);
  const h = emitLayersAbove(model, ctx, layer, edited, b.op("Add", [resid, b.op("Mul", [mask, delta])]), bias);
  const logp = (select: string) => emitLogprobsAt(model, ctx, h, select);
  const lpNll = logp(b.input(VG.selectNll, "int64", ["Nn", 2]));               // (Nn, V)
  const lpKl = logp(b.input(VG.selectKl, "int64", [1, 2]));                     // (1, V)
  const tl = b.op("GatherElements", [lpNll, b.input(VG.targets, "int64", ["Nn", 1])], { axis: attr.int(1) }); // (Nn, 1)
  const w = b.op("Reshape", [b.input(VG.weights, "float32", ["Nn"]), b.constInt64([-1, 1])]);
  const nll = b.op("Neg", [b.op("ReduceSum", [b.op("Mul", [tl, w])], { keepdims: attr.int(0) })]);
  const klInit = b.input(VG.klInit, "float32", [1, cfg.vocabSize]);
  const klFactor = b.input(VG.klFactor, "float32", []);
  // KL(P_cur ‖ P_init) = Σ p_cur (log p_cur − log p_init)
  const kl = b.op("Mul", [klFactor, b.op("ReduceSum", [b.op("Mul", [b.op("Exp", [lpKl]), b.op("Sub", [lpKl, klInit])])], { keepdims: attr.int(0) })]);
  const loss = b.op("Add", [nll, kl]);
  b.output(VG.loss, loss, "float32", []);
  b.output(VG.nll, nll, "float32", []);
  b.output(VG.kl, kl, "float32", []);
  b.output(VG.targetLogprobs, tl, "float32", ["Nn", 1]);
  b.output(VG.klLogprobs, lpKl, "float32", [1, cfg.vocabSize]);
  const grad = buildGradient(b, { loss: VG.loss, wrt: [VG.delta], keep: [VG.nll, VG.kl, VG.targetLogprobs, VG.klLogprobs] });
  try {
    return { layer, session: await SegmentSession.fromGraph(grad, model.sessionOptions), weightNames: ctx.weightNames };
  } catch (e) {
    throw new RomeError("ERR_ONNX", `onnxruntime rejected the value-gradient graph of layer ${layer}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The feeds of the layers above `layer` that the value and MEMIT target graphs share: per layer the
 * kept keys and values of the B rows' first P0 columns ((B, H, P0, Dh), empty when P0 is 0) and the
 * call's edit factors at the layers that have them (U (F, r), V (r, D); editedAbove); then the weights of the layers above and the head, read
 * back from the model's source for this call only.
 */
export function feedLayersAbove(model: Model, layer: number, edits: EditView, above: KVCache | undefined, B: number, P0: number, weightNames: readonly string[], feeds: Record<string, Feed>): void {
  const cfg = model.config;
  const kv = [B, cfg.nKvHead, P0, cfg.headDim];
  for (let l = layer + 1; l < cfg.nLayer; l++) {
    const f = edits.factors(l);
    feeds[`past_key_${l}`] = { data: above?.key[l] ?? new Float32Array(0), dims: kv };
    feeds[`past_value_${l}`] = { data: above?.value[l] ?? new Float32Array(0), dims: kv };
    if (!f) continue;
    feeds[`edit_u_${l}`] = { data: f.u, dims: [cfg.nInner, f.rank] };
    feeds[`edit_v_${l}`] = { data: f.v, dims: [f.rank, cfg.nEmbd] };
  }
  for (const name of weightNames) {
    const w = model.weights.get(name)!;
    feeds[name] = { data: w.data, dims: w.shape };
  }
}
