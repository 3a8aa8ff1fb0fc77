// The segment compiler: cuts a model into ONNX graphs at every place a causal trace can restore a
// state — after the embeddings, after each attention half-block, after each MLP half-block — and a
// head evaluated at selected positions only. The I/O names below are the contract with the engine;
// the bodies come from the architecture description.
import type { ArchDescription, EmitContext, MlpIO, WeightSource } from "./types.js";
import type { ModelConfig } from "../model/config.js";
import { RomeError } from "../errors.js";
import { attr, GraphBuilder } from "../graph/builder.js";

/** Segment I/O names (B batch, T new tokens, P past tokens, S = P + T). */
export const IO = {
  ids: "ids",                     // (B, T) int64
  positions: "positions",         // (B, T) int64
  tokEmbed: "tok_embed",          // (B, T, D)
  posEmbed: "pos_embed",          // (B, T, D)
  resid: "resid",                 // (B, T, D) residual stream entering a segment (the MLP segment's: the block's input, for parallel blocks)
  pastKey: "past_key",            // (B, Hkv, P, Dh) (Hkv = nKvHead key/value heads)
  pastValue: "past_value",        // (B, Hkv, P, Dh)
  attnBias: "attn_bias",          // (B, 1, T, S) additive mask
  residMid: "resid_mid",          // (B, T, D) after the attention half-block
  attnOut: "attn_out",            // (B, T, D)
  presentKey: "present_key",      // (B, Hkv, S, Dh)
  presentValue: "present_value",  // (B, Hkv, S, Dh)
  residPost: "resid_post",        // (B, T, D) block output
  mlpOut: "mlp_out",              // (B, T, D)
  mlpKey: "mlp_key",              // (B, T, F) input of the MLP output projection
  editU: "edit_u",                // (F, R) left factors of the edits applied to this layer (R may be 0)
  editV: "edit_v",                // (R, D) right factors
  select: "select",               // (N, 2) int64 (batch row, position) pairs for the head
  logits: "logits",               // (N, V)
  answer: "answer",               // (N, 1) int64 token whose log-probability the scoring head returns
  answerLogprob: "answer_logprob", // (N, 1)
} as const;

export type SegmentKind = "embed" | "attn" | "mlp" | "head";

export interface Segment {
  kind: SegmentKind;
  layer: number;
  graph: GraphBuilder;
}

/**
 * A builder named `name` whose `w(weight)` adds the model's weight to the graph once: as an
 * initializer (the session holds its own copy), or with `asInputs` as a graph input of the same
 * name that every run feeds (the graph holds no weights). `weightNames` lists those added.
 */
export function emitContext(name: string, cfg: ModelConfig, weights: WeightSource, asInputs = false): EmitContext & { weightNames: string[] } {
  const b = new GraphBuilder(name);
  const weightNames: string[] = [];
  return {
    b,
    cfg,
    weightNames,
    w(wname) {
      if (weightNames.includes(wname)) return wname;
      // onnxruntime reads f32 weights from the checkpoint file itself when it can (external data,
      // mapped, never copied into the graph); otherwise raw f32 bytes go straight from the source
      // into the serialised graph.
      const external = asInputs ? undefined : weights.externalF32?.(wname);
      const raw = asInputs || external ? undefined : weights.rawF32?.(wname);
      const weight = asInputs || external || raw ? undefined : weights.get(wname);
      const shape = weights.shapeOf?.(wname) ?? weight?.shape ?? weights.get(wname)?.shape;
      if (!shape) throw new RomeError("ERR_MISSING_TENSOR", `segment ${name} needs weight '${wname}', which the model does not have`);
      if (asInputs) b.input(wname, "float32", shape);
      else if (external) b.externalInitializer(wname, shape, external);
      else if (raw) b.deferredInitializer(wname, shape, raw);
      else b.initializer(wname, shape, weight!.data);
      weightNames.push(wname);
      return wname;
    },
  };
}

export function compileEmbed(arch: ArchDescription, cfg: ModelConfig, weights: WeightSource): Segment {
  const ctx = emitContext("embed", cfg, weights);
  const { b } = ctx;
  const D = cfg.nEmbd;
  const ids = b.input(IO.ids, "int64", ["B", "T"]);
  const positions = b.input(IO.positions, "int64", ["B", "T"]);
  const { tokEmbed, posEmbed } = arch.emitEmbed(ctx, { ids, positions });
  b.output(IO.tokEmbed, tokEmbed, "float32", ["B", "T", D]);
  b.output(IO.posEmbed, posEmbed, "float32", ["B", "T", D]);
  return { kind: "embed", layer: -1, graph: b };
}

export function compileAttention(arch: ArchDescription, cfg: ModelConfig, weights: WeightSource, layer: number): Segment {
  const ctx = emitContext(`attn${layer}`, cfg, weights);
  const { b } = ctx;
  const D = cfg.nEmbd;
  const H = cfg.nKvHead;
  const Dh = cfg.headDim;
  const resid = b.input(IO.resid, "float32", ["B", "T", D]);
  const pastKey = b.input(IO.pastKey, "float32", ["B", H, "P", Dh]);
  const pastValue = b.input(IO.pastValue, "float32", ["B", H, "P", Dh]);
  const bias = b.input(IO.attnBias, "float32", ["B", 1, "T", "S"]);
  let positions: string | undefined;
  const io = {
    resid, pastKey, pastValue, bias,
    get positions() {
      positions ??= b.input(IO.positions, "int64", ["B", "T"]);
      return positions;
    },
  };
  const out = arch.emitAttention(ctx, layer, io);
  b.output(IO.residMid, b.op("Add", [resid, out.attnOut]), "float32", ["B", "T", D]);
  b.output(IO.attnOut, out.attnOut, "float32", ["B", "T", D]);
  b.output(IO.presentKey, out.presentKey, "float32", ["B", H, "S", Dh]);
  b.output(IO.presentValue, out.presentValue, "float32", ["B", H, "S", Dh]);
  return { kind: "attn", layer, graph: b };
}

export function compileMlp(arch: ArchDescription, cfg: ModelConfig, weights: WeightSource, layer: number): Segment {
  const ctx = emitContext(`mlp${layer}`, cfg, weights);
  const { b } = ctx;
  const D = cfg.nEmbd;
  const residMid = b.input(IO.residMid, "float32", ["B", "T", D]);
  let resid: string | undefined;
  const io = {
    residMid,
    get resid() {
      resid ??= b.input(IO.resid, "float32", ["B", "T", D]);
      return resid;
    },
  };
  const out = emitEditedMlp(arch, ctx, layer, io, IO.editU, IO.editV);
  b.output(IO.residPost, b.op("Add", [residMid, out.mlpOut]), "float32", ["B", "T", D]);
  b.output(IO.mlpOut, out.mlpOut, "float32", ["B", "T", D]);
  b.output(IO.mlpKey, out.mlpKey, "float32", ["B", "T", cfg.nInner]);
  return { kind: "mlp", layer, graph: b };
}

/**
 * The MLP half-block with the layer's edits: out += (key · U) · V with inputs U (F, R) and
 * V (R, D) named `uName`, `vName`. Edits are low-rank factors beside the base weight, so applying,
 * undoing or switching edit sets never touches (or copies) the weights nor recompiles a segment.
 */
export function emitEditedMlp(arch: ArchDescription, ctx: EmitContext, layer: number, io: MlpIO, uName: string, vName: string) {
  const { b, cfg } = ctx;
  const out = arch.emitMlp(ctx, layer, io);
  const u = b.input(uName, "float32", [cfg.nInner, "R"]);
  const v = b.input(vName, "float32", ["R", cfg.nEmbd]);
  return { mlpKey: out.mlpKey, mlpOut: b.op("Add", [out.mlpOut, b.op("MatMul", [b.op("MatMul", [out.mlpKey, u]), v])]) };
}

/**
 * The head at selected positions: the logits, and log p(answer) computed inside the graph (causal
 * tracing's scores) so only (N, 1) values leave onnxruntime instead of (N, V) logits. One graph
 * serves both, so the session holds the unembedding matrix once.
 */
export function compileHead(arch: ArchDescription, cfg: ModelConfig, weights: WeightSource): Segment {
  const ctx = emitContext("head", cfg, weights);
  const { b } = ctx;
  const resid = b.input(IO.resid, "float32", ["B", "T", cfg.nEmbd]);
  const select = b.input(IO.select, "int64", ["N", 2]);
  const answer = b.input(IO.answer, "int64", ["N", 1]);
  const logits = arch.emitHead(ctx, b.op("GatherND", [resid, select])); // (N, V)
  const logp = b.op("LogSoftmax", [logits], { axis: attr.int(-1) });
  b.output(IO.logits, logits, "float32", ["N", cfg.vocabSize]);
  b.output(IO.answerLogprob, b.op("GatherElements", [logp, answer], { axis: attr.int(1) }), "float32", ["N", 1]);
  return { kind: "head", layer: cfg.nLayer, graph: b };
}

/** Every segment of the model, in execution order. */
export function compileSegments(arch: ArchDescription, cfg: ModelConfig, weights: WeightSource): Segment[] {
  const segs = [compileEmbed(arch, cfg, weights)];
  for (let l = 0; l < cfg.nLayer; l++) {
    segs.push(compileAttention(arch, cfg, weights, l), compileMlp(arch, cfg, weights, l));
  }
  segs.push(compileHead(arch, cfg, weights));
  return segs;
}
