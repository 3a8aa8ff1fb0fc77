// Opens a Hugging Face model directory: config.json, then model.safetensors or the shards named by
// model.safetensors.index.json. Weights are found by canonical name under the description's
// prefixes and checked against the shapes the config implies; they are read (widened to f32) on
// demand, one tensor at a time, or all at once by loadCheckpoint.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../errors.js";
import { findArchitecture } from "../arch/index.js";
import type { ArchDescription, Weight, Weights } from "../arch/types.js";
import { readConfigJson, type ModelConfig } from "./config.js";
import { SafetensorsFile } from "./safetensors.js";
import { checkDimensions, checkSpecialTokens, checkTensorNames } from "./validate.js";
import { CheckpointWeights } from "./weights.js";

/** A checkpoint opened for reading: config checked, every weight located and its shape checked,
 * no tensor read yet. `weights` reads on demand and must be closed (Model.dispose does). */
export interface OpenCheckpoint {
  dir: string;
  arch: ArchDescription;
  config: ModelConfig;
  weights: CheckpointWeights;
  /** Canonical weight name → the name it has in the checkpoint (exports keep the input's layout). */
  storedNames: Map<string, string>;
}

/** A checkpoint read whole into memory. */
export interface Checkpoint {
  dir: string;
  arch: ArchDescription;
  config: ModelConfig;
  weights: Weights;
  storedNames: Map<string, string>;
  /** Hash of the config and a sample of every weight: identifies the model for statistics caches. */
  fingerprint: string;
}

export function openCheckpoint(dir: string): OpenCheckpoint {
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
    const located = new Map<string, { file: SafetensorsFile; stored: string; shape: number[] }>();
    for (const [name, shape] of shapes) {
      const [file, stored] = found.get(name)!;
      const entry = file.entry(stored);
      if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
        throw new RomeError("ERR_SHAPE", `${file.path}: tensor '${stored}' has shape [${entry.shape}] but config.json implies [${shape}]`);
      }
      located.set(name, { file, stored, shape });
    }
    const weights = new CheckpointWeights(files, located);
    return { dir, arch, config, weights, storedNames: weights.storedNames() };
  } catch (e) {
    for (const f of files) f.close();
    throw e;
  }
}

/** Reads a whole checkpoint into memory (tests and conversions; Model.load streams instead). */
export function loadCheckpoint(dir: string): Checkpoint {
  const open = openCheckpoint(dir);
  try {
    const weights: Weights = new Map();
    for (const name of open.weights.keys()) weights.set(name, open.weights.get(name)!);
    return { dir, arch: open.arch, config: open.config, weights, storedNames: open.storedNames, fingerprint: fingerprint(open.config, weights) };
  } finally {
    open.weights.close();
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
  const f = new Fingerprint(config);
  for (const [name, w] of weights) f.add(name, w);
  return f.digest();
}

/** The fingerprint computed while the weights stream past once, in any order (each name once). */
export class Fingerprint {
  private readonly samples = new Map<string, { shape: number[]; sample: Float32Array }>();

  constructor(private readonly config: ModelConfig) {}

  has(name: string): boolean {
    return this.samples.has(name);
  }

  add(name: string, w: Weight): void {
    this.sample(name, w.shape, w.data.length, (i) => w.data[i]!);
  }

  /** The same from the weight's raw little-endian f32 bytes (any alignment). */
  addRaw(name: string, shape: number[], bytes: Uint8Array): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.sample(name, shape, bytes.byteLength / 4, (i) => view.getFloat32(4 * i, true));
  }

  /**
   * The same from a sample taken elsewhere (a scan of the file): `take` receives the values at every
   * `stride`-th index of the weight of `shape`.
   */
  addSampled(name: string, shape: number[]): { stride: number; take(values: Float32Array): void } {
    return { stride: sampleStride(shape.reduce((a, d) => a * d, 1)), take: (sample) => void this.samples.set(name, { shape, sample }) };
  }

  private sample(name: string, shape: number[], n: number, at: (i: number) => number): void {
    const stride = sampleStride(n);
    const sample = new Float32Array(Math.ceil(n / stride));
    for (let i = 0, j = 0; i < n; i += stride, j++) sample[j] = at(i);
    this.samples.set(name, { shape, sample });
  }

  digest(): string {
    const h = createHash("sha256");
    h.update(JSON.stringify(this.config));
    for (const name of [...this.samples.keys()].sort()) {
      const { shape, sample } = this.samples.get(name)!;
      h.update(`${name}:${shape.join("x")};`);
      h.update(new Uint8Array(sample.buffer));
    }
    return h.digest("hex").slice(0, 32);
  }
}

/** About 4096 values of each weight enter the fingerprint. */
function sampleStride(n: number): number {
  return Math.max(1, Math.floor(n / 4096));
}
