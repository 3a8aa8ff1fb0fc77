// ROME on TinyFacts' CounterFact records (issue 5, "Done when"): (a) each edit alone, r-ROME and
// reference forms, beside the unedited baseline; (d) the guard refusing a disabling edit; (b) a
// sweep of layer, value steps and clamp; (c) K sequences of 100 sequential edits for both forms, in two child processes. Writes
// bench/results/eval-edits.json and the tables into docs/edit-experiments.md (marked sections).
//
//   npx tsx scripts/eval-edits.ts [--records 100] [--sample random|first] [--seed 1] [--golden]
//       [--sweep] [--sweep-records 30] [--full-sweep | --grid-layers 0,1,2 --grid-steps 50,100,200
//       --grid-clamps 4,8] [--sequential 100 [--sequences 5]] [--no-alone] [--no-guard] [--no-generation]
//       [--layer L --steps S --clamp C] [--max-norm-ratio R|inf]
//       (these override TinyFacts' defaults and the guard's 10 in (a) and (c), written to their own sections)
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Progress } from "../lib/cli/progress.js";
import { RomeError } from "../lib/errors.js";
import { defaultHparams } from "../lib/edit/hparams.js";
import { rome, type RomeOptions } from "../lib/edit/rome.js";
import { computeStats, type Stats } from "../lib/edit/stats.js";
import { contextTemplates } from "../lib/edit/templates.js";
import { evaluateRecords, readCounterFact, rewritePrompt, summarize, toRomeRequest, type CounterFactRecord, type MetricsSummary, type RecordMetrics } from "../lib/eval/counterfact.js";
import { editEachAlone, sequentialEdits, type EditOutcome, type SequentialResult } from "../lib/eval/experiments.js";
import { meanInterval } from "../lib/eval/metrics.js";
import { compareRetention, retentionByAge, retentionCurve, type Difference } from "../lib/eval/retention.js";
import { METRIC_HEADER, metricCells, pct, scoreText, table, writeMarkedSection } from "../lib/eval/report.js";
import { writeFileAtomic } from "../lib/io/atomic.js";
import { Model } from "../lib/runtime/model.js";
import { seededRandom } from "../lib/runtime/sampling.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const TF = join(ROOT, "models", "tinyfacts");
const JSON_OUT = join(ROOT, "bench", "results", "eval-edits.json");
const DOC = join(ROOT, "docs", "edit-experiments.md");
const { values: args } = parseArgs({
  options: {
    records: { type: "string", default: "100" }, sample: { type: "string", default: "random" }, seed: { type: "string", default: "1" },
    golden: { type: "boolean", default: false }, sweep: { type: "boolean", default: false }, "sweep-records": { type: "string", default: "30" },
    "full-sweep": { type: "boolean", default: false }, sequential: { type: "string", default: "0" }, sequences: { type: "string", default: "1" },
    "sequential-child": { type: "string" },
    "grid-layers": { type: "string" }, "grid-steps": { type: "string" }, "grid-clamps": { type: "string" },
    layer: { type: "string" }, steps: { type: "string" }, clamp: { type: "string" }, "max-norm-ratio": { type: "string" },
    "no-alone": { type: "boolean", default: false }, "no-guard": { type: "boolean", default: false }, "no-generation": { type: "boolean", default: false },
  },
});
const N = Number(args.records);
const SEED = Number(args.seed);
if (!(N >= 1) || !["random", "first"].includes(args.sample!)) throw new RomeError("ERR_ARGUMENT", "usage: --records N (≥ 1) --sample random|first");

const started = performance.now();
const model = await Model.load(TF);
const all = readCounterFact(join(TF, "counterfact.json"));
const sample = pickSample(all, N, args.sample as "random" | "first", SEED);
const golden = (JSON.parse(readFileSync(join(TF, "golden-edits.json"), "utf8")) as { templates: string[] }).templates;
const defaults = defaultHparams(model.config);
// rome's own default templates (sampled from the model, seed 0): computed here too, to record them.
const sampledTemplates = await contextTemplates(model, { lengths: defaults.contextTemplateLengths, seed: 0 });
const relation = new Map(all.map((r) => [r.case_id, r.requested_rewrite.relation_id ?? "?"]));
const statsByLayer = new Map<number, Stats>();
async function stats(layer: number): Promise<Stats> {
  if (!statsByLayer.has(layer)) statsByLayer.set(layer, await computeStats(model, { layer, corpus: join(TF, "train.txt") }));
  return statsByLayer.get(layer)!;
}

/** One edit configuration. */
interface Config { form: "r-rome" | "reference"; layer: number; steps: number; clamp: number; templates: "sampled" | "golden"; /** guard.maxNormRatio; rome's default when absent */ guard?: number }
const DEFAULT: Config = { form: "r-rome", layer: defaults.layer, steps: defaults.vNumGradSteps, clamp: defaults.clampNormFactor, templates: "sampled" };
// The configuration of (a) and (c): the defaults unless overridden; overridden runs get their own sections.
const BASE: Config = {
  ...DEFAULT, ...(args.layer ? { layer: Number(args.layer) } : {}), ...(args.steps ? { steps: Number(args.steps) } : {}), ...(args.clamp ? { clamp: Number(args.clamp) } : {}),
  ...(args["max-norm-ratio"] ? { guard: Number(args["max-norm-ratio"].replace(/^inf$/, "Infinity")) } : {}),
};
const guardText = (g: number | undefined) => (g === undefined ? "" : g === Infinity ? ", guard off" : `, guard maxNormRatio ${g}`);
// Sections and JSON keys name their configuration, so runs at other settings (or after the
// defaults change) sit beside each other instead of replacing one another.
const TAG = `-layer${BASE.layer}-steps${BASE.steps}-clamp${BASE.clamp}${BASE.guard === undefined ? "" : `-guard${BASE.guard}`}`;
const isDefault = JSON.stringify(BASE) === JSON.stringify(DEFAULT);
const tagTitle = `; layer ${BASE.layer}, ${BASE.steps} steps, clamp ${BASE.clamp}${guardText(BASE.guard)}`;
const baseText = `layer ${BASE.layer}, ${BASE.steps} value steps, clamp ${BASE.clamp}${guardText(BASE.guard)}${isDefault ? " (lib/edit/hparams/tinyfacts.json at the time of the run)" : " (overriding lib/edit/hparams/tinyfacts.json / the guard's default)"}`;
const list = (s: string | undefined, d: number[]) => (s ? s.split(",").map(Number) : d);
const romeOptions = async (c: Config): Promise<RomeOptions> => ({
  stats: await stats(c.layer), layer: c.layer, form: c.form, hparams: { vNumGradSteps: c.steps, clampNormFactor: c.clamp },
  ...(c.templates === "golden" ? { contextTemplates: golden } : {}), ...(c.guard !== undefined ? { guard: { maxNormRatio: c.guard } } : {}),
});
const label = (c: Config) => `${c.form}, layer ${c.layer}, ${c.steps} steps, clamp ${c.clamp}, ${c.templates} templates`;

// This run's parts; saving merges them into the file's other parts (another run may own those).
const results: Record<string, unknown> = {};
const save = () => {
  mkdirSync(dirname(JSON_OUT), { recursive: true });
  const old = existsSync(JSON_OUT) ? (JSON.parse(readFileSync(JSON_OUT, "utf8")) as Record<string, unknown>) : {};
  writeFileAtomic(JSON_OUT, JSON.stringify({ ...old, ...results }, null, 1));
};
const command = `npx tsx scripts/eval-edits.ts ${process.argv.slice(2).join(" ")}`.trim();
const runLine = (t0: number) => `_Run: \`${command}\`, ${new Date().toISOString().slice(0, 16)}Z, ${((performance.now() - t0) / 60000).toFixed(1)} min for this part._`;
mkdirSync(dirname(DOC), { recursive: true });
const generation = args["no-generation"] ? undefined : { maxLength: 64 };
const compact = (m: RecordMetrics, o?: EditOutcome) => ({
  case_id: m.case_id, relation: relation.get(m.case_id), es: m.es, ps: m.ps, ns: m.ns, em: m.em, pm: m.pm, nm: m.nm, ge: m.ge,
  nll_new: m.rewrite[0]!.nllNew, nll_true: m.rewrite[0]!.nllTrue,
  ...(o ? { refused: o.refused, norm_ratio: o.normRatio, final_loss: o.finalLoss, seconds: o.seconds } : {}),
});

// Memo of each-alone runs: a configuration's outcomes on a record are computed once.
const memo = new Map<string, EditOutcome>();
let baseline: RecordMetrics[] | undefined;
async function aloneRun(c: Config, records: readonly CounterFactRecord[], withGeneration = false): Promise<{ outcomes: EditOutcome[]; seconds: number }> {
  baseline ??= await evaluateRecords(model, sample, { recordsPerCall: 1, generation });
  const base = new Map(baseline.map((m) => [m.case_id, m]));
  // An outcome computed with generation serves a run without it too.
  const key = (r: CounterFactRecord, gen = withGeneration) => JSON.stringify([c, r.case_id, gen]);
  for (const r of records) if (!memo.has(key(r)) && memo.has(key(r, true))) memo.set(key(r), memo.get(key(r, true))!);
  const todo = records.filter((r) => !memo.has(key(r)));
  const opts = await romeOptions(c);
  const bar = new Progress(`  ${label(c)}`, todo.length);
  const t0 = performance.now();
  const got = await editEachAlone(model, todo, () => opts, todo.map((r) => base.get(r.case_id)!), {
    evaluate: withGeneration && generation ? { generation } : {}, onProgress: (p) => bar.update(p.done, `(${p.total} edits)`),
  });
  todo.forEach((r, i) => memo.set(key(r), got[i]!));
  const outcomes = records.map((r) => memo.get(key(r))!);
  const edited = outcomes.filter((o) => o.seconds !== undefined);
  return { outcomes, seconds: edited.length ? edited.reduce((a, o) => a + o.seconds!, 0) / edited.length : (performance.now() - t0) / 1000 / Math.max(1, todo.length) };
}
const sum = (os: readonly EditOutcome[]) => summarize(os.map((o) => o.post));
const sampleText = `${N} records of models/tinyfacts/counterfact.json, ${args.sample === "random" ? `a seeded random sample (Fisher–Yates, seededRandom(${SEED}), in sample order)` : "the first ones"}`;

const FORMS = ["r-rome", "reference"] as const;
type Form = (typeof FORMS)[number];
// A child process of part (c) runs that one form's sequences and nothing else.
const CHILD = args["sequential-child"];
if (CHILD !== undefined && !(FORMS as readonly string[]).includes(CHILD)) throw new RomeError("ERR_ARGUMENT", `--sequential-child ${CHILD}: expected r-rome or reference`);
if (!CHILD) writeSetup(); // first, in a new document

// ---- a. each edit alone ----
if (!CHILD && !args["no-alone"]) {
  console.log(`a. ${N} records, each edit alone`);
  const t0 = performance.now();
  const variants: [string, Config][] = [["r-ROME", BASE], ["reference", { ...BASE, form: "reference" }]];
  if (args.golden) variants.push(["r-ROME, golden templates", { ...BASE, templates: "golden" }], ["reference, golden templates", { ...BASE, form: "reference", templates: "golden" }]);
  const rows: { name: string; config?: Config; summary: MetricsSummary; seconds?: number; refused?: number; outcomes?: ReturnType<typeof compact>[] }[] = [];
  const base = baseline ?? (baseline = await evaluateRecords(model, sample, { recordsPerCall: 1, generation }));
  rows.push({ name: "unedited", summary: summarize(base), outcomes: base.map((m) => compact(m)) });
  for (const [name, c] of variants) {
    const r = await aloneRun(c, sample, true);
    rows.push({ name, config: c, summary: sum(r.outcomes), seconds: r.seconds, refused: r.outcomes.filter((o) => o.refused).length, outcomes: r.outcomes.map((o) => compact(o.post, o)) });
    results[`alone${TAG}`] = { command, config: BASE, records: sample.map((r) => r.case_id), sample: args.sample, seed: SEED, rows };
    save();
  }
  const ge = rows.some((r) => r.summary.ge);
  const relations = [...new Set(sample.map((r) => relation.get(r.case_id)!))].sort();
  const byRel = relations.map((rel) => [rel, String(sample.filter((r) => relation.get(r.case_id) === rel).length), ...rows.map((row) =>
    pct(meanInterval(row.outcomes!.filter((o) => o.relation === rel).map((o) => o.es)), 0))]);
  writeMarkedSection(DOC, `alone${TAG}`, [
    `## a. Each edit alone (${N} records${tagTitle})`, "",
    `${sampleText}; each edit applied to the unedited model, evaluated, undone. Hyperparameters: ${baseText}, the rest as tinyfacts.json; statistics computeStats(train.txt) at the layer; "sampled templates" = rome()'s default (seed 0), "golden" = golden-edits.json's. Percentages with 95% half-widths (1.96·std/√n); S with a bootstrap interval (1,000 resamples of records).` +
      (ge ? ` GE: generation entropy in bits (reference ×100), generations of 64 tokens in all, top-k 5, words by a regex tokenizer (not nltk).` : ""), "",
    table(["variant", ...METRIC_HEADER, ...(ge ? ["GE (bits)"] : []), "refused", "s/edit"], rows.map((r) => [r.name, ...metricCells(r.summary, ge), String(r.refused ?? "–"), r.seconds ? r.seconds.toFixed(2) : "–"])), "",
    "Efficacy (ES %) by relation:", "",
    table(["relation", "n", ...rows.map((r) => r.name)], byRel), "", runLine(t0),
  ].join("\n"), "# ROME edit experiments on TinyFacts");
}

// ---- d. the guard ----
if (!CHILD && !args["no-guard"]) {
  console.log("d. the guard");
  const t0 = performance.now();
  const rec = sample[0]!;
  const probe = all.filter((r) => r.case_id !== rec.case_id).slice(0, 200);
  const probePrompts = probe.map(rewritePrompt);
  const accuracy = async () => {
    const p = await model.predict(probePrompts, { topK: 1 });
    return p.filter((x, i) => x[0]!.token === " " + probe[i]!.requested_rewrite.target_true.str).length / probe.length;
  };
  const snapshot = async () => JSON.stringify((await model.nextTokenLogits(probePrompts)).map((l) => Array.from(l)));
  const disabling = { vLr: 50, vWeightDecay: 0, clampNormFactor: 1e4, vNumGradSteps: 300 };
  const o = await romeOptions(BASE);
  const cases: Record<string, unknown>[] = [];
  const attempt = async (name: string, extra: Partial<RomeOptions>) => {
    const before = await snapshot();
    const acc0 = await accuracy();
    try {
      const e = await rome(model, toRomeRequest(rec), { ...o, ...extra });
      const id = model.edits.apply(e);
      const acc1 = await accuracy();
      model.edits.undo(id);
      cases.push({ name, refused: false, norm_ratio: e.norms.update / e.norms.weight, accuracy_before: acc0, accuracy_with_edit: acc1, restored_after_undo: before === (await snapshot()) });
    } catch (err) {
      if (!(err instanceof RomeError)) throw err;
      cases.push({ name, refused: true, code: err.code, message: err.message, edits_applied: model.edits.list().length, predictions_identical: before === (await snapshot()) });
    }
    console.log(" ", JSON.stringify(cases.at(-1)));
  };
  await attempt("disabling hparams, guard off (maxNormRatio ∞)", { hparams: { ...o.hparams, ...disabling }, guard: { maxNormRatio: Infinity } });
  await attempt("disabling hparams, default guard", { hparams: { ...o.hparams, ...disabling } });
  await attempt("hparams {clampNormFactor 1e4, vNumGradSteps 300}, default guard", { hparams: { ...o.hparams, clampNormFactor: 1e4, vNumGradSteps: 300 } });
  await attempt("default hparams, guard tightened to maxNormRatio 1", { guard: { maxNormRatio: 1 } });
  results.guard = { command, record: rec.case_id, probe: `top-1 accuracy of the true object on the rewrite prompts of ${probe.length} other records`, disabling, cases };
  save();
  const pc = (x: unknown) => (typeof x === "number" ? `${(100 * x).toFixed(1)}%` : "–");
  writeMarkedSection(DOC, "guard", [
    "## d. The guard", "",
    `Request: case ${rec.case_id} (${rewritePrompt(rec)} → ${rec.requested_rewrite.target_new.str}), r-ROME, TinyFacts defaults plus the overrides named. "Accuracy" is the ${results.guard && (results.guard as { probe: string }).probe}; "identical" compares every last-position logit of those prompts before and after the call, bit for bit. Disabling hparams: ${JSON.stringify(disabling)}.`, "",
    table(["case", "refused", "‖ΔW‖/‖W‖", "accuracy before → with edit", "model untouched"], cases.map((c) => [
      String(c.name), c.refused ? `yes (${String(c.code)})` : "no", typeof c.norm_ratio === "number" ? c.norm_ratio.toFixed(1) : "–",
      c.refused ? "–" : `${pc(c.accuracy_before)} → ${pc(c.accuracy_with_edit)}`,
      c.refused ? (c.predictions_identical && c.edits_applied === 0 ? "yes (no edit, logits identical)" : "NO") : c.restored_after_undo ? "restored by undo" : "NO",
    ])), "",
    ...cases.filter((c) => c.refused).map((c) => `- ${String(c.name)}: \`${String(c.message)}\``), "", runLine(t0),
  ].join("\n"));
}

// ---- b. sweep ----
const grid = args["full-sweep"] || args["grid-layers"] || args["grid-steps"] || args["grid-clamps"];
for (const mode of CHILD ? [] : [...(args.sweep ? ["staged"] : []), ...(grid ? ["grid"] : [])]) {
  const key = mode === "grid" ? "sweep-grid" : "sweep";
  const records = sample.slice(0, Number(args["sweep-records"]));
  console.log(`b. sweep on ${records.length} records`);
  const t0 = performance.now();
  const rows: { stage: string; config: Config; summary: MetricsSummary; seconds: number }[] = [];
  const run = async (stage: string, c: Config) => {
    const r = await aloneRun(c, records);
    const row = { stage, config: c, summary: sum(r.outcomes), seconds: r.seconds };
    rows.push(row);
    results[key] = { command, records: records.map((r) => r.case_id), rows, mode };
    save();
    return row;
  };
  // Ranked by S, then ES, then cheaper (fewer steps).
  const better = (a: (typeof rows)[number], b: (typeof rows)[number]) =>
    a.summary.s.value - b.summary.s.value || a.summary.es.mean - b.summary.es.mean || b.config.steps - a.config.steps;
  const best = (rs: typeof rows) => rs.reduce((x, y) => (better(y, x) > 0 ? y : x));
  if (mode === "grid") {
    for (const layer of list(args["grid-layers"], [0, 1, 2])) for (const steps of list(args["grid-steps"], [50, 100, 200])) for (const clamp of list(args["grid-clamps"], [4, 8])) {
      await run("grid", { ...DEFAULT, layer, steps, clamp });
    }
  } else {
    const s1 = [];
    for (const layer of [0, 1, 2]) s1.push(await run("1: layer", { ...DEFAULT, layer }));
    const L = best(s1).config.layer;
    const s2 = [];
    for (const steps of [50, 100, 200]) s2.push(await run("2: steps", { ...DEFAULT, layer: L, steps }));
    const S = best(s2).config.steps;
    for (const clamp of [4, 8]) await run("3: clamp", { ...DEFAULT, layer: L, steps: S, clamp });
  }
  const top = best(rows);
  const dflt = rows.find((r) => JSON.stringify(r.config) === JSON.stringify(DEFAULT)) ?? (await run("defaults", DEFAULT));
  // "Beats" means better metrics (S, then ES); being as good and cheaper is reported as a tie.
  const quality = (a: (typeof rows)[number], b: (typeof rows)[number]) => a.summary.s.value - b.summary.s.value || a.summary.es.mean - b.summary.es.mean;
  const beats = quality(top, dflt) > 0;
  const ties = !beats && top !== dflt && quality(top, dflt) === 0;
  results[key] = { ...(results[key] as object), best: top.config, defaults: DEFAULT, beats_defaults: beats, ties_defaults: ties };
  save();
  writeMarkedSection(DOC, key, [
    `## b. Sweep${mode === "grid" ? ", grid" : ""} (${records.length} records, r-ROME, each edit alone)`, "",
    `The first ${records.length} records of the sample in (a). ${mode === "grid" ? "Every combination of the listed values (the defaults' row added when absent)." : "Staged to save time: stage 1 varies the layer at the defaults; stage 2 the value steps at the best layer; stage 3 the clamp at the best layer and steps (best = highest S, then ES, then fewer steps). Rows repeated across stages are computed once."} Other hyperparameters as tinyfacts.json; sampled templates.`, "",
    table(["stage", "layer", "steps", "clamp", ...METRIC_HEADER, "s/edit"], rows.map((r) => [r.stage, String(r.config.layer), String(r.config.steps), String(r.config.clamp), ...metricCells(r.summary), r.seconds.toFixed(2)])), "",
    `Best: layer ${top.config.layer}, ${top.config.steps} steps, clamp ${top.config.clamp}: S ${scoreText(top.summary.s)}, ES ${pct(top.summary.es)}. ` +
      (beats ? `It beats the defaults (layer ${DEFAULT.layer}, ${DEFAULT.steps} steps, clamp ${DEFAULT.clamp}: S ${scoreText(dflt.summary.s)}, ES ${pct(dflt.summary.es)}) on these records; see the intervals before reading much into small differences.`
        : ties ? `It ties the defaults (layer ${DEFAULT.layer}, ${DEFAULT.steps} steps, clamp ${DEFAULT.clamp}) on S and ES and is cheaper.` : "The defaults are the best setting."), "", runLine(t0),
  ].join("\n"));
}

// ---- c. sequential ----
// K disjoint sequences (consecutive slices of the seeded permutation; the first is the first SEQ
// records of the sample in (a)). The two forms run in two child processes at once (onnxruntime's
// run is synchronous, so one process uses one core); each child writes one file per sequence, so an
// interrupted run resumes. This process then pools the files into the report.
const SEQ = Number(args.sequential);
const K = Number(args.sequences);
interface SequenceFile { records: number[]; result: SequentialResult; seconds: number; unrelated: number }
const seqDir = join(ROOT, "bench", "results", `sequential${TAG}`);
const seqFile = (form: Form, s: number) => join(seqDir, `${form}-${s}.json`);
const seqSample = SEQ > 0 ? pickSample(all, SEQ * K, args.sample as "random" | "first", SEED) : [];
const sequences = Array.from({ length: SEQ > 0 ? K : 0 }, (_, s) => seqSample.slice(s * SEQ, (s + 1) * SEQ));
const readSequence = (form: Form, s: number): SequenceFile | undefined => {
  if (!existsSync(seqFile(form, s))) return undefined;
  const f = JSON.parse(readFileSync(seqFile(form, s), "utf8")) as SequenceFile;
  return f.records.join() === sequences[s]!.map((r) => r.case_id).join() ? f : undefined;
};
if (CHILD) {
  const form = CHILD as Form;
  mkdirSync(seqDir, { recursive: true });
  const opts = await romeOptions({ ...BASE, form });
  for (const [s, records] of sequences.entries()) {
    if (readSequence(form, s)) continue;
    // Model health: top-1 accuracy of the true object on 200 facts whose subjects no edit of the sequence touches.
    const subjects = new Set(records.map((r) => r.requested_rewrite.subject));
    const unrelated = all.filter((r) => !subjects.has(r.requested_rewrite.subject)).slice(0, 200);
    const prompts = unrelated.map(rewritePrompt);
    const probe = async () => (await model.predict(prompts, { topK: 1 })).filter((x, i) => x[0]!.token === " " + unrelated[i]!.requested_rewrite.target_true.str).length / unrelated.length;
    const bar = new Progress(`  ${form}, sequence ${s + 1}/${K}`, records.length);
    const t1 = performance.now();
    const result = await sequentialEdits(model, records, () => opts, { every: 10, first: 10, probe, onProgress: (p) => bar.update(p.done) });
    const file: SequenceFile = { records: records.map((r) => r.case_id), result, seconds: (performance.now() - t1) / 1000, unrelated: unrelated.length };
    writeFileAtomic(seqFile(form, s), JSON.stringify(file));
  }
  await model.dispose();
  process.exit(0);
}
if (SEQ > 0) {
  console.log(`c. ${K} × ${SEQ} sequential edits, both forms (one child process each)`);
  const t0 = performance.now();
  const here = fileURLToPath(import.meta.url);
  await Promise.all(FORMS.map((form) => new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, here, ...process.argv.slice(2), "--sequential-child", form], { stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new RomeError("ERR_IO", `the ${form} sequential child exited with ${code}; run again to resume`))));
  })));
  const files = Object.fromEntries(FORMS.map((f) => [f, sequences.map((_, s) => readSequence(f, s)!)])) as Record<Form, SequenceFile[]>;
  const runs = (f: Form) => files[f].map((x) => x.result);
  results[`sequential${TAG}`] = { command, config: BASE, sequences: sequences.map((q) => q.map((r) => r.case_id)), forms: files };
  save();
  const curves = FORMS.map((f) => retentionCurve(runs(f), 10));
  const ages = FORMS.map((f) => retentionByAge(runs(f), 10));
  const cmp = compareRetention(runs("r-rome"), runs("reference"), 10);
  const health = (f: Form, j: number) => (100 * files[f].reduce((a, x) => a + (x.result.curve[j]!.probe ?? NaN), 0) / K).toFixed(0);
  const pooledAll = (f: Form, j: number) => pct(meanInterval(files[f].flatMap((x) => x.result.curve[j]!.es)), 0);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const refused = (f: Form) => files[f].reduce((a, x) => a + x.result.refused.length, 0);
  const madeRate = (f: Form) => pct(meanInterval(runs(f).flatMap((r) => r.esWhenMade)), 0);
  const diffText = (d: Difference) => `${(100 * d.a).toFixed(1)} vs ${(100 * d.b).toFixed(1)} %: difference ${(100 * d.diff).toFixed(1)} points [${(100 * d.lo).toFixed(1)}, ${(100 * d.hi).toFixed(1)}]`;
  writeMarkedSection(DOC, `sequential${TAG}`, [
    `## c. ${K} × ${SEQ} sequential edits (no undo between${tagTitle})`, "",
    `${K} disjoint sequences of ${SEQ} records (consecutive slices of the seeded permutation behind the sample in (a); the first sequence is the sample's first ${SEQ} records), each edited one after another (${baseText}; every edit computed on the model with the earlier ones applied), r-ROME and reference forms on the same sequences. Right after each edit its own efficacy is measured ("made"); after every 10 edits, the ES of every edit so far. **Held** counts only edits that succeeded when made: the share of them still succeeding. Refused edits stay in the counts (their fact keeps its old object). Edits that succeeded when made: r-ROME ${madeRate("r-rome")}, reference ${madeRate("reference")}. Refused: r-ROME ${refused("r-rome")}, reference ${refused("reference")} of ${K * SEQ}; median ‖ΔW‖/‖W‖ per edit: r-ROME ${median(runs("r-rome").flatMap((r) => r.normRatios)).toFixed(2)}, reference ${median(runs("reference").flatMap((r) => r.normRatios)).toFixed(2)}.`, "",
    `**The first 10 edits of each sequence, paired** (${cmp.n} edits per form, the checkpoints from 10 to ${SEQ} edits; 95% intervals from 1,000 paired resamples of the edits): efficacy r-ROME ${diffText(cmp.efficacy)}; held r-ROME ${diffText(cmp.held)}.`, "",
    "Pooled over the sequences (\"first 10\": the first 10 edits of each sequence):", "",
    table(["edits", "first 10 ES % r-ROME", "first 10 ES % ref", "first 10 held % r-ROME", "first 10 held % ref", "all held % r-ROME", "all held % ref", "all ES % r-ROME", "all ES % ref", "unrelated acc % r-ROME", "unrelated acc % ref"],
      curves[0]!.map((p, j) => {
        const q = curves[1]![j]!;
        return [String(p.edits), pct(p.firstEs, 0), pct(q.firstEs, 0), pct(p.firstHeld, 0), pct(q.firstHeld, 0), pct(p.allHeld, 0), pct(q.allHeld, 0), pooledAll("r-rome", j), pooledAll("reference", j), health("r-rome", j), health("reference", j)];
      })), "",
    "Held by age (edits applied after the edit; every checkpoint of every sequence):", "",
    table(["age", "held % r-ROME", "n", "held % ref", "n"], ages[0]!.map((b, i) => {
      const c = ages[1]![i];
      return [`${b.minAge}–${b.maxAge}`, pct(b.held, 0), String(b.held.n), c ? pct(c.held, 0) : "–", String(c?.held.n ?? 0)];
    })), "",
    `"Unrelated acc": top-1 accuracy of the true object on the rewrite prompts of ${files["r-rome"][0]!.unrelated} records whose subjects no edit of the sequence touches (model health), averaged over the sequences. Row 0 is the unedited model.`,
    "", runLine(t0),
  ].join("\n"));
}

results.meta = {
  date: new Date().toISOString(), command, model: model.fingerprint, cpu: cpus()[0]?.model, cores: cpus().length,
  defaults, sampled_templates: sampledTemplates, golden_templates: golden, seconds: (performance.now() - started) / 1000,
};
save();

function writeSetup(): void {
  writeMarkedSection(DOC, "setup", [
    "## Setup", "",
    `Model TinyFacts (${model.fingerprint.slice(0, 12)}), ${cpus().length} × ${cpus()[0]?.model ?? "CPU"} (shared with other work; seconds per edit are indicative only), rome-node's engine on onnxruntime CPU, one thread. Sample: ${sampleText}. Raw numbers: bench/results/eval-edits.json.`,
    "", `Metrics (rome-reference.md §5): per prompt, the mean per-token NLL of " " + target_new and of " " + target_true (tokenized apart from the prompt). ES: rewrite prompt with NLL_true > NLL_new; PS: the same over paraphrase prompts; NS: neighbourhood prompts with NLL_true < NLL_new; EM/PM/NM the matching mean differences of e^−NLL; S = harmonic mean of the mean ES, PS and NS.`,
    "", `Sampled context templates (rome's default, seed 0): ${sampledTemplates.map((t) => JSON.stringify(t)).join(", ")}.`,
  ].join("\n"), "# ROME edit experiments on TinyFacts");
}
console.log(`done in ${((performance.now() - started) / 60000).toFixed(1)} min; wrote ${JSON_OUT} and ${DOC}`);
await model.dispose();

function pickSample(records: readonly CounterFactRecord[], n: number, how: "random" | "first", seed: number): CounterFactRecord[] {
  if (n > records.length) throw new RomeError("ERR_ARGUMENT", `--records ${n} but the dataset has ${records.length}`);
  if (how === "first") return records.slice(0, n);
  const idx = records.map((_, i) => i);
  const random = seededRandom(seed);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, n).map((i) => records[i]!);
}
