// ROME hyperparameters are data: one JSON per model in lib/edit/hparams/, chosen by the model's
// family and shape (layers, width), overridable per call. The lookup names the file it used; a
// family with no file at all is refused unless the caller gives every value.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RomeError } from "../errors.js";
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

const KEYS: readonly (keyof RomeHparams)[] = ["layer", "vNumGradSteps", "vLr", "vWeightDecay", "klFactor", "clampNormFactor", "mom2Adjustment", "contextTemplateLengths"];

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
 * shape of a family that has files, the family's largest model's values with the edited layer at
 * the same relative depth (the result names that file and says so). A family without any file is
 * refused (ERR_HPARAMS) unless `given` holds every value.
 */
export function defaultHparams(cfg: ModelConfig, given: Partial<RomeHparams> = {}): ResolvedHparams {
  if (KEYS.every((k) => given[k] !== undefined)) return { ...(given as RomeHparams), model: `${cfg.arch}-${cfg.nLayer}x${cfg.nEmbd}`, file: "caller" };
  const files = readdirSync(DIR).filter((f) => f.endsWith(".json")).sort()
    .map((f) => ({ file: f, ...(JSON.parse(readFileSync(join(DIR, f), "utf8")) as HparamsFile) }));
  const family = files.filter((f) => f.match.arch === cfg.arch);
  const hit = family.find((f) => f.match.nLayer === cfg.nLayer && f.match.nEmbd === cfg.nEmbd);
  if (hit) {
    const { match: _match, ...h } = hit;
    return { ...h, ...given };
  }
  if (family.length === 0) {
    const missing = KEYS.filter((k) => given[k] === undefined);
    throw new RomeError("ERR_HPARAMS", `no ROME hyperparameters for the ${cfg.arch} family in lib/edit/hparams/ (files: ${files.map((f) => f.file).join(", ")}); ` +
      `pass them all (missing: ${missing.join(", ")}) or add a file for the family`);
  }
  const base = family.reduce((a, f) => (f.match.nLayer > a.match.nLayer ? f : a));
  const { match, ...h } = base;
  return {
    ...h,
    model: `${cfg.arch}-${cfg.nLayer}x${cfg.nEmbd} (${base.model}'s values, layer scaled from ${h.layer}/${match.nLayer})`,
    layer: Math.round((h.layer / match.nLayer) * cfg.nLayer),
    ...given,
  };
}
