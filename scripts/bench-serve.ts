// `npm run bench -- serve [--duration 10] [--samples 10]`: the HTTP service under load, in one run.
// /predict requests/s and p50/p99 latency (autocannon) at concurrency 1, 8 and 32, on TinyFacts and
// on a GPT-2-small shape (random weights, written to a temporary checkpoint), beside the same
// single-prompt predictions made in-process by the same number of concurrent callers of an
// in-thread Model; then /health p50/p99 while a 3-kind trace of the GPT-2-small shape runs on the
// server. The server is a child process (`rome-node serve`); the machine may be shared, so compare
// the columns of one run. Goals: /predict at c=8 ≥ 80% of in-process; /health p99 < 50 ms.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { Model } from "../lib/runtime/model.js";
import { arg, printTable, writeResults } from "./bench-util.js";
import { writeRandomGpt2Small } from "./random-model.js";

const duration = Number(arg("duration") ?? 10);
const samples = Number(arg("samples") ?? 10);
const CONCURRENCY = [1, 8, 32];
const PROMPTS = [
  "Castle of Berkbre is located in the city of",
  "Tower of Deathproust can be found in the city of",
  "Castle of Berkbre is located in the country of",
  "Castle of Berkbre is",
];


/** Starts `rome-node serve` on a free port; resolves with its URL once it listens. */
function startServer(model: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", join("lib", "cli", "main.ts"), "--model", model, "serve", "--port", "0", "--max-samples", "1024"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.on("exit", (code) => reject(new Error(`serve exited with ${code}`)));
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

interface Load { rps: number; p50: number; p99: number; errors: number }

/** autocannon against `path` for `seconds`, cycling through `bodies`. */
async function cannon(url: string, path: string, connections: number, seconds: number, bodies?: unknown[]): Promise<Load> {
  const r = await autocannon({
    url: url + path,
    connections,
    duration: seconds,
    timeout: 120, // a batch of 32 GPT-2-small prompts on a shared machine can take longer than the default 10 s
    ...(bodies
      ? { requests: bodies.map((b) => ({ method: "POST" as const, path, headers: { "content-type": "application/json" }, body: JSON.stringify(b) })) }
      : {}),
  });
  return { rps: r.requests.total / seconds, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

/**
 * `connections` callers each predicting one prompt at a time on an in-thread model, for `seconds`;
 * as autocannon does, only the calls that end within the window count.
 */
async function inProcess(model: Model, connections: number, seconds: number): Promise<Load> {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, async (_, c) => {
    for (let i = c; performance.now() < end; i++) {
      const t0 = performance.now();
      await model.predict([PROMPTS[i % PROMPTS.length]!], { topK: 5 });
      if (performance.now() <= end) latencies.push(performance.now() - t0);
    }
  }));
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return { rps: latencies.length / seconds, p50: q(0.5), p99: q(0.99), errors: 0 };
}

const dir = mkdtempSync(join(tmpdir(), "rome-bench-serve-"));
const rows: Record<string, string | number>[] = [];
const record: Record<string, unknown> = {};
try {
  writeRandomGpt2Small(dir);
  console.log(`serve benchmark: ${duration} s per measurement, trace samples ${samples}; machine may be shared: compare the columns of one run`);
  for (const [name, path] of [["TinyFacts", join("models", "tinyfacts")], ["GPT-2-small shape", dir]] as const) {
    const server = await startServer(path);
    const local = await Model.load(path) as Model;
    try {
      const bodies = PROMPTS.map((p) => ({ prompts: [p], topK: 5 }));
      await cannon(server.url, "/predict", 8, 1, bodies); // warm-up
      await inProcess(local, 1, 1);
      for (const c of CONCURRENCY) {
        const http = await cannon(server.url, "/predict", c, duration, bodies);
        const own = await inProcess(local, c, duration);
        record[`${name} c=${c}`] = { http, inProcess: own };
        rows.push({
          model: name, concurrency: c, "HTTP req/s": http.rps, "HTTP p50 ms": http.p50, "HTTP p99 ms": http.p99, errors: http.errors,
          "in-process req/s": own.rps, "in-process p50 ms": own.p50, "in-process p99 ms": own.p99, "HTTP / in-process": own.rps > 0 ? http.rps / own.rps : "n/a",
        });
        console.log(JSON.stringify(rows.at(-1)));
      }
      if (path === dir) {
        const idle = await cannon(server.url, "/health", 1, duration);
        const res = await fetch(`${server.url}/trace`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: PROMPTS[0], subject: "Castle of Berkbre", kinds: ["resid", "mlp", "attn"], samples }) });
        const { id } = await res.json() as { id: string };
        await new Promise((r) => setTimeout(r, 500)); // the trace has started
        const busy = await cannon(server.url, "/health", 1, duration);
        const job = await (await fetch(`${server.url}/jobs/${id}`)).json() as { state: string; progress?: { done: number; total: number } };
        const during = job.state === "running";
        record.health = { idle, duringTrace: busy, traceStillRunning: during, progress: job.progress };
        printTable("/health while the server is idle and while a 3-kind trace of the GPT-2-small shape runs", [
          { phase: "idle", "req/s": idle.rps, "p50 ms": idle.p50, "p99 ms": idle.p99 },
          { phase: `during the trace${during ? "" : " (the trace ended before the measurement did)"}`, "req/s": busy.rps, "p50 ms": busy.p50, "p99 ms": busy.p99 },
        ]);
        await fetch(`${server.url}/jobs/${id}`, { method: "DELETE" });
      }
    } finally {
      await local.dispose();
      await stopServer(server.child);
    }
  }
  printTable("/predict over HTTP (autocannon, one prompt per request) beside the same predictions in-process", rows);
  writeResults("serve", { duration, samples, predict: record });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
