import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { exportCheckpoint, exportEdits, loadEdits } from "../lib/edit/export.js";
import { rome } from "../lib/edit/rome.js";
import { computeStats, loadStats, type Stats } from "../lib/edit/stats.js";
import { Model } from "../lib/runtime/model.js";
import { maxAbsDiff, tempDir, TINYFACTS } from "./helpers.js";

const golden = JSON.parse(readFileSync(join(TINYFACTS, "golden-edits.json"), "utf8"));
const templates: string[] = golden.templates;
const PROMPT = "Castle of Berkbre is located in the city of";
const REQUEST = { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" };

let model: Model;
let stats: Stats;
test.before(async () => {
  model = await Model.load(TINYFACTS);
  stats = { ...loadStats(join(TINYFACTS, "stats-layer1.safetensors")), layer: 1 };
});
test.after.always(async () => model?.dispose());

test.serial("u vᵀ matches the reference implementation's edits within 1e-3 relative (reference form, golden templates)", async (t) => {
  for (const rec of golden.records) {
    const rr = rec.requested_rewrite;
    const h = golden.meta.hparams; // the reference run's hyperparameters (clamp 4)
    const e = await rome(model, { prompt: rr.prompt, subject: rr.subject, targetNew: rr.target_new.str }, {
      stats, layer: 1, form: "reference", contextTemplates: templates,
      hparams: { clampNormFactor: h.clamp_norm_factor, vNumGradSteps: h.v_num_grad_steps, vLr: h.v_lr, vWeightDecay: h.v_weight_decay, klFactor: h.kl_factor },
    });
    let num = 0;
    let den = 0;
    for (let i = 0; i < rec.u.length; i++) {
      for (let j = 0; j < rec.v.length; j++) {
        const a = e.u[i]! * e.v[j]!;
        const b = rec.u[i] * rec.v[j];
        num += (a - b) ** 2;
        den += b * b;
      }
    }
    const rel = Math.sqrt(num / den);
    t.log(`${rr.subject} → ${rr.target_new.str}: relative Frobenius difference ${rel.toExponential(2)}`);
    t.true(rel <= 1e-3, `relative difference ${rel}`);
    t.is(e.losses.length, rec.rome.losses.length);
  }
});

test.serial("apply changes the fact, undo restores every logit bit for bit, subsets and exports reproduce", async (t) => {
  const before = (await model.nextTokenLogits([PROMPT, "Tower of Deathproust can be found in the city of"])).map((x) => x.slice());
  const edit = await rome(model, REQUEST, { stats, layer: 1, contextTemplates: templates });
  const id = model.edits.apply(edit);
  const [top] = await model.predict([PROMPT], { topK: 1 });
  t.is(top![0]!.token, " Berlin");
  const edited = await model.nextTokenLogits([PROMPT]);

  // Export the edit file and a merged checkpoint while the edit is applied.
  const dir = tempDir(t);
  exportEdits(model, join(dir, "edits.safetensors"));
  await exportCheckpoint(model, join(dir, "ckpt"));

  // A second edit stacked on top; selecting only the first reproduces it bit for bit.
  const edit2 = await rome(model, { prompt: "{} is located in the country of", subject: "Castle of Berkbre", targetNew: "Greece" },
    { stats, layer: 1, contextTemplates: templates, hparams: { vNumGradSteps: 30 } });
  const id2 = model.edits.apply(edit2);
  t.is(model.edits.list().length, 2);
  await model.edits.withOnly([id], async () => t.is(maxAbsDiff((await model.nextTokenLogits([PROMPT]))[0]!, edited[0]!), 0));
  model.edits.undo(id2);
  model.edits.undo(id);
  const after = await model.nextTokenLogits([PROMPT, "Tower of Deathproust can be found in the city of"]);
  after.forEach((a, i) => t.deepEqual(a, before[i]!, "logits after undo are bit-identical"));
  t.deepEqual(model.edits.list(), []);

  // The edit file applied to the base model reproduces the edited logits exactly.
  const loaded = loadEdits(join(dir, "edits.safetensors"), model);
  t.is(loaded.length, 1);
  model.edits.apply(loaded[0]!);
  t.is(maxAbsDiff((await model.nextTokenLogits([PROMPT]))[0]!, edited[0]!), 0);
  model.edits.clear();

  // The merged checkpoint reloads and predicts what the edited model predicted.
  const reloaded = await Model.load(join(dir, "ckpt"));
  const r = (await reloaded.nextTokenLogits([PROMPT]))[0]!;
  const d = maxAbsDiff(r, edited[0]!);
  t.true(d <= 1e-3, `merged checkpoint logits differ by ${d}`);
  t.is((await reloaded.predict([PROMPT], { topK: 1 }))[0]![0]!.token, " Berlin");
  await reloaded.dispose();
  t.throws(() => loadEdits(join(dir, "edits.safetensors"), reloaded), { instanceOf: RomeError, message: /made for model/ });
});

test.serial("the guard refuses an update out of range and leaves the model untouched", async (t) => {
  const before = (await model.nextTokenLogits([PROMPT]))[0]!.slice();
  const e = await t.throwsAsync(rome(model, REQUEST, { stats, layer: 1, contextTemplates: templates, hparams: { vNumGradSteps: 10 }, guard: { maxNormRatio: 1e-3 } }), { instanceOf: RomeError });
  t.is(e!.code, "ERR_EDIT_REFUSED");
  t.regex(e!.message, /was not changed/);
  t.deepEqual((await model.nextTokenLogits([PROMPT]))[0]!, before);
  t.deepEqual(model.edits.list(), []);
});

test.serial("computeStats reproduces the reference statistics and caches them with their fingerprints", async (t) => {
  const dir = tempDir(t);
  const corpus = join(TINYFACTS, "train.txt");
  const s = await computeStats(model, { layer: 1, corpus, cacheDir: dir });
  t.false(s.cached);
  t.is(s.count, 46427);
  const d = maxAbsDiff(s.mom2, stats.mom2);
  t.true(d <= 1e-5, `max difference to the reference's float32 statistics ${d}`);
  const again = await computeStats(model, { layer: 1, corpus, cacheDir: dir });
  t.true(again.cached);
  t.is(maxAbsDiff(again.mom2, s.mom2), 0);
  const fewer = await computeStats(model, { layer: 1, corpus, cacheDir: dir, maxTokens: 1000 });
  t.false(fewer.cached, "another corpus budget is another fingerprint");
  t.is(fewer.count, 1000);
});

test.serial("bad requests and singular statistics are RomeErrors with codes", async (t) => {
  const code = async (p: Promise<unknown>) => ((await t.throwsAsync(p, { instanceOf: RomeError })) as RomeError).code;
  t.is(await code(rome(model, { ...REQUEST, prompt: "located in the city of" }, { stats })), "ERR_ARGUMENT");
  t.is(await code(rome(model, { ...REQUEST, targetNew: " " }, { stats })), "ERR_ARGUMENT");
  t.is(await code(rome(model, { ...REQUEST, subject: "" }, { stats, contextTemplates: templates })), "ERR_EMPTY_SUBJECT");
  t.is(await code(rome(model, REQUEST, {})), "ERR_STATS");
  t.is(await code(rome(model, REQUEST, { stats: { ...stats, layer: 3 } })), "ERR_STATS");
  const singular = { ...stats, mom2: new Float64Array(stats.mom2.length) };
  t.is(await code(rome(model, REQUEST, { stats: singular, contextTemplates: templates, hparams: { vNumGradSteps: 2 } })), "ERR_NOT_POSITIVE_DEFINITE");
  t.is(await code(Promise.resolve().then(() => model.edits.undo("nope"))), "ERR_EDIT_UNKNOWN");
  t.is(await code(computeStats(model, { layer: 1, texts: [], cacheDir: false })), "ERR_STATS");
});
