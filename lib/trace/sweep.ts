// The minimal executor of restoration plans. A restoration at (t, layer) leaves every earlier step
// and every position before t identical to the corrupted run, so it starts at its entry step from
// the cached corrupted states, computes positions ≥ t only (positions < t come from the corrupted
// KV cache) and evaluates the head at the last position only. Restorations of the same position
// are batched layer-synchronously: the batch grows at each step by those that enter there.
import { throwIfAborted } from "../runtime/call.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Engine, FlopMeter, KVCache } from "../runtime/engine.js";
import { attentionBias, type Batch } from "../runtime/batch.js";
import { headFlops, layerFlops, mlpFlops } from "../runtime/flops.js";
import { patchStep, type Restoration, type RunStates, type Step } from "./plan.js";
import { gatherPast, patchRows } from "./kernels.js";

export interface SweepContext {
  engine: Engine;
  /** The edits of the call the sweep belongs to. */
  edits: EditView;
  /** Checked before each batch. */
  signal?: AbortSignal;
  /** Samples N: corrupted rows per restoration. */
  N: number;
  T: number;
  answer: number;
  clean: RunStates;      // rows 1
  corrupted: RunStates;  // rows N
  cache: KVCache;        // corrupted keys/values, (N, H, T, Dh) per layer
  /** States that patches with source "corrupted" copy (rows N); default `corrupted`. */
  frozen?: RunStates;
  /** Largest batch (rows) one engine call may take. */
  maxRows: number;
  meter: FlopMeter;
  onProgress?: (done: number) => void;
}

/** Step at which a restoration departs from the corrupted run (state before that step changes). */
export function entryStep(r: Restoration): Step {
  return patchStep(r.patches[0]!) + 1;
}

/** p(answer) averaged over samples, per restoration (indices as in `plans`). */
export async function sweepMinimal(ctx: SweepContext, plans: readonly Restoration[], lowScore: number): Promise<number[]> {
  const L = ctx.engine.config.nLayer;
  const scores = new Array<number>(plans.length).fill(lowScore);
  const byT = new Map<number, number[]>();
  plans.forEach((r, i) => {
    const entry = entryStep(r);
    // Restoring the last layer's output at t < T-1 cannot reach the last position: low score.
    if (entry === 2 * L && r.t < ctx.T - 1) return;
    (byT.get(r.t) ?? byT.set(r.t, []).get(r.t)!).push(i);
  });
  let done = plans.length - [...byT.values()].reduce((a, v) => a + v.length, 0);
  ctx.onProgress?.(done);
  for (const [t, idx] of [...byT].sort((a, b) => a[0] - b[0])) {
    // Restorations per batch: within the memory budget, and at most ~1024 token rows per engine
    // call (larger batches measured slower on CPU, and cost memory).
    const per = Math.max(1, Math.min(Math.floor(ctx.maxRows / ctx.N), Math.floor(1024 / (ctx.N * (ctx.T - t)))));
    idx.sort((a, b) => entryStep(plans[a]!) - entryStep(plans[b]!));
    for (let c = 0; c < idx.length; c += per) {
      throwIfAborted(ctx.signal);
      const chunk = idx.slice(c, c + per);
      const s = await runChunk(ctx, t, chunk.map((i) => plans[i]!));
      chunk.forEach((i, k) => (scores[i] = s[k]!));
      done += chunk.length;
      ctx.onProgress?.(done);
    }
  }
  return scores;
}

/** Minimal FLOPs of one restoration: the layers after its entry, positions ≥ t, last-position head. */
export function minimalFlops(ctx: { engine: Engine; N: number; T: number }, r: Restoration): number {
  const cfg = ctx.engine.config;
  const L = cfg.nLayer;
  const entry = entryStep(r);
  if (entry === 2 * L && r.t < ctx.T - 1) return 0;
  const Tp = ctx.T - r.t;
  let f = headFlops(cfg, ctx.N);
  if (entry % 2 === 1) f += mlpFlops(cfg, ctx.N * Tp);
  for (let j = Math.ceil(entry / 2); j < L; j++) f += layerFlops(cfg, ctx.N, Tp, r.t);
  return f;
}

async function runChunk(ctx: SweepContext, t: number, plans: Restoration[]): Promise<number[]> {
  const { engine, N, T } = ctx;
  const cfg = engine.config;
  const L = cfg.nLayer;
  const D = cfg.nEmbd;
  const Tp = T - t;
  const entries = plans.map(entryStep);
  let rows = 0;
  let resid: Float32Array = new Float32Array(0); // (rows, Tp, D)
  // Parallel blocks' MLPs read the block's input: kept from the attention step (rows entering
  // after an attention half-block take the corrupted run's, which their entry leaves unchanged).
  const parallel = engine.mlpReadsBlockInput;
  let blockIn: Float32Array = new Float32Array(0); // (rows, Tp, D) when parallel
  let active: Restoration[] = [];
  const bias1 = attentionBias(oneRow(t, Tp)); // (1, 1, Tp, T)
  for (let step = Math.min(...entries); step <= 2 * L; step++) {
    const entering = plans.filter((_, i) => entries[i] === step);
    if (entering.length > 0) {
      const grown = new Float32Array((rows + entering.length * N) * Tp * D);
      grown.set(resid);
      entering.forEach((r, k) => entryBlock(ctx, r, t, grown.subarray((rows + k * N) * Tp * D, (rows + (k + 1) * N) * Tp * D)));
      if (parallel && step % 2 === 1) {
        const inputs = new Float32Array(grown.length);
        inputs.set(blockIn);
        const pre = ctx.corrupted.residPre[step >> 1]!; // (N, T, D)
        entering.forEach((_, k) => {
          for (let n = 0; n < N; n++) inputs.set(pre.subarray((n * T + t) * D, (n + 1) * T * D), (rows + k * N + n) * Tp * D);
        });
        blockIn = inputs;
      }
      resid = grown;
      rows += entering.length * N;
      active = active.concat(entering);
    }
    if (rows === 0) continue;
    if (step === 2 * L) break;
    const layer = step >> 1;
    if (step % 2 === 0) {
      const one = oneRow(t, Tp);
      const batch: Batch = { ...one, B: rows, positions: tile(one.positions, rows) };
      const past = {
        key: gatherPast(ctx.cache.key[layer]!, N, rows, t, T, cfg.nKvHead, cfg.headDim),
        value: gatherPast(ctx.cache.value[layer]!, N, rows, t, T, cfg.nKvHead, cfg.headDim),
      };
      const a = await engine.attn(layer, batch, resid, tile(bias1, rows), t > 0 ? past : undefined, ctx.meter);
      if (parallel) blockIn = resid;
      applyPatches(ctx, active, layer, "attn", t, resid, a.residMid, Tp);
      resid = a.residMid;
    } else {
      const m = await engine.mlp(layer, rows, Tp, resid, false, ctx.edits, ctx.meter, parallel ? blockIn : undefined);
      applyPatches(ctx, active, layer, "mlp", t, resid, m.residPost, Tp);
      resid = m.residPost;
    }
  }
  // log p(answer) comes out of the head graph: (rows) values instead of (rows, V) logits.
  const logp = await engine.headLogprob(rows, Tp, resid, Array.from({ length: rows }, (_, r) => [r, Tp - 1] as const), ctx.answer, ctx.meter);
  const byPlan = new Map<Restoration, number>();
  active.forEach((r, k) => {
    let sum = 0;
    for (let n = 0; n < N; n++) sum += Math.exp(logp[k * N + n]!);
    byPlan.set(r, sum / N);
  });
  return plans.map((r) => byPlan.get(r)!);
}

/** The state before a restoration's entry step: the corrupted state with position t patched. */
function entryBlock(ctx: SweepContext, r: Restoration, t: number, out: Float32Array): void {
  const D = ctx.engine.config.nEmbd;
  const { N, T, clean, corrupted } = ctx;
  const p = r.patches[0]!;
  const frozen = ctx.frozen ?? corrupted;
  const src = p.site === "attn" ? corrupted.residMid[p.layer]! : corrupted.residPost[p.layer]!; // (N, T, D)
  const Tp = T - t;
  for (let n = 0; n < N; n++) out.set(src.subarray((n * T + t) * D, (n + 1) * T * D), n * Tp * D);
  for (let n = 0; n < N; n++) {
    const at = n * Tp * D;
    if (p.site === "resid") {
      out.set(clean.residPost[p.layer]!.subarray(t * D, (t + 1) * D), at);
    } else {
      const base = (p.site === "attn" ? corrupted.residPre : corrupted.residMid)[p.layer]!;
      const states = p.source === "clean" ? clean : frozen;
      const comp = (p.site === "attn" ? states.attnOut : states.mlpOut)[p.layer]!; // (1 or N, T, D)
      const c = ((p.source === "clean" ? 0 : n) * T + t) * D;
      for (let i = 0; i < D; i++) out[at + i] = base[(n * T + t) * D + i]! + comp[c + i]!;
    }
  }
}

/**
 * After a half-block: out[row, 0] = input[row, 0] + component value for the patches at this step,
 * then (after an MLP half) the clean residual state for a restoration that is not the entry patch.
 */
function applyPatches(ctx: SweepContext, active: Restoration[], layer: number, site: "attn" | "mlp", t: number,
  input: Float32Array, out: Float32Array, Tp: number): void {
  const D = ctx.engine.config.nEmbd;
  const { N, T } = ctx;
  active.forEach((r, k) => {
    for (let i = 1; i < r.patches.length; i++) {
      const p = r.patches[i]!;
      if (p.layer !== layer || p.site !== site) continue;
      const states = p.source === "clean" ? ctx.clean : ctx.frozen ?? ctx.corrupted;
      const comp = (site === "attn" ? states.attnOut : states.mlpOut)[layer]!;
      patchRows(out, input, comp, k * N, N, Tp, D, T, t, p.source === "clean");
    }
    const resid = r.patches.findIndex((p, i) => i > 0 && p.site === "resid" && p.layer === layer);
    if (site === "mlp" && resid > 0) {
      const clean = ctx.clean.residPost[layer]!.subarray(t * D, (t + 1) * D);
      for (let n = 0; n < N; n++) out.set(clean, (k * N + n) * Tp * D);
    }
  });
}

function oneRow(t: number, Tp: number): Batch {
  const positions = new BigInt64Array(Tp);
  for (let i = 0; i < Tp; i++) positions[i] = BigInt(t + i);
  return { B: 1, T: Tp, ids: new BigInt64Array(0), positions, keyMask: new Uint8Array(t + Tp).fill(1), past: t, pad: [0] };
}

function tile<A extends Float32Array | BigInt64Array>(a: A, times: number): A {
  const out = new (a.constructor as { new (n: number): A })(a.length * times);
  for (let i = 0; i < times; i++) out.set(a as never, i * a.length);
  return out;
}
