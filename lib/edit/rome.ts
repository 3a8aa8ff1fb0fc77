// ROME (Meng et al. 2022 §3): rewrite one fact with a rank-one update of one MLP output projection.
// k* from the subject's last token over context templates, v* by optimising the MLP output there,
// u and v in closed form against the key statistics. Returns the edit; `model.edits.apply(edit)`
// applies it (as factors beside the unchanged base weights).
import { checkInt, checkNumber, checkOptionNames, RomeError } from "../errors.js";
import { throwIfAborted } from "../runtime/call.js";
import { EditView } from "../runtime/edit-view.js";
import type { RankOneEdit } from "../runtime/edits.js";
import type { Model, ModelCallOptions } from "../runtime/model.js";
import { resolveHparams, type RomeHparams } from "./hparams.js";
import { keysAt, meanRows } from "./keys.js";
import { locateSubject } from "./lookup.js";
import { checkStatsFor, type Stats } from "./stats.js";
import { checkTemplates, contextTemplates, fillTemplate } from "./templates.js";
import { checkGuard, rankOneUpdate, solveStats, type GuardOptions, type UpdateForm } from "./update.js";
import { computeValue, type ValueStep } from "./value.js";

export interface RomeRequest {
  /** The prompt with "{}" where the subject goes: "{} is located in the city of". */
  prompt: string;
  subject: string;
  /** The new object ("Berlin"); a leading space is added when missing, never a BOS. */
  targetNew: string;
  targetTrue?: string;
}

/** `edits`: the edit set the new edit is computed on (default: the model's enabled edits when the call starts). */
export interface RomeOptions extends ModelCallOptions {
  /** Statistics E[k kᵀ] of the edited layer (computeStats / loadStats). Needed unless mom2Adjustment is false. */
  stats?: Stats;
  /** Edited layer. Default: the model family's hyperparameters. */
  layer?: number;
  /** "r-rome" (default: one prefix-averaged key throughout) or "reference" (kmeng01/rome's mix of keys). */
  form?: UpdateForm;
  /** Context templates ("{}" first); default: sampled from the model, seeded. */
  contextTemplates?: readonly string[];
  /** Seed of the template sampling. Default 0. */
  seed?: number;
  /** Overrides of the family's hyperparameters. */
  hparams?: Partial<RomeHparams>;
  /** λ added to the statistics' diagonal before solving. Default 0. */
  ridge?: number;
  guard?: GuardOptions;
  /**
   * Use statistics whose model fingerprint is not this model's (computed for another checkpoint).
   * Default false: such statistics are refused with ERR_STATS_MISMATCH.
   */
  forceStats?: boolean;
}
const OPTIONS = ["stats", "layer", "form", "contextTemplates", "seed", "hparams", "ridge", "guard", "forceStats", "edits", "signal", "onProgress"] as const;

export interface RomeEdit extends RankOneEdit {
  request: RomeRequest;
  form: UpdateForm;
  norms: { u: number; v: number; update: number; weight: number };
  /** k · u of the update. */
  denominator: number;
  /** Condition estimate of the statistics' Cholesky factor. */
  condition?: number;
  losses: ValueStep[];
  seconds: { templates: number; key: number; value: number; update: number; total: number };
}

export async function rome(model: Model, request: RomeRequest, options: RomeOptions = {}): Promise<RomeEdit> {
  checkOptionNames("rome", options, OPTIONS);
  const edits = model.edits.view(options.edits); // the call's edit set, captured before any await
  checkOptionNames("rome request", request, ["prompt", "subject", "targetNew", "targetTrue"]);
  const t0 = performance.now();
  const cfg = model.config;
  // An explicit layer is a value the caller gives (a family without a file needs every value given).
  const hp = resolveHparams(cfg, options.layer === undefined ? options.hparams : { ...options.hparams, layer: options.layer });
  checkGuard(options.guard);
  if (options.ridge !== undefined) checkNumber("ridge", options.ridge, 0, Number.MAX_VALUE);
  if (options.seed !== undefined) checkInt("seed", options.seed, 0, 2 ** 32 - 1);
  const layer = checkInt("layer", options.layer ?? hp.layer, 0, cfg.nLayer - 1);
  const form = options.form ?? "r-rome";
  if (form !== "r-rome" && form !== "reference") throw new RomeError("ERR_ARGUMENT", `form must be "r-rome" or "reference", received ${JSON.stringify(form)}`);
  if (typeof request.prompt !== "string" || request.prompt.split("{}").length !== 2) {
    throw new RomeError("ERR_ARGUMENT", `the request prompt must contain "{}" exactly once where the subject goes, received ${JSON.stringify(request.prompt)}`);
  }
  if (typeof request.targetNew !== "string" || request.targetNew.trim().length === 0) throw new RomeError("ERR_ARGUMENT", "targetNew must be a non-empty string");
  if (hp.mom2Adjustment && !options.stats) throw new RomeError("ERR_STATS", "rome needs the statistics of the edited layer: pass { stats: await computeStats(model, { layer, corpus }) }");
  if (options.stats && options.stats.layer !== layer && Number.isFinite(options.stats.layer)) {
    throw new RomeError("ERR_STATS", `the statistics are of layer ${options.stats.layer} but the edit is at layer ${layer}`);
  }
  if (options.stats) checkStatsFor(model, options.stats, options.forceStats);
  const tok = model.tokenizer;

  // Templates
  const templates = options.contextTemplates ? checkTemplates(options.contextTemplates) : await sampledTemplates(model, hp, options.seed ?? 0);
  const t1 = performance.now();

  throwIfAborted(options.signal);
  // Keys: k* over the templates, k0 of the bare prompt, and the MLP outputs there.
  const keyPrompts = await Promise.all(templates.map((t) => locateSubject(tok, fillTemplate(t, request.prompt), request.subject)));
  const bare = await locateSubject(tok, request.prompt, request.subject);
  for (const p of [...keyPrompts, bare]) model.checkLength(p.ids.length, "a templated prompt");
  const F = cfg.nInner;
  const D = cfg.nEmbd;
  const k = await keysAt(model, layer, [...keyPrompts, bare], edits);
  const n = keyPrompts.length;
  const kStar = meanRows(k.keys, n, F);
  const outStar = meanRows(k.outputs, n, D);
  const k0 = Float64Array.from(k.keys.subarray(n * F, (n + 1) * F));
  const out0 = Float64Array.from(k.outputs.subarray(n * D, (n + 1) * D));
  const t2 = performance.now();

  // Value: v* over the rewriting prompts (template + prompt + target[:-1]) and the KL prompt.
  const targetText = /^\s/.test(request.targetNew) ? request.targetNew : " " + request.targetNew;
  const target = (await tok.encode(targetText, { continuation: true })).ids;
  const head = tok.decode(target.slice(0, -1));
  const rewriting = await Promise.all(templates.map((t) => locateSubject(tok, fillTemplate(t, request.prompt) + head, request.subject)));
  for (const p of rewriting) model.checkLength(p.ids.length, "a rewriting prompt");
  const kl = await locateSubject(tok, "{} is a", request.subject);
  throwIfAborted(options.signal);
  const value = await computeValue(model, layer, rewriting, kl, target, edits, {
    steps: hp.vNumGradSteps, lr: hp.vLr, weightDecay: hp.vWeightDecay,
    klFactor: hp.klFactor, clampNormFactor: hp.clampNormFactor,
  }, { signal: options.signal, onProgress: options.onProgress });
  const t3 = performance.now();

  // Update
  let direction = kStar;
  let condition: number | undefined;
  if (hp.mom2Adjustment) {
    const s = await solveStats(options.stats!, kStar, options.ridge ?? 0);
    direction = s.x;
    condition = s.condition;
  }
  const target2 = model.arch.editTarget(layer);
  const w = model.weights.get(target2.weight)!.data;
  let wn = 0;
  for (const x of w) wn += x * x;
  const update = rankOneUpdate({
    form, direction, vStar: value.vStar, weightNorm: Math.sqrt(wn), guard: options.guard,
    key: form === "reference" ? k0 : kStar,
    output: form === "reference" ? out0 : outStar,
  });
  const t4 = performance.now();
  return {
    id: `rome-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`,
    layer, u: update.u, v: update.v, request: { ...request }, form, norms: update.norms, denominator: update.denominator, condition,
    losses: value.losses,
    info: { request: { ...request }, form, layer },
    seconds: { templates: (t1 - t0) / 1000, key: (t2 - t1) / 1000, value: (t3 - t2) / 1000, update: (t4 - t3) / 1000, total: (t4 - t0) / 1000 },
  };
}

/** Sampled templates, kept under the model (they depend only on the model, lengths and seed). */
function sampledTemplates(model: Model, hp: RomeHparams, seed: number): Promise<string[]> {
  const key = `templates:${JSON.stringify([hp.contextTemplateLengths, seed])}`;
  // Sampled from the unedited model: the model holds one set per key, whatever edits come and go.
  return model.resources.get(key, () => contextTemplates(model, { lengths: hp.contextTemplateLengths, seed, edits: EditView.NONE }));
}
