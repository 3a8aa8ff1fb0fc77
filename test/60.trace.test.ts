import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { Model } from "../lib/runtime/model.js";
import { subjectEmbeddingStd } from "../lib/trace/noise.js";
import { trace, traceKinds, traceSevered } from "../lib/trace/trace.js";
import { TINYFACTS } from "./helpers.js";

const golden = JSON.parse(readFileSync(join(TINYFACTS, "golden-traces.json"), "utf8"));
const known = JSON.parse(readFileSync(join(TINYFACTS, "known.json"), "utf8"));
const TOL = 1e-4; // the tolerance against the reference implementation's numbers
const GOLDEN_KIND = { resid: "hidden", mlp: "mlp", attn: "attn" } as const;

let model: Model;
test.before(async () => {
  model = await Model.load(TINYFACTS);
});
test.after.always(async () => model?.dispose());

for (const key of ["window_10", "window_3"]) {
  test(`every cell of the reference's traces matches (${key}, three kinds, minimal strategy)`, async (t) => {
    for (const c of golden[key]) {
      const window = golden.meta[key].window;
      const r = await traceKinds(model, { prompt: c.prompt, subject: c.subject, noise: c.noise, window, samples: golden.meta[key].samples }, ["resid", "mlp", "attn"]);
      for (const kind of ["resid", "mlp", "attn"] as const) {
        const res = r[kind]!;
        t.is(res.answer.id, c.answer_id);
        t.deepEqual(res.subjectRange, c.subject_range);
        t.deepEqual(res.inputIds, c.input_ids);
        t.true(Math.abs(res.highScore - c.high_score) <= TOL);
        t.true(Math.abs(res.lowScore - c.low_score) <= TOL);
        let maxd = 0;
        res.scores.forEach((row, i) => row.forEach((v, j) => (maxd = Math.max(maxd, Math.abs(v - c.scores[GOLDEN_KIND[kind]][i][j])))));
        t.true(maxd <= TOL, `${c.prompt} ${kind}: max cell diff ${maxd}`);
      }
    }
  });
}

test("the s3 noise level is the reference's: 3 × std of subject embeddings over known.json", async (t) => {
  const std = await subjectEmbeddingStd(model, known.map((k: { subject: string }) => k.subject));
  t.true(Math.abs(std - golden.meta.window_10.embedding_std) <= 1e-6, `std ${std} vs ${golden.meta.window_10.embedding_std}`);
  const r = await trace(model, { prompt: known[0].prompt, subject: known[0].subject, noise: { s3: known.map((k: { subject: string }) => k.subject) }, samples: 2 });
  t.true(Math.abs(r.noiseLevel - golden.meta.window_10.noise_level) <= 3e-6);
});

test("minimal and naive strategies agree on 50 facts (≤ 1e-5), and minimal executes ≤ 1.25× its minimal FLOPs", async (t) => {
  const kinds = ["resid", "mlp", "attn"] as const;
  let worst = 0;
  let worstRatio = 0;
  for (let i = 0; i < 50; i++) {
    const f = known[(i * 19) % known.length];
    const kind = kinds[i % 3]!;
    const opts = { prompt: f.prompt, subject: f.subject, noise: 0.47, samples: 3, window: 1 + (i % 6), kind };
    const a = await trace(model, opts);
    const b = await trace(model, { ...opts, strategy: "naive" });
    a.scores.forEach((row, p) => row.forEach((v, l) => (worst = Math.max(worst, Math.abs(v - b.scores[p]![l]!)))));
    t.true(Math.abs(a.lowScore - b.lowScore) <= 1e-5);
    worstRatio = Math.max(worstRatio, a.flops.executed / a.flops.minimal);
    t.true(b.flops.executed > 1.5 * a.flops.executed, "naive does more work");
  }
  t.log(`max score difference ${worst.toExponential(2)}, worst executed/minimal FLOPs ${worstRatio.toFixed(3)}`);
  t.true(worst <= 1e-5, `max difference ${worst}`);
  t.true(worstRatio <= 1.25, `executed/minimal ${worstRatio}`);
});

test("scores before the subject equal the low score; restoring the last state at the last layer gives the high score", async (t) => {
  const prompt = "The castle called Castle of Berkbre is located in the city of";
  const r = await trace(model, { prompt, subject: "Castle of Berkbre", noise: 0.47, samples: 4 });
  const [b] = r.subjectRange;
  t.true(b > 0);
  for (let p = 0; p < b; p++) t.deepEqual(r.scores[p], new Array(model.config.nLayer).fill(r.lowScore));
  const last = r.scores[r.scores.length - 1]!;
  t.true(Math.abs(last[last.length - 1]! - r.highScore) < 1e-6);
  t.true(r.highScore > r.lowScore);
});

test("the severed-path experiment agrees between strategies and freezing never helps at the last layer", async (t) => {
  const f = known[0];
  const opts = { prompt: f.prompt, subject: f.subject, noise: 0.47, samples: 4 };
  const a = await traceSevered(model, opts);
  const b = await traceSevered(model, { ...opts, strategy: "naive" });
  for (const k of ["normal", "mlpSevered", "attnSevered"] as const) {
    a[k].forEach((v, l) => t.true(Math.abs(v - b[k][l]!) <= 1e-5, `${k} layer ${l}`));
  }
  const L = a.layers - 1;
  // After the last layer nothing is left to freeze: the three curves meet.
  t.true(Math.abs(a.normal[L]! - a.mlpSevered[L]!) < 1e-6 && Math.abs(a.normal[L]! - a.attnSevered[L]!) < 1e-6);
});

test("an expected answer is scored and flagged when the model disagrees", async (t) => {
  const f = known[0];
  const agree = await trace(model, { prompt: f.prompt, subject: f.subject, answer: f.attribute, noise: 0.47, samples: 2 });
  t.true(agree.correctPrediction);
  const other = await trace(model, { prompt: f.prompt, subject: f.subject, answer: "Berlin", noise: 0.47, samples: 2 });
  t.false(other.correctPrediction);
  t.is(other.answer.token, " Berlin");
  t.true(other.highScore < 0.01);
});

test("bad inputs are RomeErrors with codes", async (t) => {
  const base = { prompt: "Castle of Berkbre is located in the city of", subject: "Castle of Berkbre", noise: 0.4 };
  const code = async (o: object) => ((await t.throwsAsync(trace(model, { ...base, ...o } as never), { instanceOf: RomeError })) as RomeError).code;
  t.is(await code({ subject: "Tower of Nowhere" }), "ERR_SUBJECT_NOT_FOUND");
  t.is(await code({ subject: "" }), "ERR_EMPTY_SUBJECT");
  t.is(await code({ prompt: "Castle of Berkbre " + "is ".repeat(70) }), "ERR_CONTEXT_LENGTH");
  t.is(await code({ samples: 0 }), "ERR_ARGUMENT");
  t.is(await code({ window: 0 }), "ERR_ARGUMENT");
  t.is(await code({ kind: "mlps" }), "ERR_UNKNOWN_KIND");
  t.is(await code({ noise: Number.NaN }), "ERR_ARGUMENT");
  t.is(await code({ subjectOccurrence: 1 }), "ERR_SUBJECT_NOT_FOUND");
  const e = await t.throwsAsync(trace(model, { ...base, sample: 3 } as never), { instanceOf: RomeError });
  t.regex(e!.message, /did you mean 'samples'/);
});
