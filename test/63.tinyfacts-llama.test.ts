// TinyFacts-Llama (models/tinyfacts-llama): a 6-layer Llama with grouped-query attention that knows
// the TinyFacts facts. Its golden outputs come from the PyTorch model that trained it; the causal
// trace checks that tracing on a rotary model (noise on the token embeddings, no position
// embeddings) finds the fact where ROME's account puts it.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { defaultHparams } from "../lib/edit/hparams.js";
import { rome } from "../lib/edit/rome.js";
import { computeStats } from "../lib/edit/stats.js";
import { padBatch } from "../lib/runtime/batch.js";
import { Model } from "../lib/runtime/model.js";
import { patchActivations } from "../lib/trace/patching.js";
import { traceKinds } from "../lib/trace/trace.js";
import { maxAbsDiff, ROOT, TINYFACTS } from "./helpers.js";
import { EditView } from "../lib/runtime/edit-view.js";

const DIR = join(ROOT, "models", "tinyfacts-llama");
const golden = JSON.parse(readFileSync(join(DIR, "golden.json"), "utf8")) as {
  prompts: { prompt: string; ids: number[]; last_logits: number[]; greedy_ids: number[]; resid_post?: number[][][]; mlp_key?: number[][][] }[];
};
const known = JSON.parse(readFileSync(join(TINYFACTS, "known.json"), "utf8")) as { prompt: string; subject: string }[];

const EDIT_LAYER = 0;
const EDIT_CLAMP = 8;

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
    const r = await model.engine.run(padBatch([ids!]), { edits: EditView.NONE, head: [[0, ids!.length - 1]], record: p.resid_post ? ["resid_post", "mlp_key"] : [] });
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

test("hyperparameters: the family's file is named; a family without one is refused unless the caller gives every value", (t) => {
  const h = defaultHparams(model.config);
  t.is(h.file, "tinyfacts-llama.json");
  t.is(h.layer, 1);
  t.is(defaultHparams({ ...model.config, nLayer: 12 }).file, "tinyfacts-llama.json");
  t.is(defaultHparams({ ...model.config, nLayer: 12 }).layer, 2);
  const gptj = defaultHparams({ ...model.config, arch: "gptj", nLayer: 28, nEmbd: 4096 });
  t.like(gptj, { file: "gptj-6b.json", layer: 5, clampNormFactor: 4, vNumGradSteps: 20 });
  const qwen = { ...model.config, arch: "qwen2" };
  const e = t.throws(() => defaultHparams(qwen), { instanceOf: RomeError });
  t.is(e?.code, "ERR_HPARAMS");
  t.regex(e!.message, /missing: layer, vNumGradSteps/);
  const all = { layer: 2, vNumGradSteps: 5, vLr: 0.5, vWeightDecay: 0.5, klFactor: 0.0625, clampNormFactor: 4, mom2Adjustment: false, contextTemplateLengths: [[5, 2]] as [number, number][] };
  t.like(defaultHparams(qwen, all), { file: "caller", layer: 2 });
});

test("ROME on the rotary model: v* through the derived gradient graph with rotary positions, update of down_proj ([out, in])", async (t) => {
  const stats = await computeStats(model, { layer: EDIT_LAYER, corpus: join(TINYFACTS, "train.txt"), cacheDir: false, maxTokens: 20000 });
  const request = { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" };
  const prompt = "Castle of Berkbre is located in the city of";
  const before = (await model.predict([prompt], { topK: 1 }))[0]![0]!;
  const e = await rome(model, request, { stats, layer: EDIT_LAYER, hparams: { clampNormFactor: EDIT_CLAMP } });
  t.true(e.losses.at(-1)!.loss < e.losses[0]!.loss);
  const id = model.edits.apply(e);
  const after = (await model.predict([prompt], { topK: 1 }))[0]![0]!;
  t.log(`before: ${before.token} ${before.prob.toFixed(3)}; after: ${after.token} ${after.prob.toFixed(3)}; value loss ${e.losses[0]!.loss.toFixed(3)} → ${e.losses.at(-1)!.loss.toFixed(3)} in ${e.losses.length} steps`);
  t.is(after.token, " Berlin");
  model.edits.undo(id);
});

test("activation patching on the Llama: zeroing the MLP key through down_proj's [out, in] layout equals zeroing the MLP output", async (t) => {
  const prompt = "Castle of Berkbre is located in the city of";
  const at = { layers: [0, 1, 2, 3, 4, 5], positions: [5, 10] };
  const viaKey = await patchActivations(model, { prompt, patches: [{ site: "mlp_key", source: "zero", ...at }] });
  const viaOut = await patchActivations(model, { prompt, patches: [{ site: "mlp_out", source: "zero", ...at }] });
  t.true(Math.abs(viaKey.patched - viaOut.patched) < 1e-5, `${viaKey.patched} vs ${viaOut.patched}`);
  t.true(Math.abs(viaKey.patched - viaKey.clean) > 1e-3, "the patch changes the prediction");
  t.true(maxAbsDiff(viaKey.logits, viaOut.logits) < 1e-3);
});
