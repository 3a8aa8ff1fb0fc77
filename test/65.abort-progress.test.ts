// Cancellation and progress of long calls: aborted before the start or from inside onProgress at a
// seeded random point, each call rejects with AbortError carrying the reason, writes nothing, and
// the model then gives exactly what it gave before; progress is monotone per phase and reaches total.
import test from "ava";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { exportCheckpoint } from "../lib/edit/export.js";
import { rome } from "../lib/edit/rome.js";
import { computeStats } from "../lib/edit/stats.js";
import { evaluateRecords, readCounterFact } from "../lib/eval/counterfact.js";
import { AbortError } from "../lib/runtime/call.js";
import { Model } from "../lib/runtime/model.js";
import { patchActivations } from "../lib/trace/patching.js";
import { trace, traceSevered } from "../lib/trace/trace.js";
import { check } from "./abort-check.js";
import { tempDir, TINYFACTS } from "./helpers.js";

const PROMPT = "Castle of Berkbre is located in the city of";
const TRACE = { prompt: PROMPT, subject: "Castle of Berkbre", kind: "mlp" as const, samples: 3, window: 3, memoryBudgetMB: 1 };

let model: Model;
test.before(async () => {
  model = await Model.load(TINYFACTS, { batchSize: 2 });
});
test.after.always(async () => model?.dispose());

test.serial("trace, traceSevered, predict, logprob, generate, evaluateRecords and computeStats abort within a batch and report progress", async (t) => {
  const records = readCounterFact(join(TINYFACTS, "counterfact.json")).slice(0, 3);
  const probe = () => model.nextTokenLogits([PROMPT]);
  await check(t, "trace", (o) => trace(model, { ...TRACE, ...o }).then((r) => r.scores), probe);
  await check(t, "traceSevered", (o) => traceSevered(model, { ...TRACE, ...o }), probe);
  await check(t, "predict", (o) => model.predict([PROMPT, "a", "b", "c", "d"], o), probe);
  await check(t, "logprob", (o) => model.logprob([{ prompt: PROMPT, target: " Paris" }, { prompt: "a", target: " b" }, { prompt: "c", target: " d" }], o), probe);
  await check(t, "generate", (o) => model.generate(PROMPT, { maxTokens: 6, ...o }), probe);
  await check(t, "evaluateRecords", (o) => evaluateRecords(model, records, { recordsPerCall: 1, ...o }), probe);
  const dir = tempDir(t);
  await check(t, "computeStats", (o) => computeStats(model, { layer: 1, texts: Array.from({ length: 8 }, (_, i) => `Castle ${i} is located in the city of Paris.`), batchTokens: 256, cacheDir: false, ...o }).then((s) => s.mom2), probe);
  // An aborted export writes nothing.
  model.edits.apply({ layers: [1, 2].map((layer) => ({ layer, u: new Float32Array(model.config.nInner).fill(0.01), v: new Float32Array(model.config.nEmbd).fill(0.01) })) });
  const out = join(dir, "ckpt");
  const c = new AbortController();
  await t.throwsAsync(exportCheckpoint(model, out, undefined, { signal: c.signal, onProgress: () => c.abort("stop") }), { instanceOf: AbortError });
  t.false(existsSync(out));
  t.deepEqual(readdirSync(dir), []);
  model.edits.clear();
});

test.serial("rome and patchActivations abort between steps and runs and report progress", async (t) => {
  const stats = await computeStats(model, { layer: 1, corpus: join(TINYFACTS, "train.txt"), maxTokens: 2000, cacheDir: false });
  const probe = () => model.nextTokenLogits([PROMPT]);
  const templates = ["{}", "The. {}"];
  await check(t, "rome", (o) => rome(model, { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" },
    { stats, contextTemplates: templates, hparams: { vNumGradSteps: 6 }, ...o }).then((e) => [Array.from(e.u), Array.from(e.v)]), probe);
  await check(t, "patchActivations", (o) => patchActivations(model, {
    prompt: PROMPT, corrupt: { subject: "Castle of Berkbre", noise: 0.1, samples: 3 },
    patches: [{ site: "mlp_out", layers: [2], positions: [3], source: "clean" }], ...o,
  }).then((r) => Array.from(r.logits)), probe);
});
