// The between-segment work of a sweep: gathering the corrupted KV cache for a batch of
// restorations and patching restored positions. The gather of the past keys/values by sample —
// the largest copy of a sweep — goes through the native addon's gatherRows when the addon is
// built, and through the same copies in JavaScript otherwise (tracing does not require the addon).
import { gatherRows, loadNative } from "../native.js";

let nativeReady: boolean | undefined;
function hasNative(): boolean {
  if (nativeReady === undefined) {
    try {
      loadNative();
      nativeReady = true;
    } catch {
      nativeReady = false;
    }
  }
  return nativeReady;
}

/**
 * Past keys (or values) for `rows` batch rows: row r takes sample r mod N's first t positions.
 * cache (N, H, T, Dh) → (rows, H, t, Dh).
 */
export function gatherPast(cache: Float32Array, N: number, rows: number, t: number, T: number, H: number, Dh: number): Float32Array {
  const out = new Float32Array(rows * H * t * Dh);
  if (t === 0) return out;
  // The N distinct rows, positions < t: (N, H, t, Dh).
  const first = hasNative() ? new Float32Array(N * H * t * Dh) : out;
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < H; h++) {
      const src = (n * H + h) * T * Dh;
      first.set(cache.subarray(src, src + t * Dh), (n * H + h) * t * Dh);
    }
  }
  if (hasNative()) {
    const index = new Int32Array(rows);
    for (let r = 0; r < rows; r++) index[r] = r % N;
    gatherRows({ dims: [rows, H, t, Dh], type: "float32", data: out }, { dims: [N, H, t, Dh], type: "float32", data: first }, index);
  } else {
    for (let r = N; r + N <= rows; r += N) out.copyWithin(r * H * t * Dh, 0, N * H * t * Dh);
  }
  return out;
}

/**
 * For N rows starting at `rowStart` of a (rows, Tp, D) batch whose position 0 is token t:
 * out[row, 0] = input[row, 0] + comp[t], where comp is (1, T, D) when `shared` (the clean run)
 * or (N, T, D) per sample (the corrupted run).
 */
export function patchRows(out: Float32Array, input: Float32Array, comp: Float32Array, rowStart: number, N: number,
  Tp: number, D: number, T: number, t: number, shared: boolean): void {
  for (let n = 0; n < N; n++) {
    const at = (rowStart + n) * Tp * D;
    const c = ((shared ? 0 : n) * T + t) * D;
    for (let i = 0; i < D; i++) out[at + i] = input[at + i]! + comp[c + i]!;
  }
}
