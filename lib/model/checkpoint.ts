// Loads a Hugging Face model directory: config.json, then model.safetensors or the shards named by
// model.safetensors.index.json. Weights are found by canonical name under the description's
// prefixes, checked against the shapes the config implies, and widened to f32.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../errors.js";
import { findArchitecture } from "../arch/index.js";
import type { ArchDescription, Weights } from "../arch/types.js";
import { readConfigJson, type ModelConfig } from "./config.js";
import { SafetensorsFile } from "./safetensors.js";
import { checkDimensions, checkFinite, checkSpecialTokens, checkTensorNames } from "./validate.js";

export interface Checkpoint {
  dir: string;
  arch: ArchDescription;
  config: ModelConfig;
  weights: Weights;
  /** Canonical weight name → the name it has in the checkpoint (exports keep the input's layout). */
  storedNames: Map<string, string>;
  /** Hash of the config and a sample of every weight: identifies the model for statistics caches. */
  fingerprint: string;
}

export function loadCheckpoint(dir: string): Checkpoint {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new RomeError("ERR_MODEL_DIR", `Model directory ${dir} does not exist; pass the path of a Hugging Face model directory (config.json + *.safetensors)`);
  }
  const configPath = join(dir, "config.json");
  const raw = readConfigJson(configPath);
  const arch = findArchitecture(raw, configPath);
  const config = arch.config(raw, configPath);
  checkDimensions(config, configPath);
  checkSpecialTokens(raw, config, configPath);
  const files = openWeightFiles(dir);
  try {
    const shapes = arch.weightShapes(config);
    const found = new Map<string, [SafetensorsFile, string]>();
    for (const name of shapes.keys()) {
      const hit = locate(files, arch.prefixes, name);
      if (hit) found.set(name, hit);
    }
    checkTensorNames(dir, arch, config, [...shapes.keys()], new Map([...found].map(([n, [, s]]) => [n, s])), files.flatMap((f) => [...f.entries.keys()]));
    const weights: Weights = new Map();
    const storedNames = new Map<string, string>();
    for (const [name, shape] of shapes) {
      const [file, stored] = found.get(name)!;
      const entry = file.entry(stored);
      if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
        throw new RomeError("ERR_SHAPE", `${file.path}: tensor '${stored}' has shape [${entry.shape}] but config.json implies [${shape}]`);
      }
      const data = file.readFloat32(stored);
      checkFinite(file.path, stored, data);
      weights.set(name, { shape, data });
      storedNames.set(name, stored);
    }
    return { dir, arch, config, weights, storedNames, fingerprint: fingerprint(config, weights) };
  } finally {
    for (const f of files) f.close();
  }
}

function openWeightFiles(dir: string): SafetensorsFile[] {
  const single = join(dir, "model.safetensors");
  const index = join(dir, "model.safetensors.index.json");
  if (existsSync(single)) return [SafetensorsFile.open(single)];
  if (!existsSync(index)) {
    throw new RomeError("ERR_MODEL_DIR", `${dir} has neither model.safetensors nor model.safetensors.index.json; rome-node reads safetensors checkpoints only (convert pytorch_model.bin with Hugging Face's save_pretrained(safe_serialization=True))`);
  }
  let map: Record<string, string>;
  try {
    const json = JSON.parse(readFileSync(index, "utf8"));
    map = json.weight_map;
    if (typeof map !== "object" || map === null) throw new Error("no weight_map object");
  } catch (e) {
    throw new RomeError("ERR_SHARD_INDEX", `${index} is malformed (${(e as Error).message})`);
  }
  const shards = [...new Set(Object.values(map))].sort();
  const files: SafetensorsFile[] = [];
  try {
    for (const shard of shards) {
      if (typeof shard !== "string" || shard === "" || shard === "." || shard === ".." || shard.includes("/") || shard.includes("\\") || shard.includes("\0")) {
        throw new RomeError("ERR_SHARD_INDEX", `${index} names an invalid shard ${JSON.stringify(shard)}`);
      }
      const path = join(dir, shard);
      if (!existsSync(path)) throw new RomeError("ERR_SHARD_INDEX", `${index} names shard ${shard}, which is missing from ${dir}`);
      if (!statSync(path).isFile()) throw new RomeError("ERR_SHARD_INDEX", `${index} names shard ${shard}, which is not a file`);
      files.push(SafetensorsFile.open(path));
    }
  } catch (e) {
    for (const f of files) f.close();
    throw e;
  }
  return files;
}

function locate(files: SafetensorsFile[], prefixes: string[], name: string): [SafetensorsFile, string] | undefined {
  for (const prefix of prefixes) {
    for (const f of files) if (f.entries.has(prefix + name)) return [f, prefix + name];
  }
  return undefined;
}

/** Deterministic model identity: config, names, shapes and a strided sample of every weight. */
export function fingerprint(config: ModelConfig, weights: Weights): string {
  const h = createHash("sha256");
  h.update(JSON.stringify(config));
  for (const name of [...weights.keys()].sort()) {
    const w = weights.get(name)!;
    h.update(`${name}:${w.shape.join("x")};`);
    const stride = Math.max(1, Math.floor(w.data.length / 4096));
    const sample = new Float32Array(Math.ceil(w.data.length / stride));
    for (let i = 0, j = 0; i < w.data.length; i += stride, j++) sample[j] = w.data[i]!;
    h.update(new Uint8Array(sample.buffer));
  }
  return h.digest("hex").slice(0, 32);
}
