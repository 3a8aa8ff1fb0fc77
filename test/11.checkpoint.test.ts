import test from "ava";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { loadCheckpoint } from "../lib/model/checkpoint.js";
import { SafetensorsFile, writeSafetensors } from "../lib/model/safetensors.js";
import { Model } from "../lib/runtime/model.js";
import { maxAbsDiff, tempDir, TINY_GPT2, TINYFACTS } from "./helpers.js";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof RomeError) return e.code;
    throw e;
  }
  return "no error";
}

/** A copy of TinyFacts' config + tokenizer in `dir`, with weights rewritten by `edit`. */
function variant(dir: string, edit: (tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }>) => void, config?: object) {
  const src = SafetensorsFile.open(join(TINYFACTS, "model.safetensors"));
  const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  for (const [name, e] of src.entries) tensors[name] = { dtype: "F32", shape: e.shape, data: src.readFloat32(name) };
  src.close();
  edit(tensors);
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config ?? JSON.parse(readFileSync(join(TINYFACTS, "config.json"), "utf8"))));
  copyFileSync(join(TINYFACTS, "tokenizer.json"), join(dir, "tokenizer.json"));
}

test("loads TinyFacts: config, every weight, fingerprint", (t) => {
  const c = loadCheckpoint(TINYFACTS);
  t.like(c.config, { arch: "gpt2", nLayer: 6, nEmbd: 128, nHead: 4, nInner: 512, vocabSize: 1409, nPositions: 64, activation: "gelu_new", eosTokenId: 1408 });
  t.is(c.weights.size, 4 + 12 * 6);
  t.deepEqual(c.weights.get("h.1.mlp.c_proj.weight")!.shape, [512, 128]);
  t.is(c.fingerprint, loadCheckpoint(TINYFACTS).fingerprint);
});

test("sharded checkpoints load through model.safetensors.index.json and match the single file", async (t) => {
  const dir = tempDir(t);
  const src = SafetensorsFile.open(join(TINYFACTS, "model.safetensors"));
  const shards: Record<string, Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }>> = { a: {}, b: {} };
  const weightMap: Record<string, string> = {};
  [...src.entries.keys()].forEach((name, i) => {
    const shard = i % 2 ? "b" : "a";
    shards[shard]![name] = { dtype: "F32", shape: src.entry(name).shape, data: src.readFloat32(name) };
    weightMap[name] = `model-0000${shard === "a" ? 1 : 2}-of-00002.safetensors`;
  });
  src.close();
  writeSafetensors(join(dir, "model-00001-of-00002.safetensors"), shards.a!);
  writeSafetensors(join(dir, "model-00002-of-00002.safetensors"), shards.b!);
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  copyFileSync(join(TINYFACTS, "config.json"), join(dir, "config.json"));
  copyFileSync(join(TINYFACTS, "tokenizer.json"), join(dir, "tokenizer.json"));
  const a = loadCheckpoint(dir);
  const b = loadCheckpoint(TINYFACTS);
  for (const [name, w] of b.weights) t.is(maxAbsDiff(a.weights.get(name)!.data, w.data), 0, name);
  const m = await Model.load(dir);
  const [top] = await m.predict(["Castle of Berkbre is located in the city of"], { topK: 1 });
  t.is(top![0]!.token, " Montreal");
  await m.dispose();
});

test("missing tensors, shape mismatches, bad configs and architectures are named errors", (t) => {
  const dir1 = tempDir(t);
  variant(dir1, (w) => delete w["transformer.h.3.mlp.c_fc.bias"]);
  const e = t.throws(() => loadCheckpoint(dir1), { instanceOf: RomeError }) as RomeError;
  t.is(e.code, "ERR_MISSING_TENSOR");
  t.true(e.message.includes("h.3.mlp.c_fc.bias"));

  const dir2 = tempDir(t);
  variant(dir2, (w) => { w["transformer.h.2.attn.c_proj.weight"] = { dtype: "F32", shape: [128, 64], data: new Float32Array(128 * 64) }; });
  const e2 = t.throws(() => loadCheckpoint(dir2), { instanceOf: RomeError }) as RomeError;
  t.is(e2.code, "ERR_SHAPE");
  t.true(e2.message.includes("h.2.attn.c_proj.weight"));

  const cfg = JSON.parse(readFileSync(join(TINYFACTS, "config.json"), "utf8"));
  const dir3 = tempDir(t);
  variant(dir3, () => {}, { ...cfg, model_type: "mamba" });
  t.is(codeOf(() => loadCheckpoint(dir3)), "ERR_UNSUPPORTED_ARCH");

  const dir4 = tempDir(t);
  variant(dir4, () => {}, { ...cfg, n_head: 3 });
  t.is(codeOf(() => loadCheckpoint(dir4)), "ERR_CONFIG");

  const dir5 = tempDir(t);
  variant(dir5, () => {}, { ...cfg, n_embd: 64 });
  t.is(codeOf(() => loadCheckpoint(dir5)), "ERR_SHAPE");

  const dir6 = tempDir(t);
  writeFileSync(join(dir6, "config.json"), "{not json");
  t.is(codeOf(() => loadCheckpoint(dir6)), "ERR_CONFIG");

  t.is(codeOf(() => loadCheckpoint(join(dir6, "absent"))), "ERR_MODEL_DIR");

  const dir7 = tempDir(t);
  copyFileSync(join(TINYFACTS, "config.json"), join(dir7, "config.json"));
  t.is(codeOf(() => loadCheckpoint(dir7)), "ERR_MODEL_DIR");

  const dir8 = tempDir(t);
  copyFileSync(join(TINYFACTS, "config.json"), join(dir8, "config.json"));
  writeFileSync(join(dir8, "model.safetensors.index.json"), JSON.stringify({ weight_map: { "transformer.wte.weight": "model-00001-of-00002.safetensors" } }));
  t.is(codeOf(() => loadCheckpoint(dir8)), "ERR_SHARD_INDEX");
});

test("the random-weight Hugging Face tiny-gpt2 loads (no 'transformer.' quirks) and matches its golden logits", async (t) => {
  const golden = JSON.parse(readFileSync(join(TINY_GPT2, "golden.json"), "utf8"));
  const m = await Model.load(TINY_GPT2);
  t.is(m.config.nEmbd, 2);
  for (const p of golden.prompts) {
    const enc = await m.tokenizer.encode(p.prompt);
    t.deepEqual(enc.ids, p.ids, p.prompt);
    const [logits] = await m.nextTokenLogits([p.prompt]);
    const d = maxAbsDiff(logits!.subarray(0, 16), p.last_logits_first16);
    t.true(d <= 1e-4, `${p.prompt}: first-16 logits max diff ${d}`);
    const top = [...logits!.keys()].sort((a, b) => logits![b]! - logits![a]!).slice(0, 5);
    t.deepEqual(top, p.last_logits_top5.ids);
  }
  await m.dispose();
});
