// Edit sets as values: every call runs against the edits enabled when it started (or given as its
// `edits` option), whatever apply, undo, enableOnly and withOnly do on other async paths while it
// runs; concurrent withOnly scopes never see each other nor change the model's selection; a
// multi-layer rank-r edit stacks, undoes and exports bit for bit.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { exportCheckpoint, exportEdits, loadEdits } from "../lib/edit/export.js";
import { rome } from "../lib/edit/rome.js";
import { loadStats, type Stats } from "../lib/edit/stats.js";
import { RomeError } from "../lib/errors.js";
import { readCounterFact, evaluateRecords } from "../lib/eval/counterfact.js";
import { EditView } from "../lib/runtime/edit-view.js";
import type { LowRankEdit, RankOneEdit } from "../lib/runtime/edits.js";
import { Model } from "../lib/runtime/model.js";
import { trace } from "../lib/trace/trace.js";
import { maxAbsDiff, tempDir, TINYFACTS } from "./helpers.js";

const golden = JSON.parse(readFileSync(join(TINYFACTS, "golden-edits.json"), "utf8"));
const PROMPT = "Castle of Berkbre is located in the city of";
const TRACE = { prompt: PROMPT, subject: "Castle of Berkbre", kind: "mlp" as const, samples: 3, window: 3 };
const REQUEST = { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" };

let model: Model;
let stats: Stats;
let F: number;
let D: number;
test.before(async () => {
  model = await Model.load(TINYFACTS);
  stats = { ...loadStats(join(TINYFACTS, "stats-layer1.safetensors")), layer: 1 };
  F = model.config.nInner;
  D = model.config.nEmbd;
});
test.after.always(async () => model?.dispose());

/** Deterministic pseudo-random values in [-scale, scale). */
function values(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32 - 0.5) * 2 * scale;
  });
}
const rankOne = (layer: number, seed: number): Omit<RankOneEdit, "id"> => ({ layer, u: values(F, seed, 0.2), v: values(D, seed + 1, 0.2) });

/** Resolves after `n` turns of the event loop (lets engine calls in flight advance). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** A seeded schedule of edit-set changes on another async path: apply, undo, enableOnly, withOnly. */
async function churn(seed: number, steps: number): Promise<void> {
  let s = seed;
  const next = () => (s = (Math.imul(s, 48271) + 11) >>> 0) % 1000;
  const mine: string[] = [];
  for (let i = 0; i < steps; i++) {
    await turns(next() % 4);
    const op = next() % 4;
    if (op === 0 || mine.length === 0) mine.push(model.edits.apply(rankOne(next() % model.config.nLayer, next())));
    else if (op === 1) model.edits.undo(mine.pop()!);
    else if (op === 2) model.edits.enableOnly(mine.slice(0, 1));
    else await model.edits.withOnly(mine.slice(-1), () => turns(next() % 3));
  }
  for (const id of mine) model.edits.undo(id);
  model.edits.enableOnly();
}

test.serial("calls in flight keep their edit set while others apply, undo and switch edits (bit-identical to serial calls)", async (t) => {
  const records = readCounterFact(join(TINYFACTS, "counterfact.json")).slice(0, 2);
  const romeOpts = { stats, layer: 1, contextTemplates: golden.templates, hparams: { vNumGradSteps: 4 } };
  // Four calls started together (each captures the edit set when it starts).
  const run = async () => {
    const [tr, predict, evaluated, edit] = await Promise.all([
      trace(model, TRACE), model.predict([PROMPT, "Tower of Deathproust can be found in the city of"], { topK: 3 }),
      evaluateRecords(model, records), rome(model, REQUEST, romeOpts),
    ]);
    return { trace: tr.scores, predict, eval: evaluated, rome: edit };
  };
  const strip = (r: Awaited<ReturnType<typeof run>>) => ({ ...r, rome: { u: r.rome.u, v: r.rome.v, losses: r.rome.losses } });

  // Serial baselines: unedited, and with one edit at layer 2 applied.
  const base = strip(await run());
  const id = model.edits.apply({ ...rankOne(2, 7), id: "fixed" });
  const edited = strip(await run());
  model.edits.undo(id);
  t.true(maxAbsDiff(base.trace.flat(), edited.trace.flat()) > 1e-3, "the fixed edit changes the trace");

  for (let trial = 0; trial < 2; trial++) {
    // Calls started on the unedited model, then the edit applied at once and churn on another path.
    const calm = [run(), run()];
    model.edits.apply({ ...rankOne(2, 7), id: "fixed" });
    const during = run(); // started with the fixed edit
    const noise = churn(100 + trial, 12);
    const [a, b, c] = await Promise.all([...calm, during, noise]);
    model.edits.undo("fixed");
    t.deepEqual(strip(a!), base, `trial ${trial}: a call started unedited`);
    t.deepEqual(strip(b!), base, `trial ${trial}: a second call started unedited`);
    t.deepEqual(strip(c!), edited, `trial ${trial}: a call started with the edit`);
  }
  t.deepEqual(model.edits.list(), []);
});

test.serial("concurrent withOnly scopes see their own selections and leave the model's intact", async (t) => {
  const id1 = model.edits.apply(rankOne(1, 11));
  const id2 = model.edits.apply(rankOne(3, 13));
  const serial = async (ids: string[]) => (await model.nextTokenLogits([PROMPT], { edits: ids }))[0]!;
  const only1 = await serial([id1]);
  const only2 = await serial([id2]);
  const both = (await model.nextTokenLogits([PROMPT]))[0]!;
  t.true(maxAbsDiff(only1, only2) > 1e-3 && maxAbsDiff(only1, both) > 1e-3);

  const scoped = (ids: string[], delay: number) => model.edits.withOnly(ids, async (view) => {
    t.deepEqual(view.ids, ids);
    await turns(delay);
    const inside = (await model.nextTokenLogits([PROMPT]))[0]!;
    await turns(delay);
    return inside;
  });
  const [a, b, outside] = await Promise.all([scoped([id1], 1), scoped([id2], 3), (async () => { await turns(2); return (await model.nextTokenLogits([PROMPT]))[0]!; })()]);
  t.deepEqual(a, only1);
  t.deepEqual(b, only2);
  t.deepEqual(outside, both, "a call outside the scopes sees every enabled edit");
  t.deepEqual(model.edits.list().map((e) => e.enabled), [true, true], "no edit left disabled");
  t.deepEqual((await model.nextTokenLogits([PROMPT]))[0]!, both);

  // enableOnly is the model's selection; an explicit `edits` option overrides it for one call.
  model.edits.enableOnly([id2]);
  t.deepEqual((await model.nextTokenLogits([PROMPT]))[0]!, only2);
  t.deepEqual((await model.nextTokenLogits([PROMPT], { edits: [id1] }))[0]!, only1);
  t.deepEqual((await model.nextTokenLogits([PROMPT], { edits: EditView.NONE }))[0]!, (await model.nextTokenLogits([PROMPT], { edits: [] }))[0]!);
  model.edits.enableOnly();
  const err = await t.throwsAsync(model.nextTokenLogits([PROMPT], { edits: ["nope"] }), { instanceOf: RomeError });
  t.is(err!.code, "ERR_EDIT_UNKNOWN");
  model.edits.clear();
});

test.serial("a multi-layer rank-r edit equals its rank-one parts, undoes bit for bit and round-trips through exports", async (t) => {
  const before = (await model.nextTokenLogits([PROMPT]))[0]!;
  const r = 3;
  const parts = [1, 4].map((layer, k) => Array.from({ length: r }, (_, j) => rankOne(layer, 1000 + 10 * k + j)));
  // U (F, r): column j is part j's u; V (r, D): row j is part j's v.
  const multi: Omit<LowRankEdit, "id"> = {
    layers: parts.map((ps) => {
      const u = new Float32Array(F * r);
      ps.forEach((p, j) => p.u.forEach((x, f) => (u[f * r + j] = x)));
      const v = new Float32Array(r * D);
      ps.forEach((p, j) => v.set(p.v, j * D));
      return { layer: ps[0]!.layer, u, v };
    }),
    info: { method: "test" },
  };
  const id = model.edits.apply(multi);
  const edited = (await model.nextTokenLogits([PROMPT]))[0]!;
  t.true(maxAbsDiff(edited, before) > 1e-3);
  const summary = model.edits.list()[0]!;
  t.deepEqual([summary.layer, summary.layers, summary.rank], [1, [1, 4], 2 * r]);
  model.edits.undo(id);
  t.deepEqual((await model.nextTokenLogits([PROMPT]))[0]!, before, "undo is bit-exact");

  // The same factors as 2r rank-one edits, applied in column order, stack to the same U and V.
  const ones = parts.flat().map((p) => model.edits.apply(p));
  t.deepEqual((await model.nextTokenLogits([PROMPT]))[0]!, edited);
  for (const one of ones) model.edits.undo(one);

  // Applied beside a ROME-shaped edit, exported, reloaded: both forms round-trip exactly.
  const dir = tempDir(t);
  const idMulti = model.edits.apply(multi);
  const idOne = model.edits.apply(rankOne(2, 5));
  const both = (await model.nextTokenLogits([PROMPT]))[0]!;
  exportEdits(model, join(dir, "edits.safetensors"));
  await exportCheckpoint(model, join(dir, "ckpt"));
  model.edits.clear();
  const loaded = loadEdits(join(dir, "edits.safetensors"), model);
  t.deepEqual(loaded.map((e) => e.id), [idMulti, idOne]);
  t.deepEqual((loaded[0] as LowRankEdit).layers.map((l) => l.layer), [1, 4]);
  t.is((loaded[1] as RankOneEdit).layer, 2);
  for (const e of loaded) model.edits.apply(e);
  t.deepEqual((await model.nextTokenLogits([PROMPT]))[0]!, both);
  model.edits.clear();
  const reloaded = await Model.load(join(dir, "ckpt"));
  const d = maxAbsDiff((await reloaded.nextTokenLogits([PROMPT]))[0]!, both);
  await reloaded.dispose();
  t.true(d <= 1e-3, `merged checkpoint logits differ by ${d}`);
  t.deepEqual((await model.nextTokenLogits([PROMPT]))[0]!, before);
});

test.serial("bad edits are refused with codes and change nothing", async (t) => {
  const code = (fn: () => unknown) => (t.throws(fn, { instanceOf: RomeError }) as RomeError).code;
  t.is(code(() => model.edits.apply({ layers: [] })), "ERR_ARGUMENT");
  t.is(code(() => model.edits.apply({ layers: [{ layer: 1, u: new Float32Array(F * 2), v: new Float32Array(D * 3) }] })), "ERR_ARGUMENT");
  t.is(code(() => model.edits.apply({ layers: [{ layer: 1, u: new Float32Array(F), v: new Float32Array(D) }, { layer: 1, u: new Float32Array(F), v: new Float32Array(D) }] })), "ERR_ARGUMENT");
  t.is(code(() => model.edits.apply({ layers: [{ layer: 99, u: new Float32Array(F), v: new Float32Array(D) }] })), "ERR_ARGUMENT");
  t.is(code(() => model.edits.apply({ layers: [{ layer: 1, u: new Float32Array(F).fill(NaN), v: new Float32Array(D) }] })), "ERR_NOT_FINITE");
  t.deepEqual(model.edits.list(), []);
  // The model keeps its own copy: changing the caller's arrays afterwards changes nothing.
  const e = rankOne(1, 3);
  model.edits.apply(e);
  const applied = (await model.nextTokenLogits([PROMPT]))[0]!;
  e.u.fill(0);
  t.deepEqual((await model.nextTokenLogits([PROMPT]))[0]!, applied);
  model.edits.clear();
});
