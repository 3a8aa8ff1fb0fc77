// Checkpoints that disagree with their config.json, or hold bad bytes, fail at load with an error
// naming what is wrong: non-finite weights, missing or extra layers, unused tensors, overlapping
// tensor offsets, special token ids outside the vocabulary, shard indexes naming directories.
import test from "ava";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { loadCheckpoint } from "../lib/model/checkpoint.js";
import { Model } from "../lib/runtime/model.js";
import { SafetensorsFile, writeSafetensors } from "../lib/model/safetensors.js";
import { tempDir, TINYFACTS } from "./helpers.js";

type Tensors = Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }>;

function tinyfactsTensors(): Tensors {
  const src = SafetensorsFile.open(join(TINYFACTS, "model.safetensors"));
  const tensors: Tensors = {};
  for (const [name, e] of src.entries) tensors[name] = { dtype: "F32", shape: e.shape, data: src.readFloat32(name) };
  src.close();
  return tensors;
}
const CONFIG = JSON.parse(readFileSync(join(TINYFACTS, "config.json"), "utf8")) as Record<string, unknown>;

/** A TinyFacts copy in a fresh directory, with weights rewritten by `edit` and config keys overridden. */
function variant(t: { teardown(fn: () => void): void }, edit: (w: Tensors) => void, config: Record<string, unknown> = {}): string {
  const dir = tempDir(t);
  const tensors = tinyfactsTensors();
  edit(tensors);
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...CONFIG, ...config }));
  copyFileSync(join(TINYFACTS, "tokenizer.json"), join(dir, "tokenizer.json"));
  return dir;
}

function loadError(dir: string): RomeError {
  try {
    loadCheckpoint(dir);
  } catch (e) {
    if (e instanceof RomeError) return e;
    throw e;
  }
  throw new Error("loaded without error");
}

test("a NaN or Infinity weight is ERR_NOT_FINITE naming the tensor", (t) => {
  const nan = variant(t, (w) => { w["transformer.h.4.mlp.c_fc.weight"]!.data[17] = NaN; });
  const e = loadError(nan);
  t.is(e.code, "ERR_NOT_FINITE");
  t.regex(e.message, /transformer\.h\.4\.mlp\.c_fc\.weight.*index 17/);
  const inf = variant(t, (w) => { w["transformer.ln_f.bias"]!.data[0] = -Infinity; });
  t.is(loadError(inf).code, "ERR_NOT_FINITE");
  t.regex(loadError(inf).message, /ln_f\.bias/);
});

test("config.json with fewer layers than the checkpoint names the unused layers", (t) => {
  const dir = variant(t, () => {}, { n_layer: 4 });
  const e = loadError(dir);
  t.is(e.code, "ERR_UNUSED_TENSOR");
  t.regex(e.message, /transformer\.h\.4\./);
  t.regex(e.message, /6 layers but config\.json says 4/);
});

test("config.json with more layers than the checkpoint names the missing layers", (t) => {
  const dir = variant(t, () => {}, { n_layer: 8 });
  const e = loadError(dir);
  t.is(e.code, "ERR_MISSING_TENSOR");
  t.regex(e.message, /layer\(s\) 6-7 \(config\.json has 8 layers, the checkpoint 6\)/);
});

test("a missing layer in the middle is named", (t) => {
  const dir = variant(t, (w) => { for (const k of Object.keys(w)) if (k.includes(".h.2.")) delete w[k]; });
  const e = loadError(dir);
  t.is(e.code, "ERR_MISSING_TENSOR");
  t.regex(e.message, /layer\(s\) 2 /);
});

test("a tensor the architecture does not use is an error naming it; saved mask buffers are not", (t) => {
  const extra = variant(t, (w) => { w["transformer.h.1.mlp.gate.weight"] = { dtype: "F32", shape: [2], data: new Float32Array(2) }; });
  const e = loadError(extra);
  t.is(e.code, "ERR_UNUSED_TENSOR");
  t.regex(e.message, /transformer\.h\.1\.mlp\.gate\.weight/);
  const buffers = variant(t, (w) => {
    w["transformer.h.0.attn.bias"] = { dtype: "F32", shape: [1, 1, 2, 2], data: new Float32Array([1, 0, 1, 1]) };
    w["transformer.h.0.attn.masked_bias"] = { dtype: "F32", shape: [], data: new Float32Array([-1e4]) };
  });
  t.notThrows(() => loadCheckpoint(buffers));
});

test("overlapping or aliased tensor offsets are ERR_SAFETENSORS_OFFSETS", (t) => {
  // Two tensors of the same shape pointing at the same bytes.
  const dir = variant(t, () => {});
  const file = join(dir, "model.safetensors");
  const bytes = readFileSync(file);
  const len = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + len).toString("utf8"));
  header["transformer.h.0.ln_2.bias"].data_offsets = header["transformer.h.0.ln_1.bias"].data_offsets;
  let json = JSON.stringify(header);
  json += " ".repeat(len - Buffer.byteLength(json));
  bytes.write(json, 8, "utf8");
  writeFileSync(file, bytes);
  const e = loadError(dir);
  t.is(e.code, "ERR_SAFETENSORS_OFFSETS");
  t.regex(e.message, /ln_1\.bias.*ln_2\.bias|ln_2\.bias.*ln_1\.bias/);
});

test("special token ids outside the vocabulary are an early ERR_CONFIG", (t) => {
  for (const key of ["eos_token_id", "bos_token_id", "pad_token_id"]) {
    const dir = variant(t, () => {}, { [key]: 5000 });
    const e = loadError(dir);
    t.is(e.code, "ERR_CONFIG", key);
    t.regex(e.message, new RegExp(`${key}.*5000`));
  }
  t.is(loadError(variant(t, () => {}, { eos_token_id: -1 })).code, "ERR_CONFIG");
  t.is(loadError(variant(t, () => {}, { eos_token_id: 1.5 })).code, "ERR_CONFIG");
  // No eos_token_id: GPT-2's default 50256 does not exist in a 1409-token vocabulary.
  t.is(loadError(variant(t, () => {}, { eos_token_id: undefined, bos_token_id: undefined })).code, "ERR_CONFIG");
  t.notThrows(() => loadCheckpoint(variant(t, () => {}, { pad_token_id: null })));
});

test("a shard index naming '..', '.', an absolute path or a directory is ERR_SHARD_INDEX, never EISDIR", (t) => {
  for (const shard of ["..", ".", "/etc/passwd", "sub", ""]) {
    const dir = tempDir(t);
    mkdirSync(join(dir, "sub"));
    copyFileSync(join(TINYFACTS, "config.json"), join(dir, "config.json"));
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { "transformer.wte.weight": shard } }));
    t.is(loadError(dir).code, "ERR_SHARD_INDEX", JSON.stringify(shard));
  }
});

test("a config with zero layers, heads or vocabulary is ERR_CONFIG", (t) => {
  for (const key of ["n_layer", "n_head", "vocab_size", "n_positions"]) {
    t.is(loadError(variant(t, () => {}, { [key]: 0 })).code, "ERR_CONFIG", key);
  }
});

test("a tensor stored in two shards is ERR_SHARD_INDEX naming it", (t) => {
  const dir = tempDir(t);
  const tensors = tinyfactsTensors();
  const names = Object.keys(tensors);
  const a = Object.fromEntries(names.slice(0, 40).map((n) => [n, tensors[n]!]));
  const b = Object.fromEntries(names.slice(39).map((n) => [n, tensors[n]!]));
  writeSafetensors(join(dir, "a.safetensors"), a);
  writeSafetensors(join(dir, "b.safetensors"), b);
  const weightMap = Object.fromEntries(names.map((n, i) => [n, i < 40 ? "a.safetensors" : "b.safetensors"]));
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: weightMap }));
  copyFileSync(join(TINYFACTS, "config.json"), join(dir, "config.json"));
  const e = loadError(dir);
  t.is(e.code, "ERR_SHARD_INDEX");
  t.true(e.message.includes(`'${names[39]}'`));
});

test("Model.load checks the weights onnxruntime maps from the file: a NaN early or late is ERR_NOT_FINITE, no model", async (t) => {
  // the f32 weights are checked on a scan thread while the sessions are built: a bad value in the
  // first segment's weight and one in the last layer's both fail the load, naming tensor and index
  for (const [name, index] of [["transformer.wte.weight", 5], ["transformer.h.5.mlp.c_proj.weight", 1000]] as const) {
    const dir = variant(t, (w) => { w[name]!.data[index] = NaN; });
    const e = await t.throwsAsync(Model.load(dir), { instanceOf: RomeError }) as RomeError;
    t.is(e.code, "ERR_NOT_FINITE");
    t.true(e.message.includes(`'${name}'`) && e.message.includes(`index ${index};`), e.message);
  }
});
