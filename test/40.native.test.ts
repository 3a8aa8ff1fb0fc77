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

test("buildBatch gathers by sample and patches positions in one pass", (t) => {
  for (const [B, S, T, D] of [[1, 1, 1, 1], [7, 3, 5, 33], [33, 4, 7, 7]] as const) {
    const src = f32([S, T, D]), clean = f32([2, T, D]), dst = f32([B, T, D], false);
    const index = Int32Array.from({ length: B }, (_, b) => (b * 5 + 1) % S);
    const plan: number[] = [];
    for (let b = 0; b < B; b++) plan.push(b, (b * 3) % T, b % 2);
    native.buildBatch(dst, src, index, { src: clean, plan: Int32Array.from(plan) });
    const ref = new Float32Array(B * T * D);
    for (let b = 0; b < B; b++) ref.set(src.data.subarray(index[b]! * T * D, (index[b]! + 1) * T * D), b * T * D);
    for (let p = 0; p < plan.length; p += 3) {
      const [row, pos, sr] = [plan[p]!, plan[p + 1]!, plan[p + 2]!];
      ref.set(clean.data.subarray((sr * T + pos) * D, (sr * T + pos + 1) * D), (row * T + pos) * D);
    }
    t.is(maxdiff(dst.data, ref), 0, `buildBatch ${B}x${T}x${D}`);
    const dst2 = f32([B, T, D], false);
    native.gatherRows(dst2, src, index);
    native.patchPositions(dst2, clean, Int32Array.from(plan));
    t.is(maxdiff(dst2.data, ref), 0, `gatherRows + patchPositions ${B}x${T}x${D}`);
  }
});

test("gatherRows gathers KV caches (B, H, T, Dh) by the leading dim", (t) => {
  const src = f32([3, 2, 4, 8]), dst = f32([4, 2, 4, 8], false), index = Int32Array.from([2, 2, 0, 1]);
  native.gatherRows(dst, src, index);
  const inner = 2 * 4 * 8;
  for (let b = 0; b < 4; b++) t.is(maxdiff(dst.data.subarray(b * inner, (b + 1) * inner), src.data.subarray(index[b]! * inner, (index[b]! + 1) * inner)), 0);
});

test("componentRestore and freeze match naive JavaScript", (t) => {
  const [B, T, D] = [5, 6, 7];
  const mid = f32([B, T, D]), comp = f32([B, T, D]), out = f32([B, T, D], false);
  const mask = Uint8Array.from({ length: B * T }, (_, i) => (i % 3 === 0 ? 1 : 0));
  for (const C of [1, B]) {
    const clean = f32([C, T, D]);
    native.componentRestore(out, mid, comp, clean, mask);
    const ref = new Float32Array(B * T * D);
    for (let bt = 0; bt < B * T; bt++)
      for (let i = 0; i < D; i++) {
        const c = mask[bt] ? clean.data[((C === 1 ? 0 : Math.floor(bt / T)) * T + (bt % T)) * D + i]! : comp.data[bt * D + i]!;
        ref[bt * D + i] = Math.fround(mid.data[bt * D + i]! + c);
      }
    t.is(maxdiff(out.data, ref), 0, `C=${C}`);
  }
  const values = f32([2, D]), dst = f32([B, T, D]);
  const before = Float32Array.from(dst.data);
  native.freeze(dst, values, Int32Array.from([4, 5, 0, 2]));
  before.set(values.data.subarray(0, D), (4 * T + 5) * D);
  before.set(values.data.subarray(D), (0 * T + 2) * D);
  t.is(maxdiff(dst.data, before), 0);
});

test("second moment accumulates KᵀK in float64, merges and finalizes", async (t) => {
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
      const other = new native.SecondMoment(d);
      other.addSync(k, { backend });
      m.merge(other);
      t.is(m.count, 3 * rows);
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

test("updates apply U Vᵀ and undo restores the original bits exactly", (t) => {
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
    native.undoUpdate(w, rec);
    t.deepEqual(new Uint32Array(w.data.buffer), new Uint32Array(orig.buffer));
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
const t3 = f32([2, 3, 4]);
const validation: [string, () => unknown, string][] = [
  ["dst not a tensor", () => native.gatherRows(new Float32Array(4) as never, t3, Int32Array.from([0, 1])), "Expected a float32 tensor { dims, type, data } for dst but received Float32Array"],
  ["wrong data kind", () => native.gatherRows({ dims: [2, 3, 4], type: "float32", data: new Float64Array(24) } as never, t3, Int32Array.from([0, 1])), "Expected Float32Array data for dst but received Float64Array"],
  ["wrong type tag", () => native.gatherRows({ dims: [2, 3, 4], type: "float64", data: new Float32Array(24) } as never, t3, Int32Array.from([0, 1])), "Expected type 'float32' for dst but received 'float64'"],
  ["dims mismatch data", () => native.gatherRows({ dims: [2, 3, 5], type: "float32", data: new Float32Array(24) }, t3, Int32Array.from([0, 1])), "Expected dst data of length 30 for dims [2, 3, 5] but received 24"],
  ["bad dims", () => native.gatherRows({ dims: [2, -3, 4], type: "float32", data: new Float32Array(24) }, t3, Int32Array.from([0, 1])), "Expected an array of non-negative integer dims for dst but received Array"],
  ["src inner dims", () => native.gatherRows(t3, f32([2, 3, 5]), Int32Array.from([0, 1])), "Expected dims [*, 3, 4] for src but received [2, 3, 5]"],
  ["index kind", () => native.gatherRows(t3, t3, [0, 1] as never), "Expected Int32Array for index but received Array"],
  ["index length", () => native.gatherRows(t3, t3, Int32Array.from([0])), "Expected Int32Array of length 2 for index but received length 1"],
  ["index range", () => native.gatherRows(t3, t3, Int32Array.from([0, 2])), "Expected integer between 0 and 1 for index[1] but received 2"],
  ["plan length", () => native.patchPositions(t3, t3, Int32Array.from([0, 1])), "Expected plan length to be a multiple of 3 (dstRow, pos, srcRow) but received 2"],
  ["plan pos", () => native.patchPositions(t3, t3, Int32Array.from([0, 3, 0])), "Expected integer between 0 and 2 for plan[1] (pos) but received 3"],
  ["plan srcRow", () => native.patchPositions(t3, f32([1, 3, 4]), Int32Array.from([0, 1, 1])), "Expected integer between 0 and 0 for plan[2] (srcRow) but received 1"],
  ["plan repeats", () => native.buildBatch(t3, t3, Int32Array.from([0, 1]), { src: t3, plan: Int32Array.from([1, 2, 0, 1, 2, 1]) }), "Expected distinct (row, position) pairs in patch.plan but (1, 2) repeats at entry 1"],
  ["patch option typo", () => native.buildBatch(t3, t3, Int32Array.from([0, 1]), { src: t3, plan: new Int32Array(0), plna: 1 } as never), "Unknown option 'plna' for buildBatch patch (did you mean 'plan'?); known options: src, plan"],
  ["rank", () => native.componentRestore(f32([2, 12]), t3, t3, t3, new Uint8Array(6)), "Expected 3 dims for out but received [2, 12]"],
  ["clean rows", () => native.componentRestore(t3, t3, t3, f32([3, 3, 4]), new Uint8Array(6)), "Expected dims [2, 3, 4] for clean but received [3, 3, 4]"],
  ["mask length", () => native.componentRestore(t3, t3, t3, t3, new Uint8Array(5)), "Expected Uint8Array of length 6 for mask but received length 5"],
  ["freeze plan", () => native.freeze(t3, f32([1, 4]), Int32Array.from([2, 0])), "Expected integer between 0 and 1 for plan[0] (row) but received 2"],
  ["moment acc square", () => native.momentAccumulateSync(f64([3, 4]), f32([2, 4])), "Expected dims [3, 3] for acc but received [3, 4]"],
  ["moment keys width", () => native.momentAccumulateSync(f64([3, 3]), f32([2, 4])), "Expected dims [*, 3] for keys but received [2, 4]"],
  ["backend", () => native.momentAccumulateSync(f64([3, 3]), f32([2, 3]), { backend: "mkl" as never }), "Expected 'auto', 'own' or 'blas' for backend but received 'mkl'"],
  ["option typo", () => native.choleskyFactorSync(f64([2, 2]), { ridg: 1 } as never), "Unknown option 'ridg' for choleskyFactorSync (did you mean 'ridge'?); known options: ridge, backend"],
  ["ridge", () => native.choleskyFactorSync(f64([2, 2]), { ridge: -1 }), "Expected number between 0 and 1.7976931348623157e+308 for ridge but received -1"],
  ["solve rows", () => native.choleskySolveSync(f64([3, 3]), f64([2, 1])), "Expected dims [3, *] for b but received [2, 1]"],
  ["finalize count", () => native.momentFinalize(f64([2, 2]), f64([2, 2]), 0), "Expected number between 1 and 9007199254740991 for count but received 0"],
  ["update rank", () => native.applyUpdate(f32([3, 2]), f32([3, 2]), f32([2, 1])), "Expected u and v of the same rank ≥ 1 but received 2 and 1"],
  ["update u length", () => native.applyUpdate(f32([3, 2]), new Float32Array(2), new Float32Array(2)), "Expected Float32Array of length 3 for u but received length 2"],
  ["undo data length", () => native.undoUpdate(f32([3, 2]), { rows: Int32Array.from([0]), data: new Float32Array(3) }), "Expected Float32Array of length 2 for record.data but received length 3"],
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
  const e = t.throws(() => raw.gatherRows({ dims: [2, 3, 4], type: "float32", data: new Float64Array(24) } as never, t3, Int32Array.from([0, 1])), { instanceOf: RomeError }) as RomeError;
  t.is(e.code, "ERR_NATIVE_ARGUMENT");
  t.is(e.message, "Expected Float32Array for dst.data");
  const e2 = t.throws(() => raw.gatherRows(t3, t3, Int32Array.from([0, 5])), { instanceOf: RomeError }) as RomeError;
  t.is(e2.message, "index[1] = 5 is outside [0, 2)");
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
