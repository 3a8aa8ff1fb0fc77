// ROME on TinyFacts-Llama (models/tinyfacts-llama) with TinyFacts' CounterFact records: efficacy,
// paraphrase and neighbourhood for each edit alone, r-ROME and the reference form, at the edited
// layer of lib/edit/hparams/tinyfacts-llama.json and at the best layer of a short sweep (layers ×
// clamps on the first sweep records, scored by S). Writes docs/llama-edit-experiments.md and
// bench/results/eval-llama-edits.json. Each edit's outcome is appended to a JSON-lines cache as it
// finishes (key: form, layer, clamp, record), so a killed run resumes, the sweep's records are not
// edited twice, and a smaller --records rewrites the tables from what is done. The 100-record runs
// go record by record through every variant, so a run stopped early has equal counts in each.
//
//   npx tsx scripts/eval-llama-edits.ts [--records 100] [--sweep-records 12] [--sweep-layers 0,1,2,3] [--sweep-clamps 8,30]
//                                       [--cache bench/results/eval-llama-edits.jsonl]
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { defaultHparams } from "../lib/edit/hparams.js";
import { computeStats, type Stats } from "../lib/edit/stats.js";
import { evaluateRecords, readCounterFact, summarize, type CounterFactRecord, type MetricsSummary } from "../lib/eval/counterfact.js";
import { editEachAlone, type EditOutcome } from "../lib/eval/experiments.js";
import { METRIC_HEADER, metricCells, table } from "../lib/eval/report.js";
import { writeFileAtomic } from "../lib/io/atomic.js";
import { openJsonl } from "../lib/io/jsonl.js";
import { Model } from "../lib/runtime/model.js";
import { seededRandom } from "../lib/runtime/sampling.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const TF = join(ROOT, "models", "tinyfacts");
const { values: args } = parseArgs({
  options: {
    records: { type: "string", default: "100" }, "sweep-records": { type: "string", default: "12" },
    "sweep-layers": { type: "string", default: "0,1,2,3" }, "sweep-clamps": { type: "string", default: "8,30" },
    cache: { type: "string", default: join("bench", "results", "eval-llama-edits.jsonl") },
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

type Form = "r-rome" | "reference";
type Baseline = Awaited<ReturnType<typeof evaluateRecords>>;
interface Row { name: string; layer: number; clamp: number; form: Form; summary: MetricsSummary; seconds: number; refused: number }
// One line per edit: its outcome and its wall-clock seconds (edit + evaluation).
interface CacheLine { key: string; outcome: EditOutcome; wall: number }
const cache = openJsonl<CacheLine>(args.cache!);
const done = new Map(cache.records.map((l) => [l.key, l]));

/** One record edited alone (or its cached outcome). */
async function one(rec: CounterFactRecord, base: Baseline[number], layer: number, clamp: number, form: Form): Promise<CacheLine> {
  const key = `${form}:${layer}:${clamp}:${rec.case_id}`; // as keyOf
  const hit = done.get(key);
  if (hit) return hit;
  const s = await statsOf(layer);
  const t0 = performance.now();
  const [outcome] = await editEachAlone(model, [rec], () => ({ stats: s, layer, form, hparams: { clampNormFactor: clamp } }), [base]);
  const line = { key, outcome: outcome!, wall: (performance.now() - t0) / 1000 };
  cache.append(line);
  done.set(key, line);
  return line;
}

async function row(records: readonly CounterFactRecord[], layer: number, clamp: number, form: Form, baseline: Baseline): Promise<Row> {
  const lines: CacheLine[] = [];
  for (const [i, rec] of records.entries()) lines.push(await one(rec, baseline[i]!, layer, clamp, form));
  const r = {
    name: `${form}, layer ${layer}, clamp ${clamp}`, layer, clamp, form, summary: summarize(lines.map((l) => l.outcome.post)),
    seconds: lines.reduce((a, l) => a + l.wall, 0) / records.length, refused: lines.filter((l) => l.outcome.refused).length,
  };
  console.log(`${r.name}: S ${r.summary.s.value.toFixed(3)}, ES ${r.summary.es.mean.toFixed(3)}, PS ${r.summary.ps.mean.toFixed(3)}, NS ${r.summary.ns.mean.toFixed(3)} (${r.seconds.toFixed(1)} s/edit)`);
  return r;
}

// Sweep: layers × clamps, r-ROME, on the first sweep records.
const sweepRecords = sample.slice(0, Number(args["sweep-records"]));
const sweepBase = await evaluateRecords(model, sweepRecords);
const sweep: Row[] = [];
for (const layer of args["sweep-layers"]!.split(",").map(Number)) {
  for (const clamp of args["sweep-clamps"]!.split(",").map(Number)) sweep.push(await row(sweepRecords, layer, clamp, "r-rome", sweepBase));
}
const best = sweep.reduce((a, r) => (r.summary.s.value > a.summary.s.value ? r : a));

// Each edit alone on N records: the unedited baseline, then both forms at the file's layer and the sweep's best.
const baseline = await evaluateRecords(model, sample);
const configs = [{ layer: hp.layer, clamp: hp.clampNormFactor }, ...(best.layer !== hp.layer || best.clamp !== hp.clampNormFactor ? [{ layer: best.layer, clamp: best.clamp }] : [])];
const variants = configs.flatMap((c) => (["r-rome", "reference"] as const).map((form) => ({ ...c, form })));
for (const [i, rec] of sample.entries()) {
  for (const v of variants) await one(rec, baseline[i]!, v.layer, v.clamp, v.form);
  console.log(`record ${i + 1}/${N} done (${((performance.now() - started) / 60000).toFixed(1)} min)`);
}
const rows: Row[] = [];
for (const v of variants) rows.push(await row(sample, v.layer, v.clamp, v.form, baseline));
cache.close();

const minutes = (performance.now() - started) / 60000;
// Wall-clock minutes of every edit in the tables, whichever run made it (the cache keeps them).
const keyOf = (r: Row, rec: CounterFactRecord) => `${r.form}:${r.layer}:${r.clamp}:${rec.case_id}`;
const used = new Set([...sweep.flatMap((r) => sweepRecords.map((rec) => keyOf(r, rec))), ...rows.flatMap((r) => sample.map((rec) => keyOf(r, rec)))]);
const editMinutes = [...used].reduce((a, k) => a + done.get(k)!.wall, 0) / 60;
const doc = [
  "# ROME on TinyFacts-Llama",
  "",
  "Written by `scripts/eval-llama-edits.ts` (" + new Date().toISOString().slice(0, 10) + `, ${editMinutes.toFixed(0)} min of edits and ${minutes.toFixed(0)} min for this run on a shared 2-core machine; edits are cached in --cache and reused). ` +
  "The model is `models/tinyfacts-llama` (6-layer Llama, grouped-query attention 2:1, SwiGLU, rotary); the records are TinyFacts' CounterFact records " +
  `(the seeded random sample of scripts/eval-edits.ts), each edit applied alone and undone. Key statistics from \`models/tinyfacts/train.txt\`. Hyperparameters: \`lib/edit/hparams/${hp.file}\` (${hp.vNumGradSteps} value steps), the clamp as given.`,
  "",
  `## Sweep (r-ROME, first ${sweepRecords.length} records)`,
  "",
  table(["layer", "clamp", ...METRIC_HEADER, "s/edit"], sweep.map((r) => [String(r.layer), String(r.clamp), ...metricCells(r.summary), r.seconds.toFixed(1)])),
  "",
  `Best by S: layer ${best.layer}, clamp ${best.clamp}` + (configs.length === 1 ? " — the file's layer and clamp, so the rows below are both the file's and the sweep's best." : "."),
  "",
  `## ${N} records, each edit alone`,
  "",
  "s/edit is wall-clock time per edit and its evaluation on a machine shared with other jobs, not a speed figure (`npm run bench -- edit` measures that).",
  "",
  table(["variant", ...METRIC_HEADER, "refused", "s/edit"], [
    ["unedited", ...metricCells(summarize(baseline)), "–", "–"],
    ...rows.map((r) => [r.name, ...metricCells(r.summary), String(r.refused), r.seconds.toFixed(1)]),
  ]),
  "",
].join("\n");
writeFileAtomic(join(ROOT, "docs", "llama-edit-experiments.md"), doc);
writeFileSync(join(ROOT, "bench", "results", "eval-llama-edits.json"), JSON.stringify({ records: N, hparams: hp, sweep, rows, baseline: summarize(baseline), minutes, editMinutes }, null, 2));
console.log(doc);
await model.dispose();
