// A batch of many rows run through the engine a slice of rows at a time. Sessions run without a
// memory arena (docs/memory.md), so a run's intermediates go back to the C heap when it ends and a
// large batch's are faulted back in at every run: on TinyFacts, 200 rows of 23 columns through two
// layers took 150–320 ms of user and 60–260 ms of system CPU in one run, against about 45 ms in
// slices of 32 rows, whose memory the heap keeps and reuses. Rows are independent, so the result is the same.
import { sliceRows, type Batch } from "./batch.js";
import type { Engine, KVCache, RunOptions } from "./engine.js";

/** Rows per engine run. */
export const ROWS_PER_RUN = 32;

/** What `runRows` returns: the residual stream (B, T, D) after the last layer run and, with keepCache, the keys and values of the layers run ((B, Hkv, past + T, Dh) each). */
export interface RowsResult {
  resid: Float32Array;
  cache?: KVCache;
}

/**
 * `engine.run(batch, opts)` over slices of `rows` rows, the slices' outputs laid back together in
 * row order. `opts.from.resid` is (B, T, D) for the whole batch.
 */
export async function runRows(engine: Engine, batch: Batch, opts: Pick<RunOptions, "edits" | "from" | "stopLayer" | "keepCache">, rows = ROWS_PER_RUN): Promise<RowsResult> {
  const { B, T } = batch;
  const D = engine.config.nEmbd;
  const resid = new Float32Array(B * T * D);
  let cache: KVCache | undefined;
  for (let s = 0; s < B; s += rows) {
    const e = Math.min(B, s + rows);
    const from = opts.from && { layer: opts.from.layer, resid: opts.from.resid.subarray(s * T * D, e * T * D) };
    const r = await engine.run(sliceRows(batch, s, e), { ...opts, from });
    resid.set(r.resid, s * T * D);
    if (!r.cache) continue;
    cache ??= { past: r.cache.past, key: [], value: [] };
    for (const [all, part] of [[cache.key, r.cache.key], [cache.value, r.cache.value]] as const) {
      part.forEach((x, l) => {
        if (!x) return;
        const per = x.length / (e - s); // one row's (Hkv, past + T, Dh)
        (all[l] ??= new Float32Array(B * per)).set(x, s * per);
      });
    }
  }
  return { resid, cache };
}
