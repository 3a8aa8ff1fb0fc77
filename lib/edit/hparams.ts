// ROME hyperparameters are data: one JSON per model in lib/edit/hparams/, chosen by the model's
// family and shape (layers, width), overridable per call. The lookup names the file it used; a
// family with no file at all is refused unless the caller gives every value.
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
  /** Architecture (ModelConfig.arch) and shape the values were chosen for. */
  match: { arch: string; nLayer: number; nEmbd: number };
}

/** Hyperparameters and where they came from: `file` under lib/edit/hparams/, or "caller". */
export type ResolvedHparams = RomeHparams & { model: string; file: string };

/**
 * The hyperparameters of the model: the file matching its family and shape; for an unmatched
 * shape of a family that has files, the values of the family's deepest model with the edited layer
 * at the same relative depth (`model` says so, `file` names the file). A family without any file is
 * refused (ERR_HPARAMS) unless `given` holds every value; `given` overrides the file's values.
 */
export function defaultHparams(cfg: ModelConfig, given: Partial<RomeHparams> = {}): ResolvedHparams {
  if (HPARAM_NAMES.every((k) => given[k] !== undefined)) return { ...pick(given as RomeHparams), model: `${cfg.arch}-${cfg.nLayer}x${cfg.nEmbd}`, file: "caller" };
  const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort()
    .map((f) => ({ file: f, ...(JSON.parse(readFileSync(join(DIR, f), "utf8")) as HparamsFile) }));
  const family = files.filter((f) => f.match.arch === cfg.arch);
  const hit = family.find((f) => f.match.nLayer === cfg.nLayer && f.match.nEmbd === cfg.nEmbd);
  if (hit) return { ...pick(hit), ...given, model: hit.model, file: hit.file };
  if (family.length === 0) {
    const missing = HPARAM_NAMES.filter((k) => given[k] === undefined);
    throw new RomeError("ERR_HPARAMS", `no ROME hyperparameters for the ${cfg.arch} family in lib/edit/hparams/ (files: ${files.map((f) => f.file).join(", ")}); ` +
      `pass them all (missing: ${missing.join(", ")}) or add a file for the family`);
  }
  const base = family.reduce((a, f) => (f.match.nLayer > a.match.nLayer ? f : a));
  return {
    ...pick(base),
    layer: Math.round((base.layer / base.match.nLayer) * cfg.nLayer),
    ...given,
    model: `${cfg.arch}-${cfg.nLayer}x${cfg.nEmbd} (${base.model}'s values, layer scaled from ${base.layer} of ${base.match.nLayer})`,
    file: base.file,
  };
}

/** Only the hyperparameters rome() reads leave a file or a caller's object. */
function pick(h: Partial<RomeHparams>): RomeHparams {
  return Object.fromEntries(HPARAM_NAMES.filter((k) => h[k] !== undefined).map((k) => [k, h[k]])) as unknown as RomeHparams;
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
  // "model" and "file" name the source in what defaultHparams returns, so its result can be passed back.
  checkOptionNames("hparams", overrides, [...HPARAM_NAMES, "model", "file"]);
  const { model: _name, file: _file, ...given } = (overrides ?? {}) as Partial<RomeHparams> & { model?: string; file?: string };
  const { model: _model, file: _from, ...hp } = defaultHparams(cfg, given);
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
