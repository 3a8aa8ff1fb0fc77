// The abort-and-progress check every long call passes (test/65.*): progress monotone per phase and
// reaching its total; aborted before the start and at seeded random progress reports, the call
// rejects with an AbortError carrying the reason; afterwards the model gives what it gave before.
import type { ExecutionContext } from "ava";
import type { RomeError } from "../lib/errors.js";
import { AbortError, type Progress } from "../lib/runtime/call.js";

export type Call = (o: { signal?: AbortSignal; onProgress?: (p: Progress) => void }) => Promise<unknown>;

/**
 * Checks progress of a full run, then aborts before the start and at seeded random reports.
 * `afterAbort` runs after each aborted call (e.g. to check that it left no partial file).
 */
export async function check(t: ExecutionContext, name: string, call: Call, after: () => Promise<unknown>, afterAbort?: () => void): Promise<void> {
  const reports: Progress[] = [];
  const full = await call({ onProgress: (p) => reports.push(p) });
  t.true(reports.length > 0, `${name}: progress reported`);
  const last = new Map<string, Progress>();
  for (const p of reports) {
    const prev = last.get(p.phase);
    t.true(p.done <= p.total && (!prev || (p.done >= prev.done && p.total === prev.total)), `${name}: monotone ${JSON.stringify(p)}`);
    last.set(p.phase, p);
  }
  for (const p of last.values()) t.is(p.done, p.total, `${name}: phase ${p.phase} reaches its total`);
  const reason = new Error("stop");
  const before = await t.throwsAsync(call({ signal: AbortSignal.abort(reason) }), { instanceOf: AbortError }, `${name}: aborted before the start`);
  t.is(before!.cause, reason);
  t.is((before as RomeError).code, "ERR_ABORTED");
  afterAbort?.();
  let seed = name.length * 7919;
  for (let trial = 0; trial < 2; trial++) {
    seed = (Math.imul(seed, 48271) + 1) >>> 0;
    const at = seed % reports.length;
    const c = new AbortController();
    let n = 0;
    const err: unknown = await call({ signal: c.signal, onProgress: () => { if (n++ === at) c.abort(reason); } }).then(() => undefined, (e) => e);
    // Aborted at the last report the call may already be done: then it resolves; otherwise it rejects with the reason.
    if (err !== undefined || at < reports.length - 1) {
      t.true(err instanceof AbortError, `${name}: aborted at report ${at} of ${reports.length}`);
      t.is((err as AbortError).cause, reason);
    }
    afterAbort?.();
  }
  t.deepEqual(await after(), await after());
  t.deepEqual(await call({}), full, `${name}: the model gives the same result after aborts`);
}
