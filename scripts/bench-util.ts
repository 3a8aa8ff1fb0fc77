// Shared plumbing for benchmarks: timing with warm-up, a printed table, and the JSON record in
// bench/results/<name>.json (written atomically) so that runs can be compared later.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The value after `--<name>` on the command line, if given. */
export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export interface Timing { seconds: number; reps: number }

/** Median seconds of `fn` over repetitions after one warm-up, running for at least `minSeconds`. */
export async function time(fn: () => unknown | Promise<unknown>, minSeconds = 0.5, maxReps = 200): Promise<Timing> {
  await fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < maxReps && (samples.length < 3 || performance.now() - start < minSeconds * 1000)) {
    const t0 = performance.now();
    await fn();
    samples.push((performance.now() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { seconds: samples[Math.floor(samples.length / 2)]!, reps: samples.length };
}

export function printTable(title: string, rows: Record<string, string | number>[]): void {
  console.log(`\n${title}`);
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const cell = (v: string | number | undefined) =>
    typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v ?? "");
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => "| " + vals.map((v, i) => v.padEnd(width[i]!)).join(" | ") + " |";
  console.log(line(cols));
  console.log("|" + width.map((w) => "-".repeat(w + 2)).join("|") + "|");
  for (const r of rows) console.log(line(cols.map((c) => cell(r[c]))));
}

export function writeResults(name: string, data: unknown): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "bench", "results");
  mkdirSync(root, { recursive: true });
  const path = join(root, `${name}.json`);
  const record = { name, date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: cpus().length, data };
  writeFileSync(path + ".tmp", JSON.stringify(record, null, 2));
  renameSync(path + ".tmp", path);
  console.log(`\nwrote ${path}`);
  return path;
}
