// Every architecture description against two implementations nobody here wrote: the next-token
// log-probabilities of random-weight checkpoints (test/fixtures/arch/, see its README) at every
// position of 5 sequences, over the whole vocabulary, from a float64 PyTorch reference of the
// Hugging Face code (within 1e-4) and from llama.cpp (within 1e-4 for Llama and Qwen2; 1e-2 for the
// GELU families, whose GELU llama.cpp takes from a float16 table).
import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ARCHITECTURES } from "../lib/arch/index.js";
import { loadCheckpoint } from "../lib/model/checkpoint.js";
import { SafetensorsFile } from "../lib/model/safetensors.js";
import { padBatch, splitBatch } from "../lib/runtime/batch.js";
import { Model } from "../lib/runtime/model.js";
import { ROOT, tempDir } from "./helpers.js";
import { EditView } from "../lib/runtime/edit-view.js";

const FIXTURES = join(ROOT, "test", "fixtures", "arch");
const V = 1409;
const LLAMACPP_TOL: Record<string, number> = { gpt2: 1e-2, gptj: 1e-2, gpt_neox: 1e-2, llama: 1e-4, qwen2: 1e-4 };

function readF32(path: string): Float32Array {
  const buf = readFileSync(path);
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

/** log-softmax of every row of (N, V) logits, in float64. */
function logSoftmaxRows(logits: Float32Array, n: number): Float64Array {
  const out = new Float64Array(n * V);
  for (let r = 0; r < n; r++) {
    let max = -Infinity;
    for (let i = 0; i < V; i++) max = Math.max(max, logits[r * V + i]!);
    let s = 0;
    for (let i = 0; i < V; i++) s += Math.exp(logits[r * V + i]! - max);
    const lse = max + Math.log(s);
    for (let i = 0; i < V; i++) out[r * V + i] = logits[r * V + i]! - lse;
  }
  return out;
}

/** Log-probabilities (positions, V) of every sequence, concatenated, from one padded batch. */
async function logprobs(model: Model, seqs: number[][]): Promise<Float64Array> {
  const batch = padBatch(seqs);
  const select = seqs.flatMap((s, b) => s.map((_, p) => [b, batch.pad[b]! + p] as const));
  const r = await model.engine.run(batch, { edits: EditView.NONE, head: select });
  return logSoftmaxRows(r.logits!, select.length);
}

/** Largest difference over entries the golden has (llama.cpp writes NaN where it underflowed). */
function maxDiff(ours: Float64Array, golden: Float32Array): { max: number; compared: number } {
  let max = 0;
  let compared = 0;
  for (let i = 0; i < golden.length; i++) {
    if (Number.isNaN(golden[i]!)) continue;
    compared++;
    const d = Math.abs(ours[i]! - golden[i]!);
    max = Number.isNaN(d) ? Infinity : Math.max(max, d);
  }
  return { max, compared };
}

for (const family of ["gpt2", "gptj", "gpt_neox", "llama", "qwen2"]) {
  test(`${family}: log-probabilities at every position match PyTorch float64 (1e-4) and llama.cpp (${LLAMACPP_TOL[family]})`, async (t) => {
    const dir = join(FIXTURES, family);
    const ckpt = loadCheckpoint(dir);
    t.is(ckpt.config.arch, family);
    const model = await Model.fromWeights(ckpt.arch, ckpt.config, ckpt.weights, { threads: 1 });
    const seqs = (JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as { sequences: number[][] }).sequences;
    const ours = await logprobs(model, seqs);
    const torch = maxDiff(ours, readF32(join(dir, "logprobs-torch.f32")));
    const cpp = maxDiff(ours, readF32(join(dir, "logprobs-llamacpp.f32")));
    t.log(`${family}: max |Δ| vs PyTorch ${torch.max.toExponential(2)}, vs llama.cpp ${cpp.max.toExponential(2)} (${cpp.compared} entries)`);
    t.is(torch.compared, seqs.reduce((n, s) => n + s.length, 0) * V);
    t.true(torch.max < 1e-4);
    t.true(cpp.compared > 0.9 * torch.compared);
    t.true(cpp.max < LLAMACPP_TOL[family]!);
    await model.dispose();
  });
}

test("llama: a run continued from a grouped key/value cache (rotary offsets of the cached keys) equals the whole run", async (t) => {
  const ckpt = loadCheckpoint(join(FIXTURES, "llama"));
  const model = await Model.fromWeights(ckpt.arch, ckpt.config, ckpt.weights, { threads: 1 });
  const seqs = [[15, 200, 1307, 653, 254, 843, 676, 761, 779], [66, 1087, 266, 982, 841]];
  const batch = padBatch(seqs);
  const whole = await model.engine.run(batch, { edits: EditView.NONE, head: [[0, 8], [1, 8]] });
  const { head, tail } = splitBatch(batch, 6);
  const first = await model.engine.run(head, { edits: EditView.NONE, keepCache: true });
  t.deepEqual(first.cache!.key[0]!.length, 2 * ckpt.config.nKvHead * 6 * ckpt.config.headDim);
  const rest = await model.engine.run(tail, { edits: EditView.NONE, cache: first.cache, head: [[0, 2], [1, 2]] });
  let max = 0;
  for (let i = 0; i < whole.logits!.length; i++) max = Math.max(max, Math.abs(whole.logits![i]! - rest.logits![i]!));
  t.true(max < 1e-4, `max |Δ logit| ${max}`);
  await model.dispose();
});

test("every registered architecture has a parity fixture", (t) => {
  for (const a of ARCHITECTURES) t.true(a.name in LLAMACPP_TOL, a.name);
});

/** bf16 bits of an f32 value (round to nearest even), as Hugging Face's checkpoints store them. */
function toBf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

test("llama: sharded bf16 safetensors as Hugging Face ships them load and run like the f32 weights rounded to bf16", async (t) => {
  const src = join(FIXTURES, "llama");
  const dir = tempDir(t);
  const file = SafetensorsFile.open(join(src, "model.safetensors"));
  const names = [...file.entries.keys()].sort();
  const weightMap: Record<string, string> = {};
  const rounded = new Map<string, Float32Array>();
  for (const [k, part] of [names.slice(0, names.length >> 1), names.slice(names.length >> 1)].entries()) {
    const shard = `model-0000${k + 1}-of-00002.safetensors`;
    const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
    const chunks: Buffer[] = [];
    let offset = 0;
    for (const name of part) {
      const data = file.readFloat32(name);
      const bits = new Uint16Array(data.length);
      const back = new Float32Array(data.length);
      for (let i = 0; i < data.length; i++) {
        bits[i] = toBf16(data[i]!);
        back[i] = new Float32Array(new Uint32Array([bits[i]! << 16]).buffer)[0]!;
      }
      rounded.set(name, back);
      header[name] = { dtype: "BF16", shape: file.entry(name).shape, data_offsets: [offset, offset + bits.byteLength] };
      chunks.push(Buffer.from(bits.buffer));
      offset += bits.byteLength;
      weightMap[name] = shard;
    }
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(join(dir, shard), Buffer.concat([len, json, ...chunks]));
  }
  file.close();
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  writeFileSync(join(dir, "config.json"), readFileSync(join(src, "config.json")));
  const ckpt = loadCheckpoint(dir);
  for (const [canonical, stored] of ckpt.storedNames) {
    t.deepEqual(ckpt.weights.get(canonical)!.data, rounded.get(stored)!, canonical);
  }
  // bf16 rounding moves the log-probabilities, but not beyond a few hundredths on this model.
  const model = await Model.fromWeights(ckpt.arch, ckpt.config, ckpt.weights, { threads: 1 });
  const seqs = (JSON.parse(readFileSync(join(src, "golden.json"), "utf8")) as { sequences: number[][] }).sequences;
  const d = maxDiff(await logprobs(model, seqs.slice(0, 1)), readF32(join(src, "logprobs-torch.f32")).subarray(0, seqs[0]!.length * V));
  t.log(`bf16 weights: max |Δ| vs the f32 PyTorch reference ${d.max.toExponential(2)}`);
  t.true(d.max > 0 && d.max < 0.2);
  await model.dispose();
});
