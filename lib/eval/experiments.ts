// The two ways CounterFact evaluates an editor: each edit alone on the unedited model (apply,
// evaluate, undo), and many edits in sequence with no undo between (does the model keep the early
// edits?). Both leave the model with exactly the edits it had before.
import { RomeError } from "../errors.js";
import { rome, type RomeOptions } from "../edit/rome.js";
import { throwIfAborted, type CallOptions } from "../runtime/call.js";
import type { Model } from "../runtime/model.js";
import { evaluateRecords, summarize, toRomeRequest, type CounterFactRecord, type EvaluateOptions, type MetricsSummary, type RecordMetrics } from "./counterfact.js";

/** One record edited on its own. */
export interface EditOutcome {
  case_id: number;
  /** The metrics after the edit; the unedited ones when the guard refused it (the model was not changed). */
  post: RecordMetrics;
  /** Set when rome() refused the edit (ERR_EDIT_REFUSED). */
  refused?: string;
  /** ‖ΔW‖_F / ‖W‖_F of the edit. */
  normRatio?: number;
  /** Value-optimisation loss at its last step. */
  finalLoss?: number;
  seconds?: number;
}

/**
 * `signal` stops the run within one batch of the edit or evaluation in progress, undoing its edits
 * (the model is left with exactly the edits it had); `onProgress` reports phase "edits", one per record.
 */
export interface RunOptions extends CallOptions {
  /** Options for model scoring (generation off by default). */
  evaluate?: Omit<EvaluateOptions, "onProgress" | "signal">;
}

/**
 * Edits each record alone: rome → apply → evaluate → undo. `romeOptions(record)` gives the options
 * of each edit (statistics, layer, form, templates, hyperparameters). `baseline[i]` (the unedited
 * metrics of records[i]) stands in for the post metrics of a refused edit.
 */
export async function editEachAlone(model: Model, records: readonly CounterFactRecord[], romeOptions: (r: CounterFactRecord) => RomeOptions,
  baseline: readonly RecordMetrics[], options: RunOptions = {}): Promise<EditOutcome[]> {
  if (baseline.length !== records.length) throw new RomeError("ERR_ARGUMENT", `baseline has ${baseline.length} entries for ${records.length} records`);
  const { signal, onProgress } = options;
  const out: EditOutcome[] = [];
  const progress = (done: number) => onProgress?.({ phase: "edits", done, total: records.length });
  throwIfAborted(signal);
  progress(0);
  for (const [i, rec] of records.entries()) {
    throwIfAborted(signal);
    let edit;
    try {
      edit = await rome(model, toRomeRequest(rec), { ...romeOptions(rec), signal });
    } catch (e) {
      if (!(e instanceof RomeError && e.code === "ERR_EDIT_REFUSED")) throw e;
      out.push({ case_id: rec.case_id, post: baseline[i]!, refused: e.message });
      progress(i + 1);
      continue;
    }
    const id = model.edits.apply(edit);
    try {
      const [post] = await evaluateRecords(model, [rec], { ...options.evaluate, signal });
      out.push({
        case_id: rec.case_id, post: post!, normRatio: edit.norms.update / edit.norms.weight,
        finalLoss: edit.losses.at(-1)?.loss, seconds: edit.seconds.total,
      });
    } finally {
      model.edits.undo(id);
    }
    progress(i + 1);
  }
  return out;
}

/** One point of a sequential-editing curve. */
export interface CurvePoint {
  /** Edits requested so far (refused ones included). */
  edits: number;
  /** The first `first` records (the earliest edits). */
  first: MetricsSummary;
  /** Every record requested so far. */
  all: MetricsSummary;
  /** ES (0 or 1) of every record requested so far, in request order (before any edit: the first `first`). */
  es: number[];
  /** The caller's probe at this point (e.g. accuracy on facts no edit touches). */
  probe?: number;
}

export interface SequentialResult {
  curve: CurvePoint[];
  /** Indices of records whose edit the guard refused. */
  refused: number[];
  /** ‖ΔW‖_F / ‖W‖_F of each applied edit, in order. */
  normRatios: number[];
  /** ES (0 or 1) of each record right after its own edit (refused: the model as it was). */
  esWhenMade: number[];
}

/**
 * Applies the records' edits one after another without undoing (each edit computed on the model
 * with the earlier ones applied), evaluating after every `every` edits (and before the first).
 * Undoes all of them at the end.
 */
export async function sequentialEdits(model: Model, records: readonly CounterFactRecord[], romeOptions: (r: CounterFactRecord) => RomeOptions,
  options: RunOptions & { every?: number; first?: number; probe?: () => Promise<number> } = {}): Promise<SequentialResult> {
  const { signal, onProgress } = options;
  const every = options.every ?? 10;
  const first = options.first ?? 10;
  const applied: string[] = [];
  const result: SequentialResult = { curve: [], refused: [], normRatios: [], esWhenMade: [] };
  const point = async (n: number) => {
    // Before any edit, "all" is the first records' baseline.
    const metrics = await evaluateRecords(model, records.slice(0, Math.max(n, first)), { ...options.evaluate, signal });
    const all = metrics.slice(0, n || first);
    const p: CurvePoint = { edits: n, first: summarize(metrics.slice(0, first)), all: summarize(all), es: all.map((m) => m.es) };
    if (options.probe) p.probe = await options.probe();
    result.curve.push(p);
  };
  const progress = (done: number) => onProgress?.({ phase: "edits", done, total: records.length });
  try {
    throwIfAborted(signal);
    progress(0);
    await point(0);
    for (const [i, rec] of records.entries()) {
      throwIfAborted(signal);
      try {
        const edit = await rome(model, toRomeRequest(rec), { ...romeOptions(rec), signal });
        applied.push(model.edits.apply(edit));
        result.normRatios.push(edit.norms.update / edit.norms.weight);
      } catch (e) {
        if (!(e instanceof RomeError && e.code === "ERR_EDIT_REFUSED")) throw e;
        result.refused.push(i);
      }
      const [made] = await evaluateRecords(model, [rec], { ...options.evaluate, generation: false, signal });
      result.esWhenMade.push(made!.es);
      if ((i + 1) % every === 0 || i === records.length - 1) await point(i + 1);
      progress(i + 1);
    }
  } finally {
    for (const id of applied.reverse()) model.edits.undo(id);
  }
  return result;
}
