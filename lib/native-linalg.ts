// The edit's linear algebra through the addon: second-moment statistics (acc += KᵀK in float64),
// Cholesky factor/solve with a ridge, and low-rank weight updates with exact undo. Work above about
// a millisecond runs on libuv's pool and the Promise resolves when done; *Sync forms block.
import { RomeError, checkNumber, checkOptionNames } from "./errors.js";
import { type Backend, type Float32Tensor, type Float64Tensor, checkBackend, checkDims, checkTensor, checkTyped } from "./native-check.js";
import { type CholeskyInfo, type UpdateRecord, nativeAddon } from "./native-load.js";

/** Options of the linear-algebra kernels. */
export interface LinalgOptions {
  /** 'auto' (default): OpenBLAS/LAPACKE when the addon was built with them, else own kernels;
   *  'own': the addon's own kernels; 'blas': OpenBLAS/LAPACKE (an error without them). */
  backend?: Backend;
}

/** Options of `choleskyFactor`. */
export interface CholeskyOptions extends LinalgOptions {
  /** λ ≥ 0 added to the diagonal before factoring (A + λI). Default 0. */
  ridge?: number;
}

const ASYNC_FLOPS = 2e6;  // below this a kernel runs inline (about a millisecond or less)

function backendOf(where: string, options: LinalgOptions | undefined, known: string[]): Backend {
  checkOptionNames(where, options, known);
  const backend = checkBackend(options?.backend);
  if (backend === "blas") {
    const caps = nativeAddon().capabilities();
    const have = where.startsWith("moment") ? caps.blas !== "none" : caps.lapack;
    if (!have) throw new RomeError("ERR_ARGUMENT", `Expected an addon built with OpenBLAS and LAPACKE for backend 'blas' but this one has blas: ${caps.blas}, lapack: ${caps.lapack}`);
  }
  return backend;
}

function checkMoment(acc: Float64Tensor, keys: Float32Tensor): number {
  const [d] = checkTensor("acc", acc, "float64", 2);
  checkDims("acc", acc.dims, [d, d]);
  checkDims("keys", checkTensor("keys", keys, "float32", 2), [undefined, d]);
  return keys.dims[0]! * d! * d!;
}

/** acc (d, d) float64, upper triangle += Kᵀ K for keys K (rows, d) float32. The caller counts rows. */
export async function momentAccumulate(acc: Float64Tensor, keys: Float32Tensor, options?: LinalgOptions): Promise<void> {
  const work = checkMoment(acc, keys);
  const backend = backendOf("momentAccumulate", options, ["backend"]);
  await nativeAddon().momentAccumulate(acc, keys, work > ASYNC_FLOPS, backend);
}

/** Blocking form of `momentAccumulate`. */
export function momentAccumulateSync(acc: Float64Tensor, keys: Float32Tensor, options?: LinalgOptions): void {
  checkMoment(acc, keys);
  nativeAddon().momentAccumulate(acc, keys, false, backendOf("momentAccumulateSync", options, ["backend"]));
}

/** out (d, d) ← the full symmetric acc / count (the mean E[k kᵀ]); out may be acc itself. */
export function momentFinalize(out: Float64Tensor, acc: Float64Tensor, count: number): void {
  const [d] = checkTensor("acc", acc, "float64", 2);
  checkDims("acc", acc.dims, [d, d]);
  checkDims("out", checkTensor("out", out, "float64", 2), [d, d]);
  checkNumber("count", count, 1, Number.MAX_SAFE_INTEGER);
  nativeAddon().momentFinalize(out, acc, count);
}

/** Running second moment of d-dimensional keys: sum (d, d) float64 upper triangle and a count. */
export class SecondMoment {
  readonly sum: Float64Tensor;
  count = 0;
  constructor(readonly d: number) {
    checkNumber("d", d, 1, 65536);
    this.sum = { dims: [d, d], type: "float64", data: new Float64Array(d * d) };
  }
  /** Adds the rows of keys (rows, d). */
  async add(keys: Float32Tensor, options?: LinalgOptions): Promise<void> {
    await momentAccumulate(this.sum, keys, options);
    this.count += keys.dims[0]!;
  }
  addSync(keys: Float32Tensor, options?: LinalgOptions): void {
    momentAccumulateSync(this.sum, keys, options);
    this.count += keys.dims[0]!;
  }
  /** The symmetric mean E[k kᵀ] (d, d) as a new tensor. */
  mean(): Float64Tensor {
    const out: Float64Tensor = { dims: [this.d, this.d], type: "float64", data: new Float64Array(this.d * this.d) };
    momentFinalize(out, this.sum, this.count);
    return out;
  }
}

function checkFactor(a: Float64Tensor, options: CholeskyOptions | undefined, where: string): { ridge: number; backend: Backend; n: number } {
  const [n] = checkTensor("a", a, "float64", 2);
  checkDims("a", a.dims, [n, n]);
  const backend = backendOf(where, options, ["ridge", "backend"]);
  const ridge = checkNumber("ridge", options?.ridge ?? 0, 0, Number.MAX_VALUE);
  return { ridge, backend, n: n! };
}

/**
 * Factors a (n, n) float64 in place: reads the upper triangle of A, writes U (A + λI = UᵀU) there;
 * the strict lower triangle is untouched. Rejects with RomeError("ERR_NOT_POSITIVE_DEFINITE")
 * carrying `index` (0-based) and `pivot` (the non-positive value) when A + λI is not positive
 * definite; `a` is then partially factored (keep a copy to retry with a ridge).
 */
export async function choleskyFactor(a: Float64Tensor, options?: CholeskyOptions): Promise<CholeskyInfo> {
  const { ridge, backend, n } = checkFactor(a, options, "choleskyFactor");
  return await nativeAddon().choleskyFactor(a, ridge, (n * n * n) / 3 > ASYNC_FLOPS, backend);
}

/** Blocking form of `choleskyFactor`. */
export function choleskyFactorSync(a: Float64Tensor, options?: CholeskyOptions): CholeskyInfo {
  const { ridge, backend } = checkFactor(a, options, "choleskyFactorSync");
  return nativeAddon().choleskyFactor(a, ridge, false, backend) as CholeskyInfo;
}

function checkSolve(u: Float64Tensor, b: Float64Tensor, options: LinalgOptions | undefined, where: string): { backend: Backend; work: number } {
  const [n] = checkTensor("u", u, "float64", 2);
  checkDims("u", u.dims, [n, n]);
  const bd = checkTensor("b", b, "float64", [1, 2]);
  checkDims("b", bd, bd.length === 1 ? [n] : [n, undefined]);
  return { backend: backendOf(where, options, ["backend"]), work: n! * n! * (bd[1] ?? 1) };
}

/** b (n) or (n, k) float64 ← A⁻¹ b in place, given u (n, n), the factor from choleskyFactor. */
export async function choleskySolve(u: Float64Tensor, b: Float64Tensor, options?: LinalgOptions): Promise<void> {
  const { backend, work } = checkSolve(u, b, options, "choleskySolve");
  await nativeAddon().choleskySolve(u, b, work > ASYNC_FLOPS, backend);
}

/** Blocking form of `choleskySolve`. */
export function choleskySolveSync(u: Float64Tensor, b: Float64Tensor, options?: LinalgOptions): void {
  const { backend } = checkSolve(u, b, options, "choleskySolveSync");
  nativeAddon().choleskySolve(u, b, false, backend);
}

function asMatrix(name: string, x: Float32Tensor | Float32Array, rows: number): Float32Tensor {
  if (x instanceof Float32Array) {
    checkTyped(name, x, Float32Array, rows);
    return { dims: [rows, 1], type: "float32", data: x };
  }
  checkDims(name, checkTensor(name, x, "float32", 2), [rows, undefined]);
  return x;
}

/**
 * W (rows, cols) float32 += U Vᵀ in place, with U (rows, r) and V (cols, r) — or u (rows) and
 * v (cols) for rank one — summed in float64 and rounded once. Returns the original bits of the
 * touched rows (rows with a nonzero u). (Their exact undo, update_undo, is in native/lab/: lib/
 * holds edits as factors and writes weights only when exporting a merged checkpoint.)
 */
export function applyUpdate(w: Float32Tensor, u: Float32Tensor | Float32Array, v: Float32Tensor | Float32Array): UpdateRecord {
  const [rows, cols] = checkTensor("w", w, "float32", 2);
  const U = asMatrix("u", u, rows!), V = asMatrix("v", v, cols!);
  if (U.dims[1] !== V.dims[1] || U.dims[1] === 0)
    throw new RomeError("ERR_ARGUMENT", `Expected u and v of the same rank ≥ 1 but received ${U.dims[1]} and ${V.dims[1]}`);
  return nativeAddon().updateApply(w, U, V);
}
