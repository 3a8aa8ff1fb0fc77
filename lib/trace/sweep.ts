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
import { planBuffer, RestorePlan } from "./restore-plan.js";

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
  const chunks: { t: number; idx: number[] }[] = [];
  for (const [t, idx] of [...byT].sort((a, b) => a[0] - b[0])) {
    // Restorations per batch: within the memory budget, and at most ~1024 token rows per engine
    // call (larger batches measured slower on CPU, and cost memory).
    const per = Math.max(1, Math.min(Math.floor(ctx.maxRows / ctx.N), Math.floor(1024 / (ctx.N * (ctx.T - t)))));
    idx.sort((a, b) => entryStep(plans[a]!) - entryStep(plans[b]!));
    for (let c = 0; c < idx.length; c += per) chunks.push({ t, idx: idx.slice(c, c + per) });
  }
  const buffers = sweepBuffers(ctx, chunks.map(({ t, idx }) => ({ t, rows: idx.length * ctx.N })));
  let done = plans.length - chunks.reduce((a, c) => a + c.idx.length, 0);
  ctx.onProgress?.(done);
  for (const { t, idx } of chunks) {
    throwIfAborted(ctx.signal);
    const s = await runChunk(ctx, t, idx.map((i) => plans[i]!), buffers);
    idx.forEach((i, k) => (scores[i] = s[k]!));
    done += idx.length;
    ctx.onProgress?.(done);
  }
  return scores;
}

/**
 * The arrays a sweep's batches live in, allocated once at the largest batch's size: each batch
 * views their first elements. The residual stream moves between `states` (2, or 3 for parallel
 * blocks whose MLP also reads the block's input): onnxruntime writes each half-block's output
 * into one that none of its inputs is in, so a batch grows in place and nothing is copied between
 * segments.
 */
interface SweepBuffers {
  states: Float32Array[]; // each (rows, Tp, D) for the largest rows × Tp
  key: Float32Array;      // (rows, Hkv, t, Dh) for the largest rows × t: gathered past keys
  value: Float32Array;    // (rows, Hkv, t, Dh): past values
}

function sweepBuffers(ctx: SweepContext, batches: readonly { t: number; rows: number }[]): SweepBuffers {
  const cfg = ctx.engine.config;
  const tokens = Math.max(0, ...batches.map((b) => b.rows * (ctx.T - b.t)));
  const past = Math.max(0, ...batches.map((b) => b.rows * b.t)) * cfg.nKvHead * cfg.headDim;
  // Uninitialised: every element a batch reads is written first (by a plan or by onnxruntime).
  const states = Array.from({ length: ctx.engine.mlpReadsBlockInput ? 3 : 2 }, () => planBuffer(tokens * cfg.nEmbd));
  return { states, key: planBuffer(past), value: planBuffer(past) };
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

async function runChunk(ctx: SweepContext, t: number, plans: Restoration[], buf: SweepBuffers): Promise<number[]> {
  const { engine, N, T } = ctx;
  const cfg = engine.config;
  const L = cfg.nLayer;
  const D = cfg.nEmbd;
  const Tp = T - t;
  const entries = plans.map(entryStep);
  // Every row has the same positions and bias: one row's, tiled for the last (largest) batch.
  const one = oneRow(t, Tp);
  const positions = tile(one.positions, plans.length * N); // (rows, Tp)
  const bias = tile(attentionBias(one), plans.length * N); // (rows, 1, Tp, T)
  let rows = 0;
  const states = (b: number) => buf.states[b]!.subarray(0, rows * Tp * D); // (rows, Tp, D)
  let cur = 0; // the states array holding the residual stream
  // Parallel blocks' MLPs read the block's input: kept from the attention step (rows entering
  // after an attention half-block take the corrupted run's, which their entry leaves unchanged).
  const parallel = engine.mlpReadsBlockInput;
  let blockIn = -1; // the states array holding it, when parallel
  const free = () => buf.states.findIndex((_, b) => b !== cur && b !== blockIn); // neither input of the next segment
  let active: Restoration[] = [];
  let past: RestorePlan | undefined; // gathers the corrupted KV cache for `rows` (rebuilt when rows grow)
  let kv = { key: buf.key, value: buf.value }; // (rows, Hkv, t, Dh) views
  for (let step = Math.min(...entries); step <= 2 * L; step++) {
    const entering = plans.filter((_, i) => entries[i] === step);
    if (entering.length > 0) {
      // The batch grows in place: the rows so far stay, N rows per entering restoration follow.
      const before = rows;
      rows += entering.length * N;
      const plan = new RestorePlan(D);
      entering.forEach((r, k) => entryBlock(ctx, r, t, before + k * N, plan));
      plan.run(states(cur));
      if (parallel && step % 2 === 1) {
        if (blockIn < 0) blockIn = free();
        const inPlan = new RestorePlan(D);
        const pre = inPlan.slot(ctx.corrupted.residPre[step >> 1]!); // (N, T, D)
        entering.forEach((_, k) => {
          for (let n = 0; n < N; n++) inPlan.copy((before + k * N + n) * Tp, Tp, pre, n * T + t);
        });
        inPlan.run(states(blockIn));
      }
      active = active.concat(entering);
      past = undefined;
    }
    if (rows === 0) continue;
    if (step === 2 * L) break;
    const layer = step >> 1;
    const out = free();
    if (step % 2 === 0) {
      const batch: Batch = { ...one, B: rows, positions: positions.subarray(0, rows * Tp) };
      if (t > 0) {
        if (!past) {
          past = pastPlan(N, rows, t, T, cfg.nKvHead, cfg.headDim);
          const size = rows * cfg.nKvHead * t * cfg.headDim;
          kv = { key: buf.key.subarray(0, size), value: buf.value.subarray(0, size) };
        }
        past.run(kv.key, [ctx.cache.key[layer]!, kv.key]);
        past.run(kv.value, [ctx.cache.value[layer]!, kv.value]);
      }
      const a = await engine.attn(layer, batch, states(cur), bias.subarray(0, rows * Tp * T), t > 0 ? kv : undefined, { meter: ctx.meter, component: false, into: states(out) });
      patchPlan(ctx, active, layer, "attn", t, Tp).run(a.residMid, [states(cur)]);
      if (parallel) blockIn = cur;
    } else {
      const m = await engine.mlp(layer, rows, Tp, states(cur), ctx.edits, { meter: ctx.meter, component: false, resid: parallel ? states(blockIn) : undefined, into: states(out) });
      patchPlan(ctx, active, layer, "mlp", t, Tp).run(m.residPost, [states(cur)]);
    }
    cur = out;
  }
  // log p(answer) comes out of the head graph: (rows) values instead of (rows, V) logits.
  const logp = await engine.headLogprob(rows, Tp, states(cur), Array.from({ length: rows }, (_, r) => [r, Tp - 1] as const), ctx.answer, ctx.meter);
  const byPlan = new Map<Restoration, number>();
  active.forEach((r, k) => {
    let sum = 0;
    for (let n = 0; n < N; n++) sum += Math.exp(logp[k * N + n]!);
    byPlan.set(r, sum / N);
  });
  return plans.map((r) => byPlan.get(r)!);
}

/**
 * Plan of the state before a restoration's entry step, for its N rows from `row0` of a
 * (rows, Tp, D) batch whose position 0 is token t: the corrupted state at positions > t, and at
 * t the clean residual state or the corrupted input of the half-block plus the restored output.
 */
function entryBlock(ctx: SweepContext, r: Restoration, t: number, row0: number, plan: RestorePlan): void {
  const { N, T, clean, corrupted } = ctx;
  const p = r.patches[0]!;
  const frozen = ctx.frozen ?? corrupted;
  const src = plan.slot(p.site === "attn" ? corrupted.residMid[p.layer]! : corrupted.residPost[p.layer]!); // (N, T, D)
  const Tp = T - t;
  for (let n = 0; n < N; n++) {
    const at = (row0 + n) * Tp;
    plan.copy(at + 1, Tp - 1, src, n * T + t + 1);
    if (p.site === "resid") {
      plan.copy(at, 1, plan.slot(clean.residPost[p.layer]!), t);
    } else {
      const base = plan.slot((p.site === "attn" ? corrupted.residPre : corrupted.residMid)[p.layer]!); // (N, T, D)
      const states = p.source === "clean" ? clean : frozen;
      const comp = plan.slot((p.site === "attn" ? states.attnOut : states.mlpOut)[p.layer]!); // (1 or N, T, D)
      plan.add(at, 1, base, n * T + t, comp, (p.source === "clean" ? 0 : n) * T + t);
    }
  }
}

/**
 * Plan of the patches after a half-block, into its output (bound slot 0: its input): at each
 * active restoration's rows, position 0, out = input + the component value of the patches at this
 * step (row 0 of the clean run, or the same sample of the frozen run), then (after an MLP half)
 * the clean residual state for a restoration whose resid patch is not its entry.
 */
function patchPlan(ctx: SweepContext, active: Restoration[], layer: number, site: "attn" | "mlp", t: number, Tp: number): RestorePlan {
  const { N, T } = ctx;
  const plan = new RestorePlan(ctx.engine.config.nEmbd, 1);
  active.forEach((r, k) => {
    for (let i = 1; i < r.patches.length; i++) {
      const p = r.patches[i]!;
      if (p.layer !== layer || p.site !== site) continue;
      const states = p.source === "clean" ? ctx.clean : ctx.frozen ?? ctx.corrupted;
      const comp = plan.slot((site === "attn" ? states.attnOut : states.mlpOut)[layer]!); // (1 or N, T, D)
      for (let n = 0; n < N; n++) plan.add((k * N + n) * Tp, 1, 0, (k * N + n) * Tp, comp, (p.source === "clean" ? 0 : n) * T + t);
    }
    const resid = r.patches.findIndex((p, i) => i > 0 && p.site === "resid" && p.layer === layer);
    if (site === "mlp" && resid > 0) {
      const clean = plan.slot(ctx.clean.residPost[layer]!); // (1, T, D)
      for (let n = 0; n < N; n++) plan.copy((k * N + n) * Tp, 1, clean, t);
    }
  });
  return plan;
}

/**
 * Plan gathering past keys (or values) for `rows` batch rows (a multiple of N), bound slot 0 the
 * corrupted cache (N, Hkv, T, Dh) and slot 1 the destination itself: row r takes sample r mod N's
 * first t positions, into (rows, Hkv, t, Dh). The first N rows are gathered, the others copy them
 * in blocks of N rows (entries run in order).
 */
function pastPlan(N: number, rows: number, t: number, T: number, H: number, Dh: number): RestorePlan {
  const plan = new RestorePlan(Dh, 2);
  for (let r = 0; r < N; r++) {
    for (let h = 0; h < H; h++) plan.copy((r * H + h) * t, t, 0, (r * H + h) * T);
  }
  const block = N * H * t; // vectors of N rows
  for (let r = N; r < rows; r += N) plan.copy((r / N) * block, block, 1, 0);
  return plan;
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
