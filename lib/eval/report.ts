// Markdown for edit-evaluation results: percentages with their 95% intervals, summary rows and
// tables, and rewriting only a marked region of a document so hand-written notes around it stay.
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../io/atomic.js";
import type { MetricsSummary } from "./counterfact.js";
import type { Interval } from "./metrics.js";

/** "63.0 ± 9.5" (percent, 95% half-width); "–" for no data. */
export function pct(iv: Interval | undefined, digits = 1): string {
  if (!iv || !Number.isFinite(iv.mean)) return "–";
  return `${(100 * iv.mean).toFixed(digits)} ± ${((100 * (iv.hi - iv.lo)) / 2).toFixed(digits)}`;
}

/** The score S in percent with its bootstrap interval: "58.1 [49.0, 66.2]". */
export function scoreText(s: MetricsSummary["s"]): string {
  if (!Number.isFinite(s.value)) return "–";
  return `${(100 * s.value).toFixed(1)} [${(100 * s.lo).toFixed(1)}, ${(100 * s.hi).toFixed(1)}]`;
}

/** The metric columns of one summary, in the order of METRIC_HEADER. */
export function metricCells(s: MetricsSummary, withGe = false): string[] {
  const cells = [String(s.n), pct(s.es), pct(s.ps), pct(s.ns), scoreText(s.s), pct(s.em), pct(s.pm), pct(s.nm)];
  if (withGe) cells.push(s.ge ? `${s.ge.mean.toFixed(3)} ± ${((s.ge.hi - s.ge.lo) / 2).toFixed(3)}` : "–");
  return cells;
}
export const METRIC_HEADER = ["n", "ES %", "PS %", "NS %", "S % [95%]", "EM %", "PM %", "NM %"];

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/**
 * Writes `body` between `<!-- begin:{name} -->` and `<!-- end:{name} -->` in `file`, keeping the
 * rest of the file; the markers (and a title, when the file is new) are added where missing.
 */
export function writeMarkedSection(file: string, name: string, body: string, title = "# Results", by = "scripts/eval-edits.ts"): void {
  const begin = `<!-- begin:${name} (written by ${by}; edit outside these markers) -->`;
  const end = `<!-- end:${name} -->`;
  const old = existsSync(file) ? readFileSync(file, "utf8") : `${title}\n\n`;
  const b = old.indexOf(`<!-- begin:${name} `);
  const e = old.indexOf(end);
  const block = `${begin}\n${body.trim()}\n${end}`;
  const text = b >= 0 && e > b ? old.slice(0, b) + block + old.slice(e + end.length) : `${old.trimEnd()}\n\n${block}\n`;
  writeFileAtomic(file, text);
}
