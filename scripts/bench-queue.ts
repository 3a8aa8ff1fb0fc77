// `npm run bench -- queue [--facts 16] [--rounds 3] [--samples 10] [--shard-size 1] [--noop 200]`
//
// The queue's throughput and overhead on one machine: TinyFacts causal traces (3 kinds, window 10,
// the trace-dataset defaults) as facts/s, three ways, on the same facts:
//   local       traceDataset in this process (threads 1): the baseline
//   1 worker    trace-dataset through Redis to one `rome-node worker` process (threads 1)
//   2 workers   the same with two worker processes
//   side by side  two local sweeps at once, each in a process of its own (scripts/queue-local-sweep.ts):
//               the most two processes get from this machine, against which the 2-worker ratio is read
// in rounds (the order rotating, so that drift in the machine's load hits all alike; the median
// of each round's ratios is the result). The single worker and the pair listen under different
// prefixes, so all three stay loaded and idle between their turns. Also the queue's overhead per
// job, two ways: the wall time of the 1-worker sweep less the time
// the worker spent tracing (the `seconds` of each line), per job; and no-op jobs (the parent "run"
// job, which never touches the model) pushed through one worker, per job. A private redis-server
// runs on a free loopback port. Goals: 2 workers ≥ 1.7× one worker on 2 cores; overhead per job
// under 5% of a fact's trace time. A loaded or 2-vCPU machine may not give two processes 1.7×; the
// side-by-side ceiling (2 × local time / side-by-side time) says what it gives, in the same run.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Queue } from "bullmq";
import { queueConnection } from "../lib/queue/connection.js";
import { JOB } from "../lib/queue/jobs.js";
import { checkpointFingerprint, queueName } from "../lib/queue/names.js";
import { traceDatasetOnQueue } from "../lib/queue/trace-client.js";
import { Model } from "../lib/runtime/model.js";
import { traceDataset } from "../lib/trace/dataset.js";
import { readKnownFacts } from "../lib/trace/known.js";
import { startRedis } from "../test/fixtures/redis.js";
import { arg, printTable, writeResults } from "./bench-util.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const MODEL = join(ROOT, "models", "tinyfacts");
const nFacts = Number(arg("facts") ?? 16);
const samples = Number(arg("samples") ?? 10);
const shardSize = Number(arg("shard-size") ?? 1);
const nNoop = Number(arg("noop") ?? 200);

const facts = readKnownFacts(join(MODEL, "known.json")).slice(0, nFacts);
const dir = mkdtempSync(join(tmpdir(), "rome-bench-queue-"));
const redis = await startRedis();
const workers: ChildProcess[] = [];
const load0 = loadavg()[0]!;

function startWorker(prefix: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import=tsx", join(ROOT, "lib", "cli", "main.ts"), "worker", "--redis", redis.url, "--prefix", prefix, "--model", MODEL, "--threads", "1"],
    { cwd: ROOT, stdio: ["ignore", "pipe", "ignore"] });
  workers.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      if (out.includes("on queue")) resolve(child);
    });
    child.once("exit", (code) => reject(new Error(`worker exited with ${code}`)));
  });
}

/** A local sweep in its own process, loaded and warm; `run(out)` sweeps into `out` and resolves with its seconds. */
async function startSideSweep(i: number, noise: number): Promise<{ run: (out: string) => Promise<number> }> {
  const child = spawn(process.execPath, ["--import=tsx", join(ROOT, "scripts", "queue-local-sweep.ts"), "--model", MODEL, "--facts", String(nFacts),
    "--samples", String(samples), "--noise", String(noise), "--warm", join(dir, `warm-side-${i}.jsonl`)], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
  workers.push(child);
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error(`side-by-side sweep ${i} exited`);
    return r.value as string;
  };
  if ((await next()) !== "ready") throw new Error(`side-by-side sweep ${i} did not start`);
  return {
    run: async (out: string) => {
      child.stdin!.write(`${out}\n`);
      return (JSON.parse(await next()) as { seconds: number }).seconds;
    },
  };
}

const lineSeconds = (file: string) => readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { seconds: number }).seconds);

const rounds = Number(arg("rounds") ?? 3);
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

try {
  const model = await Model.load(MODEL, { threads: 1 });
  const common = { dataset: facts, samples };
  // Warm-up (sessions, allocations); its noise level is used by every run.
  const noise = (await traceDataset(model, { ...common, out: join(dir, "warm.jsonl"), limit: 2 })).noiseLevel;
  const local = async (name: string) => {
    const t0 = performance.now();
    await traceDataset(model, { ...common, noise, out: join(dir, `${name}.jsonl`) });
    return { seconds: (performance.now() - t0) / 1000, traced: lineSeconds(join(dir, `${name}.jsonl`)).reduce((a, b) => a + b, 0) };
  };
  const queued = async (name: string, prefix: string) => {
    const out = join(dir, `${name}.jsonl`);
    const start = performance.now();
    await traceDatasetOnQueue({ ...common, noise, out, redis: redis.url, prefix, model: MODEL, shardSize });
    return { seconds: (performance.now() - start) / 1000, traced: lineSeconds(out).reduce((a, b) => a + b, 0) };
  };
  await Promise.all([startWorker("one"), startWorker("two"), startWorker("two")]);
  const sides = await Promise.all([startSideSweep(0, noise), startSideSweep(1, noise)]);
  const side = async (name: string) => {
    const t0 = performance.now();
    const each = await Promise.all(sides.map((p, i) => p.run(join(dir, `${name}-${i}.jsonl`))));
    return { seconds: (performance.now() - t0) / 1000, traced: each.reduce((a, b) => a + b, 0) };
  };
  await queued("warm-1", "one"); // a worker's first facts pay for its sessions' first runs
  await queued("warm-2", "two");
  type Run = { seconds: number; traced: number };
  type Kind = "local" | "one" | "two" | "side";
  const runs: Record<Kind, Run>[] = [];
  for (let r = 0; r < rounds; r++) {
    const got: Partial<Record<Kind, Run>> = {};
    const order = (["local", "one", "two", "side"] as const).map((_, i, a) => a[(i + r) % a.length]!);
    for (const k of order) got[k] = k === "local" ? await local(`local-${r}`) : k === "side" ? await side(`side-${r}`) : await queued(`${k}-${r}`, k);
    runs.push(got as Record<Kind, Run>);
    console.log(`round ${r + 1}: local ${got.local!.seconds.toFixed(1)} s, 1 worker ${got.one!.seconds.toFixed(1)} s, 2 workers ${got.two!.seconds.toFixed(1)} s, ` +
      `2 local side by side ${got.side!.seconds.toFixed(1)} s (${2 * nFacts} facts)`);
  }
  await model.dispose();
  const localSeconds = median(runs.map((x) => x.local.seconds));
  const factSeconds = median(runs.map((x) => x.local.traced)) / nFacts;
  const one = { seconds: median(runs.map((x) => x.one.seconds)) };
  const two = { seconds: median(runs.map((x) => x.two.seconds)) };
  const speedup = median(runs.map((x) => x.one.seconds / x.two.seconds));
  // Two processes' throughput over one's: 2N facts in the side-by-side time against N in the local time.
  const ceiling = median(runs.map((x) => (2 * x.local.seconds) / x.side.seconds));

  // No-op jobs through the single worker: parent-type jobs that return at once.
  const fingerprint = checkpointFingerprint(MODEL);
  const conn = queueConnection({ redis: redis.url, prefix: "one" });
  const q = new Queue(queueName(fingerprint), { connection: conn.connection, prefix: conn.prefix });
  await q.drain(true);
  const t0 = performance.now();
  const before = await q.getCompletedCount();
  await q.addBulk(Array.from({ length: nNoop }, (_, i) => ({ name: JOB.run, data: { fingerprint, run: `noop-${i}`, kind: "trace", shards: 0 } })));
  while ((await q.getCompletedCount()) - before < nNoop) await new Promise((r) => setTimeout(r, 5));
  const noopMs = (performance.now() - t0) / nNoop;
  await q.close();

  const jobs = Math.ceil(nFacts / shardSize);
  const overheadMs = (1000 * median(runs.map((x) => x.one.seconds - x.one.traced))) / jobs;
  const rows = [
    { run: "local (in-process)", processes: 1, seconds: localSeconds, "facts/s": nFacts / localSeconds, "ratio to local": 1 },
    { run: "queue, 1 worker", processes: 1, seconds: one.seconds, "facts/s": nFacts / one.seconds, "ratio to local": median(runs.map((x) => x.local.seconds / x.one.seconds)) },
    { run: "queue, 2 workers", processes: 2, seconds: two.seconds, "facts/s": nFacts / two.seconds, "ratio to local": median(runs.map((x) => x.local.seconds / x.two.seconds)) },
    { run: `local ×2 side by side (${2 * nFacts} facts)`, processes: 2, seconds: median(runs.map((x) => x.side.seconds)), "facts/s": (2 * nFacts) / median(runs.map((x) => x.side.seconds)), "ratio to local": ceiling },
  ];
  printTable(`TinyFacts sweep: ${nFacts} facts, 3 kinds, ${samples} samples, threads 1 per process, ${shardSize} fact(s) per job; medians of ${rounds} rounds (load average ${load0.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end)`, rows);
  const overheads = [
    { measure: "trace time per fact (local)", ms: 1000 * factSeconds, "share of a fact": 1 },
    { measure: "queue overhead per job (1-worker wall − worker trace time)", ms: overheadMs, "share of a fact": overheadMs / (1000 * factSeconds) },
    { measure: `no-op job through 1 worker (${nNoop} jobs)`, ms: noopMs, "share of a fact": noopMs / (1000 * factSeconds) },
  ];
  printTable("Overhead per job", overheads);
  console.log(`\n2 workers / 1 worker: ${speedup.toFixed(2)}× (goal ≥ 1.7×), against ${ceiling.toFixed(2)}× for two local sweeps side by side in this run ` +
    `(the machine's ceiling for two processes; the queue reaches ${(100 * speedup / ceiling).toFixed(0)}% of it); overhead per job ${(100 * overheadMs / (1000 * factSeconds)).toFixed(1)}% of a fact's trace time (goal < 5%)`);
  // The two ratios have different denominators (one worker, the in-process sweep); in facts/s the two 2-process runs compare directly.
  console.log(`2 workers deliver ${(100 * rows[2]!["facts/s"] / rows[3]!["facts/s"]).toFixed(0)}% of the facts/s of two local sweeps side by side`);
  writeResults("queue", { facts: nFacts, samples, shardSize, rounds, loadAverage: [load0, loadavg()[0]], runs, rows, overheads, speedup, ceiling });
} finally {
  for (const w of workers) w.kill("SIGKILL");
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
