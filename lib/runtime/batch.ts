// Lays token sequences of different lengths out as one left-padded batch: ids, the key mask,
// positions counted from each row's first real token, and the additive attention bias. Left
// padding puts every row's last token at the last column, so "last position" is one index, and
// with positions and masks taken from the real tokens a padded row computes exactly what the
// unpadded sequence would.
import { RomeError } from "../errors.js";

/** Bias for disallowed query→key pairs; finite so fully masked (padding) rows stay finite. */
export const MASKED = -1e9;

export interface Batch {
  B: number;
  T: number;
  /** (B, T) token ids; padding is 0 */
  ids: BigInt64Array;
  /** (B, T) absolute positions of the new tokens (past included) */
  positions: BigInt64Array;
  /** (B, P + T) 1 where a key is a real token (past included), 0 for padding */
  keyMask: Uint8Array;
  /** number of past (cached) positions P */
  past: number;
  /** per row, the number of leading pad columns among the new tokens (0 after nextStep) */
  pad: number[];
}

/** Left-pads `seqs` into a batch with no past. */
export function padBatch(seqs: readonly (readonly number[])[]): Batch {
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = new BigInt64Array(B * T);
  const positions = new BigInt64Array(B * T);
  const keyMask = new Uint8Array(B * T);
  const pad: number[] = [];
  seqs.forEach((s, b) => {
    const p = T - s.length;
    pad.push(p);
    for (let t = 0; t < s.length; t++) {
      ids[b * T + p + t] = BigInt(s[t]!);
      positions[b * T + p + t] = BigInt(t);
      keyMask[b * T + p + t] = 1;
    }
  });
  return { B, T, ids, positions, keyMask, past: 0, pad };
}

/** The batch of one new token per row that continues `prev` (whose keys are now cached). */
export function nextStep(prev: Batch, nextIds: readonly number[]): Batch {
  const B = prev.B;
  const S = prev.past + prev.T;
  const keyMask = new Uint8Array(B * (S + 1));
  const ids = new BigInt64Array(B);
  const positions = new BigInt64Array(B);
  for (let b = 0; b < B; b++) {
    keyMask.set(prev.keyMask.subarray(b * S, (b + 1) * S), b * (S + 1));
    keyMask[b * (S + 1) + S] = 1;
    ids[b] = BigInt(nextIds[b]!);
    positions[b] = prev.positions[b * prev.T + prev.T - 1]! + 1n;
  }
  return { B, T: 1, ids, positions, keyMask, past: S, pad: new Array(B).fill(0) };
}

/**
 * Splits a batch with no past at column `at` into its first columns and the rest, the rest taking
 * the first part's keys as its past: running `head`, keeping its cache, then `tail` with that
 * cache computes what the whole batch computes at the tail's columns.
 */
export function splitBatch(batch: Batch, at: number): { head: Batch; tail: Batch } {
  const { B, T } = batch;
  if (batch.past !== 0 || !Number.isInteger(at) || at < 0 || at > T) throw new RomeError("ERR_ARGUMENT", `splitBatch: column ${at} of a batch of ${T} columns with ${batch.past} past`);
  return {
    head: {
      B, T: at, ids: columns(batch.ids, B, T, 0, at), positions: columns(batch.positions, B, T, 0, at),
      keyMask: columns(batch.keyMask, B, T, 0, at), past: 0, pad: batch.pad.map((p) => Math.min(p, at)),
    },
    tail: {
      B, T: T - at, ids: columns(batch.ids, B, T, at, T), positions: columns(batch.positions, B, T, at, T),
      keyMask: batch.keyMask, past: at, pad: batch.pad.map((p) => Math.max(0, p - at)),
    },
  };
}

/** Rows [from, to) of a batch, with its columns, past and padding unchanged. */
export function sliceRows(batch: Batch, from: number, to: number): Batch {
  const { T, past } = batch;
  const S = past + T;
  return {
    B: to - from, T, past, pad: batch.pad.slice(from, to),
    ids: batch.ids.slice(from * T, to * T), positions: batch.positions.slice(from * T, to * T), keyMask: batch.keyMask.slice(from * S, to * S),
  };
}

/** Columns [from, to) of a (B, T) row-major array of ids or mask bits: (B, to − from). */
function columns(x: BigInt64Array, B: number, T: number, from: number, to: number): BigInt64Array;
function columns(x: Uint8Array, B: number, T: number, from: number, to: number): Uint8Array;
function columns(x: BigInt64Array | Uint8Array, B: number, T: number, from: number, to: number): BigInt64Array | Uint8Array {
  const W = to - from;
  if (x instanceof BigInt64Array) {
    const out = new BigInt64Array(B * W);
    for (let b = 0; b < B; b++) out.set(x.subarray(b * T + from, b * T + to), b * W);
    return out;
  }
  const out = new Uint8Array(B * W);
  for (let b = 0; b < B; b++) out.set(x.subarray(b * T + from, b * T + to), b * W);
  return out;
}

/** Columns [from, to) of a (B, T, D) row-major tensor: (B, to − from, D). */
export function sliceColumns(x: Float32Array, B: number, T: number, D: number, from: number, to: number): Float32Array {
  const W = to - from;
  const out = new Float32Array(B * W * D);
  for (let b = 0; b < B; b++) out.set(x.subarray((b * T + from) * D, (b * T + to) * D), b * W * D);
  return out;
}

/** (B, 1, T, S) additive bias: causal over absolute columns and masked padding keys. */
export function attentionBias(batch: Batch): Float32Array {
  const { B, T, past: P, keyMask } = batch;
  const S = P + T;
  const bias = new Float32Array(B * T * S);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const row = bias.subarray((b * T + i) * S, (b * T + i + 1) * S);
      const q = P + i;
      for (let j = 0; j < S; j++) {
        if (j > q || (keyMask[b * S + j] === 0 && j !== q)) row[j] = MASKED;
      }
    }
  }
  return bias;
}
