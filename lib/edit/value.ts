// ROME's value v*: the MLP output at the subject's last token that makes the model say the new
// object. δ is optimised with Adam on the reference's loss (NLL of the new object over the
// templated prompts, KL at the "{} is a" prompt, weight decay), projected into a ball of
// clamp · ‖v_init‖ after each step. Layers up to the edited one, and the layers above over the
// columns before the subject, run once per edit; each step is one run of the derived gradient graph
// over the layers above, at the columns from the subject on.
import { RomeError } from "../errors.js";
import { attentionBias, padBatch, sliceColumns, splitBatch } from "../runtime/batch.js";
import { throwIfAborted, type CallOptions } from "../runtime/call.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Model } from "../runtime/model.js";
import type { Feed } from "../runtime/session.js";
import type { Located } from "./lookup.js";
import { feedLayersAbove, valueSession, VG } from "./value-graph.js";

export interface ValueParams {
  steps: number;
  lr: number;
  weightDecay: number;
  klFactor: number;
  clampNormFactor: number;
}

export interface ValueStep { loss: number; nll: number; kl: number; weightDecay: number; avgProb: number }

export interface ValueResult {
  /** (D) the optimised MLP output v* = v_init + δ */
  vStar: Float32Array;
  /** (D) the MLP output at the first prompt's subject-last token before optimisation */
  vInit: Float32Array;
  deltaNorm: number;
  losses: ValueStep[];
  /** Seconds spent in the layers below (once) and in the gradient steps. */
  seconds: { lower: number; steps: number };
}

/**
 * `rewriting`: prompts ending with the target's first tokens (target[:-1]), subject located;
 * `kl`: the "{} is a" prompt; `target`: the new object's token ids.
 */
export async function computeValue(model: Model, layer: number, rewriting: readonly Located[], kl: Located, target: readonly number[], edits: EditView, p: ValueParams, call: CallOptions = {}): Promise<ValueResult> {
  const cfg = model.config;
  const D = cfg.nEmbd;
  const all = [...rewriting, kl];
  const t0 = performance.now();
  const batch = padBatch(all.map((x) => x.ids));
  const { B, T } = batch;
  // Lower layers once: the residual stream after `layer` and the MLP output there.
  let mlpOut: Float32Array | undefined;
  const lower = await model.engine.run(batch, { edits, stopLayer: layer + 1, hooks: { mlp: (l, s) => { if (l === layer) mlpOut = s.mlpOut; } } });
  const at = (b: number, pos: number) => b * T + batch.pad[b]! + pos;
  const vInit = mlpOut!.slice(at(0, all[0]!.index) * D, (at(0, all[0]!.index) + 1) * D);
  const initNorm = norm(vInit);

  // δ enters at each row's subject-last token and attention is causal, so every column before the
  // earliest of them (P0) is the same at every step. The layers above run over those columns once,
  // keeping their keys and values, and each step runs only the window [P0, T) (W columns).
  const P0 = Math.min(...all.map((x, b) => batch.pad[b]! + x.index));
  const W = T - P0;
  const { head: prefix, tail: win } = splitBatch(batch, P0);
  const above = P0 > 0 ? (await model.engine.run(prefix, { edits, from: { layer: layer + 1, resid: sliceColumns(lower.resid, B, T, D, 0, P0) }, keepCache: true })).cache! : undefined;
  const wat = (b: number, pos: number) => b * W + batch.pad[b]! + pos - P0; // window offset of (row, position)

  const mask = new Float32Array(B * W);
  all.forEach((x, b) => (mask[wat(b, x.index)] = 1));
  const nT = target.length;
  const selNll: bigint[] = [];
  const targets: bigint[] = [];
  const weights: number[] = [];
  rewriting.forEach((x, b) => {
    const len = x.ids.length;
    for (let k = 0; k < nT; k++) {
      selNll.push(BigInt(b), BigInt(batch.pad[b]! + len - nT + k - P0));
      targets.push(BigInt(target[k]!));
      weights.push(1 / (nT * rewriting.length));
    }
  });
  const Nn = targets.length;
  const tensor = (data: Float32Array | BigInt64Array, dims: number[]): Feed => ({ data, dims });
  const feeds: Record<string, Feed> = {
    [VG.resid]: tensor(sliceColumns(lower.resid, B, T, D, P0, T), [B, W, D]),
    [VG.mask]: tensor(mask, [B, W, 1]),
    [VG.bias]: tensor(attentionBias(win), [B, 1, W, T]),
    [VG.selectNll]: tensor(BigInt64Array.from(selNll), [Nn, 2]),
    [VG.targets]: tensor(BigInt64Array.from(targets), [Nn, 1]),
    [VG.weights]: tensor(Float32Array.from(weights), [Nn]),
    [VG.selectKl]: tensor(BigInt64Array.from([BigInt(B - 1), BigInt(batch.pad[B - 1]! + kl.index - P0)]), [1, 2]),
  };
  const { session, weightNames } = await valueSession(model, layer, edits);
  feedLayersAbove(model, layer, edits, above, B, P0, weightNames, feeds);
  if (session.inputNames.includes(VG.positions)) feeds[VG.positions] = tensor(win.positions, [B, W]);
  const fetch = session.outputNames;
  const t1 = performance.now();

  const delta = new Float32Array(D);
  const adam = new Adam(D, p.lr);
  const losses: ValueStep[] = [];
  let klInit: Float32Array | undefined;
  for (let it = 0; it < p.steps; it++) {
    throwIfAborted(call.signal);
    feeds[VG.delta] = tensor(delta, [D]);
    // The KL reference is the distribution at δ = 0, which the first run computes: that run has
    // the KL term off (it and its gradient are zero there anyway) and keeps the distribution.
    feeds[VG.klInit] = tensor(klInit ?? new Float32Array(cfg.vocabSize), [1, cfg.vocabSize]);
    feeds[VG.klFactor] = tensor(Float32Array.of(klInit ? p.klFactor : 0), []);
    const out = await session.run(feeds, fetch);
    klInit ??= out[VG.klLogprobs]!.slice();
    const nll = out[VG.nll]![0]!;
    const klv = out[VG.kl]![0]!;
    const dn = norm(delta);
    const wd = p.weightDecay * (dn / (initNorm * initNorm));
    const loss = nll + klv + wd;
    if (!Number.isFinite(loss)) throw new RomeError("ERR_NOT_FINITE", `the value optimisation diverged at step ${it} (loss ${loss}); lower the learning rate`);
    const tl = out[VG.targetLogprobs]!;
    let avgProb = 0;
    for (let b = 0; b < rewriting.length; b++) {
      let s = 0;
      for (let k = 0; k < nT; k++) s += tl[b * nT + k]!;
      avgProb += Math.exp(s / nT) / rewriting.length;
    }
    losses.push({ loss, nll, kl: klv, weightDecay: wd, avgProb });
    const stop = loss < 5e-2 || it === p.steps - 1;
    call.onProgress?.({ phase: "steps", done: stop ? p.steps : it + 1, total: p.steps }); // an early stop completes the phase
    if (stop) break;
    const g = out[`grad_${VG.delta}`]!.slice();
    // d/dδ of wd · ‖δ‖ / ‖v_init‖² (0 at δ = 0, as PyTorch's norm gradient)
    if (dn > 0) for (let i = 0; i < D; i++) g[i] = Math.fround(g[i]! + Math.fround((p.weightDecay / (initNorm * initNorm)) * (delta[i]! / dn)));
    adam.step(delta, g);
    const maxNorm = p.clampNormFactor * initNorm;
    const n2 = norm(delta);
    if (n2 > maxNorm) for (let i = 0; i < D; i++) delta[i] = Math.fround(delta[i]! * (maxNorm / n2));
  }
  const vStar = new Float32Array(D);
  for (let i = 0; i < D; i++) vStar[i] = vInit[i]! + delta[i]!;
  return { vStar, vInit, deltaNorm: norm(delta), losses, seconds: { lower: (t1 - t0) / 1000, steps: (performance.now() - t1) / 1000 } };
}

/** PyTorch's Adam (β 0.9, 0.999, ε 1e-8, no weight decay) in float32 arithmetic. */
export class Adam {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private t = 0;
  constructor(n: number, private readonly lr: number) {
    this.m = new Float32Array(n);
    this.v = new Float32Array(n);
  }
  step(x: Float32Array, g: Float32Array): void {
    const f = Math.fround;
    this.t++;
    const bc1 = 1 - 0.9 ** this.t;
    const bc2 = 1 - 0.999 ** this.t;
    const stepSize = this.lr / bc1;
    const bc2Sqrt = Math.sqrt(bc2);
    for (let i = 0; i < x.length; i++) {
      this.m[i] = f(f(0.9 * this.m[i]!) + f(0.1 * g[i]!));
      this.v[i] = f(f(0.999 * this.v[i]!) + f(f(0.001 * g[i]!) * g[i]!));
      const denom = f(f(Math.sqrt(this.v[i]!) / bc2Sqrt) + 1e-8);
      x[i] = f(x[i]! - f(stepSize * f(this.m[i]! / denom)));
    }
  }
}

function norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}
