// TinyFacts-Llama (models/tinyfacts-llama): a 6-layer Llama with grouped-query attention that knows
// the TinyFacts facts. Its golden outputs come from the PyTorch model that trained it; the causal
// trace checks that tracing on a rotary model (noise on the token embeddings, no position
// embeddings) finds the fact where ROME's account puts it.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { padBatch } from "../lib/runtime/batch.js";
import { Model } from "../lib/runtime/model.js";
import { traceKinds } from "../lib/trace/trace.js";
import { maxAbsDiff, ROOT, TINYFACTS } from "./helpers.js";

const DIR = join(ROOT, "models", "tinyfacts-llama");
const golden = JSON.parse(readFileSync(join(DIR, "golden.json"), "utf8")) as {
  prompts: { prompt: string; ids: number[]; last_logits: number[]; greedy_ids: number[]; resid_post?: number[][][]; mlp_key?: number[][][] }[];
};
const known = JSON.parse(readFileSync(join(TINYFACTS, "known.json"), "utf8")) as { prompt: string; subject: string }[];

let model: Model;
test.before(async () => {
  model = await Model.load(DIR);
});
test.after.always(async () => model?.dispose());

test("config: Llama with grouped-query attention, rotary, SwiGLU, untied head", (t) => {
  t.like(model.config, { arch: "llama", nLayer: 6, nEmbd: 128, nHead: 4, nKvHead: 2, headDim: 32, nInner: 352, tieWordEmbeddings: false, gatedMlp: true });
  t.deepEqual(model.config.rope, { theta: 10000, dims: 32, pairs: "half" });
});

test("token ids, last-position logits (≤ 1e-4), greedy continuations, residual stream and MLP keys equal the golden", async (t) => {
  let worst = 0;
  for (const p of golden.prompts) {
    const [ids] = await model.encodePrompts([p.prompt]);
    t.deepEqual(ids, p.ids);
    const r = await model.engine.run(padBatch([ids!]), { head: [[0, ids!.length - 1]], record: p.resid_post ? ["resid_post", "mlp_key"] : [] });
    worst = Math.max(worst, maxAbsDiff(r.logits!, p.last_logits));
    t.deepEqual(await model.generateIds(ids!, { maxTokens: p.greedy_ids.length }), p.greedy_ids, p.prompt);
    if (p.resid_post && p.mlp_key) {
      for (let l = 0; l < model.config.nLayer; l++) {
        // The residual stream grows to |x| ≈ 40: compare relative to its scale.
        t.true(maxAbsDiff(r.records.resid_post![l]!, p.resid_post[l]!.flat()) < 1e-4 * 50, `resid_post ${l}`);
        t.true(maxAbsDiff(r.records.mlp_key![l]!, p.mlp_key[l]!.flat()) < 1e-4 * 20, `mlp_key ${l}`);
      }
    }
  }
  t.log(`max |Δ logit| ${worst.toExponential(2)}`);
  t.true(worst < 1e-4);
});

test("a 3-kind causal trace reads the fact at the subject: its tokens beat every other token but the last (resid, mlp); attention matters at the last token", async (t) => {
  const noise = { s3: known.map((k) => k.subject) };
  for (const f of known.slice(0, 3)) {
    const r = await traceKinds(model, { prompt: f.prompt, subject: f.subject, samples: 10, noise }, ["resid", "mlp", "attn"]);
    for (const kind of ["resid", "mlp", "attn"] as const) {
      const res = r[kind]!;
      const T = res.scores.length;
      const [s0, s1] = res.subjectRange;
      const best = res.scores.map((row) => Math.max(...row));
      const others = best.filter((_, p) => (p < s0 || p >= s1) && p !== T - 1);
      const subject = Math.max(...best.slice(s0, s1));
      t.log(`${f.prompt} [${kind}]: subject ${subject.toFixed(3)}, other tokens ≤ ${Math.max(...others).toFixed(3)}, last ${best[T - 1]!.toFixed(3)}, low ${res.lowScore.toFixed(3)}`);
      t.true(res.correctPrediction);
      if (kind === "attn") t.true(best[T - 1]! > Math.max(subject, ...others), `${f.prompt} attn`);
      else t.true(subject > Math.max(...others), `${f.prompt} ${kind}`);
    }
  }
});
