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
