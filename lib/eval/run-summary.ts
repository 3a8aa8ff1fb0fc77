// The summary of an editing run (lib/eval/edit-run.ts): ES/PS/NS (and magnitudes) over every record
// with 95% intervals, the last ES-so-far and untouched accuracy, and the seconds spent in each
// phase; as JSON, as CSV, and as an SVG plot of the scores against the number of edits.
import { escapeXml } from "../trace/heatmap.js";
import type { RunLine } from "./edit-run.js";
import { meanInterval, type Interval } from "./metrics.js";

export interface RunSummary {
  lines: number;
  records: number;
  refused: number;
  metrics: Record<string, Interval>;
  /** Sequential: after the last batch. */
  esSoFar?: number;
  untouched?: number;
  /** Seconds per phase, summed over lines. */
  seconds: Record<string, number>;
}

export function summarizeRun(lines: readonly RunLine[]): RunSummary {
  const scores = lines.flatMap((l) => l.scores);
  const metrics: Record<string, Interval> = {};
  for (const k of ["es", "ps", "ns", "em", "pm", "nm"] as const) {
    const xs = scores.map((s) => s[k]).filter((x): x is number => x !== undefined);
    if (xs.length) metrics[k] = meanInterval(xs);
  }
  const seconds: Record<string, number> = {};
  for (const l of lines) for (const [k, v] of Object.entries(l.seconds)) seconds[k] = (seconds[k] ?? 0) + v;
  const last = lines.at(-1);
  const untouched = lines.map((l) => l.untouched).filter((x): x is number => x !== undefined);
  return {
    lines: lines.length, records: scores.length, refused: lines.reduce((a, l) => a + l.refused.length, 0), metrics,
    ...(last?.esSoFar !== undefined ? { esSoFar: last.esSoFar } : {}),
    ...(untouched.length ? { untouched: untouched.at(-1)! } : {}),
    seconds,
  };
}

export function summaryCsv(s: RunSummary): string {
  const rows = [["metric", "mean", "lo95", "hi95", "n"]];
  for (const [k, iv] of Object.entries(s.metrics)) rows.push([k, f(iv.mean), f(iv.lo), f(iv.hi), String(iv.n)]);
  if (s.esSoFar !== undefined) rows.push(["es_so_far", f(s.esSoFar), "", "", ""]);
  if (s.untouched !== undefined) rows.push(["untouched_top1", f(s.untouched), "", "", ""]);
  for (const [k, v] of Object.entries(s.seconds)) rows.push([`seconds_${k}`, f(v), "", "", ""]);
  return rows.map((r) => r.join(",")).join("\n") + "\n";
}

const f = (x: number) => (Number.isFinite(x) ? x.toFixed(6) : "");

const SERIES: { name: string; color: string; get: (l: RunLine) => number | undefined }[] = [
  { name: "ES (batch)", color: "#1f77b4", get: (l) => avg(l.scores.map((s) => s.es)) },
  { name: "PS (batch)", color: "#ff7f0e", get: (l) => avg(l.scores.map((s) => s.ps)) },
  { name: "NS (batch)", color: "#2ca02c", get: (l) => avg(l.scores.map((s) => s.ns)) },
  { name: "ES of all edits so far", color: "#d62728", get: (l) => l.esSoFar },
  { name: "top-1 on untouched facts", color: "#9467bd", get: (l) => l.untouched },
];

/** Line plot of each line's scores against the edits applied when it was scored (x: cumulative records). */
export function runPlotSvg(lines: readonly RunLine[], title: string): string {
  const W = 640, H = 360, L = 50, R = 200, T = 30, Bm = 40;
  let x = 0;
  const xs = lines.map((l) => (x += l.scores.length, l.esSoFar !== undefined ? l.edits : x));
  const xMax = Math.max(1, ...xs);
  const px = (v: number) => L + ((W - L - R) * v) / xMax;
  const py = (v: number) => T + (H - T - Bm) * (1 - v);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${L}" y="18" font-size="13">${escapeXml(title)}</text>`,
    `<line x1="${L}" y1="${py(0)}" x2="${W - R}" y2="${py(0)}" stroke="black"/>`, `<line x1="${L}" y1="${py(0)}" x2="${L}" y2="${py(1)}" stroke="black"/>`];
  for (const v of [0, 0.25, 0.5, 0.75, 1]) parts.push(`<text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${v}</text>`, `<line x1="${L}" y1="${py(v)}" x2="${W - R}" y2="${py(v)}" stroke="#ddd"/>`);
  parts.push(`<text x="${L}" y="${H - 8}">0</text>`, `<text x="${W - R}" y="${H - 8}" text-anchor="end">${xMax} edits</text>`);
  SERIES.forEach((s, i) => {
    const pts = lines.map((l, j) => [xs[j]!, s.get(l)] as const).filter((p): p is readonly [number, number] => p[1] !== undefined && Number.isFinite(p[1]));
    if (pts.length === 0) return;
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${pts.map(([a, b]) => `${px(a).toFixed(1)},${py(b).toFixed(1)}`).join(" ")}"/>`);
    for (const [a, b] of pts) parts.push(`<circle cx="${px(a).toFixed(1)}" cy="${py(b).toFixed(1)}" r="2" fill="${s.color}"/>`);
    parts.push(`<rect x="${W - R + 10}" y="${T + i * 18}" width="12" height="3" fill="${s.color}"/>`, `<text x="${W - R + 28}" y="${T + i * 18 + 5}">${escapeXml(s.name)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("\n");
}

function avg(xs: readonly number[]): number | undefined {
  const v = xs.filter(Number.isFinite);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : undefined;
}
