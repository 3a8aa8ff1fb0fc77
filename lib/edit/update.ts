// ROME's closed-form rank-one update ΔW = u vᵀ of the MLP output projection ([F, D], in_out):
// u = C⁻¹k / ‖C⁻¹k‖ and v = (v* − W k − b) / (k · u). The reference form mixes keys (k* averaged
// over templates in u, the bare prompt's k0 in the residual and denominator); the r-ROME form uses
// k* throughout, which keeps sequential edits from collapsing. A guard refuses updates whose norm
// or denominator is out of range, leaving the model untouched.
import { checkNumber, checkOptionNames, RomeError } from "../errors.js";
import { choleskyFactor, choleskySolve, type CholeskyInfo } from "../native.js";
import type { Stats } from "./stats.js";

export type UpdateForm = "r-rome" | "reference";

export interface GuardOptions {
  /** Largest ‖u vᵀ‖_F / ‖W‖_F accepted. Default 10. */
  maxNormRatio?: number;
  /** Smallest |k · u| / ‖k‖ accepted (the cosine between key and update direction). Default 1e-4. */
  minDenominator?: number;
}

/** Throws ERR_ARGUMENT for an unknown guard option or a bound out of range. */
export function checkGuard(guard: GuardOptions | undefined): void {
  if (guard === undefined) return;
  if (typeof guard !== "object" || guard === null) throw new RomeError("ERR_ARGUMENT", "guard must be an object { maxNormRatio?, minDenominator? }");
  checkOptionNames("guard", guard, ["maxNormRatio", "minDenominator"]);
  const r = guard.maxNormRatio;
  if (r !== undefined && (typeof r !== "number" || !(r > 0))) {
    throw new RomeError("ERR_ARGUMENT", `guard.maxNormRatio must be a positive number (Infinity turns the norm check off), received ${String(r)}`);
  }
  if (guard.minDenominator !== undefined) checkNumber("guard.minDenominator", guard.minDenominator, 0, 1);
}

export interface UpdateInputs {
  form: UpdateForm;
  /** (F) C⁻¹ k* (or k* itself without the second-moment adjustment) */
  direction: Float64Array;
  /** (F) the key the residual and denominator use: k* (r-ROME) or k0 (reference) */
  key: Float64Array;
  /** (D) the MLP output W key + b at that key (edits applied before included) */
  output: Float64Array;
  /** (D) the optimised output v* */
  vStar: Float32Array;
  /** ‖W‖_F of the edited weight, for the guard */
  weightNorm: number;
  guard?: GuardOptions;
}

export interface RankOne {
  u: Float32Array; // (F)
  v: Float32Array; // (D)
  denominator: number;
  norms: { u: number; v: number; update: number; weight: number };
}

export function rankOneUpdate(x: UpdateInputs): RankOne {
  const F = x.direction.length;
  const D = x.output.length;
  const dn = Math.hypot(...x.direction);
  if (!(dn > 0) || !Number.isFinite(dn)) throw new RomeError("ERR_EDIT_REFUSED", "the update direction C⁻¹k is zero or not finite; the key at the subject is degenerate");
  const u = new Float64Array(F);
  for (let i = 0; i < F; i++) u[i] = x.direction[i]! / dn;
  let denom = 0;
  for (let i = 0; i < F; i++) denom += x.key[i]! * u[i]!;
  const kNorm = Math.hypot(...x.key);
  const minDen = x.guard?.minDenominator ?? 1e-4;
  if (!(Math.abs(denom) >= minDen * kNorm)) {
    throw new RomeError("ERR_EDIT_REFUSED", `edit refused: the key is almost orthogonal to the update direction (k·u = ${denom.toExponential(3)}, ‖k‖ = ${kNorm.toExponential(3)}; minimum ratio ${minDen}); ` +
      "the update would need an unbounded value. Check the statistics (ridge) or the subject's key; the model was not changed");
  }
  const v = new Float32Array(D);
  for (let j = 0; j < D; j++) v[j] = (x.vStar[j]! - x.output[j]!) / denom;
  const uf = Float32Array.from(u);
  const norms = { u: Math.hypot(...uf), v: Math.hypot(...v), update: 0, weight: x.weightNorm };
  norms.update = norms.u * norms.v;
  const maxRatio = x.guard?.maxNormRatio ?? 10;
  if (!Number.isFinite(norms.update) || norms.update > maxRatio * x.weightNorm) {
    throw new RomeError("ERR_EDIT_REFUSED", `edit refused: ‖ΔW‖ = ${norms.update.toExponential(3)} is more than ${maxRatio} × ‖W‖ = ${x.weightNorm.toExponential(3)}; ` +
      "such an update would overwrite the layer rather than one fact (raise guard.maxNormRatio to force it); the model was not changed");
  }
  return { u: uf, v, denominator: denom, norms };
}

interface Factor { ridge: number; factor: Float64Array; info: CholeskyInfo }
const factors = new WeakMap<Stats, Factor[]>();

/** C⁻¹ k through a Cholesky factor of the statistics (computed once per statistics and ridge). */
export async function solveStats(stats: Stats, k: Float64Array, ridge = 0): Promise<{ x: Float64Array; condition: number }> {
  const n = stats.dim;
  let list = factors.get(stats);
  if (!list) factors.set(stats, (list = []));
  let f = list.find((x) => x.ridge === ridge);
  if (!f) {
    const a = stats.mom2.slice();
    try {
      const info = await choleskyFactor({ dims: [n, n], type: "float64", data: a }, { ridge });
      f = { ridge, factor: a, info };
      list.push(f);
    } catch (e) {
      if (e instanceof RomeError && e.code === "ERR_NOT_POSITIVE_DEFINITE") {
        throw new RomeError("ERR_NOT_POSITIVE_DEFINITE", `${e.message}. The statistics of layer ${stats.layer} (${stats.count} tokens) are singular: pass a ridge (e.g. ridge: 1e-6 × the mean diagonal) or compute them over more text`);
      }
      throw e;
    }
  }
  const x = Float64Array.from(k);
  await choleskySolve({ dims: [n, n], type: "float64", data: f.factor }, { dims: [n], type: "float64", data: x });
  return { x, condition: f.info.condition };
}
