// rome-node's public API: load a GPT-style checkpoint, trace where a fact lives, edit it.
export { RomeError, type RomeErrorCode } from "./errors.js";
export { Model, type LoadOptions, type ModelCallOptions, type Prediction, type LogprobResult, type GenerateOptions } from "./runtime/model.js";
export type { ModelConfig } from "./model/config.js";
export { Tokenizer, type Encoded, type EncodeOptions, type DecodeOptions, type TokenizerOptions } from "./model/tokenizer.js";
export type { TokenizerKind } from "./model/tokenizer-json.js";
export type { Site } from "./runtime/engine.js";
export type { TraceOptions, TraceResult, TraceStrategy, SeveredOptions, SeveredResult, SeveredSemantics } from "./trace/trace.js";
export type { AttributionGrid } from "./trace/attribution.js";
export { spearman, recallAt, topIndices } from "./trace/agreement.js";
export type { TraceDatasetOptions, TraceDatasetFactsOptions, TraceDatasetResult, FactTrace } from "./trace/dataset.js";
export { averageEffects, type AveragedEffects } from "./trace/average.js";
export { heatmapSvg, averagedSvg, svgToPng } from "./trace/heatmap.js";
export { readKnownFacts, type KnownFact } from "./trace/known.js";
export type { TraceKind } from "./trace/grid.js";
export type { Stats, StatsOptions, MultiStatsOptions } from "./edit/stats.js";
export type { RomeRequest, RomeOptions, RomeEdit } from "./edit/rome.js";
export { contextTemplates } from "./edit/templates.js";
export { memit, type MemitOptions, type MemitEdit } from "./edit/memit.js";
export { alphaEdit, alphaEditState, type AlphaEditOptions, type AlphaEditState } from "./edit/alphaedit.js";
export type { MemitRequest } from "./edit/memit-requests.js";
export { readEditDataset, type EditRecord, type EditDataset } from "./eval/datasets.js";
export { runEdits, type EditRunOptions, type RunLine } from "./eval/edit-run.js";
export { summarizeRun } from "./eval/run-summary.js";
export type { Edit, RankOneEdit, LowRankEdit, NewEdit, EditSelection, EditSummary, EditSet } from "./runtime/edits.js";
export { EditView, type EditFactors, type LayerFactors } from "./runtime/edit-view.js";
export { nativeCapabilities, niceNativeThread, setNativeThreads } from "./native.js";
export type { ActivationPatch, PatchOptions, PatchResult } from "./trace/patching.js";
export { readCounterFact, summarize, type CounterFactRecord } from "./eval/counterfact.js";
export { editEachAlone, sequentialEdits, type RunOptions, type EditOutcome, type SequentialResult } from "./eval/experiments.js";
export { retentionCurve, retentionByAge, compareRetention, type RetentionComparison } from "./eval/retention.js";
// The functions that take a model, each also accepting a HostedModel (Model.load(dir, { worker: true })).
export { trace, traceKinds, traceSevered, traceDataset, traceDatasetFacts, patchActivations, computeStats, computeStatsLayers, loadStats, rome, evaluateRecords,
  exportEdits, loadEdits, exportCheckpoint, type Hostable, type HostableStream } from "./host/api.js";
export { HostedModel, HostedTokenizer } from "./host/hosted-model.js";
export { AbortError, type CallOptions, type Progress, type ProgressFn } from "./runtime/call.js";
// Past one machine: the job queue on BullMQ and Redis (`rome-node worker`, `--redis`).
export { startQueueWorker, type QueueWorker, type QueueWorkerOptions } from "./queue/worker.js";
export { traceDatasetOnQueue, type QueuedTraceOptions } from "./queue/trace-client.js";
export { runEditsOnQueue, type QueuedEditRunOptions } from "./queue/eval-client.js";
export { queueConnection, type QueueConnectionOptions } from "./queue/connection.js";
