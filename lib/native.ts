// The validated API of the native addon's kernels, called by the trace and edit code between
// onnxruntime segments. Every argument is checked here before it crosses (lib/native-check.ts);
// tensors cross as { dims, type, data } over the caller's memory, without copies. This file: the
// patch/gather kernels; native-linalg.ts: statistics, Cholesky, updates; native-load.ts: loading.
import { RomeError, checkOptionNames } from "./errors.js";
import { nativeAddon } from "./native-load.js";
import { type Float32Tensor, checkDims, checkDistinct, checkIndices, checkTensor, checkTyped } from "./native-check.js";

export type { Backend, Float32Tensor, Float64Tensor, NativeTensor } from "./native-check.js";
export { type CholeskyInfo, type NativeCapabilities, type NativeLoadOptions, type UpdateRecord, loadNative,
  nativeCapabilities, setNativeThreads } from "./native-load.js";
export * from "./native-linalg.js";

// --- patching and gathers (synchronous: memory copies) -------------------------------------------

/** dst (B, ...rest) row b ← src (S, ...rest) row index[b]. Works for states (B, T, D) and KV caches (B, H, T, Dh). */
export function gatherRows(dst: Float32Tensor, src: Float32Tensor, index: Int32Array): void {
  const dd = checkTensor("dst", dst, "float32");
  const sd = checkTensor("src", src, "float32", dd.length);
  checkDims("src", sd, [undefined, ...dd.slice(1)]);
  checkTyped("index", index, Int32Array, dd[0]);
  checkIndices("index", index, sd[0]!);
  nativeAddon().gatherRows(dst, src, index);
}

function checkPlan3(name: string, plan: Int32Array, B: number, T: number, R: number): void {
  checkTyped(name, plan, Int32Array);
  if (plan.length % 3 !== 0) throw new RomeError("ERR_ARGUMENT", `Expected ${name} length to be a multiple of 3 (dstRow, pos, srcRow) but received ${plan.length}`);
  checkIndices(name, plan, B, 3, 0, "dstRow");
  checkIndices(name, plan, T, 3, 1, "pos");
  checkIndices(name, plan, R, 3, 2, "srcRow");
  checkDistinct(name, plan, 3, T);
}

/** For each plan entry (dstRow, pos, srcRow): dst[dstRow, pos, :] ← src[srcRow, pos, :]. dst (B, T, D), src (R, T, D), plan Int32Array (P * 3). */
export function patchPositions(dst: Float32Tensor, src: Float32Tensor, plan: Int32Array): void {
  const [B, T, D] = checkTensor("dst", dst, "float32", 3);
  const sd = checkTensor("src", src, "float32", 3);
  checkDims("src", sd, [undefined, T, D]);
  checkPlan3("plan", plan, B!, T!, sd[0]!);
  nativeAddon().patchPositions(dst, src, plan);
}

/**
 * One pass building a layer's batch input: dst[b] ← src[index[b]], then for each patch plan entry
 * (dstRow, pos, srcRow): dst[dstRow, pos, :] ← patch.src[srcRow, pos, :]. Every dst vector is
 * written once. dst (B, T, D), src (S, T, D), index Int32Array (B), patch.src (R, T, D) (e.g. the
 * clean run, R = 1), patch.plan Int32Array (P * 3).
 */
export function buildBatch(dst: Float32Tensor, src: Float32Tensor, index: Int32Array,
  patch?: { src: Float32Tensor; plan: Int32Array }): void {
  const [B, T, D] = checkTensor("dst", dst, "float32", 3);
  const sd = checkTensor("src", src, "float32", 3);
  checkDims("src", sd, [undefined, T, D]);
  checkTyped("index", index, Int32Array, B);
  checkIndices("index", index, sd[0]!);
  if (patch !== undefined) {
    checkOptionNames("buildBatch patch", patch, ["src", "plan"]);
    const pd = checkTensor("patch.src", patch.src, "float32", 3);
    checkDims("patch.src", pd, [undefined, T, D]);
    checkPlan3("patch.plan", patch.plan, B!, T!, pd[0]!);
  }
  nativeAddon().buildBatch(dst, src, index, patch?.src ?? null, patch?.plan ?? null);
}

/** out ← mid + where(mask, clean, component). out, mid, component (B, T, D); clean (1 | B, T, D); mask Uint8Array (B * T), nonzero = restore. */
export function componentRestore(out: Float32Tensor, mid: Float32Tensor, component: Float32Tensor,
  clean: Float32Tensor, mask: Uint8Array): void {
  const [B, T, D] = checkTensor("out", out, "float32", 3);
  checkDims("mid", checkTensor("mid", mid, "float32", 3), [B, T, D]);
  checkDims("component", checkTensor("component", component, "float32", 3), [B, T, D]);
  const cd = checkTensor("clean", clean, "float32", 3);
  checkDims("clean", cd, [cd[0] === 1 ? 1 : B, T, D]);
  checkTyped("mask", mask, Uint8Array, B! * T!);
  nativeAddon().componentRestore(out, mid, component, clean, mask);
}

/** For each plan entry p = (row, pos): dst[row, pos, :] ← values[p, :]. dst (B, T, D), values (P, D), plan Int32Array (P * 2). */
export function freeze(dst: Float32Tensor, values: Float32Tensor, plan: Int32Array): void {
  const [B, T, D] = checkTensor("dst", dst, "float32", 3);
  const vd = checkTensor("values", values, "float32", 2);
  checkDims("values", vd, [undefined, D]);
  checkTyped("plan", plan, Int32Array, 2 * vd[0]!);
  checkIndices("plan", plan, B!, 2, 0, "row");
  checkIndices("plan", plan, T!, 2, 1, "pos");
  checkDistinct("plan", plan, 2, T!);
  nativeAddon().freeze(dst, values, plan);
}


/** The raw addon, without TypeScript validation: for tests of the C++ re-checks only. */
export function nativeAddonForTests(): ReturnType<typeof nativeAddon> {
  return nativeAddon();
}
