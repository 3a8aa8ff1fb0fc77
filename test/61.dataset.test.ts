import test from "ava";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Model } from "../lib/runtime/model.js";
import type { Progress } from "../lib/runtime/call.js";
import { traceDataset, traceDatasetFacts, type FactTrace } from "../lib/trace/dataset.js";
import { readKnownFacts } from "../lib/trace/known.js";
import { tempDir, TINYFACTS } from "./helpers.js";

test("traceDataset writes one line per fact, resumes, averages and draws", async (t) => {
  const dir = tempDir(t);
  const model = await Model.load(TINYFACTS);
  const facts = readKnownFacts(join(TINYFACTS, "known.json")).slice(0, 4);
  const out = join(dir, "traces.jsonl");
  const common = { dataset: facts, out, kinds: ["resid", "mlp"] as const, samples: 2, window: 3, noise: 0.47 };
  const first = await traceDataset(model, { ...common, limit: 2 });
  t.is(first.traced, 2);
  const progress: Progress[] = [];
  const second = await traceDataset(model, { ...common, heatmaps: join(dir, "maps"), plots: join(dir, "plots"), onProgress: (p) => progress.push(p) });
  t.is(second.resumed, 2);
  t.is(second.traced, 2);
  t.deepEqual(progress, [2, 3, 4].map((done) => ({ phase: "facts", done, total: 4 }))); // starts at the facts resumed
  const lines = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  t.deepEqual(lines.map((l) => l.known_id), facts.map((f) => f.known_id));
  t.true(lines.every((l) => l.correctPrediction && l.traces.resid.scores.length === l.traces.resid.tokens.length));
  t.is(second.averages.resid!.n, 4);
  t.is(second.averages.resid!.buckets.length, 6);
  t.true(existsSync(join(dir, "maps", `${facts[2]!.known_id}-mlp.png`)));
  t.true(existsSync(join(dir, "plots", "average-resid.svg")));
  const summary = JSON.parse(readFileSync(`${out}.summary.json`, "utf8"));
  t.is(summary.facts, 4);

  // The same facts one at a time: identical traces; with a file, a loop left early resumes where it stopped.
  const strip = ({ seconds: _s, ...r }: FactTrace) => r;
  const expected = lines.map((l: FactTrace) => strip(l));
  const iterated: FactTrace[] = [];
  for await (const r of traceDatasetFacts(model, { ...common, out: undefined })) iterated.push(r);
  t.deepEqual(iterated.map(strip), expected);
  const out2 = join(dir, "iter.jsonl");
  const firstTwo: FactTrace[] = [];
  for await (const r of traceDatasetFacts(model, { ...common, out: out2 })) {
    firstTwo.push(r);
    if (firstTwo.length === 2) break; // closes the file; the third fact is never started
  }
  t.is(readFileSync(out2, "utf8").trim().split("\n").length, 2);
  const rest: FactTrace[] = [];
  for await (const r of traceDatasetFacts(model, { ...common, out: out2 })) rest.push(r);
  t.deepEqual([...firstTwo, ...rest].map(strip), expected);
  t.deepEqual(readFileSync(out2, "utf8").trim().split("\n").map((l) => strip(JSON.parse(l))), expected);
  await model.dispose();
});
