// The forward graph of MEMIT's target loss for a batch of R requests at once, from the residual
// stream after the z layer to the summed loss: request r's δ_r added at the subject-last token of
// each of its prompts, the layers above (lib/edit/value-graph.ts's emitLayersAbove, edits
// included), NLL of each request's new object, and per request the KL term at its "{} is a" prompt.
// Requests share no prompt, so d(sum of losses)/dδ_r is request r's own gradient: one session run
// gives every request's loss and gradient. The gradient graph is derived by lib/graph/autodiff.ts.
import { buildGradient } from "../graph/autodiff.js";
import { attr } from "../graph/builder.js";
import { emitContext } from "../arch/segments.js";
import { RomeError } from "../errors.js";
import type { Model } from "../runtime/model.js";
import { SegmentSession } from "../runtime/session.js";
import type { EditView } from "../runtime/edit-view.js";
import { editedAbove, emitLayersAbove, VG } from "./value-graph.js";

/**
 * Value names of the batched loss graph (B prompt rows, R requests, W window columns, S = P + W with
 * P past columns, Nn target tokens over all rows, V vocabulary). Past keys/values and edit factors
 * of the layers above are inputs as in the value graph (past_key_l, past_value_l, edit_u_l, edit_v_l).
 */
export const ZG = {
  resid: "resid",             // (B, W, D) residual stream after the z layer, without δ
  mask: "delta_mask",         // (B, W, 1) 1 at each row's subject-last token
  deltas: "deltas",           // (R, D) one δ per request
  rowRequest: "row_request",  // (B) int64: the request of each row
  bias: "attn_bias",          // (B, 1, W, S)
  queries: "query_columns",   // (Q) int64 the window columns the loss reads, ascending: where the last layer's queries run
  select: "select",           // (Nn + R, 2) int64 (row, index into queries) pairs where the head runs: the target tokens' then the KL prompts'
  nllRows: "nll_rows",        // (Nn) int64 the rows of select whose logits predict a target token
  klRows: "kl_rows",          // (R) int64 the rows of select at each request's KL prompt's subject-last token
  targets: "target_ids",      // (Nn, 1) int64
  weights: "nll_weights",     // (Nn) 1 / (target length · the request's rewriting prompts)
  klInit: "kl_init",          // (R, V) log-probabilities there before the optimisation
  klFactor: "kl_factor",      // () scalar
  loss: "loss",               // () Σ_r NLL_r + KL_r
  klEach: "kl_each",          // (R) klFactor · KL_r
  targetLogprobs: "target_logprobs", // (Nn, 1)
  klLogprobs: "kl_logprobs",  // (R, V)
  positions: VG.positions,    // (B, W) int64 absolute positions of the window columns (rotary models only)
} as const;

export interface ZSession {
  session: SegmentSession;
  /** The model weights the graph takes as inputs (fed under their own names, read back per call). */
  weightNames: string[];
}

/** The batched gradient session for targets at the output of block `layer` under the edit set
 * `edits` (built once per model, layer, set of edited layers above and `arena`, owned by the model
 * and freed by its dispose()). With `arena`, the session keeps onnxruntime's memory arena (without
 * memory patterns, whose blocks for each new shape faulted in another 10,000–18,000 pages per batch
 * of 10 on TinyFacts): a step's intermediates reuse the memory of the step before instead of being
 * freed and faulted back in at every step (see ZARENA_BYTES). */
export function zSession(model: Model, layer: number, edits: EditView, arena = false): Promise<ZSession> {
  const edited = editedAbove(model, layer, edits);
  return model.resources.get(`memit-z-session:${layer}:${edited.join(",")}${arena ? ":arena" : ""}`, () => build(model, layer, edited, arena), (s) => s.session.release());
}

/**
 * The most memory a z session's arena may keep for the model's lifetime: a chunk whose estimated
 * step (zStepBytes) needs more runs without the arena, as every session by default (docs/memory.md).
 */
export const ZARENA_BYTES = 256 * 2 ** 20;

/**
 * Estimated memory of one step of the batched gradient graph, an upper bound of what its arena
 * keeps: `rows` prompt rows of `window` columns, 8 (rows, window, d_ff) float32 intermediates per
 * layer above `layer` (TinyFacts' batch of 10, 210 rows of 7 columns: 96 MB; the process's RSS
 * after the batch was 294 MB with the arena and 380 MB without, freed memory the C heap kept).
 */
export function zStepBytes(model: Model, layer: number, rows: number, window: number): number {
  return rows * window * model.config.nInner * 4 * 8 * Math.max(1, model.config.nLayer - layer - 1);
}

async function build(model: Model, layer: number, edited: readonly number[], arena: boolean): Promise<ZSession> {
  const cfg = model.config;
  const ctx = emitContext(`memit_z${layer}`, cfg, model.weights, true);
  const { b } = ctx;
  const D = cfg.nEmbd;
  const V = cfg.vocabSize;
  const resid = b.input(ZG.resid, "float32", ["B", "W", D]);
  const mask = b.input(ZG.mask, "float32", ["B", "W", 1]);
  const deltas = b.input(ZG.deltas, "float32", ["R", D]);
  const rows = b.input(ZG.rowRequest, "int64", ["B"]);
  const bias = b.input(ZG.bias, "float32", ["B", 1, "W", "S"]);
  const perRow = b.op("Unsqueeze", [b.op("Gather", [deltas, rows], { axis: attr.int(0) }), b.constInt64([1])]); // (B, 1, D)
  // The last layer's queries, attention output and projection run only at the columns the loss
  // reads, its MLP and the head only at the (row, column) pairs it reads.
  const at = { select: b.input(ZG.select, "int64", ["N", 2]), queries: b.input(ZG.queries, "int64", ["Q"]) };
  const h = emitLayersAbove(model, ctx, layer, edited, b.op("Add", [resid, b.op("Mul", [mask, perRow])]), bias, at); // (N, D)
  const lp = b.op("LogSoftmax", [model.arch.emitHead(ctx, h)], { axis: attr.int(-1) }); // (N, V)
  const lpNll = b.op("Gather", [lp, b.input(ZG.nllRows, "int64", ["Nn"])], { axis: attr.int(0) }); // (Nn, V)
  const lpKl = b.op("Gather", [lp, b.input(ZG.klRows, "int64", ["R"])], { axis: attr.int(0) });   // (R, V)
  const tl = b.op("GatherElements", [lpNll, b.input(ZG.targets, "int64", ["Nn", 1])], { axis: attr.int(1) }); // (Nn, 1)
  const w = b.op("Reshape", [b.input(ZG.weights, "float32", ["Nn"]), b.constInt64([-1, 1])]);
  const nll = b.op("Neg", [b.op("ReduceSum", [b.op("Mul", [tl, w])], { keepdims: attr.int(0) })]);
  const klInit = b.input(ZG.klInit, "float32", ["R", V]);
  const klFactor = b.input(ZG.klFactor, "float32", []);
  // KL_r(P_cur ‖ P_init) = Σ_v p_cur (log p_cur − log p_init), per request (R)
  const klEach = b.op("Mul", [klFactor, b.op("ReduceSum", [b.op("Mul", [b.op("Exp", [lpKl]), b.op("Sub", [lpKl, klInit])]), b.constInt64([1])], { keepdims: attr.int(0) })]);
  const loss = b.op("Add", [nll, b.op("ReduceSum", [klEach], { keepdims: attr.int(0) })]);
  b.output(ZG.loss, loss, "float32", []);
  b.output(ZG.klEach, klEach, "float32", ["R"]);
  b.output(ZG.targetLogprobs, tl, "float32", ["Nn", 1]);
  b.output(ZG.klLogprobs, lpKl, "float32", ["R", V]);
  const grad = buildGradient(b, { loss: ZG.loss, wrt: [ZG.deltas], keep: [ZG.klEach, ZG.targetLogprobs, ZG.klLogprobs] });
  try {
    return { session: await SegmentSession.fromGraph(grad, { ...model.sessionOptions, memoryArena: model.memoryArena || arena, memoryPattern: model.memoryArena }), weightNames: ctx.weightNames };
  } catch (e) {
    throw new RomeError("ERR_ONNX", `onnxruntime rejected the batched target-gradient graph of layer ${layer}: ${(e as Error).message}`, { cause: e });
  }
}
