// The raw addon on its own, with no TypeScript wrapper in front: a seeded fuzz run of 20,000 calls
// over every export, and the crashes found before (overflowing shapes per kernel, a getter that
// detaches an argument read earlier, buffers transferred and collected while an async kernel runs),
// each in a child process (plain JavaScript, --expose-gc, no loader hooks) that must exit 0.
import test from "ava";
import { spawn } from "node:child_process";

import * as native from "../lib/native.js";

const script = new URL("./fixtures/native-fuzz.mjs", import.meta.url).pathname;
const addonPath = native.loadNative().path;

function child(args: string[]): Promise<{ code: number | null; signal: string | null; lines: Record<string, unknown>[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--expose-gc", script, addonPath, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("error", reject);
    p.on("close", (code, signal) => resolve({ code, signal, stderr: err, lines: out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) }));
  });
}

interface Summary { calls: number; thrown: number; rejected: number; returned: number; functions: number; byFunction: Record<string, number>; codes: Record<string, number>; badCount: number; bad: string[] }

test("20,000 lying, overflowing, mismatched and detached calls over every export: no crash, every failure a coded Error", async (t) => {
  t.timeout(120_000);
  const r = await child(["fuzz", "42", "20000"]);
  const summary = r.lines.at(-1)?.summary as Summary | undefined;
  t.is(r.signal, null, `fuzz child died by ${r.signal}: ${r.stderr.slice(-2000)}`);
  t.is(r.code, 0, r.stderr.slice(-2000));
  t.truthy(summary);
  t.log(`calls ${summary!.calls}: returned ${summary!.returned}, thrown ${summary!.thrown}, async rejected ${summary!.rejected}; codes ${JSON.stringify(summary!.codes)}`);
  t.deepEqual(summary!.bad, []);
  t.is(summary!.calls, 20000);
  t.is(Object.keys(summary!.byFunction).length, summary!.functions);
  for (const [fn, n] of Object.entries(summary!.byFunction)) t.true(n >= 1000, `${fn} called ${n} times`);
  t.true(summary!.codes.ERR_NATIVE_ARGUMENT! > 5000);
});

// Each of these crashed the process (SIGSEGV) with the addon before checked shapes and owned copies.
const expected: Record<string, string> = {
  "choleskyFactor overflow": "ERR_NATIVE_ARGUMENT",
  "choleskySolve overflow": "ERR_NATIVE_ARGUMENT",
  "momentAccumulate overflow": "ERR_NATIVE_ARGUMENT",
  "momentFinalize overflow": "ERR_NATIVE_ARGUMENT",
  "updateApply overflow": "ERR_NATIVE_ARGUMENT",
  "applyPlan entry past the end": "ERR_NATIVE_ARGUMENT",
  "applyPlan sources getter detaches dst": "ERR_NATIVE_ARGUMENT",
  "getter detaches an earlier argument": "ERR_NATIVE_ARGUMENT",
  // the result had nowhere to go: rejected, nothing written
  "momentAccumulate transfer during async": "ERR_NATIVE_ARGUMENT",
  // keys were copied before the kernel was queued: the call completes
  "momentAccumulate keys transferred during async": "resolved",
  "choleskyFactor transfer during async": "ERR_NATIVE_ARGUMENT",
  "choleskySolve transfer during async": "ERR_NATIVE_ARGUMENT",
};

test("the crashes found before: overflowing shapes per kernel, detaching getters, transfers during async kernels", async (t) => {
  t.timeout(120_000);
  const r = await child(["regress", ...Object.keys(expected)]);
  const started = r.lines.filter((l) => "start" in l).map((l) => l.start);
  t.is(r.signal, null, `regression child died by ${r.signal} in "${String(started.at(-1))}": ${r.stderr.slice(-2000)}`);
  t.is(r.code, 0, r.stderr.slice(-2000));
  const outcomes = Object.fromEntries(r.lines.filter((l) => "case" in l).map((l) => [l.case, l.outcome]));
  t.deepEqual(outcomes, expected);
});

test("an async kernel's result still lands in the caller's buffer, upper triangle only", async (t) => {
  const raw = native.nativeAddonForTests();
  const d = 40, rows = 3;
  const keys = { dims: [rows, d], type: "float32" as const, data: Float32Array.from({ length: rows * d }, (_, i) => ((i * 37) % 11) - 5) };
  const acc = { dims: [d, d], type: "float64" as const, data: new Float64Array(d * d).fill(0.5) };
  const sync = { dims: [d, d], type: "float64" as const, data: new Float64Array(d * d).fill(0.5) };
  await raw.momentAccumulate(acc, keys, true, "own");
  raw.momentAccumulate(sync, keys, false, "own");
  t.deepEqual(acc.data, sync.data);
  for (let i = 1; i < d; i++) t.is(acc.data[i * d], 0.5, "the lower triangle is not written");
});
