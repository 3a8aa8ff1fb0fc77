// The work of each job kind, over a served model: a trace of one fact, a trace of many facts with
// their averages, ROME edits (applied only once all are made, so a cancelled job applies
// nothing), and a CounterFact evaluation. Each honours the job's signal and reports progress.
import { randomBytes } from "node:crypto";
import type { Static } from "typebox";
import { throwIfAborted, type Progress } from "../runtime/call.js";
import { evaluateRecords, rome, traceKinds } from "../host/api.js";
import { defaultHparams } from "../edit/hparams.js";
import { averageEffectsByKind } from "../trace/average.js";
import type { TraceGrid, TraceKind } from "../trace/grid.js";
import type { TraceResult } from "../trace/trace.js";
import type { CounterFactRecord } from "../eval/counterfact.js";
import type { JobWork } from "./jobs.js";
import type { ServedModel } from "./models.js";
import type { EditsBody, EvaluateBody, TraceBody, TraceDatasetBody } from "./schemas.js";
import type { StateStore } from "./state.js";

/** A fresh edit id. */
export function newEditId(): string {
  return `e-${randomBytes(6).toString("hex")}`;
}

/** The trace of one fact, per kind; progress "restorations". */
export function traceWork(model: ServedModel, b: TraceBody): JobWork {
  return (signal, onProgress) => model.run(async (m) => {
    const res = await traceKinds(m, {
      prompt: b.prompt, subject: b.subject, samples: b.samples, window: b.window, noise: b.noise, seed: b.seed, strategy: b.strategy,
      ...(b.edits ? { edits: b.edits } : {}), signal, onProgress,
    }, b.kinds ?? ["resid"]);
    return { traces: res };
  });
}

/** Traces of many facts (one noise level for all: 3 × std of every subject's embeddings) and their averaged effects; progress "facts". */
export function traceDatasetWork(model: ServedModel, b: Static<typeof TraceDatasetBody>): JobWork {
  return (signal, onProgress) => model.run(async (m) => {
    const kinds: readonly TraceKind[] = b.kinds ?? ["resid", "mlp", "attn"];
    let noise: number | { s3: string[] } = b.noise ?? { s3: b.facts.map((f) => f.subject) };
    const facts = [];
    const grids: TraceGrid[] = [];
    for (const [i, f] of b.facts.entries()) {
      throwIfAborted(signal);
      const res = await traceKinds(m, { prompt: f.prompt, subject: f.subject, samples: b.samples, window: b.window, noise, seed: b.seed, ...(b.edits ? { edits: b.edits } : {}), signal }, kinds);
      const first = res[kinds[0]!]!;
      noise = first.noiseLevel;
      const correct = f.attribute === undefined || first.answer.token.trim() === f.attribute.trim();
      const traces: Partial<Record<TraceKind, Omit<TraceResult, "flops">>> = {};
      for (const k of kinds) {
        const { flops: _flops, ...rest } = res[k]!;
        traces[k] = { ...rest, correctPrediction: correct };
        grids.push(traces[k]!);
      }
      facts.push({ known_id: f.known_id ?? i, prompt: f.prompt, subject: f.subject, answer: first.answer, correct, traces });
      onProgress({ phase: "facts", done: i + 1, total: b.facts.length });
    }
    return { noiseLevel: noise, facts, averages: averageEffectsByKind(grids) };
  });
}

/**
 * ROME edits of every request, each computed on the edits enabled when the job started; applied
 * (and stored) together after the last one is made, so a cancelled or failed job applies none.
 * Progress: "statistics" while the statistics are computed, then "edits".
 */
export function editsWork(model: ServedModel, b: Static<typeof EditsBody>, store: StateStore | undefined): JobWork {
  return async (signal, onProgress) => {
    const base = model.primary.edits.list().filter((e) => e.enabled).map((e) => e.id);
    const layer = b.layer ?? defaultHparams(model.primary.config).layer;
    const stats = await model.statsFor(layer, { signal, onProgress });
    const made = [];
    for (const [i, request] of b.requests.entries()) {
      throwIfAborted(signal);
      made.push(await model.run((m) => rome(m, request, { stats, layer, form: b.form, seed: b.seed, edits: base, signal })));
      onProgress({ phase: "edits", done: i + 1, total: b.requests.length } satisfies Progress);
    }
    throwIfAborted(signal);
    const created = made.map((e) => {
      const id = model.apply({ id: newEditId(), layer: e.layer, u: e.u, v: e.v, info: { request: e.request, form: e.form, norms: e.norms } });
      return { id, layer: e.layer, request: e.request, form: e.form, norms: e.norms };
    });
    if (store) await Promise.all(created.map((c) => store.saveEdit(model, c.id)));
    return { edits: created };
  };
}

/** CounterFact metrics of every record; progress as evaluateRecords reports it. */
export function evaluateWork(model: ServedModel, b: Static<typeof EvaluateBody>): JobWork {
  return (signal, onProgress) => model.run(async (m) => ({
    records: await evaluateRecords(m, b.records as CounterFactRecord[], { ...(b.edits ? { edits: b.edits } : {}), signal, onProgress }),
  }));
}
