// The arithmetic of CounterFact evaluation (rome-reference.md §5), free of any model: comparing the
// mean per-token NLL of the new and the true object, aggregating over records with 95% intervals,
// the harmonic-mean score S, and the n-gram entropy behind generation fluency (GE).
import { seededRandom } from "../runtime/sampling.js";

/** One prompt scored with both objects: mean per-token negative log-likelihood (nats) of each target. */
export interface PromptScore {
  prompt: string;
  /** −mean log p(" " + target_new tokens | prompt) */
  nllNew: number;
  /** −mean log p(" " + target_true tokens | prompt) */
  nllTrue: number;
}

/**
 * Fraction of prompts where the wanted object is strictly more likely (lower mean NLL) than the
 * other: want "new" is ES/PS (NLL_true > NLL_new), want "true" is NS (NLL_true < NLL_new).
 * Ties count as failures, as in the reference. NaN for no prompts.
 */
export function successRate(scores: readonly PromptScore[], want: "new" | "true"): number {
  if (scores.length === 0) return NaN;
  let hits = 0;
  for (const s of scores) if (want === "new" ? s.nllTrue > s.nllNew : s.nllTrue < s.nllNew) hits++;
  return hits / scores.length;
}

/**
 * Mean probability margin of the wanted object: EM/PM = mean(e^−NLL_new − e^−NLL_true),
 * NM = mean(e^−NLL_true − e^−NLL_new). Here e^−NLL is the geometric-mean per-token probability.
 */
export function magnitude(scores: readonly PromptScore[], want: "new" | "true"): number {
  if (scores.length === 0) return NaN;
  let sum = 0;
  for (const s of scores) {
    const d = Math.exp(-s.nllNew) - Math.exp(-s.nllTrue);
    sum += want === "new" ? d : -d;
  }
  return sum / scores.length;
}

/** Harmonic mean; 0 when any value is 0 (scipy.stats.hmean's limit), NaN when any is NaN or negative. */
export function harmonicMean(xs: readonly number[]): number {
  if (xs.length === 0 || xs.some((x) => !(x >= 0))) return NaN;
  if (xs.some((x) => x === 0)) return 0;
  return xs.length / xs.reduce((a, x) => a + 1 / x, 0);
}

/** A mean with its spread: std is the population std (numpy's default, as the reference reports); lo/hi = mean ∓ 1.96·std/√n. */
export interface Interval {
  mean: number;
  std: number;
  lo: number;
  hi: number;
  n: number;
}

/** Mean and normal-approximation 95% interval of the finite values in `xs` (NaN entries, e.g. records without neighbourhood prompts, are skipped). */
export function meanInterval(xs: readonly number[]): Interval {
  const v = xs.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: NaN, std: NaN, lo: NaN, hi: NaN, n: 0 };
  const mean = v.reduce((a, x) => a + x, 0) / n;
  const std = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / n);
  const half = (1.96 * std) / Math.sqrt(n);
  return { mean, std, lo: mean - half, hi: mean + half, n };
}

/**
 * Percentile-bootstrap 95% interval of a statistic of n records: `stat` receives the resampled
 * record indices. Seeded, so a report is reproducible.
 */
export function bootstrapInterval(n: number, stat: (indices: readonly number[]) => number, options: { samples?: number; seed?: number } = {}): { lo: number; hi: number } {
  const samples = options.samples ?? 1000;
  if (n === 0) return { lo: NaN, hi: NaN };
  const random = seededRandom(options.seed ?? 1);
  const values: number[] = [];
  const idx = new Array<number>(n);
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(random() * n);
    const x = stat(idx);
    if (Number.isFinite(x)) values.push(x);
  }
  if (values.length === 0) return { lo: NaN, hi: NaN };
  values.sort((a, b) => a - b);
  const at = (q: number) => values[Math.min(values.length - 1, Math.max(0, Math.floor(q * values.length)))]!;
  return { lo: at(0.025), hi: at(0.975) };
}

/**
 * Word tokens for the fluency metric. The reference uses nltk.word_tokenize; this is a simple
 * regular-expression stand-in: runs of letters/digits (with an inner apostrophe or hyphen kept,
 * "don't", "well-known") and every other non-space character on its own (punctuation).
 */
export function wordTokenize(text: string): string[] {
  return text.match(/[\p{L}\p{N}_]+(?:['’-][\p{L}\p{N}_]+)*|[^\s\p{L}\p{N}_]/gu) ?? [];
}

/** Shannon entropy (bits) of the frequency distribution of the n-grams of `tokens`; 0 when there are none. */
export function ngramEntropy(tokens: readonly string[], n: number): number {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join("\u0000");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let total = 0;
  for (const c of counts.values()) total += c;
  let h = 0;
  for (const c of counts.values()) {
    const p = c / total;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * The reference's compute_n_gram_entropy for one text: the arithmetic mean of the weighted entropies
 * [2/3 · H₂, 4/3 · H₃] (bits), i.e. H₂/3 + 2·H₃/3. GE is its mean over a record's generations
 * (the paper prints it ×100: 621.9 there is 6.219 bits here).
 */
export function textEntropy(text: string): number {
  const tokens = wordTokenize(text);
  return ((2 / 3) * ngramEntropy(tokens, 2) + (4 / 3) * ngramEntropy(tokens, 3)) / 2;
}
