// CounterFact evaluation: the metric arithmetic on hand-checkable cases, the fluency entropy on a
// known string, dataset validation errors, and on TinyFacts one real ROME edit that flips the
// rewrite prompt's efficacy from 0 to 1, with undo restoring the unedited metrics exactly.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { loadStats } from "../lib/edit/stats.js";
import { rome } from "../lib/edit/rome.js";
import { Model } from "../lib/runtime/model.js";
import {
  evaluateRecords, parseCounterFact, readCounterFact, rewritePrompt, summarize, toRomeRequest, type CounterFactRecord,
} from "../lib/eval/counterfact.js";
import { editEachAlone, sequentialEdits } from "../lib/eval/experiments.js";
import { compareRetention, retentionByAge, retentionCurve } from "../lib/eval/retention.js";
import { harmonicMean, magnitude, meanInterval, ngramEntropy, successRate, textEntropy, wordTokenize } from "../lib/eval/metrics.js";
import { TINYFACTS } from "./helpers.js";

const TOL = 1e-12;

test("success rates and magnitudes follow the reference's inequalities", (t) => {
  const scores = [
    { prompt: "a", nllNew: 1, nllTrue: 2 }, // new wins
    { prompt: "b", nllNew: 3, nllTrue: 0.5 }, // true wins
    { prompt: "c", nllNew: 1, nllTrue: 1 }, // tie: a failure both ways
    { prompt: "d", nllNew: 0.1, nllTrue: 5 }, // new wins
  ];
  t.is(successRate(scores, "new"), 0.5);
  t.is(successRate(scores, "true"), 0.25);
  const em = (Math.exp(-1) - Math.exp(-2) + Math.exp(-3) - Math.exp(-0.5) + 0 + Math.exp(-0.1) - Math.exp(-5)) / 4;
  t.true(Math.abs(magnitude(scores, "new") - em) < TOL);
  t.true(Math.abs(magnitude(scores, "true") + em) < TOL);
  t.true(Number.isNaN(successRate([], "new")));
});

test("harmonic mean and 95% interval", (t) => {
  t.true(Math.abs(harmonicMean([1, 0.5, 0.25]) - 3 / 7) < TOL);
  t.is(harmonicMean([1, 0, 1]), 0);
  const iv = meanInterval([0, 1, 1, 1, NaN]); // NaN skipped: n = 4
  t.is(iv.n, 4);
  t.is(iv.mean, 0.75);
  t.true(Math.abs(iv.std - Math.sqrt(0.1875)) < TOL);
  t.true(Math.abs(iv.hi - iv.mean - (1.96 * Math.sqrt(0.1875)) / 2) < TOL);
});

test("n-gram entropy of a known string", (t) => {
  t.deepEqual(wordTokenize("Hello, world! It's well-known."), ["Hello", ",", "world", "!", "It's", "well-known", "."]);
  const toks = wordTokenize("a b a b");
  // bigrams ab, ba, ab → H2 = H(2/3, 1/3); trigrams aba, bab → H3 = 1 bit.
  const h2 = -(2 / 3) * Math.log2(2 / 3) - (1 / 3) * Math.log2(1 / 3);
  t.true(Math.abs(ngramEntropy(toks, 2) - h2) < TOL);
  t.true(Math.abs(ngramEntropy(toks, 3) - 1) < TOL);
  t.true(Math.abs(textEntropy("a b a b") - ((2 / 3) * h2 + 4 / 3) / 2) < TOL);
  t.is(textEntropy("a a a a a a"), 0); // one distinct bigram and trigram
  t.is(textEntropy("one"), 0);
});

const good: CounterFactRecord = {
  case_id: 0,
  requested_rewrite: { prompt: "{} is located in", subject: "Eiffel Tower", target_new: { str: "Rome" }, target_true: { str: "Paris" } },
  paraphrase_prompts: ["Where is the Eiffel Tower? It is in"], neighborhood_prompts: ["The Louvre is in"], attribute_prompts: [], generation_prompts: [],
};
const rr = good.requested_rewrite;

test("malformed records fail with ERR_DATASET naming the record and field", (t) => {
  const cases: [unknown, RegExp][] = [
    [{ records: [] }, /expected a JSON array/],
    [[good, 3], /record 1: expected an object/],
    [[{ ...good, case_id: -1 }], /record 0, field 'case_id': expected a non-negative integer/],
    [[good, { ...good }], /record 1, field 'case_id': 0 is also the id of record 0/],
    [[{ ...good, requested_rewrite: undefined }], /record 0, field 'requested_rewrite': missing/],
    [[{ ...good, requested_rewrite: { ...rr, prompt: "no placeholder" } }], /record 0, field 'requested_rewrite.prompt': must contain "\{\}" exactly once/],
    [[{ ...good, requested_rewrite: { ...rr, subject: " " } }], /record 0, field 'requested_rewrite.subject': empty/],
    [[{ ...good, requested_rewrite: { ...rr, target_new: "Rome" } }], /record 0, field 'requested_rewrite.target_new': expected an object/],
    [[{ ...good, requested_rewrite: { ...rr, target_true: { str: 5 } } }], /record 0, field 'requested_rewrite.target_true.str': expected a string but found number 5/],
    [[{ ...good, requested_rewrite: { ...rr, target_new: { str: "Paris" } } }], /record 0, field 'requested_rewrite.target_new.str': is the same as target_true/],
    [[good, { ...good, case_id: 1, paraphrase_prompts: "x" }], /record 1, field 'paraphrase_prompts': expected an array/],
    [[{ ...good, neighborhood_prompts: ["ok", ""] }], /record 0, field 'neighborhood_prompts\[1\]': expected a non-empty string/],
    [[{ ...good, neighborhood_prompts: undefined }], /record 0, field 'neighborhood_prompts': missing/],
  ];
  for (const [data, re] of cases) {
    const err = t.throws(() => parseCounterFact(data, "cf.json"), { instanceOf: RomeError }) as RomeError;
    t.is(err.code, "ERR_DATASET");
    t.regex(err.message, re);
    t.true(err.message.startsWith("cf.json: "));
  }
  // Optional lists read as []; extra fields dropped.
  const [r] = parseCounterFact([{ ...good, attribute_prompts: undefined, generation_prompts: undefined, extra: 1 }]);
  t.deepEqual(r, good);
  t.is(t.throws(() => readCounterFact("/nonexistent/cf.json"), { instanceOf: RomeError })!.code, "ERR_IO");
});

// ---- TinyFacts ----

const records = readCounterFact(join(TINYFACTS, "counterfact.json"));
const golden = JSON.parse(readFileSync(join(TINYFACTS, "golden-edits.json"), "utf8")) as { templates: string[] };
const modelP = Model.load(TINYFACTS);
const stats = loadStats(join(TINYFACTS, "stats-layer1.safetensors"));
const rec0 = records[0]!; // Castle of Berkbre: Montreal → Berlin

test.serial("TinyFacts counterfact.json: 990 valid records", (t) => {
  t.is(records.length, 990);
  t.is(rewritePrompt(rec0), "Castle of Berkbre is located in the city of");
  t.deepEqual(toRomeRequest(rec0), { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin", targetTrue: "Montreal" });
});

test.serial("unedited model: the true object is certain, so ES = 0 and NS = 1; NLLs are model.logprob's", async (t) => {
  const model = await modelP;
  const [m] = await evaluateRecords(model, [rec0]);
  t.is(m!.es, 0);
  t.is(m!.ns, 1);
  t.true(m!.em < -0.99, `EM ${m!.em} should be ≈ −1 (p_true ≈ 1, p_new ≈ 0)`);
  const [pNew, pTrue] = await model.logprob([{ prompt: rewritePrompt(rec0), target: " Berlin" }, { prompt: rewritePrompt(rec0), target: " Montreal" }]);
  // The engine's float32 sums depend on the batch's shape (padding, rows), so a different batch
  // agrees to rounding, not bit for bit: relative tolerance 1e-5.
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b));
  t.true(close(m!.rewrite[0]!.nllNew, -pNew!.mean), `${m!.rewrite[0]!.nllNew} vs ${-pNew!.mean}`);
  t.true(close(m!.rewrite[0]!.nllTrue, -pTrue!.mean), `${m!.rewrite[0]!.nllTrue} vs ${-pTrue!.mean}`);
  t.is(m!.neighborhood.length, rec0.neighborhood_prompts.length);
  // Grouping records into logprob calls changes no decision and no NLL beyond rounding.
  const five = records.slice(0, 5);
  const [a, b] = [await evaluateRecords(model, five, { recordsPerCall: 2 }), await evaluateRecords(model, five, { recordsPerCall: 5 })];
  const nll = (ms: typeof a) => ms.flatMap((r) => [...r.rewrite, ...r.paraphrase, ...r.neighborhood].flatMap((s) => [s.nllNew, s.nllTrue]));
  const [na, nb] = [nll(a), nll(b)];
  t.is(na.length, nb.length);
  const worst = Math.max(...na.map((x, i) => Math.abs(x - nb[i]!) / Math.max(1, Math.abs(nb[i]!))));
  t.true(worst <= 1e-5, `max relative NLL difference ${worst}`);
  t.deepEqual(a.map((r) => [r.es, r.ps, r.ns]), b.map((r) => [r.es, r.ps, r.ns]));
  const sum = summarize(await evaluateRecords(model, five));
  t.is(sum.es.mean, 0);
  t.is(sum.s.value, 0);
});

test.serial("a real edit flips efficacy from 0 to 1; undo restores the unedited metrics exactly", async (t) => {
  const model = await modelP;
  const opts = { stats, layer: 1, contextTemplates: golden.templates };
  const [before] = await evaluateRecords(model, [rec0], { generation: { maxLength: 24 } });
  t.is(before!.es, 0);
  const edit = await rome(model, toRomeRequest(rec0), opts);
  const id = model.edits.apply(edit);
  const [after] = await evaluateRecords(model, [rec0], { generation: { maxLength: 24 } });
  t.is(after!.es, 1, `NLL new ${after!.rewrite[0]!.nllNew} should be below NLL true ${after!.rewrite[0]!.nllTrue}`);
  t.true(after!.em > 0);
  t.true(after!.ge! > 0);
  model.edits.undo(id);
  // Same prompts in the same batches as before the edit: bit-identical numbers and generations.
  t.deepEqual((await evaluateRecords(model, [rec0], { generation: { maxLength: 24 } }))[0], before);

  // The guard, through the experiment driver: a refused edit leaves the unedited metrics and no edit.
  const out = await editEachAlone(model, [rec0], () => ({ ...opts, guard: { maxNormRatio: 0.5 } }), [before!]);
  t.regex(out[0]!.refused ?? "", /edit refused/);
  t.is(out[0]!.post, before);
  t.deepEqual(model.edits.list(), []);
});

test.serial("sequential driver: a curve point before and after each block, every edit undone at the end", async (t) => {
  const model = await modelP;
  const two = records.slice(0, 2);
  const res = await sequentialEdits(model, two, () => ({ stats, layer: 1, contextTemplates: golden.templates, hparams: { vNumGradSteps: 20 } }), { every: 1, first: 1, probe: async () => model.edits.list().length });
  t.deepEqual(res.curve.map((p) => [p.edits, p.first.n, p.all.n]), [[0, 1, 1], [1, 1, 1], [2, 1, 2]]);
  t.is(res.curve[0]!.first.es.mean, 0);
  t.deepEqual(res.curve.map((p) => p.probe), [0, 1, 2]); // the probe sees the edits applied so far
  t.is(res.normRatios.length, 2);
  t.is(res.esWhenMade.length, 2);
  t.deepEqual(res.curve.map((p) => p.es.length), [1, 1, 2]);
  t.deepEqual(res.curve.map((p) => p.es[0]), res.curve.map((p) => p.first.es.mean)); // the per-record ES behind the summary
  t.deepEqual(model.edits.list(), []);
  t.deepEqual(await evaluateRecords(model, two), await evaluateRecords(model, two)); // deterministic
});

test("retention: held shares count only edits that succeeded when made; paired comparison of two editors", (t) => {
  // Two sequences of 4 edits, a checkpoint every 2; summaries are not used by the retention code.
  const run = (made: number[], es: number[][]) => ({
    refused: [], normRatios: [], esWhenMade: made,
    curve: es.map((e, j) => ({ edits: 2 * j, es: e, first: summarize([]), all: summarize([]) })),
  });
  const a = run([1, 0, 1, 1], [[0, 0], [1, 0], [0, 1, 1, 1]]);
  const b = run([1, 1, 0, 0], [[0, 0], [1, 1], [1, 1, 0, 0]]);
  const curve = retentionCurve([a], 2);
  t.deepEqual(curve.map((p) => p.edits), [0, 2, 4]);
  t.deepEqual(curve.map((p) => p.firstEs.mean), [0, 0.5, 0.5]);
  t.deepEqual(curve.map((p) => p.firstHeld.n), [0, 1, 1]); // edit 1 failed when made: never counted
  t.deepEqual(curve.map((p) => p.firstHeld.mean).slice(1), [1, 0]);
  t.true(Math.abs(curve[2]!.allHeld.mean - 2 / 3) < TOL);
  const pooled = retentionCurve([a, b], 2);
  t.deepEqual(pooled.map((p) => p.firstEs.n), [4, 4, 4]);
  t.deepEqual(pooled.map((p) => p.firstHeld.mean).slice(1), [1, 2 / 3]);
  const ages = retentionByAge([a], 2);
  t.deepEqual(ages.map((x) => [x.minAge, x.maxAge, x.held.n, x.held.mean]), [[0, 1, 3, 1], [2, 3, 1, 0]]);
  const cmp = compareRetention([a], [b], 2);
  t.is(cmp.n, 2);
  t.deepEqual([cmp.efficacy.a, cmp.efficacy.b, cmp.efficacy.diff], [0.5, 1, -0.5]);
  t.deepEqual([cmp.held.a, cmp.held.b, cmp.held.diff], [0.5, 1, -0.5]);
  for (const d of [cmp.efficacy, cmp.held]) t.true(d.lo <= d.diff && d.diff <= d.hi);
  t.throws(() => compareRetention([a], [a, b], 2), { instanceOf: RomeError, code: "ERR_ARGUMENT" });
  t.throws(() => retentionCurve([a, run([1, 1], [[0, 0], [1, 1]])], 2), { instanceOf: RomeError, code: "ERR_ARGUMENT" });
  t.throws(() => retentionCurve([], 2), { instanceOf: RomeError, code: "ERR_ARGUMENT" });
});
