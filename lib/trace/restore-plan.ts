// Restoration plans: the one way the minimal sweep, the naive executor and activation patching
// write restored states between onnxruntime segments. A plan is built once in TypeScript — runs
// of vectors copied from a source, or summed from two — and executed straight into the buffer the
// next segment reads (the Float32Array behind its input tensor) by the addon's `applyPlan`, or,
// when the addon is not built, by the same plan in JavaScript (bit-identical: a float32 sum is the
// same rounded in C++ or through a double).
import { RomeError } from "../errors.js";
import { nativeAddon } from "../native-load.js";

/**
 * A Float32Array of n values left uninitialised, for a buffer a plan then writes whole (a grown
 * batch, gathered keys/values): skips the zero fill of `new Float32Array(n)`.
 */
export function planBuffer(n: number): Float32Array {
  return new Float32Array(Buffer.allocUnsafeSlow(n * 4).buffer, 0, n);
}

/** Int32 fields of one entry: dst, count, srcA, a, srcB (−1: a copy), b; indices in vectors. */
const FIELDS = 6;

export type RestoreBackend = "native" | "js";

let chosen: RestoreBackend | undefined;
let forced: RestoreBackend | undefined;

/** The executor plans run on: the addon when it loads (once per thread) and has `applyPlan` (a
 * build older than it has not), JavaScript otherwise. */
export function restoreBackend(): RestoreBackend {
  if (forced) return forced;
  if (chosen === undefined) {
    try {
      chosen = typeof nativeAddon().applyPlan === "function" ? "native" : "js";
    } catch {
      chosen = "js";
    }
  }
  return chosen;
}

/** Forces an executor (tests and benchmarks compare the two); undefined: back to automatic. */
export function forceRestoreBackend(backend: RestoreBackend | undefined): void {
  if (backend !== undefined && backend !== "native" && backend !== "js") throw new RomeError("ERR_ARGUMENT", `Expected 'native' or 'js' but received ${String(backend)}`);
  if (backend === "native" && typeof nativeAddon().applyPlan !== "function") { // nativeAddon throws ERR_NATIVE_LOAD with what to do
    throw new RomeError("ERR_NATIVE_LOAD", "The loaded native addon predates applyPlan: rebuild it with `npm run build:native`");
  }
  forced = backend;
}

/**
 * Writes into a destination read as vectors of `width` floats. Sources are slots: the first
 * `bound` are passed to each `run` (buffers that exist only once a segment has run: its input,
 * its outputs), the rest are buffers fixed when the plan is built (`slot`). Entries run in order,
 * so a later one may overwrite an earlier one (a gather, then a patch over it).
 */
export class RestorePlan {
  private readonly fixed: Float32Array[] = [];
  private readonly entries: number[] = [];
  private packed: Int32Array | undefined;

  constructor(readonly width: number, readonly bound = 0) {}

  /** The slot of a buffer fixed at build time (one slot per buffer). */
  slot(buffer: Float32Array): number {
    const i = this.fixed.indexOf(buffer);
    return this.bound + (i >= 0 ? i : this.fixed.push(buffer) - 1);
  }

  /** dst vectors [d, d + n) ← slot `a`'s vectors [at, at + n). */
  copy(d: number, n: number, a: number, at: number): this {
    return this.push(d, n, a, at, -1, 0);
  }

  /** dst vectors [d, d + n) ← slot a's [at, at + n) + slot b's [bt, bt + n) (float32 sums). */
  add(d: number, n: number, a: number, at: number, b: number, bt: number): this {
    return this.push(d, n, a, at, b, bt);
  }

  get size(): number {
    return this.entries.length / FIELDS;
  }

  /** Executes the plan into `dst` with the `bound` slots given (the same plan may run many times). */
  run(dst: Float32Array, bound: readonly Float32Array[] = []): void {
    if (this.entries.length === 0) return;
    if (bound.length !== this.bound) throw new RomeError("ERR_ARGUMENT", `this plan takes ${this.bound} bound sources but received ${bound.length}`);
    const sources = [...bound, ...this.fixed];
    const plan = (this.packed ??= Int32Array.from(this.entries));
    check(dst, sources, plan, this.width);
    if (restoreBackend() === "native") nativeAddon().applyPlan(dst, sources, plan, this.width);
    else applyPlanJs(dst, sources, plan, this.width);
  }

  private push(d: number, n: number, a: number, at: number, b: number, bt: number): this {
    if (n > 0) {
      this.entries.push(d, n, a, at, b, bt);
      this.packed = undefined;
    }
    return this;
  }
}

/** Every entry inside its buffers (the addon re-checks; the JavaScript executor relies on this). */
function check(dst: Float32Array, sources: readonly Float32Array[], plan: Int32Array, W: number): void {
  const inside = (v: number, n: number, length: number) => v >= 0 && v + n <= Math.floor(length / W);
  for (let p = 0; p < plan.length; p += FIELDS) {
    const d = plan[p]!, n = plan[p + 1]!, a = plan[p + 2]!, at = plan[p + 3]!, b = plan[p + 4]!, bt = plan[p + 5]!;
    const ok = n >= 0 && inside(d, n, dst.length) && sources[a] !== undefined && inside(at, n, sources[a].length) &&
      (b === -1 || (sources[b] !== undefined && inside(bt, n, sources[b].length)));
    if (!ok) throw new RomeError("ERR_ARGUMENT", `restoration plan entry ${p / FIELDS} (${[d, n, a, at, b, bt].join(", ")}) is outside its buffers (width ${W})`);
  }
}

/** The plan in JavaScript, for when the addon is not built: the addon's semantics exactly. */
function applyPlanJs(dst: Float32Array, sources: readonly Float32Array[], plan: Int32Array, W: number): void {
  for (let p = 0; p < plan.length; p += FIELDS) {
    const n = plan[p + 1]! * W;
    const o = plan[p]! * W;
    const x = sources[plan[p + 2]!]!;
    const xa = plan[p + 3]! * W;
    if (plan[p + 4] === -1) {
      dst.set(x.subarray(xa, xa + n), o); // a copy even when x is dst (overlap-safe)
    } else {
      const y = sources[plan[p + 4]!]!;
      const yb = plan[p + 5]! * W;
      for (let i = 0; i < n; i++) dst[o + i] = x[xa + i]! + y[yb + i]!;
    }
  }
}
