// numpy's legacy `RandomState(seed)`: MT19937 plus the legacy polar Gaussian, value for value.
// The reference re-creates `RandomState(1)` for every corrupted pass and adds `randn(N, e-b, d) * level`
// to the subject embeddings; reproducing its stream lets our traces be compared cell by cell.

import { RomeError } from "../errors.js";
import { exactLog } from "./exact-log.js";

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/**
 * The generator behind `numpy.random.RandomState(seed)` for an integer seed in [0, 2^32 - 1].
 * Seeding is numpy's `mt19937_seed` (Knuth's `init_genrand`, not `init_by_array`); doubles use
 * 53 bits from two 32-bit words; Gaussians are numpy's `legacy_gauss` (Marsaglia polar method,
 * the second value of each pair cached). The state is shared by every method, so an interleaved
 * sequence (`randn`, `uniform`, `randn` …) matches numpy's interleaved calls too.
 */
export class NumpyRandomState {
  private readonly mt = new Uint32Array(N); // (624,) MT19937 state words
  private pos = N;
  private hasGauss = false;
  private gauss = 0;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RomeError("ERR_ARGUMENT", `Expected integer between 0 and 4294967295 for seed but received ${String(seed)}`);
    }
    this.seed(seed);
  }

  /** Re-seeds in place; equivalent to `RandomState(seed)` (clears the cached Gaussian). */
  seed(seed: number): void {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      // 1812433253 * prev + i (mod 2^32), without losing bits to float64 rounding
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.pos = N;
    this.hasGauss = false;
    this.gauss = 0;
  }

  private twist(): void {
    const mt = this.mt;
    let i = 0;
    for (; i < N - M; i++) {
      const y = (mt[i]! & UPPER_MASK) | (mt[i + 1]! & LOWER_MASK);
      mt[i] = mt[i + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    for (; i < N - 1; i++) {
      const y = (mt[i]! & UPPER_MASK) | (mt[i + 1]! & LOWER_MASK);
      mt[i] = mt[i + (M - N)]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    const y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK);
    mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    this.pos = 0;
  }

  /** Next tempered 32-bit word (numpy `mt19937_next32`), as an unsigned integer. */
  nextUint32(): number {
    if (this.pos === N) this.twist();
    let y = this.mt[this.pos++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) with 53 random bits: `random_sample()`. */
  randomSample(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }

  /** One standard normal value: numpy's `legacy_gauss`. */
  gaussian(): number {
    if (this.hasGauss) {
      this.hasGauss = false;
      const g = this.gauss;
      this.gauss = 0;
      return g;
    }
    let x1: number, x2: number, r2: number;
    do {
      x1 = 2.0 * this.randomSample() - 1.0;
      x2 = 2.0 * this.randomSample() - 1.0;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 === 0.0);
    const f = Math.sqrt((-2.0 * exactLog(r2)) / r2);
    this.gauss = f * x1;
    this.hasGauss = true;
    return f * x2;
  }

  /** `randn(n)`: n standard normal values. A shape (a, b, c) in C order is `randn(a*b*c)`. */
  randn(n: number): Float64Array {
    const out = new Float64Array(checkCount(n)); // (n,)
    for (let i = 0; i < out.length; i++) out[i] = this.gaussian();
    return out;
  }

  /** `uniform(low, high, n)`: `low + (high - low) * random_sample()`, n times. */
  uniform(low: number, high: number, n: number): Float64Array {
    const out = new Float64Array(checkCount(n)); // (n,)
    const range = high - low;
    for (let i = 0; i < out.length; i++) out[i] = low + range * this.randomSample();
    return out;
  }

  /**
   * Writes `level * randn` into `out` (rounded to float32), for replacement noise or a noise buffer
   * handed to the addon. Adding such a buffer to float32 embeddings rounds twice; use `addGauss`
   * to reproduce the reference's single rounding exactly.
   */
  fillGauss(out: Float32Array, level: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = level * this.gaussian();
    return out;
  }

  /** Writes `level * uniform(-1, 1)` into `out` (rounded to float32), like `rs.uniform(-1, 1) * x`. */
  fillUniform(out: Float32Array, level: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = (-1 + 2 * this.randomSample()) * level;
    return out;
  }

  /**
   * `target[offset + i] += level * randn` for i < count, computed in float64 and rounded once to
   * float32: exactly what the reference's `x[1:, b:e] += noise * torch.from_numpy(prng.randn(...))`
   * does (float64 noise added into a float32 tensor).
   */
  addGauss(target: Float32Array, level: number, offset = 0, count = target.length - offset): Float32Array {
    checkRange(target, offset, count);
    for (let i = offset; i < offset + count; i++) target[i] = target[i]! + level * this.gaussian();
    return target;
  }

  /** `target[offset + i] += level * uniform(-1, 1)`, float64 arithmetic, one rounding to float32. */
  addUniform(target: Float32Array, level: number, offset = 0, count = target.length - offset): Float32Array {
    checkRange(target, offset, count);
    for (let i = offset; i < offset + count; i++) target[i] = target[i]! + (-1 + 2 * this.randomSample()) * level;
    return target;
  }
}

function checkCount(n: number): number {
  if (!Number.isInteger(n) || n < 0) {
    throw new RomeError("ERR_ARGUMENT", `Expected a non-negative integer for n but received ${String(n)}`);
  }
  return n;
}

function checkRange(target: Float32Array, offset: number, count: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(count) || offset < 0 || count < 0 || offset + count > target.length) {
    throw new RomeError(
      "ERR_ARGUMENT",
      `Expected offset and count within the target's ${target.length} elements but received offset ${offset}, count ${count}`,
    );
  }
}
