// The messages between a hosted model (main thread) and its worker, and what crosses with them:
// errors as { name, code, message } revived as the same classes, results with every typed array
// copied on the worker (so the main thread never copies bulk data) and either transferred or, when
// large, placed in shared memory, and the callbacks and AbortSignals of options left out as slots.
import { RomeError, type RomeErrorCode } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { AbortError } from "../runtime/call.js";
import { EditView } from "../runtime/edit-view.js";
import type { LoadOptions } from "../runtime/model.js";

/** What a worker is started with (`workerData`). */
export interface WorkerInit {
  /** URL of the worker module (lib/host/worker.ts from sources, dist/host/worker.js installed). */
  module: string;
  /** URL of tsx's ESM API, set only when the library runs from TypeScript sources. */
  tsx?: string;
  dir: string;
  options: LoadOptions;
}

/** The loaded model's description, sent once when the worker is ready. */
export interface ModelInfo {
  config: ModelConfig;
  fingerprint: string;
  threads: number;
  batchSize: number;
  sourceDir?: string;
}

/** A call's target: a Model method, a Tokenizer method, an EditSet operation, or a hosted free function. */
export type Target = "model" | "tokenizer" | "edits" | "function";

/** A top-level option that cannot be cloned: `[argument index, key]` of a callback or an AbortSignal. */
export type Slot = readonly [number, string];

export type ToWorker =
  /**
   * `scope`: the edit ids of the caller's `edits.withOnly` scope, which the worker runs the call in.
   * `stream`: the function returns an async iterator; the worker creates it and answers nothing
   * until the first "next".
   */
  | { type: "call"; id: number; target: Target; name: string; args: unknown[]; callbacks: Slot[]; signal?: Slot; scope?: readonly string[]; stream?: true }
  /** One step of a stream: answered by a "result" whose value is the step's `{ done, value }`, or an "error". */
  | { type: "next"; id: number }
  /** Ends a stream early (the caller left its loop): answered by a "result" `{ done: true }`. */
  | { type: "return"; id: number }
  | { type: "abort"; id: number }
  /**
   * Ends the worker gracefully: it aborts its calls, waits for them to settle, frees the model and
   * closes its port, so that its thread ends by itself, never inside an onnxruntime call.
   */
  | { type: "dispose" }
  /**
   * Ends the thread at once with `code`, between two messages (so never inside an onnxruntime call),
   * as a fatal error in the worker would: the tests' stand-in for a worker that dies.
   */
  | { type: "exit"; code: number };

export type FromWorker =
  | { type: "ready"; info: ModelInfo }
  | { type: "failed"; error: SerializedError }
  | { type: "result"; id: number; value: unknown }
  | { type: "error"; id: number; error: SerializedError }
  | { type: "callback"; id: number; slot: Slot; args: unknown[] };

export interface SerializedError { name: string; message: string; code?: string; stack?: string }

export function serializeError(e: unknown): SerializedError {
  if (e instanceof Error) return { name: e.name, message: e.message, code: e instanceof RomeError ? e.code : undefined, stack: e.stack };
  return { name: "Error", message: String(e) };
}

/**
 * The error a caller sees: an AbortError carrying the caller's own signal reason, a RomeError with
 * the worker's code and message, or a plain Error of the same name and message.
 */
export function reviveError(s: SerializedError, signal?: AbortSignal): Error {
  if (s.code === "ERR_ABORTED") return new AbortError(signal?.aborted ? signal.reason : undefined);
  const e = s.code ? new RomeError(s.code as RomeErrorCode, s.message) : new Error(s.message);
  if (!s.code) e.name = s.name;
  if (s.stack) e.stack = `${e.name}: ${e.message}\n    (in the model's worker thread)\n${s.stack.split("\n").slice(1).join("\n")}`;
  return e;
}

/** Result arrays of this many bytes or more come back in shared memory. */
export const SHARED_BYTES = 1 << 20;

type TypedArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array | Int8Array | Uint16Array | Int16Array | BigInt64Array | BigUint64Array;

/**
 * `value` with every typed array replaced by a copy, and the buffers to transfer. Copying on the
 * worker keeps arrays it still holds (caches, model state) intact. A copy under SHARED_BYTES owns
 * its buffer, which is transferred, so receiving it costs the main thread nothing. A larger one
 * (statistics, recorded states) is placed in a SharedArrayBuffer: receiving it is free too, and
 * so is passing it back to a later call (`rome(hosted, request, { stats })`), which then reads the
 * very memory the caller holds, as an in-thread call would.
 */
export function forTransfer(value: unknown): { value: unknown; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const walk = (v: unknown): unknown => {
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const a = v as TypedArray;
      if (a.byteLength < SHARED_BYTES) {
        const copy = a.slice();
        transfer.push(copy.buffer as ArrayBuffer);
        return copy;
      }
      const shared = new (a.constructor as new (b: SharedArrayBuffer) => TypedArray)(new SharedArrayBuffer(a.byteLength));
      (shared as Float64Array).set(a as Float64Array);
      return shared;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, walk(x)]));
    if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    return v;
  };
  return { value: walk(value), transfer };
}

/**
 * Arguments ready to post: top-level options that are functions (progress callbacks) or
 * AbortSignals are left out and named as slots; the worker puts proxies in their place.
 */
export function splitArgs(args: readonly unknown[]): { args: unknown[]; callbacks: Slot[]; signal?: Slot; fns: Map<string, (...a: unknown[]) => void>; abort?: AbortSignal } {
  const callbacks: Slot[] = [];
  const fns = new Map<string, (...a: unknown[]) => void>();
  let signal: Slot | undefined;
  let abort: AbortSignal | undefined;
  const out = args.map((a, i) => {
    if (a === null || typeof a !== "object" || Object.getPrototypeOf(a) !== Object.prototype) return a;
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a)) {
      if (typeof v === "function") {
        callbacks.push([i, k]);
        fns.set(slotKey([i, k]), v as (...x: unknown[]) => void);
      } else if (v instanceof AbortSignal) {
        signal = [i, k];
        abort = v;
      } else if (v instanceof EditView) {
        copy[k] = [...v.ids]; // the worker holds the same edits under the same ids
      } else {
        copy[k] = v;
      }
    }
    return copy;
  });
  return { args: out, callbacks, signal, fns, abort };
}

export function slotKey(slot: Slot): string {
  return `${slot[0]}.${slot[1]}`;
}
