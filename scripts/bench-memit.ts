// `npm run bench -- memit [--sizes 10,100,1000] [--gpt2-sizes 10,100] [--gpt2-steps 2]
//     [--baseline 10] [--threads 1] [--chunk 32] [--only tiny|gpt2]`
//
// MEMIT batch edits: edits per second for each batch size, split into target (z) optimisation,
// keys and solve, with wall and CPU seconds (the machine may be shared: CPU seconds are the
// steadier measure).
//   - TinyFacts (models/tinyfacts, its MEMIT hyperparameters: layers 0–1, 100 target steps with the
//     reference's early stop, λ 20; the reference's statistics files; the golden batch's context
//     templates). Requests: records with distinct subjects first (450 of them), then the others
//     (sharing a subject, not a relation); a size above the 990 records is cut to 990.
//   - A GPT-2-small-shaped model with random weights (GPT-2's tokenizer; GPT-2 XL's MEMIT
//     hyperparameters, layers scaled to 3–4; statistics over 6,000 tokens of data/known_1000.json):
//     `--gpt2-steps` target steps (a random model never stops early), so its z seconds are also
//     given per step and scaled to 100 steps.
// Baselines measured in the same run: the first `--baseline` requests of the TinyFacts batch of 10
// edited one by one with r-ROME at layer 1 (same 100 steps and templates); and the reference
// implementation's recorded 52–71 s for a batch of 10 on this machine class (2 threads, 99% in z;
// golden-memit.json meta.timings_s), which this run does not measure.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { memit, type MemitEdit } from "../lib/edit/memit.js";
import { defaultMemitHparams } from "../lib/edit/memit-hparams.js";
import type { MemitRequest } from "../lib/edit/memit-requests.js";
import { rome } from "../lib/edit/rome.js";
import { computeStatsLayers, loadStats, type Stats } from "../lib/edit/stats.js";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { Model } from "../lib/runtime/model.js";
import { arg, printTable, writeResults } from "./bench-util.js";
import { randomGpt2 } from "./random-model.js";

const ROOT = join(import.meta.dirname, "..");
const DIR = join(ROOT, "models", "tinyfacts");
const list = (s: string) => s.split(",").filter(Boolean).map(Number);
const sizes = list(arg("sizes") ?? "10,100,1000");
const gptSizes = list(arg("gpt2-sizes") ?? "10,100");
const gptSteps = Number(arg("gpt2-steps") ?? 2);
const threads = Number(arg("threads") ?? 1);
const chunk = Number(arg("chunk") ?? 32);
const baselineCount = Number(arg("baseline") ?? 10);
const only = arg("only");
const REFERENCE_S = [52, 71]; // the reference, batch of 10 on TinyFacts (recorded, not measured here)

const golden = JSON.parse(readFileSync(join(DIR, "golden-memit.json"), "utf8")) as { meta: { template_groups: string[][] } };
const templates = golden.meta.template_groups;
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const load = () => loadavg()[0]!.toFixed(1);
const rows: Record<string, string | number>[] = [];
const results: unknown[] = [];

/** One batch: its edits/s and phase seconds, a row of the table. */
async function batch(modelName: string, model: Model, requests: MemitRequest[], stats: Stats[], hparams: Record<string, unknown>, stepsPlanned: number): Promise<MemitEdit> {
  const c0 = cpu();
  const e = await memit(model, requests, { stats, contextTemplates: templates, targetChunk: chunk, hparams });
  const cpuSeconds = cpu() - c0;
  const s = e.seconds;
  const steps = e.targets.losses.reduce((a, l) => a + l.length, 0);
  const n = requests.length;
  const maxSteps = Math.max(...e.targets.losses.map((l) => l.length));
  rows.push({
    model: modelName, method: "MEMIT batch", requests: n, "edits/s": n / s.total, "wall s": s.total, "cpu s": cpuSeconds,
    "z s": s.targets, "keys s": s.keys, "solve s": s.solve, "z steps (all requests)": steps,
    "z s per 100 steps": (100 * s.targets) / maxSteps, load: load(),
  });
  results.push({ model: modelName, method: "memit", requests: n, seconds: s, cpuSeconds, steps, stepsPlanned, converged: e.targets.converged.filter(Boolean).length });
  console.log(`${modelName} memit ${n}: ${s.total.toFixed(1)} s wall, ${cpuSeconds.toFixed(1)} s CPU (z ${s.targets.toFixed(1)}, keys ${s.keys.toFixed(2)}, solve ${s.solve.toFixed(2)}), ${steps} request-steps, load ${load()}`);
  return e;
}

if (only !== "gpt2") {
  const cf = JSON.parse(readFileSync(join(DIR, "counterfact.json"), "utf8")) as { requested_rewrite: { prompt: string; subject: string; target_new: { str: string }; relation_id: string } }[];
  const seen = new Set<string>();
  const first: MemitRequest[] = [];
  const rest: MemitRequest[] = [];
  for (const r of cf) {
    const rr = r.requested_rewrite;
    (seen.has(rr.subject) ? rest : first).push({ prompt: rr.prompt, subject: rr.subject, targetNew: rr.target_new.str, relationId: rr.relation_id });
    seen.add(rr.subject);
  }
  const pool = [...first, ...rest];
  const model = await Model.load(DIR, { threads });
  const stats = [0, 1].map((l) => ({ ...loadStats(join(DIR, `stats-layer${l}.safetensors`)), layer: l }));
  // Warm-up: build the batched gradient session once.
  await memit(model, pool.slice(0, 1), { stats, contextTemplates: templates, hparams: { vNumGradSteps: 2 } });
  let ten: { wall: number; cpu: number } | undefined;
  for (const size of sizes) {
    const n = Math.min(size, pool.length);
    const c0 = cpu();
    const e = await batch("tinyfacts", model, pool.slice(0, n), stats, {}, 100);
    if (n === 10) ten = { wall: e.seconds.total, cpu: cpu() - c0 };
  }
  if (baselineCount > 0) {
    const flat = templates.flat();
    const c0 = cpu();
    const t0 = performance.now();
    for (const r of pool.slice(0, baselineCount)) {
      await rome(model, { prompt: r.prompt, subject: r.subject, targetNew: r.targetNew }, { stats: stats[1], layer: 1, contextTemplates: flat, hparams: { vNumGradSteps: 100, clampNormFactor: 4 } });
    }
    const wall = (performance.now() - t0) / 1000;
    const cpuSeconds = cpu() - c0;
    rows.push({ model: "tinyfacts", method: "r-ROME one by one (same requests)", requests: baselineCount, "edits/s": baselineCount / wall, "wall s": wall, "cpu s": cpuSeconds, "z s": "", "keys s": "", "solve s": "", "z steps (all requests)": "", "z s per 100 steps": "", load: load() });
    results.push({ model: "tinyfacts", method: "r-rome", requests: baselineCount, wall, cpuSeconds });
    if (ten !== undefined && baselineCount === 10) {
      console.log(`\nbatch of 10: MEMIT ${ten.wall.toFixed(1)} s wall / ${ten.cpu.toFixed(1)} s CPU, r-ROME one by one ${wall.toFixed(1)} s / ${cpuSeconds.toFixed(1)} s in this run: ${(wall / ten.wall).toFixed(2)}× wall, ${(cpuSeconds / ten.cpu).toFixed(2)}× CPU`);
    }
  }
  if (ten !== undefined) {
    console.log(`batch of 10 against the reference's recorded ${REFERENCE_S.join("–")} s (not measured here): ${(REFERENCE_S[0]! / ten.wall).toFixed(1)}–${(REFERENCE_S[1]! / ten.wall).toFixed(1)}× on this run's wall seconds (load ${load()}), ` +
      `${(REFERENCE_S[0]! / ten.cpu).toFixed(1)}–${(REFERENCE_S[1]! / ten.cpu).toFixed(1)}× on its CPU seconds (what one quiet thread would take)`);
  }
  await model.dispose();
}

if (only !== "tiny" && gptSizes.length > 0) {
  const tok = await Tokenizer.load(join(ROOT, "models", "tiny-gpt2-random"));
  const { arch, config, weights } = randomGpt2({}, 1);
  const model = await Model.fromWeights(arch, config, weights, { threads, tokenizer: tok });
  const hp = defaultMemitHparams(config);
  const known = JSON.parse(readFileSync(join(ROOT, "data", "known_1000.json"), "utf8")) as { prompt: string; subject: string; attribute: string }[];
  const t0 = performance.now();
  const stats = await computeStatsLayers(model, { layers: hp.layers, texts: known.map((f) => f.prompt + " " + f.attribute), maxTokens: 6000, cacheDir: false });
  console.log(`gpt2-small-random: statistics of layers ${hp.layers.join(", ")} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  // Requests: each fact's prompt with its subject as "{}", another fact's attribute as the new object.
  const requests: MemitRequest[] = known.filter((f) => f.prompt.includes(f.subject)).map((f, i, all) => ({
    prompt: f.prompt.replace(f.subject, "{}"), subject: f.subject, targetNew: all.find((g, j) => j > i && g.attribute !== f.attribute)?.attribute ?? "Paris",
  }));
  const subjects = new Set<string>();
  const distinct: MemitRequest[] = [];
  for (const r of requests) {
    if (!subjects.has(r.subject)) distinct.push(r);
    subjects.add(r.subject);
  }
  await memit(model, distinct.slice(0, 1), { stats, contextTemplates: templates, hparams: { vNumGradSteps: 1 } });
  for (const n of gptSizes) await batch("gpt2-small-random", model, distinct.slice(0, n), stats, { vNumGradSteps: gptSteps }, gptSteps);
  await model.dispose();
}

printTable(`MEMIT batch edits (threads ${threads}, target chunk ${chunk}); the reference: ${REFERENCE_S.join("–")} s for a batch of 10 on TinyFacts (recorded, 2 threads, 99% in z)`, rows);
writeResults("memit", { threads, chunk, gptSteps, loadavg: loadavg(), results });
