// rome-node's public API: load a GPT-style checkpoint, trace where a fact lives, edit it.
export { RomeError, type RomeErrorCode } from "./errors.js";
export { Model, type LoadOptions, type Prediction, type LogprobResult, type GenerateOptions } from "./runtime/model.js";
export type { ModelConfig } from "./model/config.js";
export type { Site } from "./runtime/engine.js";
export { trace, traceKinds, traceSevered, type TraceOptions, type TraceResult } from "./trace/trace.js";
export { traceDataset, type TraceDatasetOptions, type TraceDatasetResult, type FactTrace } from "./trace/dataset.js";
export { averageEffects, type AveragedEffects } from "./trace/average.js";
export { heatmapSvg, averagedSvg, svgToPng } from "./trace/heatmap.js";
export { readKnownFacts, type KnownFact } from "./trace/known.js";
export type { TraceKind } from "./trace/grid.js";
export { computeStats, loadStats, type Stats, type StatsOptions } from "./edit/stats.js";
export { rome, type RomeRequest, type RomeOptions, type RomeEdit } from "./edit/rome.js";
export { contextTemplates } from "./edit/templates.js";
export type { Edit, EditSummary, EditSet } from "./runtime/edits.js";
export { nativeCapabilities, setNativeThreads } from "./native.js";
export { exportEdits, loadEdits, exportCheckpoint } from "./edit/export.js";
export { patchActivations, type ActivationPatch, type PatchOptions, type PatchResult } from "./trace/patching.js";
export { readCounterFact, evaluateRecords, summarize, type CounterFactRecord } from "./eval/counterfact.js";
