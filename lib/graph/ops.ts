// Building blocks that architecture descriptions compose into segments: layer norm, affine maps,
// activations and causal multi-head attention with a KV cache. Each returns the name of its output
// value; shapes are in the comments (B batch, T new tokens, P past tokens, S = P + T, D model width,
// H heads, Dh head width).
import type { RopeConfig } from "../model/config.js";
import { attr, GraphBuilder } from "./builder.js";

/** LayerNormalization over the last axis. x (..., D) → (..., D). */
export function layerNorm(b: GraphBuilder, x: string, gamma: string, beta: string, eps: number): string {
  return b.op("LayerNormalization", [x, gamma, beta], { axis: attr.int(-1), epsilon: attr.float(eps) });
}

/**
 * RMSNorm as Llama computes it: x / sqrt(mean(x²) + eps) · gamma over the last axis. x (..., D),
 * gamma (D) → (..., D). Composed of primitive ops, so the gradient pass differentiates it as is.
 */
export function rmsNorm(b: GraphBuilder, x: string, gamma: string, eps: number): string {
  const ms = b.op("ReduceMean", [b.op("Mul", [x, x]), b.constInt64([-1])], { keepdims: attr.int(1) }); // (..., 1)
  const inv = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [ms, b.constFloat([eps], [])])])]);
  return b.op("Mul", [b.op("Mul", [x, inv]), gamma]);
}

/** x @ Wᵀ (+ bias) for a weight in nn.Linear's [out, in] layout. x (..., In), W (Out, In) → (..., Out). */
export function linear(b: GraphBuilder, x: string, weight: string, bias?: string): string {
  return affine(b, x, b.op("Transpose", [weight], { perm: attr.ints([1, 0]) }), bias);
}

/** SiLU (swish): x · sigmoid(x). */
export function silu(b: GraphBuilder, x: string): string {
  return b.op("Mul", [x, b.op("Sigmoid", [x])]);
}

/** x @ W (+ bias). x (..., In), W (In, Out) → (..., Out). */
export function affine(b: GraphBuilder, x: string, weight: string, bias?: string): string {
  const y = b.op("MatMul", [x, weight]);
  return bias ? b.op("Add", [y, bias]) : y;
}

/** Activation by its Hugging Face name. */
export function activation(b: GraphBuilder, x: string, name: string): string {
  switch (name) {
    case "gelu_new":
    case "gelu_pytorch_tanh":
      return b.op("Gelu", [x], { approximate: attr.string("tanh") });
    case "gelu":
      return b.op("Gelu", [x]);
    case "relu":
      return b.op("Relu", [x]);
    case "silu":
      return silu(b, x);
    default:
      throw new Error(`activation ${name} has no emitter`);
  }
}

/** (B, T, D) → (B, H, T, Dh). */
export function splitHeads(b: GraphBuilder, x: string, nHead: number, headDim: number): string {
  const r = b.op("Reshape", [x, b.constInt64([0, 0, nHead, headDim])]);
  return b.op("Transpose", [r], { perm: attr.ints([0, 2, 1, 3]) });
}

/** (B, H, T, Dh) → (B, T, D). */
export function mergeHeads(b: GraphBuilder, x: string, width: number): string {
  const t = b.op("Transpose", [x], { perm: attr.ints([0, 2, 1, 3]) });
  return b.op("Reshape", [t, b.constInt64([0, 0, width])]);
}

/** Cosines and sines of rotary embeddings at given positions, shaped to broadcast over heads. */
export interface RotaryTables {
  cos: string; // (B, 1, T, R)
  sin: string; // (B, 1, T, R)
}

/**
 * cos/sin of positions · θ^(−2i/R), i < R/2, laid out for the pair convention: "half" repeats the
 * R/2 frequencies as [f, f], "interleaved" as [f0, f0, f1, f1, …]. positions (B, T) int64.
 */
export function rotaryTables(b: GraphBuilder, positions: string, rope: RopeConfig): RotaryTables {
  const R = rope.dims;
  const invFreq = Array.from({ length: R / 2 }, (_, i) => 1 / Math.pow(rope.theta, (2 * i) / R));
  const pos = b.op("Unsqueeze", [b.op("Cast", [positions], { to: attr.int(1) }), b.constInt64([-1])]); // (B, T, 1)
  const angles = b.op("Mul", [pos, b.constFloat(invFreq)]);                                               // (B, T, R/2)
  const layout = (t: string) => {
    const full = rope.pairs === "half"
      ? b.op("Concat", [t, t], { axis: attr.int(-1) })                                                   // (B, T, R)
      : b.op("Reshape", [b.op("Concat", [b.op("Unsqueeze", [t, b.constInt64([-1])]), b.op("Unsqueeze", [t, b.constInt64([-1])])], { axis: attr.int(-1) }), b.constInt64([0, 0, R])]);
    return b.op("Unsqueeze", [full, b.constInt64([1])]);                                                 // (B, 1, T, R)
  };
  return { cos: layout(b.op("Cos", [angles])), sin: layout(b.op("Sin", [angles])) };
}

/**
 * Rotary embedding of the first R = rope.dims dimensions of every head; the rest pass through.
 * x (B, H, T, Dh) → (B, H, T, Dh).
 */
export function applyRotary(b: GraphBuilder, x: string, tables: RotaryTables, rope: RopeConfig, headDim: number): string {
  const R = rope.dims;
  const [rot, pass] = R < headDim
    ? b.opMulti("Split", [x, b.constInt64([R, headDim - R])], 2, { axis: attr.int(-1) })
    : [x, undefined];
  let turned: string; // the partner of every dimension, signed: x·cos + turned·sin
  if (rope.pairs === "half") {
    const [x1, x2] = b.opMulti("Split", [rot!, b.constInt64([R / 2, R / 2])], 2, { axis: attr.int(-1) });
    turned = b.op("Concat", [b.op("Neg", [x2!]), x1!], { axis: attr.int(-1) });
  } else {
    const pairs = b.op("Reshape", [rot!, b.constInt64([0, 0, 0, R / 2, 2])]);                             // (B, H, T, R/2, 2)
    const [x1, x2] = b.opMulti("Split", [pairs, b.constInt64([1, 1])], 2, { axis: attr.int(-1) });
    turned = b.op("Reshape", [b.op("Concat", [b.op("Neg", [x2!]), x1!], { axis: attr.int(-1) }), b.constInt64([0, 0, 0, R])]);
  }
  const out = b.op("Add", [b.op("Mul", [rot!, tables.cos]), b.op("Mul", [turned, tables.sin])]);
  return pass ? b.op("Concat", [out, pass], { axis: attr.int(-1) }) : out;
}

export interface AttentionValues {
  /** (B, T, D) attention output before the residual add */
  context: string;
  /** (B, H, S, Dh) */
  presentKey: string;
  /** (B, H, S, Dh) */
  presentValue: string;
}

/**
 * Scaled dot-product attention over cached and new keys, multi-head or grouped-query.
 * q (B, H, T, Dh); k, v (B, Hkv, T, Dh); pastKey, pastValue (B, Hkv, P, Dh); bias (B, 1, T, S)
 * additive mask (0 where a query may attend, a large negative number elsewhere: causality and
 * padding). With Hkv < H, query heads g·H/Hkv … (g+1)·H/Hkv − 1 share key/value head g (Hugging
 * Face's repeat_kv): queries are grouped (B, Hkv, H/Hkv, T, Dh) and multiply the keys and values
 * broadcast over the group, so cached keys and values are never copied per query head.
 * `splitPast`: attend to the past and the new columns apart (graphs whose past keys and values are
 * constants, such as the edit gradient graphs: no copy of the past into the present per run).
 * `queries` (Q) int64: the new columns whose output is needed (every column's keys and values are
 * still used); context is then (B, Q, D).
 */
export function cachedAttention(
  b: GraphBuilder, q: string, k: string, v: string, pastKey: string, pastValue: string, bias: string,
  headDim: number, width: number, groups: { nHead: number; nKvHead: number } = { nHead: 1, nKvHead: 1 }, splitPast = false, queries?: string,
): AttentionValues {
  const presentKey = b.op("Concat", [pastKey, k], { axis: attr.int(2) });      // (B, Hkv, S, Dh)
  const presentValue = b.op("Concat", [pastValue, v], { axis: attr.int(2) });  // (B, Hkv, S, Dh)
  const rep = groups.nHead / groups.nKvHead;
  if (queries) {
    q = b.op("Gather", [q, queries], { axis: attr.int(2) });       // (B, H, Q, Dh)
    bias = b.op("Gather", [bias, queries], { axis: attr.int(2) }); // (B, 1, Q, S)
  }
  const qScaled = b.op("Mul", [q, b.constFloat([1 / Math.sqrt(headDim)], [])]);
  // Multi-head: (B, H, T, ·). Grouped: queries (B, Hkv, rep, T, Dh) against keys and values broadcast over the group.
  const qX = rep === 1 ? qScaled : b.op("Reshape", [qScaled, b.constInt64([0, groups.nKvHead, rep, -1, headDim])]);
  const kv = (x: string) => (rep === 1 ? x : b.op("Unsqueeze", [x, b.constInt64([2])]));
  const keysT = (x: string) => kv(b.op("Transpose", [x], { perm: attr.ints([0, 1, 3, 2]) })); // (B, Hkv, Dh, ·)
  const biasX = rep === 1 ? bias : b.op("Unsqueeze", [bias, b.constInt64([1])]);               // (B, 1, T, S) or (B, 1, 1, T, S)
  let ctx: string;
  if (!splitPast) {
    const probs = b.op("Softmax", [b.op("Add", [b.op("MatMul", [qX, keysT(presentKey)]), biasX])], { axis: attr.int(-1) }); // (…, T, S)
    ctx = b.op("MatMul", [probs, kv(presentValue)]);                                                                       // (…, T, Dh)
  } else {
    // The past's scores and the new columns' side by side: the past keys and values are never
    // copied into present ones (nor, in a gradient graph, their gradients split back out).
    const scores = b.op("Concat", [b.op("MatMul", [qX, keysT(pastKey)]), b.op("MatMul", [qX, keysT(k)])], { axis: attr.int(-1) }); // (…, T, S)
    const probs = b.op("Softmax", [b.op("Add", [scores, biasX])], { axis: attr.int(-1) });
    const sizes = b.op("Concat", [b.op("Shape", [pastKey], { start: attr.int(2), end: attr.int(3) }), b.op("Shape", [k], { start: attr.int(2), end: attr.int(3) })], { axis: attr.int(0) });
    const [pPast, pNew] = b.opMulti("Split", [probs, sizes], 2, { axis: attr.int(-1) });
    ctx = b.op("Add", [b.op("MatMul", [pPast!, kv(pastValue)]), b.op("MatMul", [pNew!, kv(v)])]);
  }
  if (rep !== 1) ctx = b.op("Reshape", [ctx, b.constInt64([0, groups.nHead, -1, headDim])]); // (B, H, T, Dh)
  return { context: mergeHeads(b, ctx, width), presentKey, presentValue };
}
