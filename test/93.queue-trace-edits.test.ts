import test from "ava";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { exportEdits } from "../lib/edit/export.js";
import { defaultHparams } from "../lib/edit/hparams.js";
import { readEditDataset } from "../lib/eval/datasets.js";
import { corpusRef, fileSha256, resolveCorpus } from "../lib/queue/corpus.js";
import { runEditsOnQueue } from "../lib/queue/eval-client.js";
import { traceDatasetOnQueue } from "../lib/queue/trace-client.js";
import { Model } from "../lib/runtime/model.js";
import { traceDataset } from "../lib/trace/dataset.js";
import { readKnownFacts } from "../lib/trace/known.js";
import { startRedis } from "./fixtures/redis.js";
import { startWorkers, withoutSeconds } from "./fixtures/queue-workers.js";
import { ROOT, runCli, tempDir, TINYFACTS } from "./helpers.js";

test("a sweep under an edits file on 2 workers writes the local lines under the same edit, bit for bit; the command line takes --edits locally too", async (t) => {
  const dir = tempDir(t);
  const redis = await startRedis(t);
  const workers = startWorkers(ROOT, 2, { redis: redis.url, model: TINYFACTS }, t);
  const facts = readKnownFacts(join(TINYFACTS, "known.json")).slice(0, 6);
  const common = { dataset: facts, kinds: ["resid", "mlp"] as const, samples: 3, window: 3 };

  // A rank-one edit of the family's edited layer, deterministic, large enough to move the traces.
  const model = await Model.load(TINYFACTS, { threads: 1 });
  const base = join(dir, "base.jsonl");
  await traceDataset(model, { ...common, out: base });
  const layer = defaultHparams(model.config).layer;
  const u = Float32Array.from({ length: model.config.nInner }, (_, i) => Math.sin(i + 1) * 0.2);
  const v = Float32Array.from({ length: model.config.nEmbd }, (_, j) => Math.cos(3 * j + 1));
  model.edits.apply({ layer, u, v });
  const editsFile = join(dir, "edit.safetensors");
  exportEdits(model, editsFile);
  const local = join(dir, "local.jsonl");
  await traceDataset(model, { ...common, out: local });
  await model.dispose();
  const a = withoutSeconds(readFileSync(local, "utf8"));
  t.notDeepEqual(a, withoutSeconds(readFileSync(base, "utf8")), "the edit changed the traces");

  await Promise.all(workers.map((w) => w.ready));
  const queued = join(dir, "queued.jsonl");
  await traceDatasetOnQueue({ ...common, out: queued, redis: redis.url, model: TINYFACTS, shardSize: 2, edits: [editsFile] });
  t.deepEqual(withoutSeconds(readFileSync(queued, "utf8")), a);
  t.deepEqual(JSON.parse(readFileSync(`${queued}.summary.json`, "utf8")), JSON.parse(readFileSync(`${local}.summary.json`, "utf8")));
  // The workers undid the edit after their shards: a sweep without it is the base model's again.
  const after = join(dir, "after.jsonl");
  await traceDatasetOnQueue({ ...common, out: after, redis: redis.url, model: TINYFACTS, shardSize: 3 });
  t.deepEqual(withoutSeconds(readFileSync(after, "utf8")), withoutSeconds(readFileSync(base, "utf8")));

  // The local command applies --edits the same way (the noise level comes from the same 6 subjects).
  const data = join(dir, "six.json");
  writeFileSync(data, JSON.stringify(facts));
  const cliOut = join(dir, "cli.jsonl");
  const cli = await runCli(["trace-dataset", "--model", TINYFACTS, "--threads", "1", "-d", data, "-o", cliOut, "--kinds", "resid,mlp",
    "--samples", "3", "--window", "3", "--edits", editsFile]);
  t.is(cli.status, 0, cli.stderr);
  t.deepEqual(withoutSeconds(readFileSync(cliOut, "utf8")), a);
});

test("a worker whose copy of the statistics corpus differs from the client's fails the shard with ERR_STATS, naming the path and what to do", async (t) => {
  const dir = tempDir(t);
  const redis = await startRedis(t);
  // The worker's model folder: the same weights (so the same queue), another train.txt.
  const workerModel = join(dir, "tinyfacts");
  cpSync(TINYFACTS, workerModel, { recursive: true });
  writeFileSync(join(workerModel, "train.txt"), "Some other text entirely.\n");
  const [worker] = startWorkers(ROOT, 1, { redis: redis.url, model: workerModel }, t);
  await worker!.ready;
  const records = readEditDataset(join(TINYFACTS, "counterfact.json")).records.slice(0, 1);
  const e = await t.throwsAsync(runEditsOnQueue(records, {
    method: "r-rome", mode: "alone", out: join(dir, "run.jsonl"), corpus: join(TINYFACTS, "train.txt"), hparams: { vNumGradSteps: 1 }, redis: redis.url, model: TINYFACTS,
  }), { instanceOf: RomeError });
  t.is((e as RomeError).code, "ERR_STATS");
  t.true(e!.message.includes(join(workerModel, "train.txt")), e!.message);
  t.regex(e!.message, /differs from the client's .*copy the client's train\.txt into this worker's model folder/);
});

test("a corpus outside the model folder travels as its absolute path and hash; a worker without it says to copy it to the same path", (t) => {
  const dir = tempDir(t);
  const corpus = join(dir, "corpus.txt");
  writeFileSync(corpus, "The corpus of the statistics.\n");
  const ref = corpusRef(corpus, TINYFACTS);
  t.deepEqual(ref, { path: corpus, sha256: fileSha256(corpus) });
  t.deepEqual(corpusRef(join(TINYFACTS, "train.txt"), TINYFACTS), { inModel: "train.txt", sha256: fileSha256(join(TINYFACTS, "train.txt")) });
  t.is(resolveCorpus(ref, TINYFACTS), corpus);
  const missing = { path: join(dir, "elsewhere", "corpus.txt"), sha256: ref.sha256 };
  const e = t.throws(() => resolveCorpus(missing, TINYFACTS), { instanceOf: RomeError });
  t.is((e as RomeError).code, "ERR_STATS");
  t.true(e!.message.includes(missing.path), e!.message);
  t.regex(e!.message, /does not exist on worker .*must exist at the same path on every worker/);
  writeFileSync(corpus, "Changed since the client read it.\n");
  t.throws(() => resolveCorpus(ref, TINYFACTS), { message: /differs from the client's/ });
});
