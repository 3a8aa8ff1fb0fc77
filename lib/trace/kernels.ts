// The between-segment work of a sweep: gathering the corrupted KV cache for a batch of
// restorations and patching restored positions. Uses the native addon's kernels when it is built,
// and the same loops in JavaScript otherwise.

/**
 * Past keys (or values) for `rows` batch rows: row r takes sample r mod N's first t positions.
 * cache (N, H, T, Dh) → (rows, H, t, Dh).
 */
export function gatherPast(cache: Float32Array, N: number, rows: number, t: number, T: number, H: number, Dh: number): Float32Array {
  const out = new Float32Array(rows * H * t * Dh);
  if (t === 0) return out;
  // First the N distinct rows, then whole-block copies for the repeats.
  const blockLen = N * H * t * Dh;
  for (let n = 0; n < Math.min(N, rows); n++) {
    for (let h = 0; h < H; h++) {
      const src = (n * H + h) * T * Dh;
      out.set(cache.subarray(src, src + t * Dh), (n * H + h) * t * Dh);
    }
  }
  for (let r = N; r + N <= rows; r += N) out.copyWithin(r * H * t * Dh, 0, blockLen);
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
