// MEMIT's targets z: for each request, the output of block `layer` at the subject's last token that
// makes the model say the new object (kmeng01/memit compute_z). δ_r is optimised with Adam on the
// ROME loss (NLL of the new object over the templated prompts, KL at "{} is a", weight decay),
// kept within clamp · ‖z_init‖; a request stops when its loss falls below 5e-2. The requests of a
// chunk run together (memit-z-layout.ts): the layers up to `layer` once, the layers above over the
// columns before the earliest subject-last token once, and each step is one run of the batched
// gradient graph over the requests still optimising.
import { RomeError } from "../errors.js";
import { throwIfAborted, type CallOptions } from "../runtime/call.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Model, ModelCallOptions } from "../runtime/model.js";
import type { Located } from "./lookup.js";
import { layoutChunk } from "./memit-z-layout.js";
import { zSession, zStepBytes, ZARENA_BYTES, ZG } from "./memit-z-graph.js";
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
  const cfg = model.config;
  const D = cfg.nEmbd;
  const V = cfg.vocabSize;
  const R = requests.length;
  // A chunk's rows: each request's rewriting prompts (at most) and its KL prompt, over the columns
  // from the earliest subject-last token on (memit-z-layout.ts).
  const rows = requests.reduce((n, q) => n + q.rewriting.length + 1, 0);
  const window = Math.max(...requests.flatMap((q) => [...q.rewriting, q.kl].map((x) => x.ids.length - x.index)));
  const z = await zSession(model, layer, call.edits, zStepBytes(model, layer, rows, window) <= ZARENA_BYTES);
  const lay = await layoutChunk(model, layer, requests, z, call);
  const { zInit, promptRow, tokenRequest, tokenRow, weights } = lay;
  const initNorm = requests.map((_, r) => norm(zInit.subarray(r * D, (r + 1) * D)));

  const deltas = new Float32Array(R * D); // (R, D)
  const adams = requests.map(() => new Adam(D, p.lr));
  const losses: ValueStep[][] = requests.map(() => []);
  const converged = requests.map(() => false);
  let active = requests.map((_, r) => r); // requests still optimising
  let fed = lay.feeds(active);
  let fedFor = active;                    // the requests `fed` holds
  // The KL reference is each request's distribution at δ = 0 (R, V), which the first run computes
  // with the KL term off (it and its gradient are zero there).
  let klInit: Float32Array | undefined;
  const nll = new Float64Array(R);
  const logSum = new Float64Array(tokenRequest.length ? Math.max(...tokenRow) + 1 : 0); // per row Σ log p(target tokens)
  for (let it = 0; it < p.steps && active.length > 0; it++) {
    throwIfAborted(call.signal);
    // Rebuild the feeds without the requests that stopped once they are a tenth of the rows fed.
    if (active.length <= 0.9 * fedFor.length) {
      fed = lay.feeds(active);
      fedFor = active;
    }
    const feeds = fed.feeds;
    const Rf = fedFor.length;
    const dIn = new Float32Array(Rf * D); // (Rf, D)
    fedFor.forEach((r, i) => dIn.set(deltas.subarray(r * D, (r + 1) * D), i * D));
    feeds[ZG.deltas] = { data: dIn, dims: [Rf, D] };
    const kl = new Float32Array(Rf * V); // (Rf, V)
    if (klInit) fedFor.forEach((r, i) => kl.set(klInit!.subarray(r * V, (r + 1) * V), i * V));
    feeds[ZG.klInit] = { data: kl, dims: [Rf, V] };
    feeds[ZG.klFactor] = { data: Float32Array.of(klInit ? p.klFactor : 0), dims: [] };
    const res = await z.session.run(feeds, klInit ? FETCH : [...FETCH, ZG.klLogprobs]);
    klInit ??= res[ZG.klLogprobs]!.slice();
    const tl = res[ZG.targetLogprobs]!; // (tokens fed)
    const klEach = res[ZG.klEach]!;      // (Rf)
    const grad = res[`grad_${ZG.deltas}`]!; // (Rf, D)
    nll.fill(0);
    fed.tokens.forEach((t, i) => {
      nll[tokenRequest[t]!] -= weights[t]! * tl[i]!;
      logSum[tokenRow[t]!] = 0;
    });
    fed.tokens.forEach((t, i) => (logSum[tokenRow[t]!] += tl[i]!));
    let ran = 0;
    const on = new Set(active);
    fedFor.forEach((r, i) => {
      if (!on.has(r)) return; // stopped: still fed until the next rebuild
      ran++;
      const q = requests[r]!;
      const d = deltas.subarray(r * D, (r + 1) * D);
      const dn = norm(d);
      const n2 = initNorm[r]! * initNorm[r]!;
      const wd = p.weightDecay * (dn / n2);
      const loss = nll[r]! + klEach[i]! + wd;
      if (!Number.isFinite(loss)) throw new RomeError("ERR_NOT_FINITE", `the target optimisation of request ${r} diverged at step ${it} (loss ${loss}); lower the learning rate`);
      let avgProb = 0;
      for (const b of promptRow[r]!) avgProb += Math.exp(logSum[b]! / q.target.length) / q.rewriting.length;
      losses[r]!.push({ loss, nll: nll[r]!, kl: klEach[i]!, weightDecay: wd, avgProb });
      if (loss < STOP_LOSS) converged[r] = true;
      if (loss < STOP_LOSS || it === p.steps - 1) return;
      const g = grad.slice(i * D, (i + 1) * D);
      // d/dδ of wd · ‖δ‖ / ‖z_init‖² (0 at δ = 0, as PyTorch's norm gradient)
      if (dn > 0) for (let j = 0; j < D; j++) g[j] = Math.fround(g[j]! + Math.fround((p.weightDecay / n2) * (d[j]! / dn)));
      adams[r]!.step(d, g);
      const maxNorm = p.clampNormFactor * initNorm[r]!;
      const m = norm(d);
      if (m > maxNorm) for (let j = 0; j < D; j++) d[j] = Math.fround(d[j]! * (maxNorm / m));
    });
    advance(ran);
    active = active.filter((r) => !converged[r] && it < p.steps - 1);
  }
  const out = new Float32Array(R * D);
  for (let i = 0; i < R * D; i++) out[i] = zInit[i]! + deltas[i]!;
  return { z: out, zInit, losses, converged };
}

/** The outputs each step reads (and, on the first step, the KL reference's log-probabilities). */
const FETCH = [ZG.targetLogprobs, ZG.klEach, `grad_${ZG.deltas}`];

function norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}
