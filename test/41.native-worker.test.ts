// The addon loads once per thread: two worker threads and the main thread use it at the same time,
// each gets its own error class (per-environment instance data), and the workers exit cleanly
// (environment cleanup) so that a later worker can load it again.
import test from "ava";
import { Worker } from "node:worker_threads";

import { RomeError } from "../lib/errors.js";
import * as native from "../lib/native.js";

interface Report { minPivot: number; code: string }

// The worker body is plain JavaScript and the worker gets no --import=tsx: loader hooks registered
// in workers can deadlock on Node 20, and the addon is what is under test here.
const body = new URL("./fixtures/native-worker.mjs", import.meta.url);

function runWorker(n: number, path: string): Promise<{ report: Report; exitCode: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(body, { execArgv: [], workerData: { n, path } });
    let report: Report | undefined;
    w.on("message", (m: Report) => (report = m));
    w.on("error", reject);
    w.on("exit", (exitCode) => (report ? resolve({ report, exitCode }) : reject(new Error(`worker exited ${exitCode} without a report`))));
  });
}

test("loads in two worker threads and the main thread at once, and again after they exit", async (t) => {
  t.timeout(60_000, "a worker did not finish: the addon's per-thread load or cleanup hangs");
  const main = native.loadNative();
  const mainWork = native.choleskyFactor({ dims: [400, 400], type: "float64", data: Float64Array.from({ length: 400 * 400 }, (_, i) => (i % 401 === 0 ? 9 : 0)) });
  const [a, b] = await Promise.all([runWorker(300, main.path), runWorker(500, main.path)]);
  for (const { report, exitCode } of [a, b]) {
    t.is(exitCode, 0);
    t.is(report.minPivot, 4);
    t.is(report.code, "ERR_NOT_POSITIVE_DEFINITE");
  }
  t.is((await mainWork).minPivot, 9);
  // the main thread's RomeError class is still the one it handed over
  t.throws(() => native.choleskyFactorSync({ dims: [1, 1], type: "float64", data: Float64Array.from([0]) }), { instanceOf: RomeError, code: "ERR_NOT_POSITIVE_DEFINITE" });
  const again = await runWorker(64, main.path);
  t.is(again.exitCode, 0);
  t.is(again.report.code, "ERR_NOT_POSITIVE_DEFINITE");
});
