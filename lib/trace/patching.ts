// General activation patching: run a prompt (clean, or with the subject corrupted as in causal
// tracing) while overwriting chosen states — residual stream, attention output, MLP output or MLP
// key — at chosen layers and positions with values from the clean run, the corrupted run, zeros,
// the clean run's mean over positions, or a given vector. Causal tracing's restorations are the
// special case "clean residual/attn/MLP state at one position" of this.
import { checkInt, checkNumber, checkOptionNames, RomeError } from "../errors.js";
import { throwIfAborted } from "../runtime/call.js";
import { padBatch } from "../runtime/batch.js";
import type { MlpState, RunResult, Site } from "../runtime/engine.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Model, ModelCallOptions } from "../runtime/model.js";
import { corrupt, type NoiseSpec } from "./noise.js";
import { subjectChars, tokenRange } from "./subject.js";
import { probOf } from "../runtime/sampling.js";
import { RestorePlan } from "./restore-plan.js";

export type PatchSite = "resid" | "attn_out" | "mlp_out" | "mlp_key";
export type PatchSource = "clean" | "corrupted" | "zero" | "mean" | Float32Array;

export interface ActivationPatch {
  site: PatchSite;
  layers: readonly number[];
  positions: readonly number[];
  /** clean / corrupted run's value there, zeros, the clean run's mean over positions, or a vector (D, or F for mlp_key). */
  source: PatchSource;
}

export interface PatchOptions extends ModelCallOptions {
  prompt: string;
  patches: readonly ActivationPatch[];
  /** Corrupt the subject as causal tracing does; without it the patched run starts from the clean run. */
  corrupt?: { subject: string; noise: number | NoiseSpec; samples?: number; seed?: number };
  /** Token whose probability is reported; default: the clean run's top token. */
  answer?: number;
}

export interface PatchResult {
  answer: number;
  /** p(answer) of the clean run, of the unpatched (corrupted or clean) run, and of the patched run (mean over rows). */
  clean: number;
  unpatched: number;
  patched: number;
  /** (rows, V) last-position logits of the patched run */
  logits: Float32Array;
}

const RECORD: Site[] = ["resid_post", "attn_out", "mlp_out", "mlp_key"];
const SITE_RECORD: Record<PatchSite, Site> = { resid: "resid_post", attn_out: "attn_out", mlp_out: "mlp_out", mlp_key: "mlp_key" };

export async function patchActivations(model: Model, options: PatchOptions): Promise<PatchResult> {
  checkOptionNames("patchActivations", options, ["prompt", "patches", "corrupt", "answer", "edits", "signal", "onProgress"]);
  const edits = model.edits.view(options.edits); // the call's edit set, captured before any await
  const cfg = model.config;
  const [ids] = await model.encodePrompts([options.prompt]);
  const T = ids!.length;
  if (!Array.isArray(options.patches)) throw new RomeError("ERR_ARGUMENT", "patches must be an array of { site, layers, positions, source }");
  if (options.corrupt !== undefined) checkOptionNames("patchActivations corrupt", options.corrupt, ["subject", "noise", "samples", "seed"]);
  for (const [i, p] of options.patches.entries()) {
    checkOptionNames(`patch ${i}`, p, ["site", "layers", "positions", "source"]);
    if (!Array.isArray(p.layers) || !Array.isArray(p.positions)) throw new RomeError("ERR_ARGUMENT", `patch ${i}: layers and positions must be arrays of integers`);
    if (!(p.site in SITE_RECORD)) throw new RomeError("ERR_UNKNOWN_KIND", `patch ${i}: unknown site ${JSON.stringify(p.site)}; sites: ${Object.keys(SITE_RECORD).join(", ")}`);
    for (const l of p.layers) checkInt(`patch ${i} layer`, l, 0, cfg.nLayer - 1);
    for (const t of p.positions) checkInt(`patch ${i} position`, t, 0, T - 1);
    const width = p.site === "mlp_key" ? cfg.nInner : cfg.nEmbd;
    if (p.source instanceof Float32Array && p.source.length !== width) throw new RomeError("ERR_ARGUMENT", `patch ${i}: a given vector for ${p.site} needs ${width} values`);
    if (p.source instanceof Float32Array && !p.source.every(Number.isFinite)) throw new RomeError("ERR_NOT_FINITE", `patch ${i}: the given vector for ${p.site} holds NaN or infinity`);
    if (p.source === "corrupted" && !options.corrupt) throw new RomeError("ERR_ARGUMENT", `patch ${i}: source "corrupted" needs the corrupt option`);
  }
  const clean = await model.engine.run(padBatch([ids!]), { edits, record: RECORD, head: [[0, T - 1]] });
  const answer = options.answer === undefined ? argmax(clean.logits!) : checkInt("answer", options.answer, 0, cfg.vocabSize - 1);
  const rows = options.corrupt ? checkInt("corrupt.samples", options.corrupt.samples ?? 10, 1, 1024) : 1;
  const batch = padBatch(Array.from({ length: rows }, () => ids!));
  const head = Array.from({ length: rows }, (_, r) => [r, T - 1] as const);
  let noiseHook: ((tok: Float32Array) => void) | undefined;
  if (options.corrupt) {
    const c = options.corrupt;
    const range = tokenRange(await model.tokenizer.encode(options.prompt), subjectChars(options.prompt, c.subject));
    const spec: NoiseSpec = typeof c.noise === "number" ? { type: "gauss", level: c.noise } : c.noise;
    if (typeof spec !== "object" || spec === null) throw new RomeError("ERR_ARGUMENT", "corrupt.noise must be a level or { type, level }");
    checkNumber("corrupt.noise level", spec.level, 0, 1e6);
    const seed = checkInt("corrupt.seed", c.seed ?? 1, 0, 2 ** 32 - 1);
    noiseHook = (tok) => corrupt(tok, rows, T, cfg.nEmbd, range, spec, seed);
  }
  const progress = (done: number) => options.onProgress?.({ phase: "runs", done, total: 3 });
  throwIfAborted(options.signal);
  progress(1);
  const base = options.corrupt ? await model.engine.run(batch, { edits, record: RECORD, head, hooks: { tokEmbed: noiseHook } }) : clean;
  // The key's value at (layer, row, t): patchKey writes it through the weights (a product, not a copy).
  const keyValue = (p: ActivationPatch, layer: number, row: number, t: number): Float32Array => {
    const F = cfg.nInner;
    if (p.source instanceof Float32Array) return p.source;
    if (p.source === "zero") return new Float32Array(F);
    if (p.source === "mean") return meanOverPositions(clean.records.mlp_key![layer]!, T, F);
    const run: RunResult = p.source === "clean" ? clean : base;
    const r = p.source === "clean" ? 0 : row;
    return run.records.mlp_key![layer]!.subarray((r * T + t) * F, (r * T + t + 1) * F);
  };
  throwIfAborted(options.signal);
  progress(2);
  const plans = statePlans(options.patches, clean, base, rows, T, cfg.nEmbd, cfg.nLayer);
  const patched = await model.engine.run(batch, {
    edits,
    head,
    needKey: (l) => options.patches.some((p) => p.site === "mlp_key" && p.layers.includes(l)),
    hooks: {
      tokEmbed: noiseHook,
      attn: (l, s) => plans.attn[l]!.run(s.residMid, [s.resid]),
      mlp: (l, s) => {
        // The layer's base weight, read back from the model's source once per layer patched.
        let w: Float32Array | undefined; // (F, D) in_out or (D, F) out_in, as the description says
        forEach(options.patches, "mlp_key", l, rows, (p, r, t) => {
          w ??= model.weights.get(model.arch.editTarget(l).weight)!.data;
          patchKey(model, edits, l, w, s, (r * T + t), keyValue(p, l, r, t));
        });
        plans.mlp[l]!.run(s.residPost, [s.residMid]);
      },
    },
  });
  const V = cfg.vocabSize;
  const meanProb = (logits: Float32Array) => {
    let s = 0;
    for (let r = 0; r < rows; r++) s += probOf(logits.subarray(r * V, (r + 1) * V), answer);
    return s / rows;
  };
  progress(3);
  return { answer, clean: probOf(clean.logits!, answer), unpatched: meanProb(base.logits!), patched: meanProb(patched.logits!), logits: patched.logits! };
}

/**
 * The resid, attn_out and mlp_out patches as one plan per half-block and layer (bound slot 0: the
 * half-block's input), in the order given: attn_out sets resid_mid = input + value; mlp_out sets
 * resid_post = resid_mid + value, then resid sets resid_post = value. Values are vectors of the
 * clean or unpatched run's records (row 0 of the clean run), zeros, the clean run's mean over
 * positions, or the vector given.
 */
function statePlans(patches: readonly ActivationPatch[], clean: RunResult, base: RunResult, rows: number, T: number, D: number,
  L: number): { attn: RestorePlan[]; mlp: RestorePlan[] } {
  const attn = Array.from({ length: L }, () => new RestorePlan(D, 1));
  const mlp = Array.from({ length: L }, () => new RestorePlan(D, 1));
  const zero = new Float32Array(D);
  const add = (plan: RestorePlan, site: PatchSite, l: number) => {
    for (const p of patches) {
      if (p.site !== site || !p.layers.includes(l)) continue;
      const record = clean.records[SITE_RECORD[site]]![l]!; // (1, T, D)
      const slot = plan.slot(p.source instanceof Float32Array ? p.source : p.source === "zero" ? zero
        : p.source === "mean" ? meanOverPositions(record, T, D) : (p.source === "clean" ? clean : base).records[SITE_RECORD[site]]![l]!);
      const perRow = p.source === "clean" || p.source === "corrupted"; // else one vector at index 0
      for (let r = 0; r < rows; r++) {
        for (const t of p.positions) {
          const index = perRow ? (p.source === "clean" ? 0 : r) * T + t : 0;
          if (site === "resid") plan.copy(r * T + t, 1, slot, index);
          else plan.add(r * T + t, 1, 0, r * T + t, slot, index);
        }
      }
    }
  };
  for (let l = 0; l < L; l++) {
    add(attn[l]!, "attn_out", l);
    add(mlp[l]!, "mlp_out", l);
    add(mlp[l]!, "resid", l);
  }
  return { attn, mlp };
}

function forEach(patches: readonly ActivationPatch[], site: PatchSite, layer: number, rows: number, fn: (p: ActivationPatch, row: number, t: number) => void): void {
  for (const p of patches) {
    if (p.site !== site || !p.layers.includes(layer)) continue;
    for (let r = 0; r < rows; r++) for (const t of p.positions) fn(p, r, t);
  }
}

/** Replaces the MLP key at one (row, position): resid_post += (k' − k) · W (+ edit factors). */
function patchKey(model: Model, edits: EditView, layer: number, w: Float32Array, s: MlpState, at: number, key: Float32Array): void {
  const { nInner: F, nEmbd: D } = model.config;
  const target = model.arch.editTarget(layer);
  const [si, sj] = target.layout === "in_out" ? [D, 1] : [1, F]; // strides of key index i and output index j
  const f = edits.factors(layer);
  const dk = new Float64Array(F);
  for (let i = 0; i < F; i++) dk[i] = key[i]! - s.mlpKey![at * F + i]!;
  const dout = new Float64Array(D);
  for (let i = 0; i < F; i++) {
    if (dk[i] === 0) continue;
    for (let j = 0; j < D; j++) dout[j] += dk[i]! * w[i * si + j * sj]!;
  }
  if (f) {
    for (let r = 0; r < f.rank; r++) {
      let c = 0;
      for (let i = 0; i < F; i++) c += dk[i]! * f.u[i * f.rank + r]!;
      for (let j = 0; j < D; j++) dout[j] += c * f.v[r * D + j]!;
    }
  }
  for (let j = 0; j < D; j++) {
    s.mlpOut[at * D + j] = s.mlpOut[at * D + j]! + dout[j]!;
    s.residPost[at * D + j] = s.residPost[at * D + j]! + dout[j]!;
  }
}

function meanOverPositions(x: Float32Array, T: number, width: number): Float32Array {
  const m = new Float32Array(width);
  for (let t = 0; t < T; t++) for (let i = 0; i < width; i++) m[i] += x[t * width + i]! / T;
  return m;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
