// Cancellation and progress of the dataset and experiment drivers: traceDataset (and its iterator),
// editEachAlone, sequentialEdits and runEdits reject with the caller's reason when aborted before
// the start, at seeded progress reports and in the middle of a fact; they stop within one batch,
// leave the model with the edits it had and their output files whole (no file when no line was done).
import test from "ava";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { computeStats, type Stats } from "../lib/edit/stats.js";
import { evaluateRecords, readCounterFact } from "../lib/eval/counterfact.js";
import { readEditDataset } from "../lib/eval/datasets.js";
import { runEdits, type RunLine } from "../lib/eval/edit-run.js";
import { editEachAlone, sequentialEdits, type EditOutcome } from "../lib/eval/experiments.js";
import { AbortError } from "../lib/runtime/call.js";
import { Model } from "../lib/runtime/model.js";
import { traceDataset, traceDatasetFacts, type FactTrace } from "../lib/trace/dataset.js";
import { readKnownFacts } from "../lib/trace/known.js";
import { check } from "./abort-check.js";
import { tempDir, TINYFACTS } from "./helpers.js";

const PROMPT = "Castle of Berkbre is located in the city of";

let model: Model;
let stats: Stats;
test.before(async () => {
  model = await Model.load(TINYFACTS, { batchSize: 2 });
  stats = await computeStats(model, { layer: 1, corpus: join(TINYFACTS, "train.txt"), maxTokens: 2000, cacheDir: false });
});
test.after.always(async () => model?.dispose());

const probe = () => model.nextTokenLogits([PROMPT]);

/** Every line of a JSON-lines output is whole and parses; the file is absent when it has none. */
function wholeLines(t: import("ava").ExecutionContext, file: string): unknown[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  t.true(text.length > 0 && text.endsWith("\n"), `${file}: absent, or whole lines only`);
  return text.trim().split("\n").map((l) => JSON.parse(l));
}

test.serial("traceDataset and traceDatasetFacts: abort and progress per fact; abort inside a fact stops within one batch and writes no line", async (t) => {
  const dir = tempDir(t);
  const facts = readKnownFacts(join(TINYFACTS, "known.json")).slice(0, 3);
  const common = { dataset: facts, kinds: ["resid"] as const, samples: 2, noise: 0.47 };
  let n = 0;
  let out = "";
  const fresh = () => (out = join(dir, `run-${n++}.jsonl`));
  await check(t, "traceDataset", (o) => traceDataset(model, { ...common, out: fresh(), ...o }).then(({ out: _o, ...r }) => r), probe,
    () => {
      t.false(existsSync(`${out}.summary.json`));
      wholeLines(t, out);
    });
  const collect = async (o: object) => {
    const got: Omit<FactTrace, "seconds">[] = [];
    for await (const { seconds: _s, ...r } of traceDatasetFacts(model, { ...common, out: fresh(), ...o })) got.push(r);
    return got;
  };
  await check(t, "traceDatasetFacts", collect, probe, () => wholeLines(t, out));

  // Abort while the second fact is being traced: no more than one engine run follows, only the first fact's line is written.
  const engine = model.engine;
  const run = engine.run.bind(engine);
  let runs = 0;
  let runsAfter = 0;
  const c = new AbortController();
  engine.run = (...a) => {
    runs++;
    if (c.signal.aborted) runsAfter++;
    return run(...a);
  };
  try {
    await traceDataset(model, { ...common, limit: 1, out: fresh() });
    const perFact = runs;
    runs = 0;
    const reason = new Error("mid-fact");
    engine.run = (...a) => {
      if (++runs === perFact + 2) c.abort(reason);
      else if (c.signal.aborted) runsAfter++;
      return run(...a);
    };
    const err = await t.throwsAsync(traceDataset(model, { ...common, out: fresh(), signal: c.signal }), { instanceOf: AbortError });
    t.is(err!.cause, reason);
    t.true(runsAfter <= 1, `${runsAfter} engine runs after the abort (one batch at most)`);
    t.deepEqual(wholeLines(t, out).map((l) => (l as FactTrace).known_id), [facts[0]!.known_id]);
  } finally {
    engine.run = run;
  }
});

test.serial("editEachAlone, sequentialEdits and runEdits abort at their progress reports, report progress, and undo their edits", async (t) => {
  const dir = tempDir(t);
  const records = readCounterFact(join(TINYFACTS, "counterfact.json")).slice(0, 2);
  const rome = () => ({ stats, layer: 1, contextTemplates: ["{}"], hparams: { vNumGradSteps: 4 } });
  const baseline = await evaluateRecords(model, records);
  const noEdits = () => t.deepEqual(model.edits.list(), []);
  await check(t, "editEachAlone", (o) => editEachAlone(model, records, rome, baseline, o)
    .then((r) => r.map(({ seconds: _s, ...x }: EditOutcome) => x)), probe, noEdits);
  await check(t, "sequentialEdits", (o) => sequentialEdits(model, records, rome, { every: 1, first: 1, ...o }), probe, noEdits);
  const { records: edits } = readEditDataset(join(TINYFACTS, "counterfact.json"));
  let n = 0;
  let out = "";
  for (const mode of ["alone", "sequential"] as const) {
    await check(t, `runEdits ${mode}`, (o) => runEdits(model, edits.slice(0, 2), {
      method: "r-rome", mode, batchSize: 1, out: (out = join(dir, `${mode}-${n++}.jsonl`)), stats: [stats], hparams: { vNumGradSteps: 4 }, ...o,
    }).then((lines) => lines.map(({ seconds: _s, ...l }: RunLine) => l)), probe, () => {
      noEdits();
      // every line written has its saved edits (sequential), and no batch was saved without its line
      const keys = wholeLines(t, out).map((l) => (l as RunLine).batch);
      if (mode === "sequential") for (let k = 0; k < 2; k++) t.is(existsSync(join(`${out}.edits`, `${k}.json`)), keys.includes(k));
    });
  }
});
