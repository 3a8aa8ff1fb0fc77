// What every call that can run longer than a second takes: an AbortSignal that stops it within one
// batch, and a progress callback of one shape everywhere. Long calls check `throwIfAborted` between
// batches and report `{ phase, done, total }` with `done` rising to `total` within each phase.
import { RomeError } from "../errors.js";

/** One progress report: `done` of `total` units of `phase` (e.g. "restorations", "tokens", "steps"). */
export interface Progress {
  phase: string;
  done: number;
  total: number;
}
export type ProgressFn = (progress: Progress) => void;

/** Options shared by every long call. */
export interface CallOptions {
  /** Stops the call within one batch; it then rejects with an `AbortError` whose `cause` is the signal's reason. */
  signal?: AbortSignal;
  /** Called as work advances; `done` never decreases within a phase and reaches `total` at its end. */
  onProgress?: ProgressFn;
}
export const CALL_OPTIONS = ["signal", "onProgress"] as const;

/**
 * The rejection of an aborted call: a RomeError with code ERR_ABORTED and name "AbortError" (the
 * name `fetch` and Node's own APIs use), carrying the signal's reason as `cause`. The model stays
 * usable and no partial file is left behind.
 */
export class AbortError extends RomeError {
  constructor(reason?: unknown) {
    super("ERR_ABORTED", `the call was aborted${reason instanceof Error ? `: ${reason.message}` : reason !== undefined ? `: ${String(reason)}` : ""}`, { cause: reason });
    this.name = "AbortError";
  }
}

/** Throws an AbortError when `signal` has been aborted. Call it between batches. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(signal.reason);
}
