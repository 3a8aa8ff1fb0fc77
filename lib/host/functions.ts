// The free functions that accept a hosted model, in one table: the worker looks them up here by
// name, and the public API exports them wrapped by `hostable` (lib/host/api.ts), which sends the
// call to the worker when the model argument is a HostedModel and calls the function otherwise.
// A `stream` function returns an async iterator; hosted, each of its steps is a message (see worker.ts).
import { exportCheckpoint, exportEdits, loadEdits } from "../edit/export.js";
import { rome } from "../edit/rome.js";
import { computeStats, computeStatsLayers, loadStats } from "../edit/stats.js";
import { evaluateRecords } from "../eval/counterfact.js";
import { runEdits } from "../eval/edit-run.js";
import { traceDataset, traceDatasetFacts, traceFact } from "../trace/dataset.js";
import { subjectEmbeddingStd } from "../trace/noise.js";
import { patchActivations } from "../trace/patching.js";
import { trace, traceKinds, traceSevered } from "../trace/trace.js";
import type { Model } from "../runtime/model.js";

/** Each hosted function, the index of its model argument, and whether it returns an async iterator. */
export const HOSTED_FUNCTIONS = {
  trace: { fn: trace, model: 0 },
  traceKinds: { fn: traceKinds, model: 0 },
  traceSevered: { fn: traceSevered, model: 0 },
  traceDataset: { fn: traceDataset, model: 0 },
  traceDatasetFacts: { fn: traceDatasetFacts, model: 0, stream: true },
  traceFact: { fn: traceFact, model: 0 },
  subjectEmbeddingStd: { fn: subjectEmbeddingStd, model: 0 },
  patchActivations: { fn: patchActivations, model: 0 },
  computeStats: { fn: computeStats, model: 0 },
  computeStatsLayers: { fn: computeStatsLayers, model: 0 },
  /** `loadStats(path, hosted)` reads the file on the worker (the model is only where to read it). */
  loadStats: { fn: (path: string, _model?: Model) => loadStats(path), model: 1 },
  rome: { fn: rome, model: 0 },
  evaluateRecords: { fn: evaluateRecords, model: 0 },
  runEdits: { fn: runEdits, model: 0 },
  exportEdits: { fn: exportEdits, model: 0 },
  loadEdits: { fn: loadEdits, model: 1 },
  exportCheckpoint: { fn: exportCheckpoint, model: 0 },
} as const;

export type HostedFunctionName = keyof typeof HOSTED_FUNCTIONS;

/** The hosted functions that return an async iterator. */
export type HostedStreamName = { [N in HostedFunctionName]: (typeof HOSTED_FUNCTIONS)[N] extends { stream: true } ? N : never }[HostedFunctionName];

export function isHostedStream(name: HostedFunctionName): name is HostedStreamName {
  return "stream" in HOSTED_FUNCTIONS[name];
}

export function isHostedFunction(name: string): name is HostedFunctionName {
  return Object.hasOwn(HOSTED_FUNCTIONS, name);
}
