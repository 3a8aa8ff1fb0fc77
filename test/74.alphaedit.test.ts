import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { alphaEditSolver, alphaEditState, type AlphaEditState } from "../lib/edit/alphaedit.js";
import { memitSolver, setupBatch } from "../lib/edit/memit.js";
import type { MemitRequest } from "../lib/edit/memit-requests.js";
import { spreadUpdates, type LayerFactors } from "../lib/edit/memit-spread.js";
import { loadStats, type Stats } from "../lib/edit/stats.js";
import { SafetensorsFile } from "../lib/model/safetensors.js";
import { Model } from "../lib/runtime/model.js";
import { relFrobenius, TINYFACTS } from "./helpers.js";

// The golden MEMIT batch's requests, templates and targets z, edited into layer 1 only.
const golden = JSON.parse(readFileSync(join(TINYFACTS, "golden-memit.json"), "utf8"));
const tensors = SafetensorsFile.open(join(TINYFACTS, "golden-memit.safetensors"));
const zAll = tensors.readFloat32("z");
tensors.close();
const requests: MemitRequest[] = golden.records.map((r: { requested_rewrite: { prompt: string; subject: string; target_new: { str: string } } }) => ({
  prompt: r.requested_rewrite.prompt, subject: r.requested_rewrite.subject, targetNew: r.requested_rewrite.target_new.str,
}));
const THRESHOLD = 0.02; // the reference's; 112 of layer 1's 512 directions lie below it
const ALPHA = 10;

let model: Model;
let stats: Stats;
let base: AlphaEditState;
test.before(async () => {
  model = await Model.load(TINYFACTS);
  stats = { ...loadStats(join(TINYFACTS, "stats-layer1.safetensors")), layer: 1 };
  base = alphaEditState([stats], THRESHOLD);
});

/** A fresh state (no batch edited yet) with the null space computed once. */
function freshState(): AlphaEditState {
  const ns = base.layers.get(1)!;
  return { ...base, layers: new Map([[1, { ...ns, previous: new Float64Array(ns.dim * ns.dim) }]]) };
}
test.after.always(async () => model?.dispose());

const F = 512;
const D = 128;

/** ΔW (F, D) = U V of one layer. */
function deltaOf(l: LayerFactors): Float64Array {
  const r = l.v.length / D;
  const out = new Float64Array(F * D);
  for (let f = 0; f < F; f++) for (let j = 0; j < r; j++) for (let d = 0; d < D; d++) out[f * D + d] += l.u[f * r + j]! * l.v[j * D + d]!;
  return out;
}

/** ‖kᵀ ΔW‖ for each row k of keys (n, F). */
function outputNorms(keys: ArrayLike<number>, delta: Float64Array): number[] {
  const n = keys.length / F;
  return Array.from({ length: n }, (_, r) => {
    let s = 0;
    for (let d = 0; d < D; d++) {
      let x = 0;
      for (let f = 0; f < F; f++) x += keys[r * F + f]! * delta[f * D + d]!;
      s += x * x;
    }
    return Math.sqrt(s);
  });
}

async function edit(reqs: MemitRequest[], z: Float32Array, solver: "memit" | ReturnType<typeof alphaEditSolver>) {
  const setup = await setupBatch(model, reqs, { layers: [1], stats: [stats], contextTemplates: golden.meta.template_groups }, "test");
  const solve = solver === "memit" ? memitSolver(model, setup.stats, 20) : solver.solve;
  const spread = await spreadUpdates(model, setup.batch, z, [1], solve);
  if (solver !== "memit") solver.commit();
  return spread;
}

test.serial("the update leaves keys in the preserved space unchanged (MEMIT's does not), and solves the reference's system", async (t) => {
  const state = freshState();
  const ns = state.layers.get(1)!;
  t.is(ns.dim, 112);
  const solver = alphaEditSolver(model, state, ALPHA);
  const a = await edit(requests, zAll, solver);
  const m = await edit(requests, zAll, "memit");
  const dA = deltaOf(a.layers[0]!);
  const dM = deltaOf(m.layers[0]!);
  // Preserved directions: keys x − Û Ûᵀ x (orthogonal to the null space) for 20 pseudo-random x.
  const preserved: number[] = [];
  for (let r = 0; r < 20; r++) {
    const x = Array.from({ length: F }, (_, f) => Math.sin(1 + 37 * r + 11 * f));
    const c = new Float64Array(ns.dim);
    for (let f = 0; f < F; f++) for (let j = 0; j < ns.dim; j++) c[j] += ns.basis[f * ns.dim + j]! * x[f]!;
    for (let f = 0; f < F; f++) for (let j = 0; j < ns.dim; j++) x[f]! -= ns.basis[f * ns.dim + j]! * c[j]!;
    preserved.push(...x);
  }
  const fro = (x: Float64Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0));
  const worstA = Math.max(...outputNorms(preserved, dA)) / fro(dA);
  const worstM = Math.max(...outputNorms(preserved, dM)) / fro(dM);
  t.true(worstA < 1e-6, `AlphaEdit moves a preserved direction by ${worstA} of ‖ΔW‖`);
  t.true(worstM > 1e-3, `MEMIT moves them by ${worstM}`);
  // The batch's own keys do move: the edit is not empty.
  t.true(Math.min(...outputNorms(a.keys[0]!, dA)) > 1);

  // The authors' form, solved densely.
  const e = relFrobenius(a.layers[0]!.u, referenceAdj(ns.basis, ns.dim, a.keys[0]!, new Float32Array(0)));
  t.true(e < 1e-5, `relative difference to the dense solve ${e}`);
});

test.serial("a second batch with the same state solves the reference's sequential system (earlier keys in cache_c) and moves the first batch's keys less", async (t) => {
  const first = requests.slice(0, 5);
  const second = requests.slice(5);
  const z1 = zAll.slice(0, 5 * D);
  const z2 = zAll.slice(5 * D);
  const state = freshState();
  const e1 = await edit(first, z1, alphaEditSolver(model, state, ALPHA));
  const keys1 = e1.keys[0]!;
  // The second batch is solved on the base model (its own update alone), with and without the first batch's keys.
  const e2 = await edit(second, z2, alphaEditSolver(model, state, ALPHA));
  const ns = state.layers.get(1)!;
  const e = relFrobenius(e2.layers[0]!.u, referenceAdj(ns.basis, ns.dim, e2.keys[0]!, keys1));
  t.true(e < 1e-5, `relative difference to the dense solve ${e}`);
  const withState = deltaOf(e2.layers[0]!);
  const fresh = deltaOf((await edit(second, z2, alphaEditSolver(model, freshState(), ALPHA))).layers[0]!);
  const kept = outputNorms(keys1, withState).reduce((a, b) => a + b);
  const moved = outputNorms(keys1, fresh).reduce((a, b) => a + b);
  t.true(kept < 0.95 * moved, `first batch's outputs moved by ${kept} with the state, ${moved} without`);
  t.is(state.layers.get(1)!.previous.some((x) => x !== 0), true);
});

/**
 * The authors' adj: (P (K Kᵀ + Kp Kpᵀ) + α I)⁻¹ P K (F, N) with P = Û Ûᵀ, for keys K (N, F) and
 * earlier keys Kp (n, F), solved densely.
 */
function referenceAdj(basis: Float64Array, m: number, K: Float32Array, Kp: Float32Array): Float64Array {
  const N = K.length / F;
  const P = new Float64Array(F * F);
  for (let i = 0; i < F; i++) for (let j = 0; j < F; j++) {
    let s = 0;
    for (let q = 0; q < m; q++) s += basis[i * m + q]! * basis[j * m + q]!;
    P[i * F + j] = s;
  }
  const project = (keys: Float32Array) => { // (F, n) P keysᵀ
    const n = keys.length / F;
    const out = new Float64Array(F * n);
    for (let i = 0; i < F; i++) for (let r = 0; r < n; r++) {
      let s = 0;
      for (let j = 0; j < F; j++) s += P[i * F + j]! * keys[r * F + j]!;
      out[i * n + r] = s;
    }
    return out;
  };
  const PK = project(K);
  const PKp = project(Kp);
  const n = Kp.length / F;
  const M = new Float64Array(F * F);
  for (let i = 0; i < F; i++) for (let j = 0; j < F; j++) {
    let s = 0;
    for (let r = 0; r < N; r++) s += PK[i * N + r]! * K[r * F + j]!;
    for (let r = 0; r < n; r++) s += PKp[i * n + r]! * Kp[r * F + j]!;
    M[i * F + j] = s + (i === j ? ALPHA : 0);
  }
  return gaussSolve(M, PK, F, N);
}

/** Solves M X = B for M (n, n), B (n, k) by Gaussian elimination with partial pivoting. */
function gaussSolve(m: Float64Array, b: Float64Array, n: number, k: number): Float64Array {
  const a = Float64Array.from(m);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r * n + c]!) > Math.abs(a[p * n + c]!)) p = r;
    if (p !== c) {
      for (let j = 0; j < n; j++) [a[c * n + j], a[p * n + j]] = [a[p * n + j]!, a[c * n + j]!];
      for (let j = 0; j < k; j++) [x[c * k + j], x[p * k + j]] = [x[p * k + j]!, x[c * k + j]!];
    }
    for (let r = c + 1; r < n; r++) {
      const f = a[r * n + c]! / a[c * n + c]!;
      if (f === 0) continue;
      for (let j = c; j < n; j++) a[r * n + j]! -= f * a[c * n + j]!;
      for (let j = 0; j < k; j++) x[r * k + j]! -= f * x[c * k + j]!;
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    for (let j = 0; j < k; j++) {
      let s = x[c * k + j]!;
      for (let q = c + 1; q < n; q++) s -= a[c * n + q]! * x[q * k + j]!;
      x[c * k + j] = s / a[c * n + c]!;
    }
  }
  return x;
}
