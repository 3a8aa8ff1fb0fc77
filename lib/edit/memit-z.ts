// MEMIT's targets z: for each request, the output of block `layer` at the subject's last token that
// makes the model say the new object (kmeng01/memit compute_z). δ_r is optimised with Adam on the
// ROME loss (NLL of the new object over the templated prompts, KL at "{} is a", weight decay),
// kept within clamp · ‖z_init‖; a request stops when its loss falls below 5e-2. The requests of a
// chunk run together: the layers up to `layer` once, the layers above over the columns before the
// earliest subject-last token once, and each step is one run of the batched gradient graph.
import { RomeError } from "../errors.js";
import { attentionBias, padBatch, sliceColumns, splitBatch } from "../runtime/batch.js";
import { throwIfAborted, type CallOptions } from "../runtime/call.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Model, ModelCallOptions } from "../runtime/model.js";
import type { Feed } from "../runtime/session.js";
import type { Located } from "./lookup.js";
import { zSession, ZG } from "./memit-z-graph.js";
import { feedLayersAbove } from "./value-graph.js";
import { Adam, type ValueParams, type ValueStep } from "./value.js";

/** One request's prompts: rewriting prompts (template + prompt + target[:-1]), the KL prompt, the target ids. */
export interface TargetPrompts {
  rewriting: readonly Located[];
  kl: Located;
  target: readonly number[];
}

export interface TargetsResult {
  /** (R, D) z_r = z_init_r + δ_r */
  z: Float32Array;
  /** (R, D) block output at the first rewriting prompt's subject-last token before optimisation */
  zInit: Float32Array;
  /** Per request, the loss at each step it ran. */
  losses: ValueStep[][];
  /** Per request, whether it stopped early (loss below 5e-2). */
  converged: boolean[];
}

const STOP_LOSS = 5e-2;

/**
 * Optimises the targets of `requests` at the output of block `layer`, `chunk` requests per batched
 * run. Progress: phase "targets", one unit per request and step.
 */
export async function computeTargets(model: Model, layer: number, requests: readonly TargetPrompts[], p: ValueParams & { chunk: number }, call: ModelCallOptions = {}): Promise<TargetsResult> {
  const edits = model.edits.view(call.edits); // the call's edit set, captured before any await
  const D = model.config.nEmbd;
  const R = requests.length;
  const out: TargetsResult = { z: new Float32Array(R * D), zInit: new Float32Array(R * D), losses: [], converged: [] };
  const total = R * p.steps;
  let done = 0;
  for (let c = 0; c < R; c += p.chunk) {
    const part = requests.slice(c, c + p.chunk);
    const r = await optimiseChunk(model, layer, part, p, { ...call, edits }, (n) => {
      done += n;
      call.onProgress?.({ phase: "targets", done, total });
    });
    out.z.set(r.z, c * D);
    out.zInit.set(r.zInit, c * D);
    out.losses.push(...r.losses);
    out.converged.push(...r.converged);
  }
  call.onProgress?.({ phase: "targets", done: total, total });
  return out;
}

async function optimiseChunk(model: Model, layer: number, requests: readonly TargetPrompts[], p: ValueParams, call: CallOptions & { edits: EditView }, advance: (n: number) => void): Promise<TargetsResult> {
  const { edits } = call;
  const cfg = model.config;
  const D = cfg.nEmbd;
  const R = requests.length;
  // Rows: each request's rewriting prompts, then its KL prompt.
  const rows: Located[] = [];
  const rowRequest: number[] = [];
  const first: number[] = [];  // row of each request's first rewriting prompt
  const klRow: number[] = [];
  requests.forEach((q, r) => {
    first.push(rows.length);
    for (const x of q.rewriting) {
      rows.push(x);
      rowRequest.push(r);
    }
    klRow.push(rows.length);
    rows.push(q.kl);
    rowRequest.push(r);
  });
  const batch = padBatch(rows.map((x) => x.ids));
  const { B, T } = batch;
  const lower = await model.engine.run(batch, { edits, stopLayer: layer + 1 });
  throwIfAborted(call.signal);
  const at = (b: number) => (b * T + batch.pad[b]! + rows[b]!.index) * D;
  const zInit = new Float32Array(R * D);
  const initNorm: number[] = [];
  for (let r = 0; r < R; r++) {
    zInit.set(lower.resid.subarray(at(first[r]!), at(first[r]!) + D), r * D);
    initNorm.push(norm(zInit.subarray(r * D, (r + 1) * D)));
  }

  // Columns before the earliest subject-last token are the same at every step (see value.ts).
  const P0 = Math.min(...rows.map((x, b) => batch.pad[b]! + x.index));
  const W = T - P0;
  const { head: prefix, tail: win } = splitBatch(batch, P0);
  const above = P0 > 0 ? (await model.engine.run(prefix, { edits, from: { layer: layer + 1, resid: sliceColumns(lower.resid, B, T, D, 0, P0) }, keepCache: true })).cache! : undefined;
  const wat = (b: number, pos: number) => b * W + batch.pad[b]! + pos - P0;

  const mask = new Float32Array(B * W); // (B, W)
  rows.forEach((x, b) => (mask[wat(b, x.index)] = 1));
  const selNll: bigint[] = [];
  const targets: bigint[] = [];
  const weights: number[] = [];
  const tokenRequest: number[] = [];
  requests.forEach((q, r) => {
    const nT = q.target.length;
    q.rewriting.forEach((x, i) => {
      const b = first[r]! + i;
      for (let k = 0; k < nT; k++) {
        selNll.push(BigInt(b), BigInt(batch.pad[b]! + x.ids.length - nT + k - P0));
        targets.push(BigInt(q.target[k]!));
        weights.push(1 / (nT * q.rewriting.length));
        tokenRequest.push(r);
      }
    });
  });
  const Nn = targets.length;
  const tensor = (data: Float32Array | BigInt64Array, dims: number[]): Feed => ({ data, dims });
  const feeds: Record<string, Feed> = {
    [ZG.resid]: tensor(sliceColumns(lower.resid, B, T, D, P0, T), [B, W, D]),
    [ZG.mask]: tensor(mask, [B, W, 1]),
    [ZG.rowRequest]: tensor(BigInt64Array.from(rowRequest, BigInt), [B]),
    [ZG.bias]: tensor(attentionBias(win), [B, 1, W, T]),
    [ZG.selectNll]: tensor(BigInt64Array.from(selNll), [Nn, 2]),
    [ZG.targets]: tensor(BigInt64Array.from(targets), [Nn, 1]),
    [ZG.weights]: tensor(Float32Array.from(weights), [Nn]),
    [ZG.selectKl]: tensor(BigInt64Array.from(klRow.flatMap((b) => [BigInt(b), BigInt(batch.pad[b]! + rows[b]!.index - P0)])), [R, 2]),
  };
  const { session, weightNames } = await zSession(model, layer);
  feedLayersAbove(model, layer, edits, above, B, P0, weightNames, feeds);
  if (session.inputNames.includes(ZG.positions)) feeds[ZG.positions] = tensor(win.positions, [B, W]);
  const fetch = session.outputNames;

  const deltas = new Float32Array(R * D); // (R, D)
  const adams = requests.map(() => new Adam(D, p.lr));
  const losses: ValueStep[][] = requests.map(() => []);
  const active = requests.map(() => true);
  const converged = requests.map(() => false);
  let klInit: Float32Array | undefined;
  for (let it = 0; it < p.steps && active.some(Boolean); it++) {
    throwIfAborted(call.signal);
    feeds[ZG.deltas] = tensor(deltas, [R, D]);
    // The KL reference is each request's distribution at δ = 0, which the first run computes with
    // the KL term off (it and its gradient are zero there).
    feeds[ZG.klInit] = tensor(klInit ?? new Float32Array(R * cfg.vocabSize), [R, cfg.vocabSize]);
    feeds[ZG.klFactor] = tensor(Float32Array.of(klInit ? p.klFactor : 0), []);
    const res = await session.run(feeds, fetch);
    klInit ??= res[ZG.klLogprobs]!.slice();
    const tl = res[ZG.targetLogprobs]!; // (Nn)
    const klEach = res[ZG.klEach]!;      // (R)
    const grad = res[`grad_${ZG.deltas}`]!; // (R, D)
    const nll = new Float64Array(R);
    const logSum = new Float64Array(rows.length); // per row Σ log p(target tokens)
    for (let i = 0; i < Nn; i++) {
      nll[tokenRequest[i]!] -= weights[i]! * tl[i]!;
      logSum[Number(selNll[2 * i]!)] += tl[i]!;
    }
    let ran = 0;
    for (let r = 0; r < R; r++) {
      if (!active[r]) continue;
      ran++;
      const q = requests[r]!;
      const d = deltas.subarray(r * D, (r + 1) * D);
      const dn = norm(d);
      const n2 = initNorm[r]! * initNorm[r]!;
      const wd = p.weightDecay * (dn / n2);
      const loss = nll[r]! + klEach[r]! + wd;
      if (!Number.isFinite(loss)) throw new RomeError("ERR_NOT_FINITE", `the target optimisation of request ${r} diverged at step ${it} (loss ${loss}); lower the learning rate`);
      let avgProb = 0;
      for (let i = 0; i < q.rewriting.length; i++) avgProb += Math.exp(logSum[first[r]! + i]! / q.target.length) / q.rewriting.length;
      losses[r]!.push({ loss, nll: nll[r]!, kl: klEach[r]!, weightDecay: wd, avgProb });
      if (loss < STOP_LOSS) converged[r] = true;
      if (loss < STOP_LOSS || it === p.steps - 1) {
        active[r] = false;
        continue;
      }
      const g = grad.slice(r * D, (r + 1) * D);
      // d/dδ of wd · ‖δ‖ / ‖z_init‖² (0 at δ = 0, as PyTorch's norm gradient)
      if (dn > 0) for (let i = 0; i < D; i++) g[i] = Math.fround(g[i]! + Math.fround((p.weightDecay / n2) * (d[i]! / dn)));
      adams[r]!.step(d, g);
      const maxNorm = p.clampNormFactor * initNorm[r]!;
      const m = norm(d);
      if (m > maxNorm) for (let i = 0; i < D; i++) d[i] = Math.fround(d[i]! * (maxNorm / m));
    }
    advance(ran);
  }
  const z = new Float32Array(R * D);
  for (let i = 0; i < R * D; i++) z[i] = zInit[i]! + deltas[i]!;
  return { z, zInit, losses, converged };
}

function norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}
