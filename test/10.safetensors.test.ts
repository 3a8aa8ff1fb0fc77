import test, { type ExecutionContext } from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { SafetensorsFile, writeSafetensors } from "../lib/model/safetensors.js";
import { tempDir } from "./helpers.js";

function rawFile(header: object, data: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function expectCode(t: ExecutionContext, fn: () => unknown, code: string, name?: string) {
  const e = t.throws(fn, { instanceOf: RomeError }) as RomeError;
  t.is(e.code as string, code, e.message);
  if (name) t.true(e.message.includes(name), `message names '${name}': ${e.message}`);
}

test("round-trips F32 and F64 tensors with metadata", (t) => {
  const dir = tempDir(t);
  const path = join(dir, "a.safetensors");
  const a = Float32Array.from([1.5, -2, 3.25, 0, 7, 8]);
  const b = Float64Array.from([Math.PI, 1e-300]);
  writeSafetensors(path, { a: { dtype: "F32", shape: [2, 3], data: a }, b: { dtype: "F64", shape: [2], data: b } }, { layer: "1" });
  const f = SafetensorsFile.open(path);
  t.deepEqual([...f.readFloat32("a")], [...a]);
  t.deepEqual([...f.readFloat64("b")], [...b]);
  t.deepEqual(f.entry("a").shape, [2, 3]);
  t.is(f.metadata.layer, "1");
  f.close();
});

test("widens F16 and BF16 to f32 exactly", (t) => {
  const dir = tempDir(t);
  // F16: 1.0 = 0x3c00, -2.5 = 0xc100, 65504 = 0x7bff, smallest subnormal 2^-24 = 0x0001
  const f16 = Buffer.alloc(8);
  [0x3c00, 0xc100, 0x7bff, 0x0001].forEach((h, i) => f16.writeUInt16LE(h, 2 * i));
  // BF16: upper halves of f32 1.0 (0x3f80), -3.0 (0xc040)
  const bf16 = Buffer.alloc(4);
  [0x3f80, 0xc040].forEach((h, i) => bf16.writeUInt16LE(h, 2 * i));
  const path = join(dir, "h.safetensors");
  writeFileSync(path, rawFile({ h: { dtype: "F16", shape: [4], data_offsets: [0, 8] }, b: { dtype: "BF16", shape: [2], data_offsets: [8, 12] } }, Buffer.concat([f16, bf16])));
  const f = SafetensorsFile.open(path);
  t.deepEqual([...f.readFloat32("h")], [1, -2.5, 65504, 2 ** -24]);
  t.deepEqual([...f.readFloat32("b")], [1, -3]);
  f.close();
});

test("malformed files give their own codes and name the file or tensor", (t) => {
  const dir = tempDir(t);
  const p = (n: string) => join(dir, n);
  writeFileSync(p("short"), Buffer.from([1, 2, 3]));
  expectCode(t, () => SafetensorsFile.open(p("short")), "ERR_SAFETENSORS_TRUNCATED", "short");

  const huge = Buffer.alloc(16);
  huge.writeBigUInt64LE(1n << 40n);
  writeFileSync(p("huge"), huge);
  expectCode(t, () => SafetensorsFile.open(p("huge")), "ERR_SAFETENSORS_HEADER");

  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(5n);
  writeFileSync(p("json"), Buffer.concat([len, Buffer.from("{oops")]));
  expectCode(t, () => SafetensorsFile.open(p("json")), "ERR_SAFETENSORS_HEADER", "json");

  writeFileSync(p("dtype"), rawFile({ w: { dtype: "Q4", shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)));
  expectCode(t, () => SafetensorsFile.open(p("dtype")), "ERR_DTYPE", "'w'");

  writeFileSync(p("span"), rawFile({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)));
  expectCode(t, () => SafetensorsFile.open(p("span")), "ERR_SAFETENSORS_OFFSETS", "'w'");

  writeFileSync(p("range"), rawFile({ w: { dtype: "F32", shape: [4], data_offsets: [100, 116] } }, new Uint8Array(16)));
  expectCode(t, () => SafetensorsFile.open(p("range")), "ERR_SAFETENSORS_OFFSETS", "'w'");

  const good = rawFile({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, new Uint8Array(16));
  writeFileSync(p("trunc"), good.subarray(0, good.length - 4));
  expectCode(t, () => SafetensorsFile.open(p("trunc")), "ERR_SAFETENSORS_TRUNCATED", "'w'");

  writeFileSync(p("ok"), good);
  const f = SafetensorsFile.open(p("ok"));
  expectCode(t, () => f.readFloat32("nope"), "ERR_MISSING_TENSOR", "'nope'");
  f.close();
});

test("a real checkpoint header parses (TinyFacts)", (t) => {
  const f = SafetensorsFile.open(new URL("../models/tinyfacts/model.safetensors", import.meta.url).pathname);
  t.deepEqual(f.entry("transformer.wte.weight").shape, [1409, 128]);
  const wpe = f.readFloat32("transformer.wpe.weight");
  t.is(wpe.length, 64 * 128);
  t.true(wpe.every(Number.isFinite));
  f.close();
  t.true(readFileSync(f.path).length > 0);
});
