// `npm run bench -- memit [--sizes 10,100,1000] [--threads 1] [--chunk 32] [--baseline 3]`
//
// MEMIT batch edits on TinyFacts (models/tinyfacts; its MEMIT hyperparameters: layers 0–1, 100
// target steps with the reference's early stop, λ 20), statistics from the bundled reference files:
// edits per second for batches of each size (requests with distinct subjects from counterfact.json,
// the golden batch's context templates), split into target (z) optimisation, keys and solve, with
// wall and CPU seconds (the machine may be shared: CPU seconds are the steadier measure). The
// baseline of the same run: the first `--baseline` requests edited one by one with r-ROME at
// layer 1 (same steps), whose edits/s the table gives beside MEMIT's.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { memit } from "../lib/edit/memit.js";
import type { MemitRequest } from "../lib/edit/memit-requests.js";
import { rome } from "../lib/edit/rome.js";
import { loadStats } from "../lib/edit/stats.js";
import { Model } from "../lib/runtime/model.js";
import { arg, printTable, writeResults } from "./bench-util.js";

const DIR = join(import.meta.dirname, "..", "models", "tinyfacts");
const sizes = (arg("sizes") ?? "10,100").split(",").map(Number);
const threads = Number(arg("threads") ?? 1);
const chunk = Number(arg("chunk") ?? 32);
const baselineCount = Number(arg("baseline") ?? 3);

const golden = JSON.parse(readFileSync(join(DIR, "golden-memit.json"), "utf8"));
const cf = JSON.parse(readFileSync(join(DIR, "counterfact.json"), "utf8")) as { requested_rewrite: { prompt: string; subject: string; target_new: { str: string }; relation_id: string } }[];
const seen = new Set<string>();
const pool: MemitRequest[] = [];
for (const r of cf) {
  const rr = r.requested_rewrite;
  if (seen.has(rr.subject)) continue;
  seen.add(rr.subject);
  pool.push({ prompt: rr.prompt, subject: rr.subject, targetNew: rr.target_new.str, relationId: rr.relation_id });
}
const model = await Model.load(DIR, { threads });
const stats = [0, 1].map((l) => ({ ...loadStats(join(DIR, `stats-layer${l}.safetensors`)), layer: l }));
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const rows: Record<string, string | number>[] = [];
const results: unknown[] = [];
// Warm-up: build the batched gradient session once.
await memit(model, pool.slice(0, 1), { stats, contextTemplates: golden.meta.template_groups, hparams: { vNumGradSteps: 2 } });
for (const n of sizes) {
  if (n > pool.length) throw new Error(`only ${pool.length} distinct subjects`);
  const c0 = cpu();
  const e = await memit(model, pool.slice(0, n), { stats, contextTemplates: golden.meta.template_groups, targetChunk: chunk });
  const cpuSeconds = cpu() - c0;
  const s = e.seconds;
  const steps = e.targets.losses.reduce((a, l) => a + l.length, 0);
  rows.push({
    method: "memit batch", requests: n, "edits/s": n / s.total, "wall s": s.total, "cpu s": cpuSeconds,
    "z s": s.targets, "keys s": s.keys, "solve s": s.solve, "z steps": steps, load: loadavg()[0]!.toFixed(1),
  });
  results.push({ method: "memit", requests: n, seconds: s, cpuSeconds, steps, converged: e.targets.converged.filter(Boolean).length });
  console.log(`memit ${n}: ${s.total.toFixed(1)} s wall, ${cpuSeconds.toFixed(1)} s CPU (z ${s.targets.toFixed(1)}, keys ${s.keys.toFixed(2)}, solve ${s.solve.toFixed(2)}), load ${loadavg()[0]!.toFixed(1)}`);
}
if (baselineCount > 0) {
  const flat = golden.meta.template_groups.flat() as string[];
  const c0 = cpu();
  const t0 = performance.now();
  for (const r of pool.slice(0, baselineCount)) {
    await rome(model, { prompt: r.prompt, subject: r.subject, targetNew: r.targetNew }, { stats: stats[1], layer: 1, contextTemplates: flat, hparams: { vNumGradSteps: 100, clampNormFactor: 4 } });
  }
  const wall = (performance.now() - t0) / 1000;
  const cpuSeconds = cpu() - c0;
  rows.push({ method: "r-ROME one by one", requests: baselineCount, "edits/s": baselineCount / wall, "wall s": wall, "cpu s": cpuSeconds, "z s": "", "keys s": "", "solve s": "", "z steps": "", load: loadavg()[0]!.toFixed(1) });
  results.push({ method: "r-rome", requests: baselineCount, wall, cpuSeconds });
}
printTable(`MEMIT on TinyFacts (threads ${threads}; the reference: 52–71 s for a batch of 10 on this machine's class, 99% in z)`, rows);
writeResults("memit", { threads, chunk, results });
await model.dispose();
