// Building blocks that architecture descriptions compose into segments: layer norm, affine maps,
// activations and causal multi-head attention with a KV cache. Each returns the name of its output
// value; shapes are in the comments (B batch, T new tokens, P past tokens, S = P + T, D model width,
// H heads, Dh head width).
import { attr, GraphBuilder } from "./builder.js";

/** LayerNormalization over the last axis. x (..., D) → (..., D). */
export function layerNorm(b: GraphBuilder, x: string, gamma: string, beta: string, eps: number): string {
  return b.op("LayerNormalization", [x, gamma, beta], { axis: attr.int(-1), epsilon: attr.float(eps) });
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

export interface AttentionValues {
  /** (B, T, D) attention output before the residual add */
  context: string;
  /** (B, H, S, Dh) */
  presentKey: string;
  /** (B, H, S, Dh) */
  presentValue: string;
}

/**
 * Scaled dot-product attention over cached and new keys.
 * q, k, v (B, H, T, Dh); pastKey, pastValue (B, H, P, Dh); bias (B, 1, T, S) additive mask
 * (0 where a query may attend, a large negative number elsewhere: causality and padding).
 */
export function cachedAttention(
  b: GraphBuilder, q: string, k: string, v: string, pastKey: string, pastValue: string, bias: string,
  headDim: number, width: number,
): AttentionValues {
  const presentKey = b.op("Concat", [pastKey, k], { axis: attr.int(2) });      // (B, H, S, Dh)
  const presentValue = b.op("Concat", [pastValue, v], { axis: attr.int(2) });  // (B, H, S, Dh)
  const qScaled = b.op("Mul", [q, b.constFloat([1 / Math.sqrt(headDim)], [])]);
  const kT = b.op("Transpose", [presentKey], { perm: attr.ints([0, 1, 3, 2]) }); // (B, H, Dh, S)
  const scores = b.op("Add", [b.op("MatMul", [qScaled, kT]), bias]);          // (B, H, T, S)
  const probs = b.op("Softmax", [scores], { axis: attr.int(-1) });
  const ctx = b.op("MatMul", [probs, presentValue]);                            // (B, H, T, Dh)
  return { context: mergeHeads(b, ctx, width), presentKey, presentValue };
}
