// `npm run bench -- native [--threads N] [--quick]`: the addon's kernels against baselines measured
// in the same run: restoration-plan bandwidth (applyPlan, and the same plan in JavaScript) vs a
// plain memcpy of the same bytes (TypedArray.set),
// second-moment accumulation 3072 x 8192 own kernel vs OpenBLAS ssyrk (the 'blas' backend), and
// Cholesky 3072 / 6400 own vs LAPACK dpotrf. Prints tables, writes bench/results/native.json.
import * as native from "../lib/native.js";
import type { Backend, Float32Tensor, Float64Tensor } from "../lib/native.js";
import { forceRestoreBackend, RestorePlan } from "../lib/trace/restore-plan.js";
import { arg, printTable, time, writeResults } from "./bench-util.js";

const quick = process.argv.includes("--quick");
const caps = native.loadNative().capabilities;
if (arg("threads")) native.setNativeThreads(Number(arg("threads")));
const threads = native.nativeCapabilities().threads;
console.log(`rome-node native bench: threads ${threads}, blas ${caps.blas}, lapack ${caps.lapack}, cuda ${JSON.stringify(caps.cuda)}`);

const fill = (a: Float32Array | Float64Array) => { let s = 1; for (let i = 0; i < a.length; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s / 2 ** 32 - 0.5; } return a; };
const results: Record<string, unknown> = { threads, blas: caps.blas, lapack: caps.lapack };

// --- restoration plans (applyPlan), the sweep's between-segment work ------------------------------
// A sweep-shaped plan over (B, T, D): each row copies T − 1 vectors of its sample's corrupted
// state and sums the restored vector at position 0 (what entering restorations cost), on the addon
// and in JavaScript, against a plain memcpy of the same bytes. Synchronous on the JS thread: it is
// a copy of at most a segment's batch.
const patchRows: Record<string, string | number>[] = [];
for (const [B, S, T, D] of [[64, 10, 32, 768], [256, 10, 64, 768], [100, 10, 10, 768]] as const) {
  const src = fill(new Float32Array(S * T * D)) as Float32Array;   // (S, T, D)
  const clean = fill(new Float32Array(T * D)) as Float32Array;     // (1, T, D)
  const dst = new Float32Array(B * T * D);                          // (B, T, D)
  const flat = fill(new Float32Array(B * T * D)) as Float32Array;  // memcpy baseline source, same bytes
  const plan = new RestorePlan(D);
  const [s0, c0] = [plan.slot(src), plan.slot(clean)];
  for (let b = 0; b < B; b++) {
    plan.copy(b * T + 1, T - 1, s0, (b % S) * T + 1);
    plan.add(b * T, 1, s0, (b % S) * T, c0, 0);
  }
  const bytes = B * T * D * 4;
  const memcpy = await time(() => dst.set(flat), 0.3);
  forceRestoreBackend("native");
  const nat = await time(() => plan.run(dst), 0.3);
  forceRestoreBackend("js");
  const js = await time(() => plan.run(dst), 0.3);
  forceRestoreBackend(undefined);
  const gbs = (s: number) => bytes / s / 1e9;
  patchRows.push(
    { kernel: "memcpy (TypedArray.set)", shape: `${B}x${T}x${D}`, MB: bytes / 1e6, "µs": memcpy.seconds * 1e6, "GB/s": gbs(memcpy.seconds), ratio: 1 },
    { kernel: "applyPlan (addon)", shape: `${B}x${T}x${D}`, MB: bytes / 1e6, "µs": nat.seconds * 1e6, "GB/s": gbs(nat.seconds), ratio: memcpy.seconds / nat.seconds },
    { kernel: "same plan in JavaScript", shape: `${B}x${T}x${D}`, MB: bytes / 1e6, "µs": js.seconds * 1e6, "GB/s": gbs(js.seconds), ratio: memcpy.seconds / js.seconds },
  );
}
printTable("restoration-plan bandwidth (bytes written; goal: the addon ≥ 0.7 of memcpy)", patchRows);
results.patch = patchRows;

// --- second moment --------------------------------------------------------------------------------
const [rows, d] = quick ? [2048, 1024] : [8192, 3072];
const keys: Float32Tensor = { dims: [rows, d], type: "float32", data: fill(new Float32Array(rows * d)) as Float32Array };
const acc: Float64Tensor = { dims: [d, d], type: "float64", data: new Float64Array(d * d) };
const flops = rows * d * (d + 1);  // the upper triangle, one multiply-add = 2 flops
const momentRows: Record<string, string | number>[] = [];
const backends: Backend[] = caps.blas !== "none" ? ["blas", "own"] : ["own"];
const momentSecs: Record<string, number> = {};
for (const backend of backends) {
  const r = await time(() => native.momentAccumulate(acc, keys, { backend }), 0, 2);
  momentSecs[backend] = r.seconds;
}
if (caps.blas !== "none") {
  await native.nativeAddonForTests()._benchRawSsyrk(keys);  // warm-up
  const raw = await native.nativeAddonForTests()._benchRawSsyrk(keys);
  momentSecs.ssyrk = raw;
  momentRows.push({ kernel: "plain cblas_ssyrk -> f32 (baseline)", shape: `${rows}x${d}`, seconds: raw, "GFLOP/s": flops / raw / 1e9, "vs ssyrk": 1 });
}
for (const backend of backends)
  momentRows.push({ kernel: backend === "blas" ? "ssyrk chunks -> f64 (OpenBLAS)" : "own cache-blocked -> f64", shape: `${rows}x${d}`,
    seconds: momentSecs[backend]!, "GFLOP/s": flops / momentSecs[backend]! / 1e9, "vs ssyrk": momentSecs.ssyrk ? momentSecs.ssyrk / momentSecs[backend]! : "n/a" });
printTable("second moment acc += KᵀK (goal: BLAS path >= 0.95x, own >= 0.5x of plain ssyrk)", momentRows);
results.moment = momentRows;

// --- Cholesky -------------------------------------------------------------------------------------
const cholRows: Record<string, string | number>[] = [];
for (const n of quick ? [1024] : [3072, 6400]) {
  const base = new Float64Array(n * n);
  fill(base);
  for (let i = 0; i < n; i++) { for (let j = 0; j < i; j++) base[i * n + j] = base[j * n + i]!; base[i * n + i] = n; }
  const secs: Record<string, number> = {};
  for (const backend of (caps.lapack ? ["blas", "own"] : ["own"]) as Backend[]) {
    const a: Float64Tensor = { dims: [n, n], type: "float64", data: new Float64Array(n * n) };
    let best = Infinity;
    for (let rep = 0; rep < (n > 4000 ? 1 : 2); rep++) {
      a.data.set(base);
      const t0 = performance.now();
      await native.choleskyFactor(a, { backend });
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    secs[backend] = best;
  }
  for (const [backend, s] of Object.entries(secs))
    cholRows.push({ kernel: backend === "blas" ? "LAPACKE dpotrf" : "own blocked", n, seconds: s, "GFLOP/s": n ** 3 / 3 / s / 1e9,
      "vs dpotrf": secs.blas ? secs.blas / s : "n/a" });
}
printTable("Cholesky factor (goal own >= 0.3x of dpotrf; the LAPACK path is dpotrf itself)", cholRows);
results.cholesky = cholRows;

writeResults("native", results);
