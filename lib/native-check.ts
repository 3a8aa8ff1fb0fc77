// Argument validation for lib/native.ts: every argument is checked here, before it crosses into
// C++, and rejected with a RomeError("ERR_ARGUMENT") that states the exact expectation. C++
// re-checks only kinds and sizes (ERR_NATIVE_ARGUMENT), so those errors mean a bug here.
import { RomeError } from "./errors.js";

/** A tensor over the caller's memory, as onnxruntime's `Tensor` has it: `{ dims, type, data }`. */
export interface NativeTensor<A extends Float32Array | Float64Array = Float32Array | Float64Array> {
  readonly dims: readonly number[];
  readonly type: A extends Float64Array ? "float64" : "float32";
  readonly data: A;
}
export type Float32Tensor = NativeTensor<Float32Array>;
export type Float64Tensor = NativeTensor<Float64Array>;

type Kind = "float32" | "float64";

function fail(message: string): never {
  throw new RomeError("ERR_ARGUMENT", message);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return "Array";
  if (typeof v === "object") return "object";
  return typeof v === "string" ? `'${v}'` : String(v);
}

export function shapeText(dims: readonly number[]): string {
  return `[${dims.join(", ")}]`;
}

/** Checks `{ dims, type, data }` of `kind` whose dims multiply to data.length; returns dims. */
export function checkTensor(name: string, t: unknown, kind: Kind, rank?: number | [number, number]): number[] {
  if (typeof t !== "object" || t === null || ArrayBuffer.isView(t))
    fail(`Expected a ${kind} tensor { dims, type, data } for ${name} but received ${describe(t)}`);
  const { dims, type, data } = t as { dims?: unknown; type?: unknown; data?: unknown };
  const Ctor = kind === "float32" ? Float32Array : Float64Array;
  if (!(data instanceof Ctor)) fail(`Expected ${Ctor.name} data for ${name} but received ${describe(data)}`);
  if (type !== kind) fail(`Expected type '${kind}' for ${name} but received ${describe(type)}`);
  if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0))
    fail(`Expected an array of non-negative integer dims for ${name} but received ${describe(dims)}`);
  const [lo, hi] = rank === undefined ? [1, 8] : typeof rank === "number" ? [rank, rank] : rank;
  if (dims.length < lo || dims.length > hi)
    fail(`Expected ${lo === hi ? lo : `${lo} to ${hi}`} dims for ${name} but received ${shapeText(dims)}`);
  const n = dims.reduce((a: number, b: number) => a * b, 1);
  if (n !== data.length) fail(`Expected ${name} data of length ${n} for dims ${shapeText(dims)} but received ${data.length}`);
  return dims as number[];
}

/** Checks that `dims` equals `expected` (entries that are undefined match anything). */
export function checkDims(name: string, dims: readonly number[], expected: readonly (number | undefined)[]): void {
  const ok = dims.length === expected.length && dims.every((d, i) => expected[i] === undefined || expected[i] === d);
  if (!ok) fail(`Expected dims ${shapeText(expected.map((e) => (e === undefined ? "*" : e)) as never)} for ${name} but received ${shapeText(dims)}`);
}

export function checkTyped<C extends Int32ArrayConstructor | Uint8ArrayConstructor | Float32ArrayConstructor>(
  name: string, v: unknown, Ctor: C, length?: number,
): InstanceType<C> {
  if (!(v instanceof Ctor)) fail(`Expected ${Ctor.name} for ${name} but received ${describe(v)}`);
  if (length !== undefined && (v as InstanceType<C>).length !== length)
    fail(`Expected ${Ctor.name} of length ${length} for ${name} but received length ${(v as InstanceType<C>).length}`);
  return v as InstanceType<C>;
}

export type Backend = "auto" | "own" | "blas";
const backends: readonly Backend[] = ["auto", "own", "blas"];

export function checkBackend(v: unknown): Backend {
  if (v === undefined) return "auto";
  if (!backends.includes(v as Backend)) fail(`Expected 'auto', 'own' or 'blas' for backend but received ${describe(v)}`);
  return v as Backend;
}
