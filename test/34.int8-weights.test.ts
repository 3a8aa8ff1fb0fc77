// The reduced-precision experiment (scripts/int8-weights.ts, measured by `npm run bench -- precision`,
// not adopted) and what it needs from the graph builder: onnxruntime contrib ops (com.microsoft) and
// int8 initializers. Every weight product of the attention and MLP segments becomes an int8
// DynamicQuantizeMatMul, in both weight layouts ([in, out] for GPT-2, Transpose'd [out, in] for
// Llama), and the model still knows its facts.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gpt2 } from "../lib/arch/gpt2.js";
import { llama } from "../lib/arch/llama.js";
import { compileAttention, compileMlp } from "../lib/arch/segments.js";
import { openCheckpoint } from "../lib/model/checkpoint.js";
import { Model } from "../lib/runtime/model.js";
import { loadAt, quantizeColumnsInt8, quantizeGraph } from "../scripts/int8-weights.js";
import { ROOT, TINYFACTS } from "./helpers.js";

const known = JSON.parse(readFileSync(join(TINYFACTS, "known.json"), "utf8")) as { prompt: string; subject: string }[];

test("int8 per-column quantisation: every weight within half a step of its column's scale", (t) => {
  const K = 5;
  const N = 3;
  const w = Float32Array.from({ length: K * N }, (_, i) => Math.sin(i * 1.7) * (1 + (i % N))); // (K, N)
  const { q, scale } = quantizeColumnsInt8(w, K, N);
  for (let n = 0; n < N; n++) {
    let amax = 0;
    for (let k = 0; k < K; k++) amax = Math.max(amax, Math.abs(w[k * N + n]!));
    t.true(Math.abs(scale[n]! - amax / 127) < 1e-7, `column ${n} scale`);
    for (let k = 0; k < K; k++) t.true(Math.abs(q[k * N + n]! * scale[n]! - w[k * N + n]!) <= scale[n]! / 2 + 1e-7, `w[${k}, ${n}]`);
  }
});

test("quantizeGraph rewrites the weight products of GPT-2 ([in, out]) and Llama (Transpose'd [out, in]) segments, and nothing else", (t) => {
  for (const [arch, dir, perLayer] of [[gpt2, TINYFACTS, [2, 2]], [llama, join(ROOT, "models", "tinyfacts-llama"), [4, 3]]] as const) {
    const ckpt = openCheckpoint(dir);
    try {
      const attn = compileAttention(arch, ckpt.config, ckpt.weights, 0).graph;
      const mlp = compileMlp(arch, ckpt.config, ckpt.weights, 0).graph;
      t.is(quantizeGraph(attn), perLayer[0], `${arch.name} attention`);
      t.is(quantizeGraph(mlp), perLayer[1], `${arch.name} MLP`);
      for (const g of [attn, mlp]) {
        const inits = new Set(g.initializers.map((i) => i.name));
        // No f32 weight matrix is left, and every remaining MatMul multiplies two activations (or the edit factors).
        t.false(g.initializers.some((i) => i.elem === "float32" && i.dims.length === 2), `${g.name}: f32 matrices left`);
        t.true(g.nodes.filter((n) => n.op === "MatMul").every((n) => !inits.has(n.inputs[1]!)), g.name);
        t.false(g.nodes.some((n) => n.op === "Transpose" && inits.has(n.inputs[0]!)), `${g.name}: a weight transpose left`);
      }
      t.is(quantizeGraph(attn), 0, "a second pass finds nothing left to quantise");
    } finally {
      ckpt.weights.close();
    }
  }
});

test("int8 models predict the facts as f32 does (top token; answer probability within 0.02), GPT-2 and Llama", async (t) => {
  for (const dir of [TINYFACTS, join(ROOT, "models", "tinyfacts-llama")]) {
    const exact = await Model.load(dir);
    const int8 = await loadAt(dir, "int8");
    try {
      const prompts = known.slice(0, 8).map((f) => f.prompt);
      const [pe, pq] = [await exact.predict(prompts, { topK: 1 }), await int8.predict(prompts, { topK: 1 })];
      t.true(pe.some((p, i) => p[0]!.prob !== pq[i]![0]!.prob), `${dir}: int8 equals f32 exactly, so nothing was quantised`);
      pe.forEach((p, i) => {
        t.is(pq[i]![0]!.id, p[0]!.id, `${dir} prompt ${i}`);
        t.true(Math.abs(pq[i]![0]!.prob - p[0]!.prob) < 0.02, `${dir} prompt ${i}: ${p[0]!.prob} against ${pq[i]![0]!.prob}`);
      });
    } finally {
      await exact.dispose();
      await int8.dispose();
    }
  }
});
