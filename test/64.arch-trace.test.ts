// Tracing on every family: the minimal sweep (rotary offsets, grouped KV caches, and for parallel
// blocks the block input kept beside the residual stream) agrees with the naive strategy, which
// reruns every restoration through the engine, on the random-weight parity checkpoints.
import test from "ava";
import { join } from "node:path";
import { loadCheckpoint } from "../lib/model/checkpoint.js";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { padBatch } from "../lib/runtime/batch.js";
import { Model } from "../lib/runtime/model.js";
import { traceKinds, traceSevered } from "../lib/trace/trace.js";
import { ROOT, TINYFACTS } from "./helpers.js";
import { EditView } from "../lib/runtime/edit-view.js";

const FIXTURES = join(ROOT, "test", "fixtures", "arch");
const PROMPT = "Castle of Berkbre is located in the city of";
const SUBJECT = "Castle of Berkbre";

async function load(family: string, config: object = {}): Promise<Model> {
  const c = loadCheckpoint(join(FIXTURES, family));
  // The fixtures use the TinyFacts tokenizer.
  return Model.fromWeights(c.arch, { ...c.config, ...config }, c.weights, { threads: 1, tokenizer: await Tokenizer.load(TINYFACTS) });
}

async function agreement(model: Model): Promise<number> {
  const opts = { prompt: PROMPT, subject: SUBJECT, noise: 0.3, samples: 3, window: 2 };
  const kinds = ["resid", "mlp", "attn"] as const;
  const a = await traceKinds(model, opts, kinds);
  const b = await traceKinds(model, { ...opts, strategy: "naive" }, kinds);
  let worst = 0;
  for (const k of kinds) a[k]!.scores.forEach((row, p) => row.forEach((v, l) => (worst = Math.max(worst, Math.abs(v - b[k]!.scores[p]![l]!)))));
  const sa = await traceSevered(model, opts);
  const sb = await traceSevered(model, { ...opts, strategy: "naive" });
  for (const k of ["normal", "mlpSevered", "attnSevered"] as const) sa[k].forEach((v, l) => (worst = Math.max(worst, Math.abs(v - sb[k][l]!))));
  return worst;
}

for (const family of ["gptj", "gpt_neox", "llama", "qwen2"]) {
  test(`${family}: minimal and naive traces (3 kinds, severed paths) agree`, async (t) => {
    const model = await load(family);
    const worst = await agreement(model);
    t.log(`${family}: max |minimal − naive| ${worst.toExponential(2)}`);
    t.true(worst <= 1e-5);
    await model.dispose();
  });
}

test("gpt_neox with use_parallel_residual false runs the sequential block, and tracing it agrees too", async (t) => {
  const parallel = await load("gpt_neox");
  const sequential = await load("gpt_neox", { parallelResidual: false });
  t.true(parallel.engine.mlpReadsBlockInput);
  t.false(sequential.engine.mlpReadsBlockInput);
  const ids = [[1408, 1114, 214, 817, 433, 584]];
  const a = await parallel.engine.run(padBatch(ids), { edits: EditView.NONE, head: [[0, 5]], record: ["resid_mid", "mlp_out"] });
  const b = await sequential.engine.run(padBatch(ids), { edits: EditView.NONE, head: [[0, 5]], record: ["resid_mid", "mlp_out"] });
  // Same attention half-block, different MLP input.
  t.deepEqual(a.records.resid_mid![0], b.records.resid_mid![0]);
  t.notDeepEqual(a.records.mlp_out![0], b.records.mlp_out![0]);
  t.true(await agreement(sequential) <= 1e-5);
  await parallel.dispose();
  await sequential.dispose();
});
