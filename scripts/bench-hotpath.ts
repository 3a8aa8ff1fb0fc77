// `npm run bench -- hotpath [--threads 1] [--samples 10] [--window 10] [--ref-id 0] [--reps 1] [--baseline DIR]`
//
// The share of a sweep's wall time spent outside onnxruntime runs, for the case: the
// GPT-2-small shape with random weights, known_1000 #0 ("Vinson Massif is located in the continent
// of", 10 tokens), traceKinds over resid, mlp and attn, 10 samples, window 10, noise 3 × the
// subject-embedding std. Goal: ≤ 3% outside.
// onnxruntime time is measured by wrapping InferenceSession.prototype.run (tensor wrapping and the
// copy of outputs included); the restoration plans by wrapping RestorePlan.prototype.run. Variants,
// interleaved round by round in one process: the addon executing the plans ("native"), the same
// plans in JavaScript ("js", what runs when the addon is not built) and, with --baseline, another
// checkout's lib/ (e.g. a worktree of the commit before the plans), its model loaded after this
// checkout's is released (one GPT-2-small model resident at a time). Scores are compared bit for
// bit between variants.
import { loadavg } from "node:os";
import { resolve } from "node:path";
import ort from "onnxruntime-node";
import { nativeCapabilities, setNativeThreads } from "../lib/native.js";
import { forceRestoreBackend, RestorePlan } from "../lib/trace/restore-plan.js";
import { arg, printTable, writeResults } from "./bench-util.js";

const threads = Number(arg("threads") ?? 1);
const samples = Number(arg("samples") ?? 10);
const window = Number(arg("window") ?? 10);
const refId = Number(arg("ref-id") ?? 0);
const reps = Number(arg("reps") ?? 1);
const baseline = arg("baseline");
const load = () => loadavg().map((x) => x.toFixed(1)).join(" ");

// --- instrumentation (bench only: prototypes wrapped, lib/ untouched) -----------------------------
const clock = { ort: 0, plan: 0, planRuns: 0 };
const proto = (ort.InferenceSession as unknown as { prototype: { run: (...a: unknown[]) => Promise<unknown> } }).prototype;
const ortRun = proto.run;
proto.run = async function (this: unknown, ...a: unknown[]) {
  const t0 = performance.now();
  try {
    return await ortRun.apply(this, a);
  } finally {
    clock.ort += performance.now() - t0;
  }
};
const planRun = RestorePlan.prototype.run;
RestorePlan.prototype.run = function (this: RestorePlan, ...a: Parameters<RestorePlan["run"]>) {
  const t0 = performance.now();
  try {
    return planRun.apply(this, a);
  } finally {
    clock.plan += performance.now() - t0;
    clock.planRuns++;
  }
};

// --- one checkout's lib/: its model and its traceKinds --------------------------------------------
interface Lib {
  model: { dispose(): Promise<void> };
  trace: () => Promise<Record<string, { scores: number[][] }>>;
}
async function open(root: string): Promise<Lib> {
  const { Model } = await import(`${root}/lib/runtime/model.ts`);
  const { Tokenizer } = await import(`${root}/lib/model/tokenizer.ts`);
  const { randomGpt2 } = await import(`${root}/scripts/random-model.ts`);
  const { readKnownFacts } = await import(`${root}/lib/trace/known.ts`);
  const { subjectEmbeddingStd } = await import(`${root}/lib/trace/noise.ts`);
  const { traceKinds } = await import(`${root}/lib/trace/trace.ts`);
  try {
    (await import(`${root}/lib/native.ts`)).setNativeThreads(1); // each checkout's addon: one thread, like onnxruntime
  } catch {
    // that checkout's addon is not built
  }
  const tok = await Tokenizer.load(`${root}/models/tiny-gpt2-random`);
  const { arch, config, weights } = randomGpt2({}, 1);
  const model = await Model.fromWeights(arch, config, weights, { threads, tokenizer: tok });
  const fact = (readKnownFacts(`${root}/data/known_1000.json`) as { known_id: number; prompt: string; subject: string }[]).find((f) => f.known_id === refId)!;
  const noise = 3 * (await subjectEmbeddingStd(model, [fact.subject]));
  return {
    model,
    trace: () => traceKinds(model, { prompt: fact.prompt, subject: fact.subject, samples, window, noise }, ["resid", "mlp", "attn"]),
  };
}

const here = resolve(import.meta.dirname, "..");
let caps = "addon not built";
try {
  setNativeThreads(1);
  caps = JSON.stringify(nativeCapabilities());
} catch { /* idem */ }
console.log(`hotpath benchmark: ${threads} ort thread(s), samples ${samples}, window ${window}, known_id ${refId}, addon ${caps}, load ${load()}`);

const variants: { name: string; root: string; before?: () => void }[] = [];
if (caps !== "addon not built") variants.push({ name: "native (applyPlan)", root: here, before: () => forceRestoreBackend("native") });
variants.push({ name: "js (same plans)", root: here, before: () => forceRestoreBackend("js") });
if (baseline) variants.push({ name: `baseline ${baseline}`, root: resolve(baseline) });
let opened: { root: string; lib: Lib } | undefined;
/** The variant's checkout's lib/, the other checkout's model released first. */
const libOf = async (root: string): Promise<Lib> => {
  if (opened?.root !== root) {
    await opened?.lib.model.dispose();
    opened = { root, lib: await open(root) };
  }
  return opened.lib;
};

interface Row { seconds: number; ort: number; plan: number; planRuns: number; scores: string }
const runs = new Map<string, Row[]>();
for (let rep = 0; rep < reps; rep++) {
  for (const v of variants) {
    v.before?.();
    Object.assign(clock, { ort: 0, plan: 0, planRuns: 0 });
    const lib = await libOf(v.root);
    const t0 = performance.now();
    const r = await lib.trace();
    const seconds = (performance.now() - t0) / 1000;
    forceRestoreBackend(undefined);
    const row: Row = { seconds, ort: clock.ort / 1000, plan: clock.plan / 1000, planRuns: clock.planRuns, scores: JSON.stringify(Object.values(r).map((k) => k.scores)) };
    (runs.get(v.name) ?? runs.set(v.name, []).get(v.name)!).push(row);
    console.log(`  rep ${rep} ${v.name}: ${seconds.toFixed(2)} s, outside onnxruntime ${(100 * (1 - row.ort / seconds)).toFixed(2)}%, load ${load()}`);
  }
}

const first = runs.get(variants[0]!.name)![0]!.scores;
const table = variants.map((v) => {
  const rs = runs.get(v.name)!;
  const sum = (f: (r: Row) => number) => rs.reduce((a, r) => a + f(r), 0);
  const wall = sum((r) => r.seconds), inOrt = sum((r) => r.ort), plan = sum((r) => r.plan);
  return {
    variant: v.name, runs: rs.length, "wall s": wall / rs.length, "onnxruntime s": inOrt / rs.length, "outside s": (wall - inOrt) / rs.length,
    "outside %": (100 * (wall - inOrt)) / wall, "≤ 3%": (wall - inOrt) / wall <= 0.03 ? "yes" : "NO",
    "plans s": plan / rs.length, "plans %": (100 * plan) / wall, "plan runs": sum((r) => r.planRuns) / rs.length,
    "scores = first variant's": rs.every((r) => r.scores === first) ? "bit-identical" : "DIFFER",
  };
});
printTable(`hotpath: traceKinds (resid, mlp, attn), GPT-2-small shape random weights, known_id ${refId}, ${samples} samples, window ${window}, ${threads} ort thread(s); load now ${load()}`, table);
console.log(`results: ${writeResults("hotpath", { threads, samples, window, refId, reps, baseline, table })}`);
await opened?.lib.model.dispose();
