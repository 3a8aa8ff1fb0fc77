import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Model } from "../lib/runtime/model.js";
import { RomeError } from "../lib/errors.js";
import { queueConnection } from "../lib/queue/connection.js";
import { checkpointFingerprint, queueName } from "../lib/queue/names.js";
import { traceDatasetOnQueue } from "../lib/queue/trace-client.js";
import { traceDataset } from "../lib/trace/dataset.js";
import { readKnownFacts } from "../lib/trace/known.js";
import { startRedis } from "./fixtures/redis.js";
import { startWorkers, withoutSeconds } from "./fixtures/queue-workers.js";
import { ROOT, runCli, tempDir, TINYFACTS } from "./helpers.js";

test("a sweep of 20 facts on 3 workers, one SIGKILLed midway, writes the single-process lines: one per fact, bit for bit", async (t) => {
  const dir = tempDir(t);
  const redis = await startRedis(t);
  const workers = startWorkers(ROOT, 3, { redis: redis.url, model: TINYFACTS }, t);
  const facts = readKnownFacts(join(TINYFACTS, "known.json")).slice(0, 20);
  const common = { dataset: facts, kinds: ["resid", "mlp", "attn"] as const, samples: 3, window: 3 };

  const model = await Model.load(TINYFACTS, { threads: 1 });
  t.is(checkpointFingerprint(TINYFACTS), model.fingerprint, "the client names the queue by the fingerprint the workers compute");
  const local = join(dir, "local.jsonl");
  await traceDataset(model, { ...common, out: local });
  await model.dispose();

  await Promise.all(workers.map((w) => w.ready));
  const queued = join(dir, "queued.jsonl");
  let killed = false;
  const progress: number[] = [];
  const res = await traceDatasetOnQueue({
    ...common, out: queued, redis: redis.url, model: TINYFACTS, shardSize: 2,
    onProgress: (p) => {
      progress.push(p.done);
      // Kill worker 0 in the middle of a shard, once the sweep is under way.
      if (!killed && p.done >= 4 && /active trace/.test(workers[0]!.log().split("\n").filter(Boolean).at(-1) ?? "")) {
        killed = true;
        workers[0]!.child.kill("SIGKILL");
      }
    },
  });
  t.true(killed, "worker 0 was killed while it held a shard");
  t.is(res.traced, 20);
  const a = withoutSeconds(readFileSync(local, "utf8"));
  const b = withoutSeconds(readFileSync(queued, "utf8"));
  t.is(b.length, 20);
  t.is(new Set(b.map((l) => JSON.parse(l).key)).size, 20);
  t.deepEqual(b, a);
  t.deepEqual(JSON.parse(readFileSync(`${queued}.summary.json`, "utf8")), JSON.parse(readFileSync(`${local}.summary.json`, "utf8")));
  t.is(progress.at(-1), 20);
  // The killed worker's shard was taken again by a live worker.
  const retried = workers.slice(1).some((w) => w.log().includes("active trace"));
  t.true(retried);

  // The command line resumes the file through the queue: one more fact, the first 20 lines untouched.
  const cli = await runCli(["trace-dataset", "--redis", redis.url, "--model", TINYFACTS,
    "-d", join(TINYFACTS, "known.json"), "-o", queued, "--limit", "21", "--samples", "3", "--window", "3", "--kinds", "all", "--shard-size", "1"]);
  t.is(cli.status, 0, cli.stderr);
  t.regex(cli.stdout, /traced 1 facts \(20 resumed\)/);
  const c = withoutSeconds(readFileSync(queued, "utf8"));
  t.is(c.length, 21);
  t.deepEqual(c.slice(0, 20), a);
});

test("a client that aborts its run stops it on the workers: the shard in flight fails with ERR_ABORTED", async (t) => {
  const redis = await startRedis(t);
  const [worker] = startWorkers(ROOT, 1, { redis: redis.url, model: TINYFACTS }, t);
  await worker!.ready;
  const controller = new AbortController();
  const facts = readKnownFacts(join(TINYFACTS, "known.json")).slice(0, 6);
  const run = traceDatasetOnQueue({
    dataset: facts, out: join(tempDir(t), "aborted.jsonl"), samples: 10, noise: 0.47, redis: redis.url, model: TINYFACTS, shardSize: 6, signal: controller.signal,
    onProgress: (p) => { if (p.done >= 1) controller.abort(new Error("enough")); },
  });
  const e = await t.throwsAsync(run);
  t.is((e as RomeError).code, "ERR_ABORTED");
  const deadline = Date.now() + 30000;
  while (!/failed trace/.test(worker!.log()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.regex(worker!.log(), /failed trace \S+: ERR_ABORTED/);
  t.notRegex(worker!.log(), /completed trace/);
});

test("connections: redis:// and rediss:// with a masked password and a prefix; anything else is refused", (t) => {
  const c = queueConnection({ redis: "rediss://:s3cret@cache.example:6380/2", prefix: "team-a" });
  t.is(c.prefix, "team-a");
  t.is(c.display, "rediss://:***@cache.example:6380/2");
  t.is(c.connection.url, "rediss://:s3cret@cache.example:6380/2");
  for (const bad of ["http://localhost:6379", "localhost:6379", "not a url"]) {
    const e = t.throws(() => queueConnection({ redis: bad }), { instanceOf: RomeError });
    t.is((e as RomeError).code, "ERR_ARGUMENT");
  }
  t.throws(() => queueConnection({ redis: "redis://x", prefix: "a:b" }), { message: /--prefix/ });
  t.regex(queueName("0123456789abcdef0123"), /^rome-model-0123456789abcdef$/);
});

test("a client whose Redis is not there fails at once with ERR_QUEUE and what to do", async (t) => {
  const e = await t.throwsAsync(traceDatasetOnQueue({ dataset: [], out: join(tempDir(t), "x.jsonl"), redis: "redis://127.0.0.1:1", model: TINYFACTS }));
  t.is((e as RomeError).code, "ERR_QUEUE");
  t.regex(e!.message, /start redis-server/);
});
