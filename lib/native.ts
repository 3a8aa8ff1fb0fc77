// The validated API of the native addon's kernels. Every argument is checked before it crosses
// (lib/native-check.ts); tensors cross as { dims, type, data } over the caller's memory, without
// copies. native-linalg.ts: statistics, Cholesky, updates (the edit code); native-load.ts:
// loading. The trace code's one kernel, applyPlan, is driven by lib/trace/restore-plan.ts.
import { nativeAddon } from "./native-load.js";

export type { Backend, Float32Tensor, Float64Tensor, NativeTensor } from "./native-check.js";
export { type CholeskyInfo, type NativeCapabilities, type NativeLoadOptions, type UpdateRecord, loadNative,
  nativeCapabilities, niceNativeThread, setNativeThreads } from "./native-load.js";
export * from "./native-linalg.js";

/** The raw addon, without TypeScript validation: for tests of the C++ re-checks only. */
export function nativeAddonForTests(): ReturnType<typeof nativeAddon> {
  return nativeAddon();
}
