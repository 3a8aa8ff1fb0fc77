// `npm run bench -- precision [--facts 100] [--gpt2-facts 3] [--samples 10] [--only tiny|gpt2]`
//
// The reduced-precision sweep (int8 weight products, scripts/int8-weights.ts; not adopted) against
// the exact one (f32), same facts, one run: per fact the exact sweep (traceKinds, strategy
// "minimal", kinds resid/mlp/attn, window 10) on an f32 model and on an int8 model, in alternating
// order, timed in wall and in process CPU seconds (onnxruntime runs one thread, so CPU seconds
// are the better measure on a shared machine). Agreement over the cells the noise can reach
// (tokens from the subject's first on): the largest |score difference|, the largest difference of
// the high and low scores, and per kind the share of facts whose top cell is the same ("top cell
// agrees"), or whose int8 top cell is within 0.01 of the exact top score ("near top").
// Models: TinyFacts (known.json) and the GPT-2-small shape with random weights (known_1000).
// Noise: 3 × the std of the subject-token embeddings over the facts traced (the reference's s3).
// Adoption rule (issue 14, item 4): ≥ 2× faster with top-cell agreement ≥ 99%.
import { cpus, loadavg } from "node:os";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { Model } from "../lib/runtime/model.js";
import { topIndices } from "../lib/trace/agreement.js";
import { readKnownFacts, type KnownFact } from "../lib/trace/known.js";
import { subjectEmbeddingStd } from "../lib/trace/noise.js";
import { traceKinds, type TraceResult } from "../lib/trace/trace.js";
import type { TraceKind } from "../lib/trace/grid.js";
import { arg, printTable, writeResults } from "./bench-util.js";
import { int8Arch, loadAt } from "./int8-weights.js";
import { randomGpt2 } from "./random-model.js";

const tinyFacts = Number(arg("facts") ?? 100);
const gptFacts = Number(arg("gpt2-facts") ?? 3);
const samples = Number(arg("samples") ?? 10);
const only = arg("only");
const KINDS: readonly TraceKind[] = ["resid", "mlp", "attn"];
const NEAR = 0.01;
type MatMulPrecision = "f32" | "int8";

type Load = (precision: MatMulPrecision) => Promise<Model>;

async function benchModel(name: string, load: Load, facts: KnownFact[]) {
  const loadSeconds: Record<MatMulPrecision, number> = { f32: 0, int8: 0 };
  const models = {} as Record<MatMulPrecision, Model>;
  for (const p of ["f32", "int8"] as const) {
    const t0 = performance.now();
    models[p] = await load(p);
    loadSeconds[p] = (performance.now() - t0) / 1000;
  }
  const level = 3 * (await subjectEmbeddingStd(models.f32, facts.map((f) => f.subject)));
  const wall = { f32: 0, int8: 0 };
  const cpu = { f32: 0, int8: 0 };
  const ratios: number[] = [];
  let maxDiff = 0;
  let maxEndDiff = 0;
  const top: Record<string, number[]> = Object.fromEntries(KINDS.map((k) => [k, []]));
  const near: Record<string, number[]> = Object.fromEntries(KINDS.map((k) => [k, []]));
  // warm-up: the first run of each session
  for (const p of ["f32", "int8"] as const) await traceKinds(models[p], { prompt: facts[0]!.prompt, subject: facts[0]!.subject, samples: 2, noise: level }, ["resid"]);
  for (const [i, f] of facts.entries()) {
    const res = {} as Record<MatMulPrecision, Partial<Record<TraceKind, TraceResult>>>;
    const secs = { f32: 0, int8: 0 };
    for (const p of i % 2 === 0 ? (["f32", "int8"] as const) : (["int8", "f32"] as const)) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      res[p] = await traceKinds(models[p], { prompt: f.prompt, subject: f.subject, samples, noise: level, window: 10, strategy: "minimal" }, KINDS);
      secs[p] = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      wall[p] += secs[p];
      cpu[p] += (c.user + c.system) / 1e6;
    }
    ratios.push(secs.f32 / secs.int8);
    for (const k of KINDS) {
      const ex = res.f32[k]!;
      const q = res.int8[k]!;
      const b = ex.subjectRange[0];
      const e = ex.scores.slice(b).flat();
      const a = q.scores.slice(b).flat();
      e.forEach((x, j) => (maxDiff = Math.max(maxDiff, Math.abs(x - a[j]!))));
      maxEndDiff = Math.max(maxEndDiff, Math.abs(ex.highScore - q.highScore), Math.abs(ex.lowScore - q.lowScore));
      const te = topIndices(e, 1)[0]!;
      const ta = topIndices(a, 1)[0]!;
      top[k]!.push(te === ta ? 1 : 0);
      near[k]!.push(e[ta]! >= e[te]! - NEAR ? 1 : 0);
    }
    if ((i + 1) % 10 === 0 || name !== "tinyfacts") console.error(`${name}: ${i + 1}/${facts.length} facts, f32 ÷ int8 so far ${(wall.f32 / wall.int8).toFixed(2)} (wall), ${(cpu.f32 / cpu.int8).toFixed(2)} (CPU); load ${loadavg()[0]!.toFixed(1)}`);
  }
  for (const p of ["f32", "int8"] as const) await models[p].dispose();
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const sorted = [...ratios].sort((x, y) => x - y);
  const speed = {
    model: name, facts: facts.length,
    "f32 s/fact": wall.f32 / facts.length, "int8 s/fact": wall.int8 / facts.length,
    "speed-up (wall)": wall.f32 / wall.int8, "speed-up (CPU s)": cpu.f32 / cpu.int8,
    "per-fact speed-up min–max": `${sorted[0]!.toFixed(2)}–${sorted.at(-1)!.toFixed(2)}`,
    "load s f32 / int8": `${loadSeconds.f32.toFixed(1)} / ${loadSeconds.int8.toFixed(1)}`,
    "max |Δ score|": maxDiff, "max |Δ high, low|": maxEndDiff,
  };
  const agree = KINDS.map((k) => ({ model: name, kind: k, facts: facts.length, "top cell agrees": mean(top[k]!), [`near top (≤ ${NEAR})`]: mean(near[k]!) }));
  return { name, noise: level, speed, agree, ratios };
}

const reports = [];
console.log(`precision benchmark: f32 against int8 weight products, exact sweep (minimal), samples ${samples}, window 10, 3 kinds per call, 1 thread; ${cpus().length} cores, load ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
if (only !== "gpt2") {
  reports.push(await benchModel("tinyfacts", (precision) => loadAt("models/tinyfacts", precision), readKnownFacts("models/tinyfacts/known.json").slice(0, tinyFacts)));
}
if (only !== "tiny") {
  const tokenizer = await Tokenizer.load("models/tiny-gpt2-random");
  const { arch, config, weights } = randomGpt2({}, 1);
  reports.push(await benchModel("gpt2-small-random", (precision) => Model.fromWeights(precision === "int8" ? int8Arch(arch) : arch, config, weights, { tokenizer }), readKnownFacts("data/known_1000.json").slice(0, gptFacts)));
}
printTable("speed and score deviation, int8 against f32 (cells from the subject's first token on)", reports.map((r) => r.speed));
printTable("top-cell agreement per kind", reports.flatMap((r) => r.agree));
const adopt = reports.every((r) => r.speed["speed-up (CPU s)"] >= 2 && r.agree.every((a) => a["top cell agrees"] >= 0.99));
console.log(`\nadoption rule (≥ 2× faster, top cell agrees ≥ 99% on every kind and model): ${adopt ? "met" : "not met"}`);
console.log(`load at the end ${loadavg().map((x) => x.toFixed(1)).join(" ")} (the machine is shared: seconds are contended, ratios are within this run)`);
writeResults("precision", { samples, near: NEAR, reports, adopt });
