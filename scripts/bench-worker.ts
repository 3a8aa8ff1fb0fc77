// `npm run bench -- worker [--samples 10] [--steps 20] [--threads 1]`: how late a 10 ms timer on the
// caller's thread runs while a GPT-2-small-shaped model (random weights, written to a temporary
// checkpoint by this script) loads, predicts, traces three kinds and makes a ROME edit at the middle
// layer with cached statistics: in-thread, then with the worker host (Model.load(dir, { worker: true })),
// in one run, with an idle phase as the baseline of the machine's own scheduling delays. The goal:
// with the worker host, the timer is never late by more than 20 ms.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { computeStats, HostedModel, Model, rome, traceKinds } from "../lib/index.js";
import { readKnownFacts } from "../lib/trace/known.js";
import { arg, printTable, writeResults } from "./bench-util.js";
import { writeRandomGpt2Small } from "./random-model.js";

const samples = Number(arg("samples") ?? 10);
const steps = Number(arg("steps") ?? 20);
const threads = Number(arg("threads") ?? 1);

/**
 * Runs `fn` while a 10 ms interval timer measures how late it fires: the largest lateness, and the
 * event loop's utilisation (the share of the time this thread spent running callbacks rather than
 * waiting), which separates work on this thread from a shared machine's scheduling delays.
 */
async function watched<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; lateMs: number; busy: number }> {
  const elu = performance.eventLoopUtilization();
  let last = performance.now();
  let late = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    late = Math.max(late, now - last - 10);
    last = now;
  }, 10);
  const t0 = performance.now();
  const value = await fn();
  // one more tick, so that a block at the very end is counted too
  await new Promise((r) => setTimeout(r, 12));
  clearInterval(timer);
  return { value, seconds: (performance.now() - t0 - 12) / 1000, lateMs: Math.max(late, performance.now() - last - 10), busy: performance.eventLoopUtilization(elu).utilization };
}


const dir = mkdtempSync(join(tmpdir(), "rome-bench-host-"));
try {
  writeRandomGpt2Small(dir);
  const known = readKnownFacts("data/known_1000.json");
  const fact = known[0]!;
  const traceOptions = { prompt: fact.prompt, subject: fact.subject, samples };
  const request = { prompt: fact.prompt.replace(fact.subject, "{}"), subject: fact.subject, targetNew: known.find((g) => g.attribute !== fact.attribute)!.attribute };
  const statsOptions = { layer: 6, texts: known.map((f) => f.prompt + f.prediction), maxTokens: 4000, cacheDir: join(dir, "stats") };
  const romeOptions = { layer: 6, hparams: { vNumGradSteps: steps }, guard: { maxNormRatio: 1e12, minDenominator: 0 } };
  console.log(`host benchmark: GPT-2-small shape (random weights), ${samples} trace samples, ${steps} value steps, ${threads} ort thread(s); machine shared: compare the columns of one run`);

  const rows: Record<string, string | number>[] = [];
  const record: Record<string, Record<string, { seconds: number; lateMs: number; busy: number }>> = {};
  for (const mode of ["in-thread", "worker"] as const) {
    const load = await watched(() => Model.load(dir, { threads, worker: mode === "worker" }));
    const model: Model | HostedModel = load.value;
    // statistics are computed (first mode) or read from the cache (second) outside the measurements
    const stats = await computeStats(model, statsOptions);
    const phases = {
      "idle 5 s (baseline)": await watched(() => new Promise((r) => setTimeout(r, 5000))),
      load,
      predict: await watched(() => model.predict([fact.prompt])),
      [`trace 3 kinds × ${samples}`]: await watched(() => traceKinds(model, traceOptions, ["resid", "mlp", "attn"])),
      "rome edit": await watched(() => rome(model, request, { ...romeOptions, stats })),
    };
    await model.dispose();
    record[mode] = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, { seconds: v.seconds, lateMs: v.lateMs, busy: v.busy }]));
    console.log(mode, JSON.stringify(record[mode]));
  }
  for (const phase of Object.keys(record["in-thread"]!)) {
    const a = record["in-thread"]![phase]!;
    const b = record.worker![phase]!;
    rows.push({ phase, "in-thread s": a.seconds, "in-thread late ms": a.lateMs, "in-thread busy %": 100 * a.busy,
      "worker s": b.seconds, "worker late ms": b.lateMs, "worker busy %": 100 * b.busy, "late ratio": a.lateMs / Math.max(b.lateMs, 0.01) });
  }
  printTable("largest lateness of a 10 ms timer on the caller's thread (GPT-2-small shape)", rows);
  writeResults("worker", { samples, steps, threads, eventLoop: record });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
