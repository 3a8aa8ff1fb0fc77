// MEMIT and AlphaEdit on TinyFacts' CounterFact records (issue 13, "Done when"), as `rome-node eval`
// runs in child processes, each resumable (killed and restarted, a run goes on where it stopped):
//   alone:      every record edited alone with r-ROME (the full run; also the "one by one" column
//               of the batch table, since each record is edited on the unedited model);
//   batch:      MEMIT batches of each size, records with distinct subjects and mixed (the first
//               records, where pairs share a subject);
//   sequential: MEMIT, AlphaEdit and r-ROME (one by one within each batch) over the same batches
//               applied one after another: ES of all edits so far and top-1 accuracy on untouched facts.
// Then (also with --report-only, from whatever the files hold) the tables go into
// docs/memit-experiments.md (marked sections) and the sequential plot into docs/memit-sequential.{svg,png}.
//
//   npx tsx scripts/eval-memit.ts [--out bench/results/memit-eval] [--parts alone,batch,sequential]
//       [--sizes 10,100,500] [--seq-batches 10] [--seq-batch-size 79] [--untouched 200] [--report-only]
// TinyFacts has 990 records and 450 subjects: distinct-subject batches stop at 450, and 10
// sequential batches that leave 200 untouched facts hold 79 records each.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { RunLine } from "../lib/eval/edit-run.js";
import { meanInterval, type Interval } from "../lib/eval/metrics.js";
import { table, writeMarkedSection } from "../lib/eval/report.js";
import { summarizeRun } from "../lib/eval/run-summary.js";
import { writeFileAtomic } from "../lib/io/atomic.js";
import { escapeXml, svgToPng } from "../lib/trace/heatmap.js";

const ROOT = join(import.meta.dirname, "..");
const DATASET = join(ROOT, "models", "tinyfacts", "counterfact.json");
const DOC = join(ROOT, "docs", "memit-experiments.md");
const { values: args } = parseArgs({
  options: {
    out: { type: "string", default: join(ROOT, "bench", "results", "memit-eval") },
    parts: { type: "string", default: "alone,batch,sequential" },
    sizes: { type: "string", default: "10,100,500" },
    "seq-batches": { type: "string", default: "10" },
    "seq-batch-size": { type: "string", default: "79" },
    untouched: { type: "string", default: "200" },
    "report-only": { type: "boolean", default: false },
  },
});
const OUT = args.out!;
const parts = new Set(args.parts!.split(","));
const sizes = args.sizes!.split(",").map(Number);
const seqBatches = Number(args["seq-batches"]);
const seqSize = Number(args["seq-batch-size"]);
const untouchedN = Number(args.untouched);
mkdirSync(OUT, { recursive: true });

type CfRecord = { case_id: number; requested_rewrite: { subject: string } };
const all = JSON.parse(readFileSync(DATASET, "utf8")) as CfRecord[];
const subjects = new Set<string>();
const distinct: CfRecord[] = [];
for (const r of all) {
  if (!subjects.has(r.requested_rewrite.subject)) distinct.push(r);
  subjects.add(r.requested_rewrite.subject);
}
const DISTINCT = join(OUT, "distinct.json");
writeFileSync(DISTINCT, JSON.stringify(distinct));
const sets = { distinct: { file: DISTINCT, n: distinct.length }, mixed: { file: DATASET, n: all.length } } as const;

const runs: { file: string; args: string[] }[] = [];
const aloneFile = join(OUT, "r-rome-alone.jsonl");
if (parts.has("alone")) runs.push({ file: aloneFile, args: ["--method", "r-rome", "--mode", "alone", "-d", DATASET] });
const batchFile = (set: string, n: number) => join(OUT, `memit-batch-${set}-${n}.jsonl`);
if (parts.has("batch")) {
  for (const [set, s] of Object.entries(sets)) {
    for (const size of sizes) {
      const n = Math.min(size, s.n);
      runs.push({ file: batchFile(set, n), args: ["--method", "memit", "--mode", "batch", "--batch-size", String(n), "--n", String(n), "--untouched", "0", "-d", s.file] });
    }
  }
}
const METHODS = ["memit", "alphaedit", "r-rome"] as const;
const seqFile = (m: string) => join(OUT, `seq-${m}.jsonl`);
if (parts.has("sequential")) {
  for (const m of METHODS) {
    runs.push({ file: seqFile(m), args: ["--method", m, "--mode", "sequential", "--batch-size", String(seqSize), "--n", String(seqBatches * seqSize), "--untouched", String(untouchedN), "-d", DATASET] });
  }
}
if (!args["report-only"]) {
  for (const r of runs) {
    console.log(`\n== rome-node eval ${r.args.join(" ")} -o ${r.file}`);
    const res = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "lib", "cli", "main.ts"), "eval", ...r.args, "-o", r.file], { stdio: "inherit", cwd: ROOT });
    if (res.status !== 0) throw new Error(`eval exited with ${res.status ?? res.signal}: ${r.args.join(" ")}`);
  }
}

const mark = (name: string, body: string) => writeMarkedSection(DOC, name, body, "# MEMIT and AlphaEdit on TinyFacts", "scripts/eval-memit.ts");
const read = (file: string): RunLine[] => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as RunLine) : []);
const cell = (iv: Interval | undefined) => (iv && iv.n ? `${(100 * iv.mean).toFixed(1)} [${(100 * Math.max(0, iv.lo)).toFixed(1)}, ${(100 * Math.min(1, iv.hi)).toFixed(1)}]` : "–");
const metricsOf = (lines: readonly RunLine[]) => {
  const scores = lines.flatMap((l) => l.scores);
  return (k: "es" | "ps" | "ns") => meanInterval(scores.map((s) => s[k]).filter((x): x is number => x !== undefined));
};

// The full r-ROME run.
const alone = read(aloneFile);
const byId = new Map(alone.map((l) => [l.ids[0]!, l]));
if (alone.length) {
  const s = summarizeRun(alone);
  mark("memit-alone", [
    `### r-ROME, each record alone (${s.records} of ${all.length} records${s.records < all.length ? ", run incomplete" : ""})`, "",
    table(["records", "ES % [95%]", "PS % [95%]", "NS % [95%]", "refused", ...Object.keys(s.seconds).map((k) => `${k} s`)],
      [[String(s.records), cell(s.metrics.es), cell(s.metrics.ps), cell(s.metrics.ns), String(s.refused), ...Object.values(s.seconds).map((v) => v.toFixed(0))]]),
  ].join("\n"));
}

// Batches beside r-ROME one by one on the same records.
const batchRows: string[][] = [];
for (const [set, s] of Object.entries(sets)) {
  for (const size of sizes) {
    const n = Math.min(size, s.n);
    const lines = read(batchFile(set, n));
    if (!lines.length) continue;
    const m = metricsOf(lines);
    const ids = lines.flatMap((l) => l.ids);
    const one = ids.map((id) => byId.get(id)).filter((l): l is RunLine => l !== undefined);
    const r = metricsOf(one);
    const partial = one.length < ids.length ? ` (${one.length} of ${ids.length} done)` : "";
    batchRows.push([set, String(n), cell(m("es")), cell(m("ps")), cell(m("ns")), `${lines[0]!.seconds.edit?.toFixed(0) ?? "–"}`,
      one.length ? cell(r("es")) + partial : "–", one.length ? cell(r("ps")) : "–", one.length ? cell(r("ns")) : "–"]);
  }
}
if (batchRows.length) {
  mark("memit-batch", "### MEMIT batches beside r-ROME one by one (the same records; r-ROME from the alone run)\n\n" + table(["records", "batch", "MEMIT ES %", "MEMIT PS %", "MEMIT NS %", "MEMIT edit s", "r-ROME one by one ES %", "PS %", "NS %"], batchRows));
}

// Sequential batches: the three editors side by side, and the plot.
const seq = Object.fromEntries(METHODS.map((m) => [m, read(seqFile(m))])) as Record<(typeof METHODS)[number], RunLine[]>;
const longest = Math.max(...METHODS.map((m) => seq[m].length));
if (longest > 0) {
  const pctOr = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "–" : (100 * x).toFixed(1));
  const rowsSeq = Array.from({ length: longest }, (_, k) => [String(k + 1), String((k + 1) * seqSize),
    ...METHODS.flatMap((m) => [pctOr(seq[m][k]?.esSoFar), pctOr(seq[m][k]?.untouched)])]);
  mark("memit-sequential", [
    `### Sequential: ${seqBatches} batches of ${seqSize}, ES of all edits so far and top-1 accuracy on ${untouchedN} untouched facts after each batch`, "",
    table(["batch", "edits", ...METHODS.flatMap((m) => [`${m} ES so far %`, `${m} untouched top-1 %`])], rowsSeq), "",
    `![ES of all edits so far and top-1 accuracy on ${untouchedN} untouched facts](memit-sequential.png)`,
  ].join("\n"));
  const svg = sequentialSvg(seq, `TinyFacts: ${seqBatches} sequential batches of ${seqSize} edits`);
  writeFileAtomic(join(ROOT, "docs", "memit-sequential.svg"), svg);
  writeFileAtomic(join(ROOT, "docs", "memit-sequential.png"), svgToPng(svg));
}
console.log(`\nwrote ${DOC} (marked sections) and, with sequential runs, docs/memit-sequential.{svg,png}`);

/** ES of all edits so far (solid) and untouched top-1 (dashed) per editor against the edits applied. */
function sequentialSvg(runs: Record<string, RunLine[]>, title: string): string {
  const W = 640, H = 360, L = 50, R = 230, T = 30, Bm = 40;
  const xMax = Math.max(seqBatches * seqSize, ...Object.values(runs).flatMap((ls) => ls.map((l) => l.edits)));
  const px = (v: number) => L + ((W - L - R) * v) / xMax;
  const py = (v: number) => T + (H - T - Bm) * (1 - v);
  const colors: Record<string, string> = { memit: "#1f77b4", alphaedit: "#d62728", "r-rome": "#2ca02c" };
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${L}" y="18" font-size="13">${escapeXml(title)}</text>`,
    `<line x1="${L}" y1="${py(0)}" x2="${W - R}" y2="${py(0)}" stroke="black"/>`, `<line x1="${L}" y1="${py(0)}" x2="${L}" y2="${py(1)}" stroke="black"/>`];
  for (const v of [0, 0.25, 0.5, 0.75, 1]) parts.push(`<text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${v}</text>`, `<line x1="${L}" y1="${py(v)}" x2="${W - R}" y2="${py(v)}" stroke="#ddd"/>`);
  parts.push(`<text x="${L}" y="${H - 8}">0</text>`, `<text x="${W - R}" y="${H - 8}" text-anchor="end">${xMax} edits</text>`);
  let i = 0;
  for (const [m, lines] of Object.entries(runs)) {
    for (const [label, get, dash] of [["ES so far", (l: RunLine) => l.esSoFar, ""], ["untouched top-1", (l: RunLine) => l.untouched, ` stroke-dasharray="5,3"`]] as const) {
      const pts = lines.map((l) => [l.edits, get(l)] as const).filter((p): p is readonly [number, number] => p[1] !== undefined && Number.isFinite(p[1]));
      if (!pts.length) continue;
      parts.push(`<polyline fill="none" stroke="${colors[m]}" stroke-width="1.5"${dash} points="${pts.map(([a, b]) => `${px(a).toFixed(1)},${py(b).toFixed(1)}`).join(" ")}"/>`);
      for (const [a, b] of pts) parts.push(`<circle cx="${px(a).toFixed(1)}" cy="${py(b).toFixed(1)}" r="2" fill="${colors[m]}"/>`);
      parts.push(`<line x1="${W - R + 10}" y1="${T + i * 18}" x2="${W - R + 30}" y2="${T + i * 18}" stroke="${colors[m]}" stroke-width="2"${dash}/>`, `<text x="${W - R + 36}" y="${T + i * 18 + 4}">${escapeXml(`${m}: ${label}`)}</text>`);
      i++;
    }
  }
  parts.push("</svg>");
  return parts.join("\n");
}
