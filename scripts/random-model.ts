// Random-weight GPT-2 and Llama models built in memory, for benchmarks (forward, trace, edit) that
// need a model of a given shape but not a checkpoint. Shapes come from the architecture description
// (gpt2.weightShapes, llama.weightShapes), so the weights always match what the segment compiler asks for. Values
// follow Hugging Face's GPT-2 initialisation: linear and embedding weights N(0, std²), the
// residual output projections (attn.c_proj, mlp.c_proj) N(0, (std / √(2·nLayer))²), biases 0,
// layer-norm gamma 1 and beta 0. The generator is seeded and fast (xorshift128+ with a
// Box–Muller transform), so a GPT-2-small-sized model (124M values) fills in about a second.
import { closeSync, copyFileSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { gpt2 } from "../lib/arch/gpt2.js";
import { llama } from "../lib/arch/llama.js";
import type { ArchDescription, Weights } from "../lib/arch/types.js";
import type { ModelConfig } from "../lib/model/config.js";
import { writeSafetensors as writeTensors, type TensorToWrite } from "../lib/model/safetensors.js";

/** GPT-2 small: 12 layers, d 768, 12 heads, 3072 MLP, 50257 tokens, 1024 positions. */
export const GPT2_SMALL: ModelConfig = {
  arch: "gpt2",
  nLayer: 12,
  nEmbd: 768,
  nHead: 12,
  nKvHead: 12,
  headDim: 64,
  nInner: 3072,
  vocabSize: 50257,
  nPositions: 1024,
  layerNormEps: 1e-5,
  activation: "gelu_new",
  tieWordEmbeddings: true,
  eosTokenId: 50256,
  bosTokenId: 50256,
};

export interface RandomModelOptions {
  /** Standard deviation of weights and embeddings (HF `initializer_range`). Default 0.02. */
  std?: number;
  /** Standard deviation of biases and layer-norm betas (and of gamma around 1). Default 0, as at
   * GPT-2 initialisation; tests that must notice a missing bias can make them non-zero. */
  biasStd?: number;
}

export interface RandomModel {
  arch: ArchDescription;
  config: ModelConfig;
  weights: Weights;
}

/** A seeded source of uniform and Gaussian float32 values (xorshift128+, Box–Muller). */
export class FastRandom {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    // splitmix32 expands the seed into a non-zero 128-bit state
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() | 1;
  }

  /** xoshiro128+-style 32-bit output. */
  nextU32(): number {
    const result = (this.s0 + this.s3) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** Uniform in (0, 1]. */
  uniform(): number {
    return (this.nextU32() + 1) / 4294967296;
  }

  /** Fills `out` with N(mean, std²) values. */
  fillNormal(out: Float32Array, std: number, mean = 0): Float32Array {
    const n = out.length;
    let i = 0;
    for (; i + 1 < n; i += 2) {
      const r = std * Math.sqrt(-2 * Math.log(this.uniform()));
      const a = 2 * Math.PI * this.uniform();
      out[i] = mean + r * Math.cos(a);
      out[i + 1] = mean + r * Math.sin(a);
    }
    if (i < n) out[i] = mean + std * Math.sqrt(-2 * Math.log(this.uniform())) * Math.cos(2 * Math.PI * this.uniform());
    return out;
  }
}

/**
 * A GPT-2 with random weights: GPT-2 small unless `cfg` overrides fields (e.g. { nLayer: 2,
 * nEmbd: 64, nHead: 4, nInner: 256, vocabSize: 1000, nPositions: 128 } for a tiny one; nInner
 * defaults to 4·nEmbd when nEmbd is given without it). Build the runnable model with
 * `Model.fromWeights(arch, config, weights, { threads })`.
 */
export function randomGpt2(cfg: Partial<ModelConfig> = {}, seed = 0, opts: RandomModelOptions = {}): RandomModel {
  const config: ModelConfig = { ...GPT2_SMALL, ...cfg, arch: "gpt2" };
  if (cfg.nEmbd !== undefined && cfg.nInner === undefined) config.nInner = 4 * config.nEmbd;
  if (config.nEmbd % config.nHead !== 0) throw new Error(`nEmbd ${config.nEmbd} is not divisible by nHead ${config.nHead}`);
  config.nKvHead = config.nHead;
  config.headDim = config.nEmbd / config.nHead;
  const std = opts.std ?? 0.02;
  const biasStd = opts.biasStd ?? 0;
  const projStd = std / Math.sqrt(2 * config.nLayer);
  const rng = new FastRandom(seed);
  const weights: Weights = new Map();
  for (const [name, shape] of gpt2.weightShapes(config)) weights.set(name, { shape, data: randomWeight(rng, name, shape, std, biasStd, projStd) });
  return { arch: gpt2, config, weights };
}

function randomWeight(rng: FastRandom, name: string, shape: number[], std: number, biasStd: number, projStd: number): Float32Array {
  const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
  if (/\.ln_\d\.weight$|^ln_f\.weight$/.test(name)) {
    if (biasStd > 0) rng.fillNormal(data, biasStd, 1);
    else data.fill(1);
  } else if (name.endsWith(".bias")) {
    if (biasStd > 0) rng.fillNormal(data, biasStd);
  } else if (/\.c_proj\.weight$/.test(name)) {
    rng.fillNormal(data, projStd);
  } else {
    rng.fillNormal(data, std);
  }
  return data;
}

/**
 * Writes a random GPT-2 (same values as `randomGpt2(cfg, seed)`) as a Hugging Face directory:
 * config.json, model.safetensors (F32, "transformer." names) and a copy of `tokenizerJson`. Tensors
 * are generated and written one at a time, so a GPT-2-XL-sized checkpoint never sits in memory.
 * Returns the checkpoint's size in bytes.
 */
export function writeRandomCheckpoint(dir: string, cfg: Partial<ModelConfig>, tokenizerJson: string, seed = 0): number {
  const config: ModelConfig = { ...GPT2_SMALL, ...cfg, arch: "gpt2" };
  if (cfg.nEmbd !== undefined && cfg.nInner === undefined) config.nInner = 4 * config.nEmbd;
  const std = 0.02;
  const projStd = std / Math.sqrt(2 * config.nLayer);
  const shapes = [...gpt2.weightShapes(config)];
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = 4 * shape.reduce((a, d) => a * d, 1);
    header[`transformer.${name}`] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  mkdirSync(dir, { recursive: true });
  const rng = new FastRandom(seed);
  const size = writeSafetensors(join(dir, "model.safetensors"), header, shapes.map(([name, shape]) => () => randomWeight(rng, name, shape, std, 0, projStd)));
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    model_type: "gpt2", n_layer: config.nLayer, n_embd: config.nEmbd, n_head: config.nHead, n_inner: config.nInner,
    vocab_size: config.vocabSize, n_positions: config.nPositions, layer_norm_epsilon: config.layerNormEps,
    activation_function: config.activation, eos_token_id: config.eosTokenId, bos_token_id: config.bosTokenId,
  }, null, 2));
  copyFileSync(tokenizerJson, join(dir, "tokenizer.json"));
  return size;
}

/**
 * A safetensors file: `header` (name → dtype, shape, offsets), then each tensor as `tensors[i]()`
 * makes it, one at a time. Returns the file's size in bytes.
 */
function writeSafetensors(path: string, header: Record<string, unknown>, tensors: (() => Float32Array)[]): number {
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const fd = openSync(path, "w");
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    writeAll(fd, len);
    writeAll(fd, Buffer.from(json, "utf8"));
    for (const make of tensors) {
      const data = make();
      writeAll(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  } finally {
    closeSync(fd);
  }
  const dataBytes = Object.values(header).reduce((n: number, e) => n + 4 * (e as { shape: number[] }).shape.reduce((a, d) => a * d, 1), 0);
  return 8 + Buffer.byteLength(json) + dataBytes;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength;) done += writeSync(fd, bytes, done, bytes.byteLength - done);
}

/** A TinyLlama-1.1B-shaped Llama: 22 layers, d 2048, 32 query heads over 4 key/value heads, SwiGLU 5632, 32000 tokens. */
export const TINYLLAMA_1B: ModelConfig = {
  arch: "llama",
  nLayer: 22,
  nEmbd: 2048,
  nHead: 32,
  nKvHead: 4,
  headDim: 64,
  nInner: 5632,
  vocabSize: 32000,
  nPositions: 2048,
  layerNormEps: 1e-5,
  activation: "silu",
  tieWordEmbeddings: false,
  eosTokenId: 2,
  bosTokenId: 1,
  rope: { theta: 10000, dims: 64, pairs: "half" },
  biases: { qkv: false, attnOut: false, mlp: false },
  gatedMlp: true,
};

/**
 * A Llama with random weights: TinyLlama-1.1B's shape unless `cfg` overrides fields. Matrices and
 * embeddings N(0, std²), o_proj and down_proj N(0, (std / √(2·nLayer))²), RMSNorm weights 1.
 */
export function randomLlama(cfg: Partial<ModelConfig> = {}, seed = 0, opts: RandomModelOptions = {}): RandomModel {
  const config: ModelConfig = { ...TINYLLAMA_1B, ...cfg, arch: "llama" };
  config.rope = { theta: config.rope!.theta, dims: config.headDim, pairs: "half" };
  const std = opts.std ?? 0.02;
  const projStd = std / Math.sqrt(2 * config.nLayer);
  const rng = new FastRandom(seed);
  const weights: Weights = new Map();
  for (const [name, shape] of llama.weightShapes(config)) {
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
    if (/norm\.weight$/.test(name)) data.fill(1);
    else rng.fillNormal(data, /(o_proj|down_proj)\.weight$/.test(name) ? projStd : std);
    weights.set(name, { shape, data });
  }
  return { arch: llama, config, weights };
}

/**
 * Writes a random Llama (same values as `randomLlama(cfg, seed)`) as a Hugging Face directory:
 * config.json, model.safetensors (F32, "model." names, lm_head.weight) and a copy of the tokenizer
 * files in `tokenizerDir`, one tensor in memory at a time. Returns the checkpoint's size in bytes.
 */
export function writeRandomLlamaCheckpoint(dir: string, cfg: Partial<ModelConfig>, tokenizerDir: string, seed = 0): number {
  const config: ModelConfig = { ...TINYLLAMA_1B, ...cfg, arch: "llama" };
  const std = 0.02;
  const projStd = std / Math.sqrt(2 * config.nLayer);
  const shapes = [...llama.weightShapes(config)];
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = 4 * shape.reduce((a, d) => a * d, 1);
    header[name === "lm_head.weight" ? name : `model.${name}`] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  mkdirSync(dir, { recursive: true });
  const rng = new FastRandom(seed);
  const size = writeSafetensors(join(dir, "model.safetensors"), header, shapes.map(([name, shape]) => () => {
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
    if (/norm\.weight$/.test(name)) data.fill(1);
    else rng.fillNormal(data, /(o_proj|down_proj)\.weight$/.test(name) ? projStd : std);
    return data;
  }));
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: config.nEmbd, intermediate_size: config.nInner,
    num_hidden_layers: config.nLayer, num_attention_heads: config.nHead, num_key_value_heads: config.nKvHead, head_dim: config.headDim,
    hidden_act: "silu", max_position_embeddings: config.nPositions, rms_norm_eps: config.layerNormEps, rope_theta: config.rope!.theta,
    rope_scaling: null, attention_bias: false, mlp_bias: false, pretraining_tp: 1, tie_word_embeddings: false,
    vocab_size: config.vocabSize, bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenId, torch_dtype: "float32",
  }, null, 2));
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(tokenizerDir, f), join(dir, f));
  return size;
}

/**
 * randomGpt2's GPT-2-small-shaped model (seed 1) as a Hugging Face directory with GPT-2's tokenizer
 * files (from models/tiny-gpt2-random), for the benchmarks that load a checkpoint from disk.
 */
export function writeRandomGpt2Small(dir: string): void {
  const { arch, config, weights } = randomGpt2({}, 1);
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, w] of weights) tensors[arch.prefixes[0] + name] = { dtype: "F32", shape: w.shape, data: w.data };
  writeTensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    model_type: "gpt2", architectures: ["GPT2LMHeadModel"], vocab_size: config.vocabSize, n_positions: config.nPositions,
    n_embd: config.nEmbd, n_layer: config.nLayer, n_head: config.nHead, n_inner: config.nInner, activation_function: config.activation,
    layer_norm_epsilon: config.layerNormEps, bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenId, tie_word_embeddings: true,
  }));
  for (const f of ["vocab.json", "merges.txt"]) copyFileSync(join("models", "tiny-gpt2-random", f), join(dir, f));
}
