// The reduced-precision experiment (issue 14, item 4; not adopted: docs/sweeps.md, "Reduced
// precision"). A weight W (K, N) in [in, out] layout is quantised once, symmetrically, and x @ W is
// emitted as onnxruntime's quantised contrib operator, which its CPU build runs with integer
// kernels (AVX-512 VNNI here). Activations stay f32 at every segment boundary: only the weight
// matrices of the attention and MLP segments change. `int8Arch` wraps an architecture description
// so that lib/ needs no switch: Model.fromWeights(int8Arch(arch), …) builds the int8 model.
import type { ArchDescription } from "../lib/arch/types.js";
import type { GraphBuilder } from "../lib/graph/builder.js";
import { openCheckpoint } from "../lib/model/checkpoint.js";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { Model } from "../lib/runtime/model.js";

/** Symmetric int8 per output column: W ≈ q · scale[n]. w (K, N) → q (K, N), scale (N). */
export function quantizeColumnsInt8(w: Float32Array, K: number, N: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) scale[n] = Math.max(scale[n]!, Math.abs(w[k * N + n]!));
  }
  for (let n = 0; n < N; n++) scale[n] = scale[n]! > 0 ? scale[n]! / 127 : 1;
  const q = new Int8Array(K * N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) q[k * N + n] = Math.round(w[k * N + n]! / scale[n]!);
  }
  return { q, scale };
}

/**
 * x @ W at int8 for W (K, N) f32 in [in, out] layout, quantised here (once, when the graph is
 * built): com.microsoft DynamicQuantizeMatMul, W int8 with one scale per output column, x
 * quantised to uint8 per call (per tensor, scale and zero point from its range: onnxruntime's
 * QGEMM). MatMulNBits (8 and 4 bits, accuracy level 4) was slower (scripts/lab-matmul.ts).
 * x (..., K) → (..., N); `name` prefixes the initializers.
 */
export function int8MatMul(b: GraphBuilder, x: string, name: string, w: Float32Array, K: number, N: number): string {
  const { q, scale } = quantizeColumnsInt8(w, K, N);
  const qw = b.initializer(`${name}.q`, [K, N], q, "int8");
  const sc = b.initializer(`${name}.scale`, [N], scale);
  return b.contribOp("DynamicQuantizeMatMul", [x, qw, sc]);
}

/**
 * Rewrites, in place, every MatMul of `b` whose right operand is a rank-2 f32 initializer (a
 * weight in [in, out] layout) or the Transpose of one ([out, in], as `linear` emits it) into the
 * int8 product. Products of two activations (attention scores, the edits' low-rank factors, which
 * are graph inputs) stay f32. Returns how many products were rewritten.
 */
export function quantizeGraph(b: GraphBuilder): number {
  const inits = new Map(b.initializers.map((i) => [i.name, i]));
  const producer = new Map(b.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const weightOf = (name: string) => {
    const init = inits.get(name);
    if (!init || init.elem !== "float32" || init.dims.length !== 2) return undefined;
    if (!init.deferred) return init.data as Float32Array;
    const bytes = new Uint8Array(init.deferred.byteLength);
    init.deferred.write(bytes);
    return new Float32Array(bytes.buffer);
  };
  let count = 0;
  const replaced: typeof b.nodes = [];
  for (const node of [...b.nodes]) {
    if (node.op !== "MatMul" || node.domain) continue;
    const right = node.inputs[1]!;
    const t = producer.get(right);
    const transposed = t?.op === "Transpose" && inits.has(t.inputs[0]!) && t.attrs.perm?.kind === "ints" && t.attrs.perm.value.join() === "1,0";
    const wname = transposed ? t.inputs[0]! : right;
    const stored = weightOf(wname);
    if (!stored) continue;
    const [r, c] = inits.get(wname)!.dims as [number, number];
    const [K, N] = transposed ? [c, r] : [r, c];
    const w = transposed ? transpose(stored, r, c) : stored; // (K, N)
    const start = b.nodes.length;
    int8MatMul(b, node.inputs[0]!, wname, w, K, N);
    const q = b.nodes.splice(start)[0]!; // moved to where the MatMul was, with its output name
    q.outputs = node.outputs;
    b.nodes[b.nodes.indexOf(node)] = q;
    if (transposed) replaced.push(t);
    count++;
  }
  // The f32 weights (and their transposes) no longer read by any node leave the graph.
  for (const t of replaced) if (!b.nodes.some((n) => n !== t && n.inputs.includes(t.outputs[0]!))) b.nodes.splice(b.nodes.indexOf(t), 1);
  const used = new Set(b.nodes.flatMap((n) => n.inputs));
  for (let i = b.initializers.length - 1; i >= 0; i--) {
    const init = b.initializers[i]!;
    if (!used.has(init.name) && !b.outputs.some((o) => o.name === init.name)) b.initializers.splice(i, 1);
  }
  return count;
}

/** w (R, C) → (C, R). */
function transpose(w: Float32Array, R: number, C: number): Float32Array {
  const out = new Float32Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[c * R + r] = w[r * C + c]!;
  return out;
}

/** `arch` with its attention and MLP bodies' weight products at int8 (embeddings and head f32). */
export function int8Arch(arch: ArchDescription): ArchDescription {
  return {
    ...arch,
    emitAttention(ctx, layer, io) {
      const out = arch.emitAttention(ctx, layer, io);
      quantizeGraph(ctx.b);
      return out;
    },
    emitMlp(ctx, layer, io) {
      const out = arch.emitMlp(ctx, layer, io);
      quantizeGraph(ctx.b);
      return out;
    },
  };
}

/** A model directory loaded at "f32" (Model.load) or "int8" (weights read into memory, int8Arch). */
export async function loadAt(dir: string, precision: "f32" | "int8"): Promise<Model> {
  if (precision === "f32") return Model.load(dir);
  const ckpt = openCheckpoint(dir);
  try {
    const weights = new Map([...ckpt.weights.keys()].map((k) => [k, ckpt.weights.get(k)!]));
    return await Model.fromWeights(int8Arch(ckpt.arch), ckpt.config, weights, { tokenizer: await Tokenizer.load(dir), storedNames: ckpt.storedNames });
  } finally {
    ckpt.weights.close();
  }
}
