// Loading the native addon: the configured path, ROME_NATIVE_PATH, build/Release, build/Debug;
// one actionable RomeError listing every failure. Loaded once per thread (main or worker) and
// handed the RomeError class so native failures arrive as RomeError too.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { RomeError, checkInt, checkOptionNames } from "./errors.js";
import type { Backend, Float32Tensor, Float64Tensor } from "./native-check.js";

/** What the addon was built with. */
export interface NativeCapabilities {
  /** Threads used by the addon's OpenMP loops (and OpenBLAS). */
  threads: number;
  openmp: boolean;
  blas: "openblas" | "none";
  /** LAPACKE dpotrf/dpotrs available (else the own blocked Cholesky). */
  lapack: boolean;
  /** false, or the CUDA devices seen when the addon was built with CUDA. */
  cuda: false | { devices: number; name: string; cusolver: boolean };
  /** The CUDA twins were compiled in (a device may still be absent). */
  cudaCompiled: boolean;
  /** niceNativeThread can change one thread's nice value (Linux); elsewhere it returns null. */
  threadNice: boolean;
  version: string;
}

/** Result of a Cholesky factorisation. Pivots are the squared diagonal of U (A + λI = UᵀU). */
export interface CholeskyInfo {
  /** max pivot / min pivot = (max Uᵢᵢ / min Uᵢᵢ)²: a cheap lower bound on κ₂(A + λI). */
  condition: number;
  minPivot: number;
  maxPivot: number;
}

/** The original bits of the rows an update touched (native/lab's update_undo writes such a record back). */
export interface UpdateRecord {
  /** Row indices touched (rows i where some u[i, k] != 0), ascending. (nt) */
  rows: Int32Array;
  /** Their original values. (nt, cols) */
  data: Float32Array;
}

export interface Addon {
  init(o: { RomeError: typeof RomeError }): void;
  capabilities(): NativeCapabilities;
  setThreads(n: number): number;
  niceThread(increment: number): number | null;
  applyPlan(dst: Float32Array, sources: readonly Float32Array[], plan: Int32Array, width: number): void;
  momentAccumulate(acc: Float64Tensor, keys: Float32Tensor, async: boolean, backend: Backend): Promise<void> | undefined;
  momentFinalize(out: Float64Tensor, acc: Float64Tensor, count: number): void;
  _benchRawSsyrk(keys: Float32Tensor): Promise<number>;
  choleskyFactor(a: Float64Tensor, ridge: number, async: boolean, backend: Backend): Promise<CholeskyInfo> | CholeskyInfo;
  choleskySolve(u: Float64Tensor, b: Float64Tensor, async: boolean, backend: Backend): Promise<void> | undefined;
  updateApply(w: Float32Tensor, u: Float32Tensor, v: Float32Tensor): UpdateRecord;
  heapReserveBegin(bytes: number): boolean;
  heapReserveEnd(): void;
  heapTrim(): void;
  scanF32(path: string, offset: number, length: number, stride: number): Promise<{ sample?: Float32Array; bad?: { index: number; value: number } }>;
}

/** Options of `loadNative`. */
export interface NativeLoadOptions {
  /** Path of rome_native.node to load first. Default: env ROME_NATIVE_PATH (`none`: no addon at all), then build/Release, build/Debug. */
  path?: string;
}

let loaded: { addon: Addon; path: string } | undefined;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/**
 * Loads the addon once per thread (main or worker) and hands it the RomeError class. Tries
 * `options.path`, `$ROME_NATIVE_PATH`, build/Release/rome_native.node, build/Debug/rome_native.node
 * and throws one RomeError("ERR_NATIVE_LOAD") listing every failure.
 */
export function loadNative(options: NativeLoadOptions = {}): { path: string; capabilities: NativeCapabilities } {
  checkOptionNames("loadNative", options, ["path"]);
  nativeAddon(options.path);
  return { path: loaded!.path, capabilities: loaded!.addon.capabilities() };
}

/** The raw addon (loaded on first use). Internal: call the validated functions of lib/native.ts. */
export function nativeAddon(path?: string): Addon {
  if (loaded && (path === undefined || resolve(path) === loaded.path)) return loaded.addon;
  if (process.env.ROME_NATIVE_PATH === "none" && path === undefined) {
    throw new RomeError("ERR_NATIVE_LOAD", "The native addon is disabled (ROME_NATIVE_PATH=none): tracing runs its JavaScript fallback; " +
      "statistics and edits need the addon — unset ROME_NATIVE_PATH or point it at a built rome_native.node.");
  }
  const root = packageRoot();
  const candidates = [path, process.env.ROME_NATIVE_PATH, join(root, "build", "Release", "rome_native.node"),
    join(root, "build", "Debug", "rome_native.node")].filter((p): p is string => !!p).map((p) => resolve(p));
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const candidate of candidates) {
    if (!existsSync(candidate)) { failures.push(`${candidate}: not found`); continue; }
    try {
      const a = require(candidate) as Addon;
      a.init({ RomeError });
      loaded = { addon: a, path: candidate };
      return a;
    } catch (e) {
      failures.push(`${candidate}: ${(e as Error).message}`);
    }
  }
  throw new RomeError("ERR_NATIVE_LOAD",
    "Could not load the rome-node native addon. Run `npm run build:native` (needs cmake and a C++17 compiler) " +
    "or set ROME_NATIVE_PATH to a built rome_native.node. Tried:\n" + failures.map((f) => `  - ${f}`).join("\n"));
}

/** What the addon was built with and how many threads it uses. */
export function nativeCapabilities(): NativeCapabilities {
  return nativeAddon().capabilities();
}

/** Sets the addon's thread count (process-wide; 0 = all cores). Returns the count in effect. */
export function setNativeThreads(threads: number): number {
  checkInt("threads", threads, 0, 1024);
  return nativeAddon().setThreads(threads);
}


/**
 * Adds `increment` to the OS nice value of the calling thread alone (clamped to 19 as nice(2) does;
 * higher lets other threads take a shared core sooner); threads it creates later (onnxruntime's
 * intra-op pools) inherit it. Returns the value now in effect, or null where a thread has no nice
 * value of its own (capabilities().threadNice false: not Linux). A negative increment needs
 * CAP_SYS_NICE, else RomeError("ERR_NATIVE_THREAD").
 */
export function niceNativeThread(increment: number): number | null {
  checkInt("increment", increment, -39, 39);
  return nativeAddon().niceThread(increment);
}
