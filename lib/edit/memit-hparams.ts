// MEMIT and AlphaEdit hyperparameters are data: one JSON per model family in
// lib/edit/hparams/memit/, chosen by the model's shape (layers, width), overridable per call.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelConfig } from "../model/config.js";

export interface MemitHparams {
  /** Edited layers, ascending; the targets z live at the output of the last one. */
  layers: number[];
  /** δ is kept within clampNormFactor · ‖z_init‖. */
  clampNormFactor: number;
  /** Adam steps of the target optimisation (the last one only evaluates). */
  vNumGradSteps: number;
  vLr: number;
  vWeightDecay: number;
  klFactor: number;
  /** λ of the update: adj = (λ C + K Kᵀ)⁻¹ K. */
  mom2UpdateWeight: number;
  /** AlphaEdit: eigen-directions of C with eigenvalue below this span the preserved null space. */
  nullspaceThreshold: number;
  /** AlphaEdit: the ridge α of its solve. */
  l2: number;
}

const DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "lib", "edit", "hparams", "memit");

interface HparamsFile extends MemitHparams {
  model: string;
  match: { nLayer: number; nEmbd: number };
}

/** The MEMIT hyperparameters of the family this model matches, or GPT-2 XL's with its layers scaled to the depth. */
export function defaultMemitHparams(cfg: ModelConfig): MemitHparams & { model: string } {
  const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(DIR, f), "utf8")) as HparamsFile & { source: string });
  const hit = files.find((f) => f.match.nLayer === cfg.nLayer && f.match.nEmbd === cfg.nEmbd);
  const { match: _match, source: _source, ...h } = hit ?? files.find((f) => f.model === "gpt2-xl")!;
  if (hit) return h;
  // GPT-2 XL edits layers 13–17 of 48: keep the same relative depths.
  const layers = [...new Set(h.layers.map((l) => Math.min(cfg.nLayer - 1, Math.round((l / 48) * cfg.nLayer))))];
  return { ...h, model: `${cfg.arch}-${cfg.nLayer}x${cfg.nEmbd} (GPT-2 XL's, layers scaled)`, layers };
}
