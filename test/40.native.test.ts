// The native addon through the Node boundary: every validation error (message and code), kernel
// results against naive JavaScript, the event loop staying free during an async factorisation,
// and the loader's single actionable error. Needs `npm run build:native`.
import test from "ava";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { RomeError } from "../lib/errors.js";
import * as native from "../lib/native.js";
import type { Float32Tensor, Float64Tensor } from "../lib/native.js";

const caps = native.loadNative().capabilities;

// seeded uniform [-1, 1)
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 31) - 1;
}
const rand = rng(7);
const f32 = (dims: number[], fill = true): Float32Tensor => {
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  if (fill) for (let i = 0; i < data.length; i++) data[i] = rand();
  return { dims, type: "float32", data };
};
const f64 = (dims: number[]): Float64Tensor => ({ dims, type: "float64", data: new Float64Array(dims.reduce((a, b) => a * b, 1)) });
function maxdiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
function spd(n: number, ridge = 0.5): Float64Tensor {
  const k = f32([n + 3, n]);
  const a = f64([n, n]);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let r = 0; r < n + 3; r++) s += k.data[r * n + i]! * k.data[r * n + j]!;
      a.data[i * n + j] = s + (i === j ? ridge : 0);
    }
  return a;
}

test("capabilities describe the build", (t) => {
  t.true(caps.threads >= 1);
  t.true(caps.blas === "openblas" || caps.blas === "none");
  t.is(typeof caps.lapack, "boolean");
  t.is(native.setNativeThreads(1), 1);
  t.is(native.setNativeThreads(caps.threads), caps.threads);
});

test("second moment accumulates KᵀK in float64 and finalizes", async (t) => {
  for (const backend of ["own", ...(caps.blas !== "none" ? ["blas"] : [])] as native.Backend[]) {
    for (const [rows, d] of [[1, 1], [7, 33], [300, 37]] as const) {
      const k = f32([rows, d]);
      const m = new native.SecondMoment(d);
      await m.add(k, { backend });
      m.addSync(k, { backend });
      const mean = m.mean();
      t.is(m.count, 2 * rows);
      let diff = 0;
      for (let i = 0; i < d; i++)
        for (let j = 0; j < d; j++) {
          let s = 0;
          for (let r = 0; r < rows; r++) s += k.data[r * d + i]! * k.data[r * d + j]!;
          diff = Math.max(diff, Math.abs(mean.data[i * d + j]! - s / rows));
        }
      t.true(diff < 1e-5, `${backend} ${rows}x${d} maxdiff ${diff}`);
    }
  }
});

test("Cholesky factors and solves; own and LAPACK agree", async (t) => {
  for (const n of [1, 7, 33, 140]) {
    const a = spd(n);
    for (const backend of ["own", ...(caps.lapack ? ["blas"] : [])] as native.Backend[]) {
      const u: Float64Tensor = { ...a, data: Float64Array.from(a.data) };
      const info = await native.choleskyFactor(u, { backend });
      t.true(info.condition >= 1 && info.minPivot > 0);
      let diff = 0;  // UᵀU = A on the upper triangle
      for (let i = 0; i < n; i++)
        for (let j = i; j < n; j++) {
          let s = 0;
          for (let m = 0; m <= i; m++) s += u.data[m * n + i]! * u.data[m * n + j]!;
          diff = Math.max(diff, Math.abs(s - a.data[i * n + j]!));
        }
      t.true(diff < 1e-9 * n, `${backend} n=${n} |UᵀU - A| ${diff}`);
      const b: Float64Tensor = { dims: [n, 2], type: "float64", data: Float64Array.from({ length: 2 * n }, () => rand()) };
      const x: Float64Tensor = { ...b, data: Float64Array.from(b.data) };
      await native.choleskySolve(u, x, { backend });
      let res = 0;
      for (let i = 0; i < n; i++)
        for (let c = 0; c < 2; c++) {
          let s = 0;
          for (let j = 0; j < n; j++) s += a.data[i * n + j]! * x.data[j * 2 + c]!;
          res = Math.max(res, Math.abs(s - b.data[i * 2 + c]!));
        }
      t.true(res < 1e-8, `${backend} n=${n} residual ${res}`);
      const v: Float64Tensor = { dims: [n], type: "float64", data: b.data.filter((_, i) => i % 2 === 0) };
      native.choleskySolveSync(u, v, { backend });
      t.true(maxdiff(v.data, x.data.filter((_, i) => i % 2 === 0)) < 1e-9);
    }
  }
});

test("a matrix that is not positive definite is refused with index and pivot", async (t) => {
  const bad = (): Float64Tensor => ({ dims: [3, 3], type: "float64", data: Float64Array.from([1, 0, 0, 0, 2, 0, 0, 0, -4]) });
  const e1 = t.throws(() => native.choleskyFactorSync(bad()), { instanceOf: RomeError }) as RomeError & { index: number; pivot: number };
  t.is(e1.code, "ERR_NOT_POSITIVE_DEFINITE");
  t.is(e1.message, "Matrix is not positive definite: pivot 2 of 3 is -4 (smallest allowed is > 0); add a ridge (e.g. { ridge: 1e-6 }) or collect more statistics");
  t.is(e1.index, 2);
  t.is(e1.pivot, -4);
  const e2 = await t.throwsAsync(native.choleskyFactor(bad(), { backend: "own" }), { instanceOf: RomeError }) as RomeError & { index: number };
  t.is(e2.code, "ERR_NOT_POSITIVE_DEFINITE");
  t.is(e2.index, 2);
  const info = native.choleskyFactorSync(bad(), { ridge: 5 });
  t.is(info.minPivot, 1);
});

test("updates apply U Vᵀ summed in float64 and rounded once, and record the touched rows' original bits", (t) => {
  for (const [rows, cols, r] of [[1, 1, 1], [33, 7, 1], [130, 77, 3]] as const) {
    const w = f32([rows, cols]);
    const orig = Float32Array.from(w.data);
    const u = f32([rows, r]), v = f32([cols, r]);
    for (let i = 0; i < rows; i += 4) u.data.fill(0, i * r, (i + 1) * r);
    const rec = r === 1 ? native.applyUpdate(w, u.data, v.data) : native.applyUpdate(w, u, v);
    let diff = 0;
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < cols; j++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += u.data[i * r + k]! * v.data[j * r + k]!;
        diff = Math.max(diff, Math.abs(w.data[i * cols + j]! - Math.fround(orig[i * cols + j]! + s)));
      }
    t.is(diff, 0, `${rows}x${cols} r=${r}`);
    t.is(rec.rows.length, rows - Math.ceil(rows / 4));
    rec.rows.forEach((i, k) => t.deepEqual(rec.data.subarray(k * cols, (k + 1) * cols), orig.subarray(i * cols, (i + 1) * cols)));
  }
});

test("the event loop stays free during an async 3072-dimensional factorisation", async (t) => {
  const n = 3072;
  const a = f64([n, n]);
  for (let i = 0; i < n; i++) {
    a.data[i * n + i] = 4;
    if (i + 1 < n) a.data[i * n + i + 1] = a.data[(i + 1) * n + i] = 1;
  }
  let ticks = 0;
  const timer = setInterval(() => ticks++, 2);
  const started = performance.now();
  const pending = native.choleskyFactor(a, { backend: "own" });
  const info = await pending;
  const ms = performance.now() - started;
  clearInterval(timer);
  t.true(info.minPivot > 0);
  // A blocked loop would tick 0 times (the await resumes before any timer); a free one ticks about
  // every 2 ms, so at least 5 times unless the machine factorises in under 50 ms.
  t.true(ticks >= (ms >= 50 ? 5 : 1), `timer ticked ${ticks} times during ${ms.toFixed(0)} ms`);
});

// [name, call, expected message] — every one a RomeError("ERR_ARGUMENT")
const w2 = f32([3, 2]), u3 = new Float32Array(3), v2 = new Float32Array(2);
const validation: [string, () => unknown, string][] = [
  ["not a tensor", () => native.applyUpdate(new Float32Array(4) as never, w2.data, w2.data), "Expected a float32 tensor { dims, type, data } for w but received Float32Array"],
  ["wrong data kind", () => native.applyUpdate({ dims: [3, 2], type: "float32", data: new Float64Array(6) } as never, u3, v2), "Expected Float32Array data for w but received Float64Array"],
  ["wrong type tag", () => native.applyUpdate({ dims: [3, 2], type: "float64", data: new Float32Array(6) } as never, u3, v2), "Expected type 'float32' for w but received 'float64'"],
  ["dims mismatch data", () => native.applyUpdate({ dims: [3, 3], type: "float32", data: new Float32Array(6) }, u3, v2), "Expected w data of length 9 for dims [3, 3] but received 6"],
  ["bad dims", () => native.applyUpdate({ dims: [3, -2], type: "float32", data: new Float32Array(6) }, u3, v2), "Expected an array of non-negative integer dims for w but received Array"],
  ["rank", () => native.applyUpdate(f32([6]), u3, v2), "Expected 2 dims for w but received [6]"],
  ["moment acc square", () => native.momentAccumulateSync(f64([3, 4]), f32([2, 4])), "Expected dims [3, 3] for acc but received [3, 4]"],
  ["moment keys width", () => native.momentAccumulateSync(f64([3, 3]), f32([2, 4])), "Expected dims [*, 3] for keys but received [2, 4]"],
  ["backend", () => native.momentAccumulateSync(f64([3, 3]), f32([2, 3]), { backend: "mkl" as never }), "Expected 'auto', 'own' or 'blas' for backend but received 'mkl'"],
  ["option typo", () => native.choleskyFactorSync(f64([2, 2]), { ridg: 1 } as never), "Unknown option 'ridg' for choleskyFactorSync (did you mean 'ridge'?); known options: ridge, backend"],
  ["ridge", () => native.choleskyFactorSync(f64([2, 2]), { ridge: -1 }), "Expected number between 0 and 1.7976931348623157e+308 for ridge but received -1"],
  ["solve rows", () => native.choleskySolveSync(f64([3, 3]), f64([2, 1])), "Expected dims [3, *] for b but received [2, 1]"],
  ["finalize count", () => native.momentFinalize(f64([2, 2]), f64([2, 2]), 0), "Expected number between 1 and 9007199254740991 for count but received 0"],
  ["update rank", () => native.applyUpdate(f32([3, 2]), f32([3, 2]), f32([2, 1])), "Expected u and v of the same rank ≥ 1 but received 2 and 1"],
  ["update u length", () => native.applyUpdate(f32([3, 2]), new Float32Array(2), new Float32Array(2)), "Expected Float32Array of length 3 for u but received length 2"],
  ["threads", () => native.setNativeThreads(-1), "Expected integer between 0 and 1024 for threads but received -1"],
];
for (const [name, call, message] of validation) {
  test(`validation: ${name}`, (t) => {
    const e = t.throws(call, { instanceOf: RomeError }) as RomeError;
    t.is(e.code, "ERR_ARGUMENT");
    t.is(e.message, message);
  });
}

test("the C++ layer re-checks kinds and sizes (ERR_NATIVE_ARGUMENT)", (t) => {
  const raw = native.nativeAddonForTests();
  const e = t.throws(() => raw.updateApply({ dims: [3, 2], type: "float32", data: new Float64Array(6) } as never, f32([3, 1]), f32([2, 1])), { instanceOf: RomeError }) as RomeError;
  t.is(e.code, "ERR_NATIVE_ARGUMENT");
  t.is(e.message, "Expected Float32Array for w.data");
  const e2 = t.throws(() => raw.applyPlan(new Float32Array(8), [new Float32Array(8)], Int32Array.from([0, 1, 0, 2, -1, 0]), 4), { instanceOf: RomeError }) as RomeError;
  t.is(e2.message, "applyPlan: plan entry 0 reads outside source 0");
});

test("the loader lists every failure in one actionable error", async (t) => {
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), "rome-native-load-"));
  mkdirSync(join(dir, "lib"));
  for (const f of ["errors.ts", "native-load.ts", "native-check.ts"]) copyFileSync(join(here, "..", "lib", f), join(dir, "lib", f));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(join(dir, "fake.node"), "not a shared object");
  const saved = process.env.ROME_NATIVE_PATH;
  process.env.ROME_NATIVE_PATH = join(dir, "fake.node");
  try {
    const load = (await import(join(dir, "lib", "native-load.ts"))) as typeof import("../lib/native-load.js");
    const e = t.throws(() => load.loadNative({ path: join(dir, "missing.node") })) as RomeError;
    t.is(e.code, "ERR_NATIVE_LOAD");
    t.true(e.message.startsWith("Could not load the rome-node native addon. Run `npm run build:native`"), e.message);
    t.true(e.message.includes(`${join(dir, "missing.node")}: not found`));
    t.true(e.message.includes(`${join(dir, "fake.node")}: `));
    t.true(e.message.includes(`${join(dir, "build", "Release", "rome_native.node")}: not found`));
    t.true(e.message.includes(`${join(dir, "build", "Debug", "rome_native.node")}: not found`));
  } finally {
    if (saved === undefined) delete process.env.ROME_NATIVE_PATH; else process.env.ROME_NATIVE_PATH = saved;
  }
});
