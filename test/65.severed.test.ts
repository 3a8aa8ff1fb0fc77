import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Model } from "../lib/runtime/model.js";
import { corrupt } from "../lib/trace/noise.js";
import { traceSevered } from "../lib/trace/trace.js";
import { TINYFACTS } from "./helpers.js";

// 5 facts from kmeng01/rome's causal_trace_frozen_mlp_attn notebook, its own cells run unchanged.
const golden = JSON.parse(readFileSync(join(TINYFACTS, "golden-severed.json"), "utf8"));
const TOL = 1e-4;
const ROWS = ["normal", "mlpSevered", "attnSevered"] as const;

let model: Model;
test.before(async () => {
  model = await Model.load(TINYFACTS);
});
test.after.always(async () => model?.dispose());

function worst(a: Record<(typeof ROWS)[number], number[]>, b: Record<(typeof ROWS)[number], number[]>, rows: readonly (typeof ROWS)[number][]): number {
  let m = 0;
  for (const k of rows) a[k].forEach((v, l) => (m = Math.max(m, Math.abs(v - b[k][l]!))));
  return m;
}

test('semantics "reference" reproduces the notebook\'s severed rows within 1e-4; "consistent" differs only in the severed rows', async (t) => {
  let consistentGap = 0;
  for (const r of golden.records) {
    const opts = { prompt: r.prompt, subject: r.subject, noise: golden.meta.noise_level, samples: golden.meta.samples };
    const ref = await traceSevered(model, { ...opts, semantics: "reference" });
    t.is(ref.semantics, "reference");
    t.true(worst(ref, r, ROWS) <= TOL, `${r.prompt}: ${worst(ref, r, ROWS)}`);
    t.true(Math.abs(ref.lowScore - r.lowScore) <= TOL && Math.abs(ref.highScore - r.highScore) <= TOL);
    const con = await traceSevered(model, opts);
    t.is(con.semantics, "consistent");
    t.true(worst(con, r, ["normal"]) <= TOL);
    consistentGap = Math.max(consistentGap, worst(con, r, ["mlpSevered", "attnSevered"]));
  }
  // The two corruptions of the reference's two passes make a visible difference (0.24 measured).
  t.true(consistentGap > 0.05, `gap ${consistentGap}`);
});

test('semantics "reference": the naive executor agrees with the minimal one', async (t) => {
  const r = golden.records[1];
  const opts = { prompt: r.prompt, subject: r.subject, noise: 0.47, samples: 3, semantics: "reference" as const };
  const a = await traceSevered(model, opts);
  const b = await traceSevered(model, { ...opts, strategy: "naive" });
  t.true(worst(a, b, ROWS) <= 1e-5, `${worst(a, b, ROWS)}`);
});

test("draw k of corrupt() is what the (k + 1)-th prng(N, e - b, D) call on one RandomState returns", (t) => {
  const [N, T, D] = [3, 4, 5];
  const range: [number, number] = [1, 4]; // 3 tokens: N·3·D = 45 values, odd, so the cached Gaussian matters
  for (const type of ["gauss", "uniform"] as const) {
    const both = new Float32Array(2 * N * T * D); // (2N, T, D): one draw of shape (2N, e − b, D) = two calls in a row
    corrupt(both, 2 * N, T, D, range, { type, level: 1 }, 7);
    const first = new Float32Array(N * T * D);
    const second = new Float32Array(N * T * D);
    corrupt(first, N, T, D, range, { type, level: 1 }, 7);
    corrupt(second, N, T, D, range, { type, level: 1 }, 7, 1);
    t.deepEqual(first, both.subarray(0, N * T * D));
    t.deepEqual(second, both.subarray(N * T * D));
  }
});

test("an unknown semantics is refused", async (t) => {
  const r = golden.records[0];
  await t.throwsAsync(traceSevered(model, { prompt: r.prompt, subject: r.subject, semantics: "paper" as never }), { code: "ERR_ARGUMENT" });
});
