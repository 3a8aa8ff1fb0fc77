// How well sequential editing holds earlier edits, pooled over several sequences of one editor, and
// a paired comparison of two editors run on the same sequences. "Held" counts only edits that
// succeeded when they were made, so an editor is not credited or blamed for edits it never made:
// retention is P(still ES = 1 after more edits | ES = 1 right after its own edit).
import { RomeError } from "../errors.js";
import type { SequentialResult } from "./experiments.js";
import { bootstrapInterval, meanInterval, type Interval } from "./metrics.js";

/** One checkpoint of the pooled curve. */
export interface RetentionPoint {
  /** Edits requested so far in each sequence. */
  edits: number;
  /** ES of the first `first` edits of every sequence (before any edit: their baseline). */
  firstEs: Interval;
  /** Of the first edits already made that succeeded when made, the share still succeeding. */
  firstHeld: Interval;
  /** The same over every edit made so far. */
  allHeld: Interval;
}

/** Retention by age: edits that succeeded when made, `age` = edits applied after them. */
export interface AgeBucket {
  /** Ages minAge..maxAge (inclusive). */
  minAge: number;
  maxAge: number;
  held: Interval;
}

/** A difference (editor a − editor b) with its paired-bootstrap 95% interval. */
export interface Difference {
  a: number;
  b: number;
  diff: number;
  lo: number;
  hi: number;
}

/** The paired comparison of two editors over the first edits of the same sequences. */
export interface RetentionComparison {
  /** Units compared: (sequence, one of its first edits). */
  n: number;
  /** Mean ES of the first edits over the checkpoints once all of them are made. */
  efficacy: Difference;
  /** Pooled held share of the first edits over the same checkpoints (successes when made only). */
  held: Difference;
}

function checkRuns(runs: readonly SequentialResult[]): void {
  if (runs.length === 0) throw new RomeError("ERR_ARGUMENT", "retention needs at least one sequential run");
  const edits = runs[0]!.curve.map((p) => p.edits).join();
  for (const r of runs) {
    if (r.curve.map((p) => p.edits).join() !== edits) throw new RomeError("ERR_ARGUMENT", "retention: the runs' curves have different checkpoints; run every sequence with the same length and `every`");
    if (r.esWhenMade.length !== r.curve.at(-1)!.edits) throw new RomeError("ERR_ARGUMENT", `retention: a run has ${r.esWhenMade.length} esWhenMade entries for ${r.curve.at(-1)!.edits} edits`);
  }
}

/** The pooled curve: efficacy and held share of the first `first` edits, and held share of all edits, at each checkpoint. */
export function retentionCurve(runs: readonly SequentialResult[], first: number): RetentionPoint[] {
  checkRuns(runs);
  return runs[0]!.curve.map((_, j) => {
    const firstEs: number[] = [];
    const firstHeld: number[] = [];
    const allHeld: number[] = [];
    for (const r of runs) {
      const p = r.curve[j]!;
      for (let i = 0; i < first && i < p.es.length; i++) firstEs.push(p.es[i]!);
      for (let i = 0; i < p.edits; i++) {
        if (r.esWhenMade[i] !== 1) continue;
        allHeld.push(p.es[i]!);
        if (i < first) firstHeld.push(p.es[i]!);
      }
    }
    return { edits: runs[0]!.curve[j]!.edits, firstEs: meanInterval(firstEs), firstHeld: meanInterval(firstHeld), allHeld: meanInterval(allHeld) };
  });
}

/** Held share by age (edits applied after the edit), in buckets of `width` ages, over every checkpoint of every run. */
export function retentionByAge(runs: readonly SequentialResult[], width = 10): AgeBucket[] {
  checkRuns(runs);
  const buckets: number[][] = [];
  for (const r of runs) {
    for (const p of r.curve) {
      for (let i = 0; i < p.edits; i++) {
        if (r.esWhenMade[i] !== 1) continue;
        const b = Math.floor((p.edits - 1 - i) / width);
        (buckets[b] ??= []).push(p.es[i]!);
      }
    }
  }
  return Array.from(buckets, (xs, b) => ({ minAge: b * width, maxAge: b * width + width - 1, held: meanInterval(xs ?? []) }));
}

/**
 * Compares editors a and b run on the same sequences (same records, same order): for each
 * (sequence, first edit) unit, its ES and held indicator at every checkpoint once the first `first`
 * edits are all made. Intervals resample units, the same resample for both editors.
 */
export function compareRetention(a: readonly SequentialResult[], b: readonly SequentialResult[], first: number, options: { samples?: number; seed?: number } = {}): RetentionComparison {
  checkRuns([...a, ...b]);
  if (a.length !== b.length) throw new RomeError("ERR_ARGUMENT", `compareRetention: ${a.length} runs against ${b.length}; pair each sequence with its twin`);
  // Per unit and editor: [ES sum, held sum, successes-when-made count (the held denominator), checkpoints].
  const units: { a: number[]; b: number[] }[] = [];
  const tally = (r: SequentialResult, i: number) => {
    const t = [0, 0, 0, 0];
    for (const p of r.curve) {
      if (p.edits < first) continue;
      t[0]! += p.es[i]!;
      t[3]!++;
      if (r.esWhenMade[i] === 1) { t[1]! += p.es[i]!; t[2]!++; }
    }
    return t;
  };
  for (let s = 0; s < a.length; s++) for (let i = 0; i < first; i++) units.push({ a: tally(a[s]!, i), b: tally(b[s]!, i) });
  const stat = (idx: readonly number[], which: "a" | "b", k: 0 | 1): number => {
    let num = 0, den = 0;
    for (const u of idx) {
      const t = units[u]![which];
      num += t[k]!;
      den += k === 0 ? t[3]! : t[2]!;
    }
    return num / den;
  };
  const all = units.map((_, i) => i);
  const diff = (k: 0 | 1): Difference => {
    const [va, vb] = [stat(all, "a", k), stat(all, "b", k)];
    const iv = bootstrapInterval(units.length, (idx) => stat(idx, "a", k) - stat(idx, "b", k), options);
    return { a: va, b: vb, diff: va - vb, lo: iv.lo, hi: iv.hi };
  };
  return { n: units.length, efficacy: diff(0), held: diff(1) };
}
