// The model configuration rome-node works with, read from a Hugging Face `config.json`. Each
// architecture description maps its own config keys onto this one shape (lib/arch/).
import { readFileSync } from "node:fs";
import { RomeError } from "../errors.js";

export interface ModelConfig {
  /** Architecture key of the description that runs this model ("gpt2"). */
  arch: string;
  nLayer: number;
  /** Width of the residual stream (d_model). */
  nEmbd: number;
  nHead: number;
  /** Key/value heads: nHead for multi-head attention, fewer for grouped-query attention (nHead a multiple). */
  nKvHead: number;
  /** Width of one attention head (nEmbd / nHead unless the config says otherwise). */
  headDim: number;
  /** Width of the MLP's hidden layer (d_ff), the dimension of the MLP key. */
  nInner: number;
  vocabSize: number;
  /** Context length: the longest prompt + continuation the model accepts. */
  nPositions: number;
  layerNormEps: number;
  activation: string;
  tieWordEmbeddings: boolean;
  eosTokenId: number;
  bosTokenId: number;
  /** Rotary position embeddings; absent for learned position embeddings. */
  rope?: RopeConfig;
  /** Attention and MLP both read the block's input and are added together (GPT-J, GPT-NeoX's use_parallel_residual). */
  parallelResidual?: boolean;
  /** A gated MLP (SwiGLU: gate, up and down projections, three matrices instead of two). */
  gatedMlp?: boolean;
  /** Which projections carry biases, for families where the config decides (Llama's attention_bias and mlp_bias, Qwen2's q/k/v biases). */
  biases?: { qkv: boolean; attnOut: boolean; mlp: boolean };
}

/** Rotary position embeddings on the first `dims` dimensions of every query and key head. */
export interface RopeConfig {
  /** Base of the inverse frequencies θ^(−2i/dims) (rope_theta, rotary_emb_base). */
  theta: number;
  /** Rotated dimensions per head (even; headDim for full rotary). */
  dims: number;
  /** "half": pairs (i, i + dims/2), rotate_half (Llama, GPT-NeoX); "interleaved": pairs (2i, 2i + 1) (GPT-J). */
  pairs: "half" | "interleaved";
}

/** Reads `config.json` as a plain object, with RomeErrors for a missing or malformed file. */
export function readConfigJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new RomeError("ERR_CONFIG", `Cannot read ${path}: ${(e as Error).message}. A model directory needs the config.json that Hugging Face writes.`);
  }
  try {
    const json = JSON.parse(text);
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error("not a JSON object");
    return json as Record<string, unknown>;
  } catch (e) {
    throw new RomeError("ERR_CONFIG", `${path} is not a valid config (${(e as Error).message})`);
  }
}

/** Reads a positive integer field of a config, naming the field when it is absent or wrong. */
export function configInt(raw: Record<string, unknown>, path: string, ...keys: string[]): number {
  for (const key of keys) {
    const v = raw[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new RomeError("ERR_CONFIG", `${path}: '${key}' must be a non-negative integer, found ${JSON.stringify(v)}`);
    }
    return v;
  }
  throw new RomeError("ERR_CONFIG", `${path}: missing '${keys[0]}'`);
}
