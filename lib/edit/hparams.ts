// ROME hyperparameters are data: one JSON per model family in lib/edit/hparams/, chosen by the
// model's shape (layers, width), overridable per call.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkInt, checkNumber, checkOptionNames, RomeError } from "../errors.js";
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

const HPARAM_NAMES = ["layer", "vNumGradSteps", "vLr", "vWeightDecay", "klFactor", "clampNormFactor", "mom2Adjustment", "contextTemplateLengths"] as const;

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
  // Only the hyperparameters rome() reads (and the family's name) leave the file.
  const h = { model: base.model, ...Object.fromEntries(HPARAM_NAMES.map((k) => [k, base[k]])) } as RomeHparams & { model: string };
  // GPT-2 XL edits layer 17 of 48: keep the same relative depth for an unknown model.
  return hit ? h : { ...h, model: `${cfg.arch}-${cfg.nLayer}x${cfg.nEmbd} (GPT-2 XL's, layer scaled)`, layer: Math.round((17 / 48) * cfg.nLayer) };
}

/**
 * The family's hyperparameters with a caller's overrides, every name and range checked: a misspelt
 * name (`vNumGradStep`) or an out-of-range value (`clampNormFactor: -1`) is ERR_ARGUMENT naming it,
 * never silently replaced by the default.
 */
export function resolveHparams(cfg: ModelConfig, overrides: Partial<RomeHparams> | undefined): RomeHparams {
  if (overrides !== undefined && (typeof overrides !== "object" || overrides === null || Array.isArray(overrides))) {
    throw new RomeError("ERR_ARGUMENT", "hparams must be an object of hyperparameter overrides");
  }
  // "model" names the family in what defaultHparams returns, so its result can be passed back.
  checkOptionNames("hparams", overrides, [...HPARAM_NAMES, "model"]);
  const { model: _model, ...defaults } = defaultHparams(cfg);
  const { model: _name, ...given } = (overrides ?? {}) as Partial<RomeHparams> & { model?: string };
  const hp: RomeHparams = { ...defaults, ...given };
  checkInt("hparams.layer", hp.layer, 0, cfg.nLayer - 1);
  checkInt("hparams.vNumGradSteps", hp.vNumGradSteps, 1, 100_000);
  if (!(hp.vLr > 0)) throw new RomeError("ERR_ARGUMENT", `Expected a positive number for hparams.vLr but received ${String(hp.vLr)}`);
  checkNumber("hparams.vLr", hp.vLr, 0, 1e3);
  checkNumber("hparams.vWeightDecay", hp.vWeightDecay, 0, 1e6);
  checkNumber("hparams.klFactor", hp.klFactor, 0, 1e6);
  if (!(hp.clampNormFactor > 0)) throw new RomeError("ERR_ARGUMENT", `Expected a positive number for hparams.clampNormFactor but received ${String(hp.clampNormFactor)}`);
  checkNumber("hparams.clampNormFactor", hp.clampNormFactor, 0, 1e6);
  if (typeof hp.mom2Adjustment !== "boolean") throw new RomeError("ERR_ARGUMENT", `Expected true or false for hparams.mom2Adjustment but received ${String(hp.mom2Adjustment)}`);
  const lengths = hp.contextTemplateLengths as unknown;
  if (!Array.isArray(lengths) || !lengths.every((p) => Array.isArray(p) && p.length === 2)) {
    throw new RomeError("ERR_ARGUMENT", "hparams.contextTemplateLengths must be an array of [tokens, count] pairs");
  }
  for (const [tokens, count] of lengths as [number, number][]) {
    checkInt("hparams.contextTemplateLengths tokens", tokens, 1, cfg.nPositions);
    checkInt("hparams.contextTemplateLengths count", count, 0, 1000);
  }
  return hp;
}
