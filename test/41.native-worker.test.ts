// The addon loads once per thread: two worker threads and the main thread use it at the same time,
// each gets its own RomeError class (per-environment instance data), and the workers exit cleanly
// (environment cleanup) so that a later worker can load it again.
import test from "ava";
import { Worker } from "node:worker_threads";

import { RomeError } from "../lib/errors.js";
import * as native from "../lib/native.js";

interface Report { path: string; minPivot: number; code: string }

// Node 20 does not apply --import hooks to a .ts worker entry, so a tiny JavaScript entry registers
// tsx in the worker and then imports the TypeScript body.
const body = new URL("./fixtures/native-worker.ts", import.meta.url).href;
const entry = `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(body)}); })`;

function runWorker(n: number): Promise<{ report: Report; exitCode: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(entry, { eval: true, workerData: { n } });
    let report: Report | undefined;
    w.on("message", (m: Report) => (report = m));
    w.on("error", reject);
    w.on("exit", (exitCode) => (report ? resolve({ report, exitCode }) : reject(new Error(`worker exited ${exitCode} without a report`))));
  });
}

test("loads in two worker threads and the main thread at once, and again after they exit", async (t) => {
  const main = native.loadNative();
  const mainWork = native.choleskyFactor({ dims: [400, 400], type: "float64", data: Float64Array.from({ length: 400 * 400 }, (_, i) => (i % 401 === 0 ? 9 : 0)) });
  const [a, b] = await Promise.all([runWorker(300), runWorker(500)]);
  for (const { report, exitCode } of [a, b]) {
    t.is(exitCode, 0);
    t.is(report.path, main.path);
    t.is(report.minPivot, 4);
    t.is(report.code, "ERR_NOT_POSITIVE_DEFINITE");
  }
  t.is((await mainWork).minPivot, 9);
  // the main thread's RomeError class is still the one it handed over
  t.throws(() => native.choleskyFactorSync({ dims: [1, 1], type: "float64", data: Float64Array.from([0]) }), { instanceOf: RomeError, code: "ERR_NOT_POSITIVE_DEFINITE" });
  const again = await runWorker(64);
  t.is(again.exitCode, 0);
  t.is(again.report.code, "ERR_NOT_POSITIVE_DEFINITE");
});
