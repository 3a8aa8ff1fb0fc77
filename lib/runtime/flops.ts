// Floating-point operation counts of each segment (multiply-adds counted as 2), so sweeps can
// report the work they executed against the minimal work their result needs.
import type { ModelConfig } from "../model/config.js";

/** Attention half-block for `rows` = B·T new tokens attending to S keys each. */
export function attnFlops(cfg: ModelConfig, rows: number, keys: number): number {
  const D = cfg.nEmbd;
  const q = cfg.nHead * cfg.headDim, kv = cfg.nKvHead * cfg.headDim;
  return rows * (2 * D * (q + 2 * kv) + 2 * q * D + 4 * keys * q);
}

/** MLP half-block for `rows` tokens. */
export function mlpFlops(cfg: ModelConfig, rows: number): number {
  return rows * (cfg.gatedMlp ? 6 : 4) * cfg.nEmbd * cfg.nInner;
}

/** Head (final norm + unembedding) for `rows` selected positions. */
export function headFlops(cfg: ModelConfig, rows: number): number {
  return rows * 2 * cfg.nEmbd * cfg.vocabSize;
}

/** One whole layer for B rows of T new tokens after P cached ones (keys per token averaged). */
export function layerFlops(cfg: ModelConfig, B: number, T: number, P: number): number {
  // token t attends to P + t + 1 keys: sum over t = T·P + T(T+1)/2
  const keySum = T * P + (T * (T + 1)) / 2;
  return attnFlops(cfg, B * T, 0) + B * 4 * keySum * cfg.nHead * cfg.headDim + mlpFlops(cfg, B * T);
}
