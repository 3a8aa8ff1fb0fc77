// Next-token choice for generation: greedy, or top-k sampling from a seeded generator so that a
// generation is reproducible from its seed.

/** A small seeded generator (mulberry32) for sampling; not the tracing noise stream. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Softmax of logits (V) in float64. */
export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i]! - max);
  for (let i = 0; i < p.length; i++) p[i]! /= sum;
  return p;
}

/** Log-softmax value of one entry of logits (V). */
export function logSoftmaxAt(logits: Float32Array, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  return logits[index]! - max - Math.log(sum);
}

/** Softmax probability of one entry of logits (V). */
export function probOf(logits: Float32Array, index: number): number {
  return Math.exp(logSoftmaxAt(logits, index));
}

/** Indices of the k largest entries, largest first. */
export function topK(values: ArrayLike<number>, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (idx.length < k) {
      idx.push(i);
      idx.sort((a, b) => values[b]! - values[a]! || a - b);
    } else if (values[i]! > values[idx[k - 1]!]!) {
      idx[k - 1] = i;
      idx.sort((a, b) => values[b]! - values[a]! || a - b);
    }
  }
  return idx;
}

/** Picks the next token: argmax when k = 1, else samples among the top k by probability. */
export function pickToken(logits: Float32Array, k: number, random: () => number): number {
  if (k <= 1) return topK(logits, 1)[0]!;
  const cand = topK(logits, k);
  const max = logits[cand[0]!]!;
  const w = cand.map((i) => Math.exp(logits[i]! - max));
  const total = w.reduce((a, b) => a + b, 0);
  let r = random() * total;
  for (let i = 0; i < cand.length; i++) {
    r -= w[i]!;
    if (r < 0) return cand[i]!;
  }
  return cand[cand.length - 1]!;
}
