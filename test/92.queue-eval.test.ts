import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { exportEdits } from "../lib/edit/export.js";
import { defaultHparams } from "../lib/edit/hparams.js";
import { rome } from "../lib/edit/rome.js";
import { computeStatsLayers } from "../lib/edit/stats.js";
import { readEditDataset } from "../lib/eval/datasets.js";
import { runEdits } from "../lib/eval/edit-run.js";
import { runEditsOnQueue } from "../lib/queue/eval-client.js";
import { Model } from "../lib/runtime/model.js";
import { startRedis } from "./fixtures/redis.js";
import { startWorkers, withoutSeconds } from "./fixtures/queue-workers.js";
import { ROOT, tempDir, TINY_GPT2, TINYFACTS } from "./helpers.js";

const CORPUS = join(TINYFACTS, "train.txt");
const HPARAMS = { vNumGradSteps: 3 };

test("an each-alone evaluation of 30 records on 3 workers, one SIGKILLed midway, writes the single-process lines: one per record, bit for bit", async (t) => {
  const dir = tempDir(t);
  const redis = await startRedis(t);
  const workers = startWorkers(ROOT, 3, { redis: redis.url, model: TINYFACTS }, t);
  const all = readEditDataset(join(TINYFACTS, "counterfact.json")).records;
  const records = all.slice(0, 30);

  const model = await Model.load(TINYFACTS, { threads: 1 });
  const stats = await computeStatsLayers(model, { layers: [defaultHparams(model.config).layer], corpus: CORPUS });
  const local = join(dir, "local.jsonl");
  await runEdits(model, structuredClone(records), { method: "r-rome", mode: "alone", out: local, stats, hparams: HPARAMS });

  // Edits travel as their factor files: the same three records, scored under an edit made here.
  const edit = await rome(model, { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" }, { stats: stats[0], hparams: HPARAMS });
  const id = model.edits.apply(edit);
  const editsFile = join(dir, "berlin.safetensors");
  exportEdits(model, editsFile);
  const localUnder = join(dir, "local-under.jsonl");
  await runEdits(model, structuredClone(records.slice(0, 3)), { method: "r-rome", mode: "alone", out: localUnder, stats, hparams: HPARAMS });
  model.edits.undo(id);
  await model.dispose();

  await Promise.all(workers.map((w) => w.ready));
  const queued = join(dir, "queued.jsonl");
  let killed = false;
  const done: number[] = [];
  const lines = await runEditsOnQueue(records, {
    method: "r-rome", mode: "alone", out: queued, corpus: CORPUS, hparams: HPARAMS, redis: redis.url, model: TINYFACTS, shardSize: 3,
    onProgress: (p) => {
      if (!killed && p.done >= 6 && /active eval/.test(workers[0]!.log().split("\n").filter(Boolean).at(-1) ?? "")) {
        killed = true;
        workers[0]!.child.kill("SIGKILL");
      }
    },
    onLine: (d) => done.push(d),
  });
  t.true(killed, "worker 0 was killed while it held a shard");
  const a = withoutSeconds(readFileSync(local, "utf8"));
  const b = withoutSeconds(readFileSync(queued, "utf8"));
  t.is(b.length, 30);
  t.is(new Set(b.map((l) => JSON.parse(l).key)).size, 30);
  t.deepEqual(b, a);
  t.is(lines.length, 30);
  t.deepEqual(done, Array.from({ length: 30 }, (_, i) => i + 1));

  const under = join(dir, "queued-under.jsonl");
  await runEditsOnQueue(records.slice(0, 3), { method: "r-rome", mode: "alone", out: under, corpus: CORPUS, hparams: HPARAMS, redis: redis.url, model: TINYFACTS, edits: [editsFile] });
  t.deepEqual(withoutSeconds(readFileSync(under, "utf8")), withoutSeconds(readFileSync(localUnder, "utf8")));
  t.notDeepEqual(withoutSeconds(readFileSync(under, "utf8")), a.slice(0, 3), "the edit changed the scores");

  // An edits file made for another model is refused on the worker, and the client says so with the worker's code.
  const other = await Model.load(TINY_GPT2);
  const foreign = join(dir, "foreign.safetensors");
  other.edits.apply({ layer: 0, u: new Float32Array(other.config.nInner).fill(0.01), v: new Float32Array(other.config.nEmbd).fill(0.01) });
  exportEdits(other, foreign);
  await other.dispose();
  const e = await t.throwsAsync(runEditsOnQueue(records.slice(0, 1), { method: "r-rome", mode: "alone", out: join(dir, "foreign.jsonl"), corpus: CORPUS, hparams: HPARAMS, redis: redis.url, model: TINYFACTS, edits: [foreign] }), { instanceOf: RomeError });
  t.is((e as RomeError).code, "ERR_ARGUMENT");
  t.regex(e!.message, /edits made for model/);
});

test("batch runs in shards and a sequential run as one job give the local lines; the sequential run's saved edits come back beside the file", async (t) => {
  const dir = tempDir(t);
  const redis = await startRedis(t);
  const [worker] = startWorkers(ROOT, 1, { redis: redis.url, model: TINYFACTS }, t);
  const all = readEditDataset(join(TINYFACTS, "counterfact.json")).records;
  const records = all.slice(0, 4);
  const untouched = all.slice(4, 10);
  const model = await Model.load(TINYFACTS, { threads: 1 });
  const stats = await computeStatsLayers(model, { layers: [defaultHparams(model.config).layer], corpus: CORPUS });
  const local = { batch: join(dir, "batch-local.jsonl"), sequential: join(dir, "seq-local.jsonl") };
  for (const mode of ["batch", "sequential"] as const) {
    await runEdits(model, structuredClone(records), { method: "r-rome", mode, batchSize: 2, out: local[mode], stats, untouched, hparams: HPARAMS });
  }
  await model.dispose();
  await worker!.ready;
  for (const mode of ["batch", "sequential"] as const) {
    const out = join(dir, `${mode}-queued.jsonl`);
    await runEditsOnQueue(records, { method: "r-rome", mode, batchSize: 2, out, untouched, corpus: CORPUS, hparams: HPARAMS, redis: redis.url, model: TINYFACTS, shardSize: 1 });
    t.deepEqual(withoutSeconds(readFileSync(out, "utf8")), withoutSeconds(readFileSync(local[mode], "utf8")), mode);
  }
  for (const k of [0, 1]) {
    t.is(readFileSync(join(dir, `sequential-queued.jsonl.edits/${k}.json`), "utf8"), readFileSync(`${local.sequential}.edits/${k}.json`, "utf8"));
  }
});
