// ROME on TinyFacts-Llama (models/tinyfacts-llama) with TinyFacts' CounterFact records: efficacy,
// paraphrase and neighbourhood for each edit alone, r-ROME and the reference form, at the edited
// layer of lib/edit/hparams/tinyfacts-llama.json and at the best layer of a short sweep (layers ×
// clamps on the first sweep records, scored by S). Writes docs/llama-edit-experiments.md and
// bench/results/eval-llama-edits.json.
//
//   npx tsx scripts/eval-llama-edits.ts [--records 100] [--sweep-records 12] [--sweep-layers 0,1,2,3] [--sweep-clamps 8,30]
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { defaultHparams } from "../lib/edit/hparams.js";
import { computeStats, type Stats } from "../lib/edit/stats.js";
import { evaluateRecords, readCounterFact, summarize, type CounterFactRecord, type MetricsSummary } from "../lib/eval/counterfact.js";
import { editEachAlone } from "../lib/eval/experiments.js";
import { METRIC_HEADER, metricCells, table } from "../lib/eval/report.js";
import { writeFileAtomic } from "../lib/io/atomic.js";
import { Model } from "../lib/runtime/model.js";
import { seededRandom } from "../lib/runtime/sampling.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const TF = join(ROOT, "models", "tinyfacts");
const { values: args } = parseArgs({
  options: {
    records: { type: "string", default: "100" }, "sweep-records": { type: "string", default: "12" },
    "sweep-layers": { type: "string", default: "0,1,2,3" }, "sweep-clamps": { type: "string", default: "8,30" },
  },
});
const N = Number(args.records);
const started = performance.now();
const model = await Model.load(join(ROOT, "models", "tinyfacts-llama"));
const all = readCounterFact(join(TF, "counterfact.json"));
// The same seeded sample as scripts/eval-edits.ts (--sample random --seed 1).
const idx = all.map((_, i) => i);
const random = seededRandom(1);
for (let i = idx.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [idx[i], idx[j]] = [idx[j]!, idx[i]!];
}
const sample = idx.slice(0, N).map((i) => all[i]!);
const hp = defaultHparams(model.config);
const stats = new Map<number, Stats>();
const statsOf = async (layer: number) => {
  if (!stats.has(layer)) stats.set(layer, await computeStats(model, { layer, corpus: join(TF, "train.txt") }));
  return stats.get(layer)!;
};

interface Row { name: string; layer: number; clamp: number; form: "r-rome" | "reference"; summary: MetricsSummary; seconds: number; refused: number }
async function run(records: readonly CounterFactRecord[], layer: number, clamp: number, form: "r-rome" | "reference", baseline: Awaited<ReturnType<typeof evaluateRecords>>): Promise<Row> {
  const s = await statsOf(layer);
  const t0 = performance.now();
  const out = await editEachAlone(model, records, () => ({ stats: s, layer, form, hparams: { clampNormFactor: clamp } }), baseline);
  const row = { name: `${form}, layer ${layer}, clamp ${clamp}`, layer, clamp, form, summary: summarize(out.map((o) => o.post)), seconds: (performance.now() - t0) / 1000 / records.length, refused: out.filter((o) => o.refused).length };
  console.log(`${row.name}: S ${row.summary.s.value.toFixed(3)}, ES ${row.summary.es.mean.toFixed(3)}, PS ${row.summary.ps.mean.toFixed(3)}, NS ${row.summary.ns.mean.toFixed(3)} (${row.seconds.toFixed(1)} s/edit)`);
  return row;
}

// Sweep: layers × clamps, r-ROME, on the first sweep records.
const sweepRecords = sample.slice(0, Number(args["sweep-records"]));
const sweepBase = await evaluateRecords(model, sweepRecords);
const sweep: Row[] = [];
for (const layer of args["sweep-layers"]!.split(",").map(Number)) {
  for (const clamp of args["sweep-clamps"]!.split(",").map(Number)) sweep.push(await run(sweepRecords, layer, clamp, "r-rome", sweepBase));
}
const best = sweep.reduce((a, r) => (r.summary.s.value > a.summary.s.value ? r : a));

// Each edit alone on N records: the unedited baseline, then both forms at the file's layer and the sweep's best.
const baseline = await evaluateRecords(model, sample);
const rows: Row[] = [];
const configs = [{ layer: hp.layer, clamp: hp.clampNormFactor }, ...(best.layer !== hp.layer || best.clamp !== hp.clampNormFactor ? [{ layer: best.layer, clamp: best.clamp }] : [])];
for (const c of configs) for (const form of ["r-rome", "reference"] as const) rows.push(await run(sample, c.layer, c.clamp, form, baseline));

const minutes = (performance.now() - started) / 60000;
const doc = [
  "# ROME on TinyFacts-Llama",
  "",
  "Written by `scripts/eval-llama-edits.ts` (" + new Date().toISOString().slice(0, 10) + `, ${minutes.toFixed(0)} min on a shared 2-core machine). ` +
  "The model is `models/tinyfacts-llama` (6-layer Llama, grouped-query attention 2:1, SwiGLU, rotary); the records are TinyFacts' CounterFact records " +
  `(the seeded random sample of scripts/eval-edits.ts), each edit applied alone and undone. Key statistics from \`models/tinyfacts/train.txt\`. Hyperparameters: \`lib/edit/hparams/${hp.file}\` (${hp.vNumGradSteps} value steps), the clamp as given.`,
  "",
  `## Sweep (r-ROME, first ${sweepRecords.length} records)`,
  "",
  table(["layer", "clamp", ...METRIC_HEADER, "s/edit"], sweep.map((r) => [String(r.layer), String(r.clamp), ...metricCells(r.summary), r.seconds.toFixed(1)])),
  "",
  `Best by S: layer ${best.layer}, clamp ${best.clamp}.`,
  "",
  `## ${N} records, each edit alone`,
  "",
  table(["variant", ...METRIC_HEADER, "refused", "s/edit"], [
    ["unedited", ...metricCells(summarize(baseline)), "–", "–"],
    ...rows.map((r) => [r.name, ...metricCells(r.summary), String(r.refused), r.seconds.toFixed(1)]),
  ]),
  "",
].join("\n");
writeFileAtomic(join(ROOT, "docs", "llama-edit-experiments.md"), doc);
writeFileSync(join(ROOT, "bench", "results", "eval-llama-edits.json"), JSON.stringify({ records: N, hparams: hp, sweep, rows, baseline: summarize(baseline), minutes }, null, 2));
console.log(doc);
await model.dispose();
