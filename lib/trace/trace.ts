// Causal tracing (Meng et al. 2022 §2): corrupt the subject's token embeddings with noise, restore
// one clean hidden state (or a window of MLP / attention outputs) at a time, and score p(answer) at
// the last position averaged over noise samples. Semantics follow the reference implementation;
// the work is done by the minimal batched executor unless strategy "naive" is asked for.
import { checkInt, checkNumber, checkOptionNames, RomeError } from "../errors.js";
import { padBatch } from "../runtime/batch.js";
import { layerFlops, headFlops } from "../runtime/flops.js";
import type { FlopMeter, RunResult } from "../runtime/engine.js";
import { throwIfAborted } from "../runtime/call.js";
import type { Model, ModelCallOptions } from "../runtime/model.js";
import { TRACE_KINDS, type TraceGrid, type TraceKind } from "./grid.js";
import { runNaive, type NaiveContext } from "./naive.js";
import { attributionGrids, type AttributionGrid } from "./attribution.js";
import { corrupt, subjectEmbeddingStd, type NoiseSpec, type NoiseType } from "./noise.js";
import { planGrid, planSevered, type Restoration, type RunStates } from "./plan.js";
import { subjectChars, tokenRange } from "./subject.js";
import { probOf } from "../runtime/sampling.js";
import { minimalFlops, sweepMinimal, type SweepContext } from "./sweep.js";

export type TraceStrategy = "minimal" | "naive" | "attribution" | "refine";
const STRATEGIES: readonly TraceStrategy[] = ["minimal", "naive", "attribution", "refine"];

/**
 * `edits`, `signal` and `onProgress` as every model call: abort stops within one batch of
 * restorations; progress phase "restorations" counts the grid's cells (all kinds together).
 */
export interface TraceOptions extends ModelCallOptions {
  prompt: string;
  /** The subject as it appears in the prompt; its tokens receive the noise. */
  subject: string;
  /** Which states are restored. Default "resid". */
  kind?: TraceKind;
  /** Noise samples N (corrupted rows). Default 10; 1–1024. */
  samples?: number;
  /**
   * Noise: a number (Gaussian level), { type, level }, or { s3: subjects } for 3 × the std of the
   * subjects' token embeddings (the reference's default). Default: { s3: [subject] }.
   */
  noise?: number | { type?: NoiseType; level: number } | { type?: NoiseType; s3: readonly string[]; factor?: number };
  /** Layers restored together around each centre for mlp/attn. Default 10; resid always 1. */
  window?: number;
  /** Seed of the numpy-compatible noise stream, re-seeded per run as the reference does. Default 1. */
  seed?: number;
  /**
   * "minimal" (default) skips all work that cannot change a score; "naive" reruns everything;
   * "attribution" estimates every cell to first order from one backward pass (attribution
   * patching; scores are estimates); "refine" ranks the cells by that estimate and computes the
   * exact scores of the `topK` best per kind with the minimal sweep (the rest stay estimates).
   */
  strategy?: TraceStrategy;
  /** Cells per kind that strategy "refine" computes exactly. Default 10; 1 – tokens × layers. */
  topK?: number;
  /** Expected answer (text, or token id). The trace scores it; correctPrediction says if the model agrees. */
  answer?: string | number;
  /** Which occurrence of the subject text to corrupt (default 0), or explicit characters. */
  subjectOccurrence?: number;
  subjectChars?: [number, number];
  /** Memory budget for one batch of restorations, in MiB. Default 256. */
  memoryBudgetMB?: number;
}
const TRACE_OPTIONS = ["prompt", "subject", "kind", "samples", "noise", "window", "seed", "strategy", "answer",
  "subjectOccurrence", "subjectChars", "memoryBudgetMB", "edits", "signal", "onProgress", "topK"] as const;

export interface TraceResult extends TraceGrid {
  answer: { id: number; token: string };
  correctPrediction: boolean;
  /** Token ids and texts of the prompt. */
  inputIds: number[];
  noiseLevel: number;
  noiseType: NoiseType;
  samples: number;
  strategy: TraceStrategy;
  /**
   * Strategies "attribution" and "refine": the first-order estimates of every cell (see
   * AttributionGrid), and for "refine" which cells of `scores` are exact ([token][layer]).
   */
  attribution?: AttributionGrid & { exact?: boolean[][] };
  prompt: string;
  subject: string;
  /** FLOPs executed by the call (all kinds traced together) and the minimal count its scores need. */
  flops: { executed: number; minimal: number };
}

/** Traces one fact for one kind. */
export async function trace(model: Model, options: TraceOptions): Promise<TraceResult> {
  const kind = options.kind ?? "resid";
  return (await traceKinds(model, options, [kind]))[kind]!;
}

/** Traces one fact for several kinds, sharing the clean and corrupted runs and the batches. */
export async function traceKinds(model: Model, options: TraceOptions, kinds: readonly TraceKind[]): Promise<Partial<Record<TraceKind, TraceResult>>> {
  const prep = await prepare(model, options, kinds);
  const { L, T, lowScore } = prep;
  const out: Partial<Record<TraceKind, TraceResult>> = {};
  const plans: { kind: TraceKind; plans: Restoration[] }[] = kinds.map((k) => ({ kind: k, plans: planGrid(k, T, L, k === "resid" ? 1 : prep.window) }));
  const flops0 = prep.meter.flops;
  if (prep.strategy === "attribution" || prep.strategy === "refine") return await traceAttributed(model, prep, plans, options);
  let scores: number[][];
  const total = plans.reduce((a, p) => a + p.plans.length, 0);
  const progress = (done: number) => options.onProgress?.({ phase: "restorations", done, total });
  if (prep.strategy === "naive") {
    scores = [];
    let done = 0;
    for (const p of plans) {
      const s: number[] = [];
      for (const r of p.plans) {
        throwIfAborted(options.signal);
        s.push(await runNaive({ ...prep.naive }, r));
        progress(++done);
      }
      scores.push(s);
    }
  } else {
    // Positions before the subject never see the noise: their restorations change nothing.
    const live = plans.flatMap((p, k) => p.plans.map((r, i) => ({ k, i, r }))).filter(({ r }) => r.t >= prep.subjectRange[0]);
    const skipped = total - live.length;
    const flat = await sweepMinimal({ ...prep.sweep, onProgress: (d) => progress(skipped + d) }, live.map((x) => x.r), lowScore);
    scores = plans.map((p) => new Array(p.plans.length).fill(lowScore));
    live.forEach(({ k, i }, j) => (scores[k]![i] = flat[j]!));
  }
  const executed = prep.meter.flops - flops0;
  const minimal = plans.reduce((a, p) => a + p.plans.filter((r) => r.t >= prep.subjectRange[0]).reduce((b, r) => b + minimalFlops(prep.sweep, r), 0), 0);
  plans.forEach((p, k) => {
    const grid = Array.from({ length: T }, (_, t) => scores[k]!.slice(t * L, (t + 1) * L));
    out[p.kind] = {
      ...prep.result,
      kind: p.kind,
      window: p.kind === "resid" ? 1 : prep.window,
      scores: grid,
      flops: { executed: executed + prep.baseFlops.executed, minimal: minimal + prep.baseFlops.minimal },
    };
  });
  return out;
}

/**
 * Strategies "attribution" and "refine": estimates of every cell from one gradient run, and for
 * "refine" the exact scores of the top k cells per kind (by estimate), from the minimal sweep.
 */
async function traceAttributed(model: Model, prep: Prepared, plans: { kind: TraceKind; plans: Restoration[] }[], options: TraceOptions):
  Promise<Partial<Record<TraceKind, TraceResult>>> {
  const { L, T } = prep;
  const flops0 = prep.meter.flops;
  const call = { signal: options.signal, onProgress: options.onProgress };
  const est = await attributionGrids({
    model, edits: prep.sweep.edits, ids: prep.result.inputIds, N: prep.N, answer: prep.result.answer.id, subjectRange: prep.subjectRange,
    lowScore: prep.lowScore, clean: prep.sweep.clean, corrupted: prep.sweep.corrupted, meter: prep.meter,
  }, plans.map((p) => p.kind), prep.window, call);
  const estimated = prep.meter.flops - flops0;
  const out: Partial<Record<TraceKind, TraceResult>> = {};
  const exact = plans.map(() => Array.from({ length: T }, () => new Array<boolean>(L).fill(false)));
  const scores = plans.map((p) => est[p.kind]!.score.map((row) => row.slice()));
  let minimal = 0;
  if (prep.strategy === "refine") {
    // Per kind the k cells with the highest estimate among those the noise can reach (t ≥ subject start).
    const chosen = plans.flatMap((p, k) => p.plans
      .filter((r) => r.t >= prep.subjectRange[0])
      .sort((a, b) => scores[k]![b.t]![b.column]! - scores[k]![a.t]![a.column]!)
      .slice(0, prep.topK)
      .map((r) => ({ k, r })));
    const s = await sweepMinimal(prep.sweep, chosen.map((c) => c.r), prep.lowScore);
    chosen.forEach(({ k, r }, i) => {
      scores[k]![r.t]![r.column] = s[i]!;
      exact[k]![r.t]![r.column] = true;
    });
    minimal = chosen.reduce((a, c) => a + minimalFlops(prep.sweep, c.r), 0) + estimated;
  } else {
    minimal = estimated;
  }
  const executed = prep.meter.flops - flops0;
  plans.forEach((p, k) => {
    out[p.kind] = {
      ...prep.result,
      kind: p.kind,
      window: p.kind === "resid" ? 1 : prep.window,
      scores: scores[k]!,
      attribution: { ...est[p.kind]!, ...(prep.strategy === "refine" ? { exact: exact[k]! } : {}) },
      flops: { executed: executed + prep.baseFlops.executed, minimal: minimal + prep.baseFlops.minimal },
    };
  });
  return out;
}

/**
 * Where the frozen values of the severed-path experiment come from. "consistent": the corrupted
 * run the restoration is put into (one corruption). "reference": kmeng01/rome's
 * `trace_with_repatch`, which runs twice from one `RandomState(seed)`: the frozen outputs come
 * from the first draw and the restored run gets the next numbers, a different corruption.
 */
export type SeveredSemantics = "consistent" | "reference";

export interface SeveredOptions extends TraceOptions {
  /** Default "consistent"; "reference" reproduces the paper's published numbers (see SeveredSemantics). */
  semantics?: SeveredSemantics;
}

export interface SeveredResult {
  layers: number;
  normal: number[];
  mlpSevered: number[];
  attnSevered: number[];
  lowScore: number;
  highScore: number;
  /** The restored position: the subject's last token. */
  token: number;
  semantics: SeveredSemantics;
}

/**
 * The severed-path experiment at the subject's last token: for each layer, p(answer) with the
 * residual state restored, with it restored while MLP outputs at that token are frozen to their
 * corrupted values in all layers, and the same for attention.
 */
export async function traceSevered(model: Model, options: SeveredOptions): Promise<SeveredResult> {
  const { semantics = "consistent", ...traceOptions } = options;
  if (semantics !== "consistent" && semantics !== "reference") {
    throw new RomeError("ERR_ARGUMENT", `semantics must be "consistent" or "reference", received ${JSON.stringify(semantics)}`);
  }
  if (traceOptions.strategy === "attribution" || traceOptions.strategy === "refine") {
    throw new RomeError("ERR_ARGUMENT", `traceSevered computes exact scores; strategy must be "minimal" or "naive", received ${JSON.stringify(traceOptions.strategy)}`);
  }
  const prep = await prepare(model, traceOptions, ["resid"]);
  const t = prep.subjectRange[1] - 1;
  const L = prep.L;
  const normal = planGrid("resid", prep.T, L, 1).filter((r) => r.t === t);
  const reference = semantics === "reference";
  const severed = [...planSevered("mlp", t, L, reference), ...planSevered("attn", t, L, reference)];
  let sweep = prep.sweep;
  let naive: NaiveContext = prep.naive;
  if (reference) {
    // The second pass: the next draw of the stream, its own states and cache; frozen values from the first.
    throwIfAborted(options.signal);
    const second = await corruptedRun(model, prep.naive, 1, prep.meter);
    sweep = { ...prep.sweep, corrupted: runStates(second), cache: second.cache!, frozen: prep.sweep.corrupted };
    naive = { ...prep.naive, draw: 1 };
  }
  const total = normal.length + severed.length;
  let finished = 0; // restorations of the passes before this one
  const run = async (ctx: SweepContext, nctx: NaiveContext, plans: Restoration[]) => {
    const before = finished;
    const progress = (done: number) => options.onProgress?.({ phase: "restorations", done: before + done, total });
    let s: number[] = [];
    if (prep.strategy === "naive") {
      for (const r of plans) {
        throwIfAborted(options.signal);
        s.push(await runNaive(nctx, r));
        progress(s.length);
      }
    } else {
      s = await sweepMinimal({ ...ctx, onProgress: progress }, plans, prep.lowScore);
    }
    finished += plans.length;
    return s;
  };
  const s = reference
    ? [...await run(prep.sweep, prep.naive, normal), ...await run(sweep, naive, severed)]
    : await run(sweep, naive, [...normal, ...severed]);
  return {
    layers: L, normal: s.slice(0, L), mlpSevered: s.slice(L, 2 * L), attnSevered: s.slice(2 * L),
    lowScore: prep.lowScore, highScore: prep.result.highScore, token: t, semantics,
  };
}

/** A corrupted run (N rows, draw `draw` of the seed's stream) recording every state and the keys/values. */
async function corruptedRun(model: Model, ctx: NaiveContext, draw: number, meter: FlopMeter): Promise<RunResult> {
  const { ids, N, subject, noise, seed } = ctx;
  const T = ids.length;
  return await model.engine.run(padBatch(Array.from({ length: N }, () => ids)), {
    edits: ctx.edits,
    record: ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"],
    keepCache: true,
    head: Array.from({ length: N }, (_, n) => [n, T - 1] as const),
    hooks: { tokEmbed: (tok) => corrupt(tok, N, T, model.config.nEmbd, subject, noise, seed, draw) },
    meter,
  });
}

function runStates(r: RunResult): RunStates {
  return {
    residPre: r.records.resid_pre ?? [], residMid: r.records.resid_mid ?? [], residPost: r.records.resid_post!,
    attnOut: r.records.attn_out!, mlpOut: r.records.mlp_out!,
  };
}

type Prepared = Awaited<ReturnType<typeof prepare>>;

async function prepare(model: Model, options: TraceOptions, kinds: readonly TraceKind[]) {
  checkOptionNames("trace", options, TRACE_OPTIONS);
  const edits = model.edits.view(options.edits); // the call's edit set, captured before any await
  const { signal } = options;
  throwIfAborted(signal);
  for (const k of kinds) {
    if (!TRACE_KINDS.includes(k)) throw new RomeError("ERR_UNKNOWN_KIND", `unknown trace kind ${JSON.stringify(k)}; kinds: ${TRACE_KINDS.join(", ")}`);
  }
  if (typeof options.prompt !== "string" || options.prompt.length === 0) throw new RomeError("ERR_EMPTY_PROMPT", "trace needs a non-empty prompt");
  const cfg = model.config;
  const L = cfg.nLayer;
  const D = cfg.nEmbd;
  const N = checkInt("samples", options.samples ?? 10, 1, 1024);
  const window = checkInt("window", options.window ?? 10, 1, 4 * L);
  const seed = checkInt("seed", options.seed ?? 1, 0, 2 ** 32 - 1);
  const budget = checkNumber("memoryBudgetMB", options.memoryBudgetMB ?? 256, 1, 1 << 20);
  const strategy = options.strategy ?? "minimal";
  if (!STRATEGIES.includes(strategy)) throw new RomeError("ERR_ARGUMENT", `strategy must be one of ${STRATEGIES.join(", ")}; received ${JSON.stringify(strategy)}`);
  const topK = checkInt("topK", options.topK ?? 10, 1, 1 << 30);
  const chars = subjectChars(options.prompt, options.subject, { occurrence: options.subjectOccurrence, charRange: options.subjectChars });
  const enc = await model.tokenizer.encode(options.prompt);
  model.checkLength(enc.ids.length, "the prompt");
  const subjectRange = tokenRange(enc, chars);
  const noise = await noiseSpec(model, options);
  const ids = enc.ids;
  const T = ids.length;

  // Clean run (1 row): answer, high score, the states restorations copy.
  const meter = { flops: 0 };
  throwIfAborted(signal);
  const clean = await model.engine.run(padBatch([ids]), { edits, record: ["resid_post", "attn_out", "mlp_out"], head: [[0, T - 1]], meter });
  let best = 0;
  const cl = clean.logits!;
  for (let v = 1; v < cl.length; v++) if (cl[v]! > cl[best]!) best = v;
  let answerId = best;
  if (options.answer !== undefined) {
    if (typeof options.answer === "number") answerId = checkInt("answer", options.answer, 0, cfg.vocabSize - 1);
    else {
      if (typeof options.answer !== "string" || options.answer === "") {
        throw new RomeError("ERR_ARGUMENT", `answer must be a non-empty string or a token id, received ${JSON.stringify(options.answer)}`);
      }
      const text = /^\s/.test(options.answer) ? options.answer : " " + options.answer;
      const a = await model.tokenizer.encode(text, { continuation: true });
      if (a.ids.length === 0) throw new RomeError("ERR_ARGUMENT", "the expected answer is empty");
      answerId = a.ids[0]!;
    }
  }
  const highScore = probOf(cl, answerId);

  // Corrupted run (N rows): low score, cached states and keys/values of every layer.
  throwIfAborted(signal);
  const naive: NaiveContext = { engine: model.engine, edits, ids, N, subject: subjectRange, noise, seed, answer: answerId, meter };
  const corruptedRun0 = await corruptedRun(model, naive, 0, meter);
  const V = cfg.vocabSize;
  let low = 0;
  for (let n = 0; n < N; n++) low += probOf(corruptedRun0.logits!.subarray(n * V, (n + 1) * V), answerId);
  const lowScore = low / N;
  const baseExecuted = meter.flops;
  const baseMinimal = (N + 1) * L * layerFlops(cfg, 1, T, 0) + headFlops(cfg, N + 1);

  // Bytes per batch row of the sweep: states of every position (resid in/out, components,
  // attention bias, past keys/values) and one row of logits.
  const H = cfg.nHead;
  const rowBytes = 4 * (T * (6 * D + cfg.nInner + T * (1 + H)) + 2 * T * D + V);
  const maxRows = Math.max(N, Math.floor((budget * 1024 * 1024) / rowBytes));
  const sweep: SweepContext = {
    engine: model.engine, edits, signal, N, T, answer: answerId, clean: runStates(clean), corrupted: runStates(corruptedRun0), cache: corruptedRun0.cache!, maxRows, meter,
  };
  const tokens = ids.map((id) => model.tokenizer.tokenText(id));
  return {
    L, T, N, window, strategy, topK, subjectRange, lowScore,
    baseFlops: { executed: baseExecuted, minimal: baseMinimal },
    sweep,
    meter,
    naive: { ...naive, corrupted: sweep.corrupted },
    result: {
      prompt: options.prompt, subject: options.subject,
      answer: { id: answerId, token: model.tokenizer.tokenText(answerId) },
      correctPrediction: answerId === best,
      highScore, lowScore, tokens, inputIds: ids, subjectRange, noiseLevel: noise.level, noiseType: noise.type, samples: N, strategy,
    },
  };
}

async function noiseSpec(model: Model, options: TraceOptions): Promise<NoiseSpec> {
  const n = options.noise ?? { s3: [options.subject] };
  if (typeof n === "number") return { type: "gauss", level: checkNumber("noise", n, 0, 1e6) };
  if (typeof n !== "object" || n === null) throw new RomeError("ERR_ARGUMENT", "noise must be a number, { type, level } or { s3: subjects }");
  checkOptionNames("noise", n, ["type", "level", "s3", "factor"]);
  const type = n.type ?? "gauss";
  if (!["gauss", "uniform", "replace"].includes(type)) throw new RomeError("ERR_ARGUMENT", `noise type must be gauss, uniform or replace, received ${JSON.stringify(type)}`);
  if ("level" in n) return { type, level: checkNumber("noise.level", n.level, 0, 1e6) };
  if ("s3" in n && Array.isArray(n.s3)) {
    const factor = checkNumber("noise.factor", n.factor ?? 3, 0, 1e6);
    return { type, level: factor * (await subjectEmbeddingStd(model, n.s3)) };
  }
  throw new RomeError("ERR_ARGUMENT", "noise must be a number, { type, level } or { s3: subjects }");
}
