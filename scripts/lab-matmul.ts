// `npx tsx scripts/lab-matmul.ts [block]`: the lab behind scripts/int8-weights.ts. One GPT-2-small
// MLP product, (M, 768) @ (768, 3072) and (M, 3072) @ (3072, 768), M = 64 and 512, one thread,
// per way onnxruntime 1.30's CPU build offers to multiply by a quantised weight: f32 MatMul (the
// baseline), com.microsoft DynamicQuantizeMatMul with int8 per-column weights (what "int8" uses),
// and com.microsoft MatMulNBits with 8- and 4-bit blocks of `block` rows (default 32) at
// accuracy_level 4 (int8 compute). Best of 5 interleaved rounds, and the largest error over the
// output's RMS.
import ort from "onnxruntime-node";
import { attr, GraphBuilder } from "../lib/graph/builder.js";
import { int8MatMul } from "./int8-weights.js";
import { ortThreading } from "../lib/runtime/threading.js";

type Variant = "f32" | "int8" | "nbits8" | "nbits4";
const VARIANTS: readonly Variant[] = ["f32", "int8", "nbits8", "nbits4"];

/**
 * MatMulNBits' layout: per output column n and block of `block` rows, `bits`-bit unsigned codes
 * q = round(w / scale) + 2^(bits−1) (the operator's default zero point), packed low bits first.
 * w (K, N) → packed (N, nBlocks, block·bits/8), scale (N · nBlocks).
 */
function quantizeNBits(w: Float32Array, K: number, N: number, bits: 4 | 8, block: number) {
  const nBlocks = Math.ceil(K / block);
  const blob = (block * bits) / 8;
  const zero = 1 << (bits - 1);
  const packed = new Uint8Array(N * nBlocks * blob);
  const scale = new Float32Array(N * nBlocks);
  for (let n = 0; n < N; n++) {
    for (let kb = 0; kb < nBlocks; kb++) {
      const k0 = kb * block;
      const k1 = Math.min(K, k0 + block);
      let amax = 0;
      for (let k = k0; k < k1; k++) amax = Math.max(amax, Math.abs(w[k * N + n]!));
      const s = amax > 0 ? amax / (zero - 1) : 1;
      scale[n * nBlocks + kb] = s;
      const base = (n * nBlocks + kb) * blob;
      for (let i = 0; i < block; i++) {
        const k = k0 + i;
        const code = k < k1 ? Math.max(0, Math.min(2 * zero - 1, Math.round(w[k * N + n]! / s) + zero)) : zero;
        if (bits === 8) packed[base + i] = code;
        else packed[base + (i >> 1)]! |= (i & 1) === 0 ? code : code << 4;
      }
    }
  }
  return { packed, scale, nBlocks };
}

function product(b: GraphBuilder, p: Variant, x: string, w: Float32Array, K: number, N: number, block: number): string {
  if (p === "f32") return b.op("MatMul", [x, b.initializer("w", [K, N], w)]);
  if (p === "int8") return int8MatMul(b, x, "w", w, K, N);
  const bits = p === "nbits8" ? 8 : 4;
  const { packed, scale, nBlocks } = quantizeNBits(w, K, N, bits, block);
  const qw = b.initializer("w.q", [N, nBlocks, (block * bits) / 8], packed, "uint8");
  const sc = b.initializer("w.scale", [N * nBlocks], scale);
  return b.contribOp("MatMulNBits", [x, qw, sc], {
    K: attr.int(K), N: attr.int(N), bits: attr.int(bits), block_size: attr.int(block), accuracy_level: attr.int(4),
  });
}

function rand(n: number, seed: number, s = 1): Float32Array {
  let x = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    const u = x / 2 ** 32;
    x = (x * 1664525 + 1013904223) >>> 0;
    out[i] = s * Math.sqrt(-2 * Math.log(u + 1e-12)) * Math.cos(2 * Math.PI * (x / 2 ** 32));
  }
  return out;
}

async function session(p: Variant, w: Float32Array, K: number, N: number, block: number) {
  const b = new GraphBuilder(`mm_${p}`);
  const x = b.input("x", "float32", ["M", K]);
  const y = product(b, p, x, w, K, N, block);
  b.output("y", y, "float32", ["M", N]);
  return ort.InferenceSession.create(b.toBytes(), { ...ortThreading({ threads: 1, spinning: false }), graphOptimizationLevel: "all", logSeverityLevel: 3 });
}

const block = Number(process.argv[2] ?? 32);
for (const [K, N] of [[768, 3072], [3072, 768]] as const) {
  const w = rand(K * N, 7, 0.02);
  const sessions = new Map<Variant, ort.InferenceSession>();
  for (const p of VARIANTS) sessions.set(p, await session(p, w, K, N, block));
  for (const M of [64, 512]) {
    const x = new ort.Tensor("float32", rand(M * K, 11), [M, K]);
    const ref = (await sessions.get("f32")!.run({ x })).y!.data as Float32Array;
    const best = new Map<Variant, number>();
    for (let round = 0; round < 5; round++) {
      for (const p of VARIANTS) {
        const t0 = performance.now();
        for (let r = 0; r < 3; r++) await sessions.get(p)!.run({ x });
        best.set(p, Math.min(best.get(p) ?? Infinity, (performance.now() - t0) / 3));
      }
    }
    let rms = 0;
    for (const v of ref) rms += v * v;
    rms = Math.sqrt(rms / ref.length);
    for (const p of VARIANTS) {
      const y = (await sessions.get(p)!.run({ x })).y!.data as Float32Array;
      let err = 0;
      for (let i = 0; i < y.length; i++) err = Math.max(err, Math.abs(y[i]! - ref[i]!));
      console.log(`${K}x${N} M=${M} ${p.padEnd(6)} ${best.get(p)!.toFixed(2).padStart(8)} ms  ×${(best.get("f32")! / best.get(p)!).toFixed(2)}  maxerr/rms ${(err / rms).toExponential(2)}`);
    }
  }
}
