// The shape that heatmaps, averages and JSON-lines records read from a trace result: a grid of
// scores (tokens × layers) plus what is needed to label it. A full `trace()` result satisfies it.

/** Which states a trace restores: residual stream (block output), MLP output or attention output. */
export type TraceKind = "resid" | "mlp" | "attn";

export const TRACE_KINDS: readonly TraceKind[] = ["resid", "mlp", "attn"];

/** One traced fact, as far as plots and averages need it. */
export interface TraceGrid {
  /** p(answer) at the last position with state (token, layer) restored; tokens × layers. */
  scores: number[][];
  /** Decoded prompt tokens, one per row of `scores`. */
  tokens: string[];
  /** Subject tokens [start, end), end exclusive. */
  subjectRange: [number, number];
  /** p(answer) of the corrupted run with nothing restored. */
  lowScore: number;
  /** p(answer) of the clean run. */
  highScore: number;
  kind: TraceKind;
  /** Layers restored together (1 for resid). */
  window: number;
  answer: { token: string; id?: number };
  /** False when the model's clean answer differs from an expected one; averages skip such traces. */
  correctPrediction?: boolean;
  modelName?: string;
}
