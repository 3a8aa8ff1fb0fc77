// Averaged indirect effects on a hand-computed example (two facts, two layers), checked against
// the reference notebook's bucketing: pooled rows, mean minus the mean low score, std ddof 0.
import test from "ava";
import { averageEffects, averageEffectsByKind, BUCKETS } from "../lib/trace/average.js";
import type { TraceGrid } from "../lib/trace/grid.js";
import { RomeError } from "../lib/errors.js";

const TOL = 1e-12;

// Fact A: 8 tokens, subject [1, 4): first 1, middle 2, last 3; first after 4; further 5, 6; last 7.
const A: TraceGrid = {
  scores: [[0.1, 0.1], [0.2, 0.4], [0.3, 0.5], [0.6, 0.2], [0.5, 0.1], [0.2, 0.3], [0.0, 0.0], [0.4, 0.8]],
  tokens: ["a", "b", "c", "d", "e", "f", "g", "h"],
  subjectRange: [1, 4], lowScore: 0.1, highScore: 0.9, kind: "resid", window: 1, answer: { token: " x" },
};
// Fact B: 4 tokens, one-token subject [0, 1): row 0 is both first and last subject token, no middle.
const B: TraceGrid = {
  scores: [[0.4, 0.6], [0.3, 0.1], [0.5, 0.5], [0.9, 0.1]],
  tokens: ["p", "q", "r", "s"],
  subjectRange: [0, 1], lowScore: 0.3, highScore: 0.7, kind: "resid", window: 1, answer: { token: " y" },
};
// A wrong prediction: skipped by default, as the reference does.
const WRONG: TraceGrid = { ...B, scores: B.scores.map((r) => r.map(() => 5)), correctPrediction: false };

function near(t: { true(v: boolean, m?: string): void }, actual: number[][], expected: number[][], what: string) {
  let d = 0;
  expected.forEach((row, i) => row.forEach((v, j) => { d = Math.max(d, Math.abs(actual[i]![j]! - v)); }));
  t.true(d <= TOL, `${what}: max diff ${d}`);
}

test("buckets, means, std and 95% intervals match the hand computation", (t) => {
  const avg = averageEffects([A, WRONG, B]);
  t.deepEqual(avg.buckets, [...BUCKETS]);
  t.is(avg.n, 2);
  t.is(avg.skipped, 1);
  t.is(avg.kind, "resid");
  near(t, [[avg.highMean, avg.lowMean, avg.totalEffect]], [[0.8, 0.2, 0.6]], "high/low");
  t.deepEqual(avg.count, [2, 1, 2, 2, 3, 2]); // further tokens pool A5, A6, B2
  // mean of bucket rows minus lowMean (0.2); e.g. last subject: (A3 + B0)/2 − 0.2 = [0.3, 0.2]
  near(t, avg.mean, [[0.1, 0.3], [0.1, 0.3], [0.3, 0.2], [0.2, -0.1], [0.7 / 3 - 0.2, 0.8 / 3 - 0.2], [0.45, 0.25]], "mean");
  near(t, avg.meanClipped, [[0.1, 0.3], [0.1, 0.3], [0.3, 0.2], [0.2, 0], [0.7 / 3 - 0.2, 0.8 / 3 - 0.2], [0.45, 0.25]], "clipped");
  const furtherStd = Math.sqrt(((0.2 - 0.7 / 3) ** 2 + (0 - 0.7 / 3) ** 2 + (0.5 - 0.7 / 3) ** 2) / 3);
  near(t, avg.std, [[0.1, 0.1], [0, 0], [0.1, 0.2], [0.1, 0], [furtherStd, Math.sqrt(((0.3 - 0.8 / 3) ** 2 + (0 - 0.8 / 3) ** 2 + (0.5 - 0.8 / 3) ** 2) / 3)], [0.25, 0.35]], "std");
  near(t, avg.ci95, avg.std.map((row) => row.map((s) => (1.96 * s) / Math.sqrt(2))), "ci95");
  t.true(Math.abs(avg.ci95[0]![0]! - 0.13859292911256332) < TOL); // numpy, reference notebook code
});

test("pool 'fact' averages each fact's multi-token bucket first", (t) => {
  const avg = averageEffects([A, B], { pool: "fact" });
  t.deepEqual(avg.count, [2, 1, 2, 2, 2, 2]);
  // further: A → mean(A5, A6) = [0.1, 0.15]; B → B2 = [0.5, 0.5]; mean [0.3, 0.325] − 0.2
  near(t, [avg.mean[4]!], [[0.1, 0.125]], "further");
});

test("incorrect predictions can be included; mixed kinds need a kind", (t) => {
  t.is(averageEffects([A, WRONG], { includeIncorrect: true }).n, 2);
  const mlp: TraceGrid = { ...A, kind: "mlp", window: 10 };
  const err = t.throws(() => averageEffects([A, mlp]), { instanceOf: RomeError });
  t.is(err?.code, "ERR_ARGUMENT");
  const byKind = averageEffectsByKind([A, mlp, B]);
  t.deepEqual(Object.keys(byKind).sort(), ["mlp", "resid"]);
  t.is(byKind.mlp!.n, 1);
  t.is(byKind.mlp!.window, 10);
  t.is(byKind.resid!.n, 2);
});

test("a subject that ends the prompt has no first-subsequent row; empty buckets are NaN", (t) => {
  const end: TraceGrid = { ...B, scores: [[0.5, 0.5], [0.7, 0.9]], tokens: ["p", "q"], subjectRange: [0, 2] };
  const avg = averageEffects([end]);
  t.deepEqual(avg.count, [1, 0, 1, 0, 0, 1]);
  t.true(avg.mean[1]!.every(Number.isNaN));
  t.true(avg.mean[3]!.every(Number.isNaN));
  near(t, [avg.mean[2]!, avg.mean[5]!], [[0.4, 0.6], [0.4, 0.6]], "last subject = last token");
});

test("bad input is RomeError", (t) => {
  t.is(t.throws(() => averageEffects([]), { instanceOf: RomeError })?.code, "ERR_ARGUMENT");
  const ragged: TraceGrid = { ...A, scores: [...A.scores.slice(0, 7), [0.1]] };
  t.regex(t.throws(() => averageEffects([A, ragged]), { instanceOf: RomeError })?.message ?? "", /layers/);
  const badRange: TraceGrid = { ...A, subjectRange: [3, 3] };
  t.regex(t.throws(() => averageEffects([badRange]), { instanceOf: RomeError })?.message ?? "", /subjectRange/);
  t.is(t.throws(() => averageEffects([A], { kind: "hidden" as never }), { instanceOf: RomeError })?.code, "ERR_UNKNOWN_KIND");
});
