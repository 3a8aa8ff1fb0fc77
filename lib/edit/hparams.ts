// ROME hyperparameters are data: one JSON per model family in lib/edit/hparams/, chosen by the
// model's shape (layers, width), overridable per call.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelConfig } from "../model/config.js";

export interface RomeHparams {
  /** Layer whose MLP output projection is edited. */
  layer: number;
  /** Adam steps of the value optimisation (the last one only evaluates). */
  vNumGradSteps: number;
  vLr: number;
  vWeightDecay: number;
  klFactor: number;
  /** δ is kept within clampNormFactor · ‖v_init‖. */
  clampNormFactor: number;
  /** Use C⁻¹k (true) or k (false) as the update's key direction. */
  mom2Adjustment: boolean;
  /** [tokens, count] of the sampled context templates. */
  contextTemplateLengths: [number, number][];
}

const DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "lib", "edit", "hparams");

interface HparamsFile extends RomeHparams {
  model: string;
  match: { nLayer: number; nEmbd: number };
}

/** The hyperparameters of the family this model matches, or GPT-2 XL's scaled to its depth. */
export function defaultHparams(cfg: ModelConfig): RomeHparams & { model: string } {
  const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(DIR, f), "utf8")) as HparamsFile);
  const hit = files.find((f) => f.match.nLayer === cfg.nLayer && f.match.nEmbd === cfg.nEmbd);
  const base = hit ?? files.find((f) => f.model === "gpt2-xl")!;
  const { match: _match, ...h } = base;
  // GPT-2 XL edits layer 17 of 48: keep the same relative depth for an unknown model.
  return hit ? h : { ...h, model: `${cfg.arch}-${cfg.nLayer}x${cfg.nEmbd} (GPT-2 XL's, layer scaled)`, layer: Math.round((17 / 48) * cfg.nLayer) };
}
