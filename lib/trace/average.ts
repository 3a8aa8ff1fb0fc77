// Average indirect effects over many traced facts, bucketed like the reference's notebook
// (notebooks/average_causal_effects.ipynb): six token positions relative to the subject, mean
// over facts of p(answer) minus the mean corrupted score, with 95% intervals.

import { RomeError } from "../errors.js";
import { TRACE_KINDS, type TraceGrid, type TraceKind } from "./grid.js";

/** Row labels of the averaged plots, in the reference's order. */
export const BUCKETS = [
  "First subject token",
  "Middle subject tokens",
  "Last subject token",
  "First subsequent token",
  "Further tokens",
  "Last token",
] as const;

export interface AverageOptions {
  /** Average only traces of this kind. Default: the kind of the traces, which must all agree. */
  kind?: TraceKind;
  /** Include traces whose `correctPrediction` is false. Default false (the reference skips them). */
  includeIncorrect?: boolean;
  /**
   * How buckets holding several tokens (middle subject tokens, further tokens) are averaged.
   * "rows" (default, the reference): every token row is one sample, so a fact with four further
   * tokens weighs four times. "fact": each fact contributes the mean of its rows, one sample.
   */
  pool?: "rows" | "fact";
}

export interface AveragedEffects {
  kind: TraceKind;
  /** Layers restored together in the averaged traces (the plots' x label). */
  window: number;
  /** The six bucket labels (`BUCKETS`). */
  buckets: string[];
  /** (6, layers): mean of the bucket's samples minus `lowMean`; raw, may be below 0; NaN where a bucket has no sample. */
  mean: number[][];
  /** (6, layers): `mean` clipped below at 0, what the reference plots. */
  meanClipped: number[][];
  /** (6, layers): population std (ddof 0) of the bucket's samples of p(answer). */
  std: number[][];
  /** (6, layers): half-width of the 95% interval, 1.96 · std / sqrt(n), n = facts (as the reference). */
  ci95: number[][];
  /** (6,): samples in each bucket (rows or facts, see `pool`). */
  count: number[];
  /** Facts averaged. */
  n: number;
  /** Facts left out because the model's prediction was not the expected answer. */
  skipped: number;
  /** Mean clean p(answer) over the facts. */
  highMean: number;
  /** Mean corrupted p(answer) over the facts. */
  lowMean: number;
  /** Average total effect: highMean − lowMean. */
  totalEffect: number;
}

/** Averages traces of one kind. Throws ERR_ARGUMENT on an empty set, mixed kinds or mixed layer counts. */
export function averageEffects(traces: readonly TraceGrid[], options: AverageOptions = {}): AveragedEffects {
  const pool = options.pool ?? "rows";
  if (pool !== "rows" && pool !== "fact") {
    throw new RomeError("ERR_ARGUMENT", `Expected "rows" or "fact" for pool but received ${String(pool)}`);
  }
  if (options.kind !== undefined && !TRACE_KINDS.includes(options.kind)) {
    throw new RomeError("ERR_UNKNOWN_KIND", `Expected one of ${TRACE_KINDS.join(", ")} for kind but received ${String(options.kind)}`);
  }
  const ofKind = options.kind ? traces.filter((t) => t.kind === options.kind) : traces.slice();
  if (ofKind.length === 0) {
    throw new RomeError("ERR_ARGUMENT", `No traces${options.kind ? ` of kind ${options.kind}` : ""} to average`);
  }
  const kind = ofKind[0]!.kind;
  if (ofKind.some((t) => t.kind !== kind)) {
    throw new RomeError("ERR_ARGUMENT", "Traces of several kinds: pass options.kind or use averageEffectsByKind");
  }
  const used = ofKind.filter((t) => options.includeIncorrect || t.correctPrediction !== false);
  const skipped = ofKind.length - used.length;
  if (used.length === 0) throw new RomeError("ERR_ARGUMENT", `All ${skipped} traces have an incorrect prediction`);
  const layers = used[0]!.scores[0]?.length ?? 0;

  // samples[b] collects rows (layers,) of p(answer) for bucket b
  const samples: number[][][] = BUCKETS.map(() => []);
  let high = 0;
  let low = 0;
  used.forEach((t, index) => {
    checkTrace(t, index, layers);
    high += t.highScore;
    low += t.lowScore;
    const rows = t.scores;
    const [firstSubject, firstAfter] = t.subjectRange;
    const lastSubject = firstAfter - 1;
    const last = rows.length - 1;
    const add = (bucket: number, from: number, to: number) => { // rows [from, to)
      if (to <= from) return;
      if (pool === "rows" || to - from === 1) {
        for (let r = from; r < to; r++) samples[bucket]!.push(rows[r]!);
      } else {
        samples[bucket]!.push(meanRows(rows.slice(from, to), layers));
      }
    };
    add(0, firstSubject, firstSubject + 1);
    add(1, firstSubject + 1, lastSubject);
    add(2, lastSubject, lastSubject + 1);
    add(3, firstAfter, Math.min(firstAfter + 1, last + 1)); // absent when the subject ends the prompt
    add(4, firstAfter + 1, last);
    add(5, last, last + 1);
  });

  const n = used.length;
  const highMean = high / n;
  const lowMean = low / n;
  const mean: number[][] = [];
  const std: number[][] = [];
  for (const rows of samples) {
    const m = meanRows(rows, layers);
    const s = new Array<number>(layers).fill(Number.NaN);
    if (rows.length > 0) {
      for (let l = 0; l < layers; l++) {
        let sq = 0;
        for (const row of rows) sq += (row[l]! - m[l]!) ** 2;
        s[l] = Math.sqrt(sq / rows.length);
      }
    }
    mean.push(m.map((v) => v - lowMean));
    std.push(s);
  }
  return {
    kind,
    window: used[0]!.window,
    buckets: [...BUCKETS],
    mean,
    meanClipped: mean.map((row) => row.map((v) => (Number.isNaN(v) ? v : Math.max(0, v)))),
    std,
    ci95: std.map((row) => row.map((v) => (1.96 * v) / Math.sqrt(n))),
    count: samples.map((rows) => rows.length),
    n,
    skipped,
    highMean,
    lowMean,
    totalEffect: highMean - lowMean,
  };
}

/** `averageEffects` for each kind present in `traces`. */
export function averageEffectsByKind(
  traces: readonly TraceGrid[],
  options: Omit<AverageOptions, "kind"> = {},
): Partial<Record<TraceKind, AveragedEffects>> {
  const out: Partial<Record<TraceKind, AveragedEffects>> = {};
  for (const kind of TRACE_KINDS) {
    if (traces.some((t) => t.kind === kind)) out[kind] = averageEffects(traces, { ...options, kind });
  }
  return out;
}

/** Column means of `rows` (each (layers,)); NaN for every layer when there are no rows. */
function meanRows(rows: readonly number[][], layers: number): number[] {
  const m = new Array<number>(layers).fill(rows.length ? 0 : Number.NaN);
  for (const row of rows) for (let l = 0; l < layers; l++) m[l]! += row[l]!;
  return rows.length ? m.map((v) => v / rows.length) : m;
}

function checkTrace(t: TraceGrid, index: number, layers: number): void {
  const [b, e] = t.subjectRange;
  const bad = (what: string) => new RomeError("ERR_ARGUMENT", `Trace ${index}: ${what}`);
  if (t.scores.length === 0) throw bad("no score rows");
  if (t.scores.some((row) => row.length !== layers)) throw bad(`expected ${layers} layers in every row`);
  if (!(Number.isInteger(b) && Number.isInteger(e) && b >= 0 && b < e && e <= t.scores.length)) {
    throw bad(`subjectRange [${b}, ${e}) is not a non-empty range within ${t.scores.length} tokens`);
  }
  if (!Number.isFinite(t.lowScore) || !Number.isFinite(t.highScore)) throw bad("lowScore and highScore must be finite");
}
