// `npm run bench -- trace [--threads 1] [--native-threads 1] [--samples 10] [--facts 2] [--naive-facts 1] [--ref-id 0]
//   [--tiny-facts 10] [--tiny-naive-facts 3] [--budget 256] [--reps 1] [--only gpt2|tiny]
//   [--matmul-seconds 1]`
//
// Causal-tracing throughput of the naive strategy (the reference's: every restoration reruns the
// whole network on N + 1 rows) and the minimal one (lib/trace/sweep.ts), side by side with their
// FLOP counts (executed, and the minimal count the scores need), per kind (resid, mlp, attn, and
// the three together through traceKinds), on
//   - a GPT-2-small-shaped model with random weights (12 layers, d 768, GPT-2's tokenizer), prompts
//     from data/known_1000.json; the first fact is the issue's reference case (`--ref-id`, default
//     known_id 0: "Vinson Massif is located in the continent of", 10 tokens, subject at token 0);
//   - TinyFacts (models/tinyfacts), prompts from its known.json.
// The addon (restoration plans and past keys/values run through its applyPlan) runs on `--native-threads` threads,
// 1 by default like onnxruntime; the addon's own default (0 = every core) costs ~20% on a shared
// 2-core machine, because its OpenMP copies compete with the onnxruntime thread.
// Noise: 3 × the std of the subject-token embeddings over the subjects of the facts traced (the
// reference's s3, computed once per model as traceDataset does). Samples N = 10, windows 10.
//
// Per-kind naive figures come from ONE traceKinds(naive) call over the three kinds: its progress
// callback timestamps every restoration and reads the FLOP meter, so each kind gets the time and
// FLOPs of its own restorations plus the shared preparation (clean + corrupted runs), i.e. what a
// trace(kind, naive) call costs; "all" is the call itself. Minimal figures are separate trace()
// calls per kind and one traceKinds() call for "all".
//
// For the reference case the issue's goals are checked: speed-up / FLOP ratio ≥ 0.8 and the
// minimal strategy's GFLOP/s (executed FLOPs / wall time) ≥ 60% of a plain onnxruntime MatMul
// (rows, 768) × (768, 3072) timed in the same run, rows = the FLOP-weighted median of the rows
// (batch rows × positions) of the sweep's MLP segment calls in the reference "all" run. The engine
// is instrumented (its attn/mlp/head/embed methods wrapped on the instance, lib/ untouched) so
// the wall time splits into onnxruntime segment time and the JavaScript work between segments.
import { cpus, loadavg } from "node:os";
import ort from "onnxruntime-node";
import { GraphBuilder } from "../lib/graph/builder.js";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { nativeCapabilities, setNativeThreads } from "../lib/native.js";
import type { Engine } from "../lib/runtime/engine.js";
import { Model } from "../lib/runtime/model.js";
import type { TraceKind } from "../lib/trace/grid.js";
import { readKnownFacts, type KnownFact } from "../lib/trace/known.js";
import { subjectEmbeddingStd } from "../lib/trace/noise.js";
import { subjectChars, tokenRange } from "../lib/trace/subject.js";
import { probOf } from "../lib/runtime/sampling.js";
import { traceKinds, type TraceOptions, type TraceResult } from "../lib/trace/trace.js";
import { arg, printTable, time, writeResults } from "./bench-util.js";
import { randomGpt2 } from "./random-model.js";

const threads = Number(arg("threads") ?? 1);
const nativeThreads = Number(arg("native-threads") ?? 1);
const samples = Number(arg("samples") ?? 10);
const gptFacts = Number(arg("facts") ?? 2);
const gptNaiveFacts = Number(arg("naive-facts") ?? 1);
const refId = Number(arg("ref-id") ?? 0);
const tinyFacts = Number(arg("tiny-facts") ?? 10);
const tinyNaiveFacts = Number(arg("tiny-naive-facts") ?? 3);
const budgetMB = Number(arg("budget") ?? 256);
const reps = Number(arg("reps") ?? 1);
const only = arg("only");
const matmulSeconds = Number(arg("matmul-seconds") ?? 1);
const KINDS: readonly TraceKind[] = ["resid", "mlp", "attn"];
type Col = TraceKind | "all";
const COLS: readonly Col[] = [...KINDS, "all"];
const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");

// --- engine instrumentation ------------------------------------------------------------------------

interface Prof {
  seconds: Record<"embed" | "attn" | "mlp" | "head", number>;
  calls: Record<"embed" | "attn" | "mlp" | "head", number>;
  /** rows (B·T) of each MLP call and its FLOPs weight */
  mlpRows: number[];
  headRows: number;
  meter?: { flops: number };
}
const newProf = (): Prof => ({ seconds: { embed: 0, attn: 0, mlp: 0, head: 0 }, calls: { embed: 0, attn: 0, mlp: 0, head: 0 }, mlpRows: [], headRows: 0 });

/** Wraps the engine's segment methods on the instance; `prof.current` collects until replaced. */
function instrument(engine: Engine): { current: Prof } {
  const box = { current: newProf() };
  const e = engine as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const wrap = (name: "embed" | "attn" | "mlp" | "head", note: (args: unknown[]) => void) => {
    const orig = e[name]!.bind(engine);
    e[name] = async (...args: unknown[]) => {
      const t0 = performance.now();
      const r = await orig(...args);
      const p = box.current;
      p.seconds[name] += (performance.now() - t0) / 1000;
      p.calls[name]++;
      note(args);
      return r;
    };
  };
  wrap("embed", () => {});
  wrap("attn", (a) => {
    if (a[5]) box.current.meter = a[5] as { flops: number };
  });
  wrap("mlp", (a) => {
    box.current.mlpRows.push((a[1] as number) * (a[2] as number));
    if (a[5]) box.current.meter = a[5] as { flops: number };
  });
  wrap("head", (a) => {
    box.current.headRows += (a[3] as unknown[]).length;
    if (a[4]) box.current.meter = a[4] as { flops: number };
  });
  return box;
}

const ortSeconds = (p: Prof) => p.seconds.embed + p.seconds.attn + p.seconds.mlp + p.seconds.head;

// --- measurements ----------------------------------------------------------------------------------

interface KindRun { seconds: number; executed: number; minimal: number; ort: number; prof?: Prof }
interface FactRuns {
  fact: KnownFact;
  T: number;
  subject: [number, number];
  naive?: Record<Col, KindRun>;
  minimal: Record<Col, KindRun>;
  maxScoreDiff?: number;
}

async function runMinimal(model: Model, box: { current: Prof }, opts: TraceOptions, kinds: readonly TraceKind[]): Promise<{ run: KindRun; results: Partial<Record<TraceKind, TraceResult>> }> {
  let best: { run: KindRun; results: Partial<Record<TraceKind, TraceResult>> } | undefined;
  for (let r = 0; r < reps; r++) {
    box.current = newProf();
    const t0 = performance.now();
    const results = await traceKinds(model, { ...opts, strategy: "minimal" }, kinds);
    const seconds = (performance.now() - t0) / 1000;
    const f = results[kinds[0]!]!.flops;
    const run = { seconds, executed: f.executed, minimal: f.minimal, ort: ortSeconds(box.current), prof: box.current };
    if (!best || seconds < best.run.seconds) best = { run, results };
  }
  return best!;
}

/** One traceKinds(naive) call over the three kinds, split per kind by progress timestamps. */
async function runNaive(model: Model, box: { current: Prof }, opts: TraceOptions): Promise<{ runs: Record<Col, KindRun>; results: Partial<Record<TraceKind, TraceResult>> }> {
  box.current = newProf();
  const stamps: { t: number; flops: number; ort: number }[] = [];
  const t0 = performance.now();
  const results = await traceKinds(model, {
    ...opts, strategy: "naive",
    onProgress: () => stamps.push({ t: performance.now(), flops: box.current.meter?.flops ?? 0, ort: ortSeconds(box.current) }),
  }, KINDS);
  const seconds = (performance.now() - t0) / 1000;
  const f = results.resid!.flops;
  const total = stamps.length;
  const per = total / KINDS.length; // T·L restorations per kind
  const dt = stamps.slice(1).map((s, i) => (s.t - stamps[i]!.t) / 1000).sort((a, b) => a - b);
  const restSeconds = dt[Math.floor(dt.length / 2)]!;
  const restFlops = stamps[1]!.flops - stamps[0]!.flops;
  const restOrt = stamps[1]!.ort - stamps[0]!.ort;
  // preparation (clean + corrupted runs) = everything before the first restoration
  const prep = { seconds: (stamps[0]!.t - t0) / 1000 - restSeconds, flops: stamps[0]!.flops - restFlops, ort: stamps[0]!.ort - restOrt };
  const runs = {} as Record<Col, KindRun>;
  KINDS.forEach((k, i) => {
    const a = i * per;
    const b = (i + 1) * per - 1;
    const before = a === 0 ? { t: t0 + prep.seconds * 1000, flops: prep.flops, ort: prep.ort } : stamps[a - 1]!;
    runs[k] = {
      seconds: prep.seconds + (stamps[b]!.t - before.t) / 1000,
      executed: prep.flops + stamps[b]!.flops - before.flops,
      minimal: results[k]!.flops.minimal,
      ort: prep.ort + stamps[b]!.ort - before.ort,
    };
  });
  runs.all = { seconds, executed: f.executed, minimal: f.minimal, ort: ortSeconds(box.current), prof: box.current };
  return { runs, results };
}

/** Minimal per kind (separate trace calls) and all three (traceKinds); naive optionally. */
async function traceFact(model: Model, box: { current: Prof }, fact: KnownFact, noise: number, withNaive: boolean, label: string): Promise<FactRuns> {
  const opts: TraceOptions = { prompt: fact.prompt, subject: fact.subject, samples, noise, memoryBudgetMB: budgetMB };
  const enc = await model.tokenizer.encode(fact.prompt);
  const subject = tokenRange(enc, subjectChars(fact.prompt, fact.subject, {}));
  const minimal = {} as Record<Col, KindRun>;
  for (const k of KINDS) minimal[k] = (await runMinimal(model, box, opts, [k])).run;
  const all = await runMinimal(model, box, opts, KINDS);
  minimal.all = all.run;
  const out: FactRuns = { fact, T: enc.ids.length, subject, minimal };
  let msg = `${label} #${fact.known_id} (${enc.ids.length} tokens, subject ${subject[0]}–${subject[1]}): minimal ${COLS.map((c) => `${c} ${minimal[c].seconds.toFixed(2)} s`).join(", ")}`;
  if (withNaive) {
    const n = await runNaive(model, box, opts);
    // traceKinds reports the minimal count of all its kinds together: per kind, take trace()'s
    for (const k of KINDS) n.runs[k].minimal = minimal[k].minimal;
    out.naive = n.runs;
    let d = 0;
    for (const k of KINDS) {
      const a = n.results[k]!.scores.flat();
      const b = all.results[k]!.scores.flat();
      a.forEach((x, i) => (d = Math.max(d, Math.abs(x - b[i]!))));
    }
    out.maxScoreDiff = d;
    msg += `; naive ${COLS.map((c) => `${c} ${n.runs[c].seconds.toFixed(2)} s`).join(", ")}; max |Δscore| ${d.toExponential(1)}`;
  }
  console.log(msg + ` (load ${load()})`);
  return out;
}

async function matmulGflops(D: number, F: number, rows: number): Promise<number> {
  const g = new GraphBuilder("matmul");
  const x = g.input("x", "float32", ["R", D]);
  const w = g.initializer("w", [D, F], new Float32Array(D * F).map((_, i) => ((i * 2654435761) % 1000) / 1e5 - 0.005));
  g.output("y", g.op("MatMul", [x, w]), "float32", ["R", F]);
  const s = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: "all", executionMode: "sequential", logSeverityLevel: 3 });
  const feeds = { x: new ort.Tensor("float32", new Float32Array(rows * D).map((_, i) => ((i * 40503) % 997) / 997 - 0.5), [rows, D]) };
  const t = await time(() => s.run(feeds), matmulSeconds);
  await s.release();
  return (2 * rows * D * F) / t.seconds / 1e9;
}

/** FLOP-weighted median of the MLP calls' rows. */
function weightedMedianRows(rows: number[]): number {
  const s = [...rows].sort((a, b) => a - b);
  const total = s.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (const r of s) if ((acc += r) >= total / 2) return r;
  return s[s.length - 1] ?? 1;
}

// --- one model -------------------------------------------------------------------------------------

interface ModelReport { name: string; noise: number; facts: FactRuns[]; summary: Record<string, string | number>[]; reference?: unknown }

function summarise(name: string, facts: FactRuns[]): Record<string, string | number>[] {
  const rows: Record<string, string | number>[] = [];
  const naiveFacts = facts.filter((f) => f.naive);
  for (const c of COLS) {
    const sum = (fs: FactRuns[], pick: (f: FactRuns) => number) => fs.reduce((a, f) => a + pick(f), 0);
    const mS = sum(facts, (f) => f.minimal[c].seconds);
    const row: Record<string, string | number> = {
      model: name, kind: c,
      "min facts": facts.length,
      "min facts/s": facts.length / mS,
      "min GFLOP exec/fact": sum(facts, (f) => f.minimal[c].executed) / facts.length / 1e9,
      "minimal GFLOP/fact": sum(facts, (f) => f.minimal[c].minimal) / facts.length / 1e9,
      "min GFLOP/s": sum(facts, (f) => f.minimal[c].executed) / mS / 1e9,
    };
    if (naiveFacts.length > 0) {
      const nS = sum(naiveFacts, (f) => f.naive![c].seconds);
      Object.assign(row, {
        "naive facts": naiveFacts.length,
        "naive facts/s": naiveFacts.length / nS,
        "naive GFLOP exec/fact": sum(naiveFacts, (f) => f.naive![c].executed) / naiveFacts.length / 1e9,
        "naive GFLOP/s": sum(naiveFacts, (f) => f.naive![c].executed) / nS / 1e9,
      });
    }
    rows.push(row);
  }
  return rows;
}

async function benchModel(name: string, model: Model, facts: KnownFact[], naiveCount: number, box: { current: Prof }, refCase: boolean): Promise<ModelReport> {
  const noise = 3 * (await subjectEmbeddingStd(model, facts.map((f) => f.subject)));
  console.log(`\n${name}: ${facts.length} facts (naive on the first ${naiveCount}), noise level ${noise.toPrecision(4)} (3 × subject-embedding std), samples ${samples}, budget ${budgetMB} MiB, load ${load()}`);
  const runs: FactRuns[] = [];
  for (let i = 0; i < facts.length; i++) runs.push(await traceFact(model, box, facts[i]!, noise, i < naiveCount, name));
  const summary = summarise(name, runs);
  const report: ModelReport = { name, noise, facts: runs.map((f) => ({ ...f, minimal: stripProf(f.minimal), naive: f.naive && stripProf(f.naive) })), summary };
  if (refCase) report.reference = await referenceCase(model, runs[0]!);
  return report;
}

function stripProf(r: Record<Col, KindRun>): Record<Col, KindRun> {
  const out = {} as Record<Col, KindRun>;
  for (const c of COLS) out[c] = { seconds: r[c].seconds, executed: r[c].executed, minimal: r[c].minimal, ort: r[c].ort };
  return out;
}

/** The issue's goals on the reference fact, and where the minimal strategy's time goes. */
async function referenceCase(model: Model, f: FactRuns): Promise<unknown> {
  const cfg = model.config;
  const p = f.minimal.all.prof!;
  const rows = weightedMedianRows(p.mlpRows);
  const mmRows = [...new Set([rows, Math.min(...p.mlpRows), Math.max(...p.mlpRows), (samples + 1) * f.T])].sort((a, b) => a - b);
  const mm: Record<number, number> = {};
  for (const r of mmRows) mm[r] = await matmulGflops(cfg.nEmbd, cfg.nInner, r);
  const mmRef = mm[rows]!;
  const goal: Record<string, string | number>[] = [];
  for (const c of COLS) {
    const n = f.naive![c];
    const m = f.minimal[c];
    const flopRatio = n.executed / m.executed;
    const speedup = n.seconds / m.seconds;
    const gflops = m.executed / m.seconds / 1e9;
    goal.push({
      kind: c,
      "naive s": n.seconds, "min s": m.seconds,
      "naive GFLOP": n.executed / 1e9, "min GFLOP exec": m.executed / 1e9, "minimal GFLOP": m.minimal / 1e9,
      "exec/minimal": m.executed / m.minimal,
      "FLOP ratio": flopRatio, "minimal-count ratio": n.executed / m.minimal, "speed-up": speedup,
      "speed-up/FLOP ratio": speedup / flopRatio, "≥0.8": speedup / flopRatio >= 0.8 ? "yes" : "NO",
      "min GFLOP/s": gflops, "naive GFLOP/s": n.executed / n.seconds / 1e9,
      "vs MatMul": gflops / mmRef, "≥0.6": gflops / mmRef >= 0.6 ? "yes" : "NO",
    });
  }
  console.log(`\nreference case: known_id ${f.fact.known_id} ${JSON.stringify(f.fact.prompt)}, subject ${JSON.stringify(f.fact.subject)} = tokens ${f.subject[0]}–${f.subject[1] - 1} of ${f.T}; max |Δscore| naive vs minimal ${f.maxScoreDiff?.toExponential(2)}`);
  console.log(`plain ORT MatMul (rows, ${cfg.nEmbd}) × (${cfg.nEmbd}, ${cfg.nInner}), ${threads} thread(s): ${mmRows.map((r) => `${r} rows ${mm[r]!.toFixed(1)} GFLOP/s`).join(", ")}; reference shape = ${rows} rows (FLOP-weighted median of the sweep's MLP calls in the "all" run; min ${Math.min(...p.mlpRows)}, max ${Math.max(...p.mlpRows)}, ${p.mlpRows.length} calls)`);
  printTable(`reference case (GPT-2-small shape, ${samples} samples, ${threads} thread(s)): goals speed-up/FLOP ratio ≥ 0.8, min GFLOP/s ≥ 60% of MatMul at ${rows} rows (${mmRef.toFixed(1)} GFLOP/s)`, goal);

  // Where the minimal strategy's time goes, per run: onnxruntime segments vs JS between them.
  const prof: Record<string, string | number>[] = [];
  const probSec = await probOfSeconds(cfg.vocabSize);
  for (const c of COLS) {
    const m = f.minimal[c];
    const q = m.prof!;
    const js = m.seconds - ortSeconds(q);
    prof.push({
      kind: c, "wall s": m.seconds,
      "attn s": q.seconds.attn, "mlp s": q.seconds.mlp, "head s": q.seconds.head, "embed s": q.seconds.embed,
      "JS s": js, "JS %": (100 * js) / m.seconds,
      "probOf s (est)": probSec * q.headRows,
      "attn calls": q.calls.attn, "mlp calls": q.calls.mlp, "mean MLP rows": q.mlpRows.reduce((a, b) => a + b, 0) / Math.max(1, q.mlpRows.length),
      "ORT GFLOP/s": m.executed / ortSeconds(q) / 1e9,
    });
  }
  const n = f.naive!.all;
  const nq = n.prof!;
  prof.push({
    kind: "naive all", "wall s": n.seconds, "attn s": nq.seconds.attn, "mlp s": nq.seconds.mlp, "head s": nq.seconds.head, "embed s": nq.seconds.embed,
    "JS s": n.seconds - ortSeconds(nq), "JS %": (100 * (n.seconds - ortSeconds(nq))) / n.seconds,
    "probOf s (est)": probSec * nq.headRows,
    "attn calls": nq.calls.attn, "mlp calls": nq.calls.mlp, "mean MLP rows": nq.mlpRows.reduce((a, b) => a + b, 0) / Math.max(1, nq.mlpRows.length),
    "ORT GFLOP/s": n.executed / ortSeconds(nq) / 1e9,
  });
  printTable("reference case: where the time goes (segment time measured by wrapping the engine; JS = wall − segments; probOf re-timed on its own; `npm run bench -- hotpath` splits the JS share at the run's shapes)", prof);
  return { fact: f.fact, T: f.T, subject: f.subject, maxScoreDiff: f.maxScoreDiff, matmul: { rows, gflops: mm }, goals: goal, profile: prof };
}

async function probOfSeconds(V: number): Promise<number> {
  const logits = new Float32Array(V).map((_, i) => ((i * 7919) % 1000) / 100 - 5);
  const t = await time(() => probOf(logits, 3), 0.2);
  return t.seconds;
}

// --- main ------------------------------------------------------------------------------------------

const t0 = performance.now();
let nt: number | string = "addon not built";
try {
  nt = setNativeThreads(nativeThreads);
} catch {
  // tracing runs without the addon (JavaScript copies)
}
console.log(`trace benchmark: ${threads} ort thread(s), native threads ${nt}${typeof nt === "number" ? ` (${JSON.stringify(nativeCapabilities())})` : ""}, ${cpus().length} cores, load ${load()}`);
const reports: ModelReport[] = [];

if (only !== "tiny") {
  const tok = await Tokenizer.load("models/tiny-gpt2-random");
  const { arch, config, weights } = randomGpt2({}, 1);
  const model = await Model.fromWeights(arch, config, weights, { threads, tokenizer: tok });
  const box = instrument(model.engine);
  const known = readKnownFacts("data/known_1000.json");
  const ref = known.find((f) => f.known_id === refId);
  if (!ref) throw new Error(`no fact with known_id ${refId}`);
  const facts = [ref, ...known.filter((f) => f !== ref).slice(0, Math.max(0, gptFacts - 1))];
  reports.push(await benchModel("gpt2-small-random", model, facts, Math.max(1, Math.min(gptNaiveFacts, facts.length)), box, true));
  await model.dispose();
}
if (only !== "gpt2") {
  const model = await Model.load("models/tinyfacts", { threads });
  const box = instrument(model.engine);
  const facts = readKnownFacts("models/tinyfacts/known.json").slice(0, tinyFacts);
  reports.push(await benchModel("tinyfacts", model, facts, Math.min(tinyNaiveFacts, facts.length), box, false));
  await model.dispose();
}

printTable(`facts/s and GFLOP per fact, naive vs minimal, per kind ("all" = the three kinds in one traceKinds call); ${samples} samples, windows 10, ${threads} ort thread(s)`,
  reports.flatMap((r) => r.summary));
console.log(`\nload average ${load()}; total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
writeResults("trace", { threads, nativeThreads: nt, samples, budgetMB, reps, loadavg: loadavg(), models: reports, totalSeconds: (performance.now() - t0) / 1000 });
