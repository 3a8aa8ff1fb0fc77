// `npm run bench -- worker [--samples 10] [--steps 20] [--threads 1] [--nice 0,10] [--rounds 1]`: how late
// a 10 ms timer on the caller's thread runs while a GPT-2-small-shaped model (random weights, written
// to a temporary checkpoint by this script) loads, predicts, traces three kinds and makes a ROME edit
// at the middle layer with cached statistics: in-thread, then with the worker host
// (Model.load(dir, { worker: true, nice })) once per `--nice` value (added to the worker thread's nice
// value), in one run, with an idle phase as the baseline of the machine's own scheduling delays;
// `--rounds` repeats the modes in turn, and each cell is the worst over the rounds. The goal: with the
// worker host, the timer is never late by more than 20 ms.
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
const nices = (arg("nice") ?? "0,10").split(",").map(Number);
const rounds = Number(arg("rounds") ?? 1);

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
  console.log(`host benchmark: GPT-2-small shape (random weights), ${samples} trace samples, ${steps} value steps, ${threads} ort thread(s), ${rounds} round(s); machine shared: compare the columns of one run`);

  const modes = [{ name: "in-thread", worker: false, nice: 0 }, ...nices.map((nice) => ({ name: `worker nice +${nice}`, worker: true, nice }))];
  const rows: Record<string, string | number>[] = [];
  type Cell = { seconds: number; lateMs: number; busy: number };
  const record: Record<string, Record<string, Cell>> = {};
  for (let round = 0; round < rounds; round++) for (const mode of modes) {
    const load = await watched(() => Model.load(dir, mode.worker ? { threads, worker: true, nice: mode.nice } : { threads }));
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
    // the worst lateness over the rounds, with that round's time and busy share
    const cells = record[mode.name] ??= {};
    for (const [k, v] of Object.entries(phases)) if (!cells[k] || v.lateMs > cells[k].lateMs) cells[k] = { seconds: v.seconds, lateMs: v.lateMs, busy: v.busy };
    console.log(`round ${round + 1}`, mode.name, JSON.stringify(Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, { seconds: v.seconds, lateMs: v.lateMs, busy: v.busy }]))));
  }
  for (const phase of Object.keys(record["in-thread"]!)) {
    const row: Record<string, string | number> = { phase };
    for (const mode of modes) {
      const c = record[mode.name]![phase]!;
      row[`${mode.name} s`] = c.seconds;
      row[`${mode.name} late ms`] = c.lateMs;
      row[`${mode.name} busy %`] = 100 * c.busy;
    }
    rows.push(row);
  }
  printTable(`largest lateness of a 10 ms timer on the caller's thread (GPT-2-small shape), worst of ${rounds} round(s)`, rows);
  writeResults("worker", { samples, steps, threads, nices, rounds, eventLoop: record });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
