import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { padBatch, sliceColumns, sliceRows, splitBatch } from "../lib/runtime/batch.js";
import { runRows } from "../lib/runtime/engine-rows.js";
import { EditView } from "../lib/runtime/edit-view.js";
import { Model } from "../lib/runtime/model.js";
import { maxAbsDiff, TINYFACTS } from "./helpers.js";

const golden = JSON.parse(readFileSync(join(TINYFACTS, "golden.json"), "utf8"));
const TOL = 1e-4; // the parity tolerance against the independent PyTorch implementation

let model: Model;
test.before(async () => {
  model = await Model.load(TINYFACTS);
});
test.after.always(async () => {
  await model?.dispose();
});

test("final logits of 8 prompts match PyTorch within 1e-4 (one padded batch)", async (t) => {
  const logits = await model.nextTokenLogits(golden.prompts.map((p: { prompt: string }) => p.prompt));
  golden.prompts.forEach((p: { last_logits: number[]; prompt: string }, i: number) => {
    const d = maxAbsDiff(logits[i]!, p.last_logits);
    t.true(d <= TOL, `${p.prompt}: max diff ${d}`);
  });
});

test("residual stream after every block and MLP keys match PyTorch within 1e-4", async (t) => {
  const p = golden.prompts[0];
  const { records } = await model.forward(p.ids, { record: ["resid_post", "mlp_key"] });
  for (let l = 0; l < model.config.nLayer; l++) {
    const dr = maxAbsDiff(records.resid_post![l]!, p.resid_post[l].flat());
    const dk = maxAbsDiff(records.mlp_key![l]!, p.mlp_key[l].flat());
    t.true(dr <= TOL, `layer ${l} resid max diff ${dr}`);
    t.true(dk <= TOL, `layer ${l} key max diff ${dk}`);
  }
});

test("greedy continuations with the KV cache are identical to PyTorch's", async (t) => {
  for (const p of golden.prompts) {
    t.deepEqual(await model.generateIds(p.ids, { maxTokens: p.greedy_ids.length }), p.greedy_ids, p.prompt);
  }
});

test("KV-cached decoding gives the logits of a full recomputation", async (t) => {
  const ids: number[] = golden.prompts[1].ids;
  const full = await model.engine.run(padBatch([ids]), { edits: EditView.NONE, head: ids.map((_, i) => [0, i] as const) });
  const V = model.config.vocabSize;
  const prefix = ids.slice(0, 4);
  let run = await model.engine.run(padBatch([prefix]), { edits: EditView.NONE, keepCache: true, head: [[0, 3]] });
  let batch = padBatch([prefix]);
  const { nextStep } = await import("../lib/runtime/batch.js");
  for (let i = 4; i < ids.length; i++) {
    batch = nextStep(batch, [ids[i]!]);
    run = await model.engine.run(batch, { edits: EditView.NONE, cache: run.cache, keepCache: true, head: [[0, 0]] });
    const d = maxAbsDiff(run.logits!, full.logits!.subarray(i * V, (i + 1) * V));
    t.true(d <= 1e-4, `position ${i}: max diff ${d}`);
  }
});

test("padding is invisible: a batch of different lengths equals each prompt alone", async (t) => {
  const prompts = ["Castle of Berkbre is", "Castle of Berkbre is located in the city of", "The"];
  const batched = await model.nextTokenLogits(prompts);
  for (let i = 0; i < prompts.length; i++) {
    const [alone] = await model.nextTokenLogits([prompts[i]!]);
    const d = maxAbsDiff(batched[i]!, alone!);
    t.true(d <= 1e-5, `${prompts[i]}: max diff ${d}`);
  }
});

test("a run started at layer l from recorded states, and one stopped early, agree with the full run", async (t) => {
  const ids: number[] = golden.prompts[2].ids;
  const batch = padBatch([ids]);
  const full = await model.engine.run(batch, { edits: EditView.NONE, record: ["resid_pre", "resid_post"], head: [[0, ids.length - 1]] });
  const resumed = await model.engine.run(batch, { edits: EditView.NONE, from: { layer: 3, resid: full.records.resid_pre![3]! }, head: [[0, ids.length - 1]] });
  t.is(maxAbsDiff(resumed.logits!, full.logits!), 0);
  const early = await model.engine.run(batch, { edits: EditView.NONE, stopLayer: 2 });
  t.is(maxAbsDiff(early.resid, full.records.resid_post![1]!), 0);
});

test("a split batch (first columns with their cache, then the rest from layer l) computes the full batch's states", async (t) => {
  const ids = golden.prompts.slice(0, 3).map((p: { ids: number[] }) => p.ids);
  const batch = padBatch(ids); // rows of different lengths: the split falls inside some rows' padding
  const { B, T } = batch;
  const D = model.config.nEmbd;
  const full = await model.engine.run(batch, { edits: EditView.NONE, record: ["resid_pre"] });
  for (const at of [1, Math.floor(T / 2), T - 1]) {
    const { head, tail } = splitBatch(batch, at);
    const from = { layer: 2, resid: full.records.resid_pre![2]! };
    const first = await model.engine.run(head, { edits: EditView.NONE, from: { layer: 2, resid: sliceColumns(from.resid, B, T, D, 0, at) }, keepCache: true });
    const rest = await model.engine.run(tail, { edits: EditView.NONE, from: { layer: 2, resid: sliceColumns(from.resid, B, T, D, at, T) }, cache: first.cache! });
    t.deepEqual([tail.past, tail.T, head.T], [at, T - at, at]);
    const want = sliceColumns(full.resid, B, T, D, at, T);
    const scale = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const d = maxAbsDiff(rest.resid, want);
    t.true(d <= 1e-6 * scale, `split at ${at}: max diff ${d} (max |resid| ${scale})`); // float32 reordering only
  }
  t.throws(() => splitBatch(batch, T + 1), { instanceOf: RomeError, code: "ERR_ARGUMENT" });
});

test("runRows (slices of rows) gives the whole batch's residual stream and cache, from layer l too", async (t) => {
  const ids = golden.prompts.map((p: { ids: number[] }) => p.ids);
  const batch = padBatch(ids); // 8 rows of different lengths
  const { B, T } = batch;
  const full = await model.engine.run(batch, { edits: EditView.NONE, record: ["resid_pre"], keepCache: true });
  const close = (a: Float32Array, b: Float32Array, what: string) => {
    const scale = b.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const d = maxAbsDiff(a, b);
    t.true(a.length === b.length && d <= 1e-6 * scale, `${what}: max diff ${d} (max ${scale})`);
  };
  for (const rows of [1, 3, B]) {
    const sliced = await runRows(model.engine, batch, { edits: EditView.NONE, keepCache: true }, rows);
    close(sliced.resid, full.resid, `${rows} rows per run: resid`);
    for (let l = 0; l < model.config.nLayer; l++) {
      close(sliced.cache!.key[l]!, full.cache!.key[l]!, `${rows} rows per run: key ${l}`);
      close(sliced.cache!.value[l]!, full.cache!.value[l]!, `${rows} rows per run: value ${l}`);
    }
    const upper = await runRows(model.engine, batch, { edits: EditView.NONE, from: { layer: 3, resid: full.records.resid_pre![3]! }, keepCache: true }, rows);
    close(upper.resid, full.resid, `${rows} rows per run from layer 3`);
    t.false(2 in upper.cache!.key, "no keys below the layer the run started at");
    close(upper.cache!.key[4]!, full.cache!.key[4]!, `${rows} rows per run from layer 3: key 4`);
  }
  const part = sliceRows(batch, 2, 5);
  t.deepEqual([part.B, part.T, part.pad], [3, T, batch.pad.slice(2, 5)]);
  t.is(sliceRows(batch, 0, B).ids.length, B * T);
});

test("hooks see and can patch every intermediate state", async (t) => {
  const ids: number[] = golden.prompts[0].ids;
  const batch = padBatch([ids]);
  const base = await model.engine.run(batch, { edits: EditView.NONE, head: [[0, ids.length - 1]] });
  const seen: string[] = [];
  const zeroed = await model.engine.run(batch, {
    edits: EditView.NONE,
    head: [[0, ids.length - 1]],
    hooks: {
      tokEmbed: () => seen.push("embed"),
      attn: (l) => seen.push(`attn${l}`),
      mlp: (l, s) => {
        seen.push(`mlp${l}`);
        if (l === 5) { // remove the last MLP's contribution: resid_post := resid_mid
          for (let i = 0; i < s.residPost.length; i++) s.residPost[i]! -= s.mlpOut[i]!;
        }
      },
    },
  });
  t.is(seen.length, 1 + 2 * model.config.nLayer);
  t.true(maxAbsDiff(zeroed.logits!, base.logits!) > 1e-2, "patching the last MLP changes the logits");
});

test("predict, logprob and generate agree with each other", async (t) => {
  const prompt = "Castle of Berkbre is located in the city of";
  const [preds] = await model.predict([prompt], { topK: 3 });
  t.is(preds![0]!.token, " Montreal");
  t.true(preds![0]!.prob > preds![1]!.prob);
  const [lp] = await model.logprob([{ prompt, target: preds![0]!.token }]);
  t.true(Math.abs(Math.exp(lp!.sum) - preds![0]!.prob) < 1e-5);
  const [two] = await model.logprob([{ prompt: "Castle of Berkbre", target: " is located in" }]);
  t.is(two!.tokens.length, 3);
  t.true(Math.abs(two!.mean - two!.sum / 3) < 1e-12);
  const text = await model.generate(prompt, { maxTokens: 3 });
  t.true(text.startsWith(" Montreal"), text);
  const s1 = await model.generate("Castle of Berkbre is", { maxTokens: 6, topK: 5, seed: 7 });
  t.is(await model.generate("Castle of Berkbre is", { maxTokens: 6, topK: 5, seed: 7 }), s1);
});

test("bad inputs are RomeErrors with codes", async (t) => {
  const long = "of ".repeat(80);
  t.is((await t.throwsAsync(model.nextTokenLogits([long]), { instanceOf: RomeError }))!.code, "ERR_CONTEXT_LENGTH");
  t.is((await t.throwsAsync(model.nextTokenLogits([""]), { instanceOf: RomeError }))!.code, "ERR_EMPTY_PROMPT");
  t.is((await t.throwsAsync(model.predict(["x"], { topK: 0 }), { instanceOf: RomeError }))!.code, "ERR_ARGUMENT");
  const e = await t.throwsAsync(model.generate("x", { maxToken: 3 } as never), { instanceOf: RomeError });
  t.regex(e!.message, /did you mean 'maxTokens'/);
  t.is((await t.throwsAsync(model.forward([1, 99999]), { instanceOf: RomeError }))!.code, "ERR_ARGUMENT");
  t.is((await t.throwsAsync(model.forward([1], { record: ["bogus" as never] }), { instanceOf: RomeError }))!.code, "ERR_ARGUMENT");
  t.is((await t.throwsAsync(model.generate("of ".repeat(10), { maxTokens: 60 }), { instanceOf: RomeError }))!.code, "ERR_CONTEXT_LENGTH");
  await t.throwsAsync(Model.load(TINYFACTS, { threads: 0 }), { instanceOf: RomeError, message: /Expected integer between 1 and 64 for threads but received 0/ });
});
