// Bad options and hostile user text at the public API: every hyperparameter and guard bound is
// checked by name and range, user text is substituted literally (no String.replace patterns), and
// a trace never scores an answer the caller did not give.
import test from "ava";
import { RomeError } from "../lib/errors.js";
import { keysAt } from "../lib/edit/keys.js";
import { locateSubject } from "../lib/edit/lookup.js";
import { rome } from "../lib/edit/rome.js";
import { contextTemplates, fillTemplate } from "../lib/edit/templates.js";
import { loadEdits } from "../lib/edit/export.js";
import { evaluateRecords } from "../lib/eval/counterfact.js";
import { heatmapSvg } from "../lib/trace/heatmap.js";
import { patchActivations } from "../lib/trace/patching.js";
import { Model } from "../lib/runtime/model.js";
import { trace } from "../lib/trace/trace.js";
import { maxAbsDiff, TINYFACTS } from "./helpers.js";

let model: Model;
test.before(async () => {
  model = await Model.load(TINYFACTS, { threads: 1 });
});
test.after.always(async () => model?.dispose());

const REQUEST = { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" };
// No statistics needed: k itself is the update direction; one value step only evaluates.
const CHEAP = { contextTemplates: ["{}"], hparams: { mom2Adjustment: false, vNumGradSteps: 1 } };

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RomeError) return `${e.code}: ${e.message}`;
    throw e;
  }
  return "no error";
}

test("fillTemplate substitutes user text literally, String.replace patterns included", (t) => {
  for (const text of ["$&", "$$", "$'", "$`", "$1", "a$&b$$c"]) t.is(fillTemplate("x {} y", text), `x ${text} y`);
});

test("rome reads the key of the literal prompt when prompt, subject or target contain $&, $$, $'", async (t) => {
  const prompt = "In $& and $$ and $' and $`, {} is located in the city of";
  const edit = await rome(model, { prompt, subject: "Castle of Berkbre", targetNew: "$&Berlin" }, { ...CHEAP, layer: 1 });
  // u = k / ‖k‖ with k the key at the subject's last token of the literal text.
  const located = await locateSubject(model.tokenizer, prompt, "Castle of Berkbre");
  t.is(located.text, "In $& and $$ and $' and $`, Castle of Berkbre is located in the city of");
  const { keys } = await keysAt(model, 1, [located]);
  const norm = Math.hypot(...keys);
  t.true(maxAbsDiff(edit.u, keys.map((x) => x / norm)) < 1e-5);
  t.is(edit.request.prompt, prompt);
});

test("hparams: a misspelt name is ERR_ARGUMENT with a suggestion, never ignored", async (t) => {
  const m = await code(rome(model, REQUEST, { ...CHEAP, hparams: { ...CHEAP.hparams, vNumGradStep: 3 } as object }));
  t.regex(m, /^ERR_ARGUMENT: Unknown option 'vNumGradStep' for hparams \(did you mean 'vNumGradSteps'\?\)/);
});

test("hparams and guard: every bound out of range is ERR_ARGUMENT naming it", async (t) => {
  const bad: [string, object][] = [
    ["clampNormFactor", { clampNormFactor: -1 }],
    ["clampNormFactor", { clampNormFactor: 0 }],
    ["clampNormFactor", { clampNormFactor: NaN }],
    ["vLr", { vLr: 0 }],
    ["vLr", { vLr: Infinity }],
    ["vWeightDecay", { vWeightDecay: -0.5 }],
    ["klFactor", { klFactor: NaN }],
    ["vNumGradSteps", { vNumGradSteps: 2.5 }],
    ["vNumGradSteps", { vNumGradSteps: 0 }],
    ["layer", { layer: 6 }],
    ["mom2Adjustment", { mom2Adjustment: "no" }],
    ["contextTemplateLengths", { contextTemplateLengths: [[5]] }],
    ["contextTemplateLengths", { contextTemplateLengths: [[0, 3]] }],
  ];
  for (const [name, hp] of bad) {
    t.regex(await code(rome(model, REQUEST, { ...CHEAP, hparams: { ...CHEAP.hparams, ...hp } })), new RegExp(`^ERR_ARGUMENT: .*${name}`), JSON.stringify(hp));
  }
  t.regex(await code(rome(model, REQUEST, { ...CHEAP, guard: { maxNormRatio: -1 } })), /^ERR_ARGUMENT: .*maxNormRatio/);
  t.regex(await code(rome(model, REQUEST, { ...CHEAP, guard: { maxNormRatio: NaN } })), /^ERR_ARGUMENT: .*maxNormRatio/);
  t.regex(await code(rome(model, REQUEST, { ...CHEAP, guard: { minDenominator: -1 } })), /^ERR_ARGUMENT: .*minDenominator/);
  t.regex(await code(rome(model, REQUEST, { ...CHEAP, guard: { maxNormRation: 3 } as object })), /^ERR_ARGUMENT: Unknown option 'maxNormRation' for guard/);
  t.regex(await code(rome(model, REQUEST, { ...CHEAP, ridge: -1 })), /^ERR_ARGUMENT: .*ridge/);
  t.regex(await code(rome(model, REQUEST, { ...CHEAP, seed: 0.5 })), /^ERR_ARGUMENT: .*seed/);
});

test("trace answer \"\" is ERR_ARGUMENT instead of silently scoring \" \"", async (t) => {
  const options = { prompt: "Castle of Berkbre is located in the city of", subject: "Castle of Berkbre", samples: 1 };
  t.regex(await code(trace(model, { ...options, answer: "" })), /^ERR_ARGUMENT: answer/);
});

test("every options object rejects misspelt names; user vectors and numbers are checked", async (t) => {
  const prompt = "Castle of Berkbre is located in the city of";
  const patch = { site: "resid" as const, layers: [1], positions: [2], source: "clean" as const };
  const nan = new Float32Array(model.config.nEmbd).fill(NaN);
  t.regex(await code(patchActivations(model, { prompt, patches: [{ ...patch, source: nan }] })), /^ERR_NOT_FINITE: patch 0/);
  t.regex(await code(patchActivations(model, { prompt, patches: [{ ...patch, layer: [1] } as never] })), /^ERR_ARGUMENT: Unknown option 'layer' for patch 0 \(did you mean 'layers'\?\)/);
  t.regex(await code(patchActivations(model, { prompt, patches: [patch], answer: 1e9 })), /^ERR_ARGUMENT: .*answer/);
  t.regex(await code(patchActivations(model, { prompt, patches: [patch], corrupt: { subject: "Castle of Berkbre", noise: NaN } })), /^ERR_ARGUMENT: .*corrupt\.noise/);
  t.regex(await code(patchActivations(model, { prompt, patches: [patch], corrupt: { subject: "Castle of Berkbre", noise: 0.1, sample: 3 } as never })), /^ERR_ARGUMENT: Unknown option 'sample'/);
  t.regex(await code(trace(model, { prompt, subject: "Castle of Berkbre", samples: 1, noise: { level: 0.1, factr: 2 } as never })), /^ERR_ARGUMENT: Unknown option 'factr' for noise/);
  t.regex(await code(contextTemplates(model, { lenghts: [[5, 1]] } as never)), /^ERR_ARGUMENT: Unknown option 'lenghts'/);
  t.regex(await code(Promise.resolve().then(() => heatmapSvg({ scores: [[0]], tokens: ["a"], subjectRange: [0, 1], lowScore: 0, kind: "resid", window: 1, answer: { token: "a" } }, { vMax: 1 } as never))), /^ERR_ARGUMENT: Unknown option 'vMax'/);
  t.regex(await code(Promise.resolve().then(() => loadEdits("x.safetensors", model, { forced: true } as never))), /^ERR_ARGUMENT: Unknown option 'forced'/);
});

test("statistics holding NaN are ERR_NOT_FINITE in rome(), not a LAPACK argument error; malformed records are ERR_DATASET", async (t) => {
  const F = model.config.nInner;
  const mom2 = new Float64Array(F * F);
  for (let i = 0; i < F; i++) mom2[i * F + i] = 1;
  mom2[5] = NaN;
  const stats = { layer: 1, count: 1, mom2, dim: F, modelFingerprint: model.fingerprint, corpusFingerprint: "", cached: false };
  t.regex(await code(rome(model, REQUEST, { stats, contextTemplates: ["{}"], hparams: { vNumGradSteps: 1 } })), /^ERR_NOT_FINITE/);
  t.regex(await code(evaluateRecords(model, [{ case_id: 0 } as never])), /^ERR_DATASET: .*requested_rewrite/);
});
