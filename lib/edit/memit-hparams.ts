// MEMIT and AlphaEdit hyperparameters are data: one JSON per model family in
// lib/edit/hparams/memit/, chosen by the model's shape (layers, width), overridable per call.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkInt, checkNumber, checkOptionNames, RomeError } from "../errors.js";
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

const NAMES = ["layers", "clampNormFactor", "vNumGradSteps", "vLr", "vWeightDecay", "klFactor", "mom2UpdateWeight", "nullspaceThreshold", "l2"] as const;

const DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "lib", "edit", "hparams", "memit");

interface HparamsFile extends MemitHparams {
  model: string;
  match: { nLayer: number; nEmbd: number };
}

/** The MEMIT hyperparameters of the family this model matches, or GPT-2 XL's with its layers scaled to the depth. */
export function defaultMemitHparams(cfg: ModelConfig): MemitHparams & { model: string } {
  const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(DIR, f), "utf8")) as HparamsFile & { source: string });
  const hit = files.find((f) => f.match.nLayer === cfg.nLayer && f.match.nEmbd === cfg.nEmbd);
  const base = hit ?? files.find((f) => f.model === "gpt2-xl")!;
  const h = { model: base.model, ...Object.fromEntries(NAMES.map((k) => [k, base[k]])) } as MemitHparams & { model: string };
  if (hit) return h;
  // GPT-2 XL edits layers 13–17 of 48: keep the same relative depths.
  const layers = [...new Set(h.layers.map((l) => Math.min(cfg.nLayer - 1, Math.round((l / 48) * cfg.nLayer))))];
  return { ...h, model: `${cfg.arch}-${cfg.nLayer}x${cfg.nEmbd} (GPT-2 XL's, layers scaled)`, layers };
}

/** The family's hyperparameters with a caller's overrides, every name and range checked (ERR_ARGUMENT naming it). */
export function resolveMemitHparams(cfg: ModelConfig, overrides: Partial<MemitHparams> | undefined): MemitHparams {
  if (overrides !== undefined && (typeof overrides !== "object" || overrides === null || Array.isArray(overrides))) {
    throw new RomeError("ERR_ARGUMENT", "hparams must be an object of hyperparameter overrides");
  }
  checkOptionNames("hparams", overrides, [...NAMES, "model"]);
  const { model: _model, ...defaults } = defaultMemitHparams(cfg);
  const { model: _name, ...given } = (overrides ?? {}) as Partial<MemitHparams> & { model?: string };
  const hp: MemitHparams = { ...defaults, ...given };
  if (!Array.isArray(hp.layers) || hp.layers.length === 0) throw new RomeError("ERR_ARGUMENT", "hparams.layers must be a non-empty array of layers");
  checkInt("hparams.vNumGradSteps", hp.vNumGradSteps, 1, 100_000);
  for (const k of ["vLr", "clampNormFactor"] as const) {
    if (!(hp[k] > 0)) throw new RomeError("ERR_ARGUMENT", `Expected a positive number for hparams.${k} but received ${String(hp[k])}`);
    checkNumber(`hparams.${k}`, hp[k], 0, 1e6);
  }
  for (const k of ["vWeightDecay", "klFactor", "mom2UpdateWeight", "nullspaceThreshold", "l2"] as const) checkNumber(`hparams.${k}`, hp[k], 0, Number.MAX_VALUE);
  return hp;
}
