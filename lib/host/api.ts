// The hosted free functions as the public API exports them: each accepts a Model (and then is the
// function itself, same signature) or a HostedModel (and then runs on its worker, returning a
// Promise, or for a stream the same async iterator, stepped on the worker). The dispatch lives here
// once, over the table in lib/host/functions.ts.
import type { Model } from "../runtime/model.js";
import { HOSTED_FUNCTIONS, type HostedFunctionName, type HostedStreamName } from "./functions.js";
import { HostedModel } from "./hosted-model.js";

/** Parameters with every Model slot also accepting a HostedModel. */
type WithHosted<P extends readonly unknown[]> = { [K in keyof P]: Model extends P[K] ? P[K] | HostedModel : P[K] };

type Fn<N extends HostedFunctionName> = (typeof HOSTED_FUNCTIONS)[N]["fn"];

/** The in-thread signature, and with a HostedModel the same arguments resolving asynchronously. */
export type Hostable<F extends (...args: never[]) => unknown> = F & ((...args: WithHosted<Parameters<F>>) => Promise<Awaited<ReturnType<F>>>);

/** The in-thread function, or with a HostedModel the same arguments sent to its worker by `send`. */
function dispatch(name: HostedFunctionName, send: (m: HostedModel, rest: unknown[]) => unknown): (...args: unknown[]) => unknown {
  const { fn, model } = HOSTED_FUNCTIONS[name];
  return (...args: unknown[]): unknown => {
    const m = args[model];
    if (!(m instanceof HostedModel)) return (fn as (...a: unknown[]) => unknown)(...args);
    const rest = [...args];
    rest[model] = null;
    return send(m, rest);
  };
}

function hostable<N extends HostedFunctionName>(name: N): Hostable<Fn<N>> {
  return dispatch(name, (m, rest) => m.callFunction(name, rest)) as Hostable<Fn<N>>;
}

/** A function returning an async iterator: with a HostedModel, the same iterator, each step run on the worker. */
export type HostableStream<F extends (...args: never[]) => unknown> = F & ((...args: WithHosted<Parameters<F>>) => ReturnType<F>);

function hostableStream<N extends HostedStreamName>(name: N): HostableStream<Fn<N>> {
  return dispatch(name, (m, rest) => m.streamFunction(name, rest)) as HostableStream<Fn<N>>;
}

export const trace = hostable("trace");
export const traceKinds = hostable("traceKinds");
export const traceSevered = hostable("traceSevered");
export const traceDataset = hostable("traceDataset");
export const traceDatasetFacts = hostableStream("traceDatasetFacts");
export const traceFact = hostable("traceFact");
export const subjectEmbeddingStd = hostable("subjectEmbeddingStd");
export const patchActivations = hostable("patchActivations");
export const computeStats = hostable("computeStats");
export const computeStatsLayers = hostable("computeStatsLayers");
export const loadStats = hostable("loadStats");
export const rome = hostable("rome");
export const evaluateRecords = hostable("evaluateRecords");
export const runEdits = hostable("runEdits");
export const exportEdits = hostable("exportEdits");
export const loadEdits = hostable("loadEdits");
export const exportCheckpoint = hostable("exportCheckpoint");
