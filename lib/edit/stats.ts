// Second-moment statistics C = E[k kᵀ] of the MLP key at one layer (or several, in one pass) over
// a text corpus — what ROME's and MEMIT's updates solve against. Only the layers up to the highest
// one run; the addon accumulates Kᵀ K in float64. Results are cached on disk as safetensors, one
// file per layer, with their provenance (model and corpus fingerprints, layer, token count) and
// reused only when every fingerprint matches.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { checkInt, checkOptionNames, RomeError } from "../errors.js";
import { removeStaleTemporaries } from "../io/atomic.js";
import { SafetensorsFile, writeSafetensors } from "../model/safetensors.js";
import { SecondMoment } from "../native.js";
import { padBatch } from "../runtime/batch.js";
import { throwIfAborted } from "../runtime/call.js";
import type { Model, ModelCallOptions } from "../runtime/model.js";

/** `edits`: the edits of the layers below `layer` that the keys see (default: the model's enabled edits when the call starts). */
export interface StatsOptions extends ModelCallOptions {
  /** Layer whose MLP key is measured. */
  layer: number;
  /** Corpus file: .txt (one text per non-empty line), .jsonl ({"text"} per line) or .json (array of strings or {text}). */
  corpus?: string;
  /** Texts instead of a file. */
  texts?: readonly string[];
  /** Stop after this many tokens. Default: the whole corpus. */
  maxTokens?: number;
  /** Use only the first n texts. Default: all. */
  maxSamples?: number;
  /** Tokens per engine batch (padding included). Default max(1024, context length). */
  batchTokens?: number;
  /** Where statistics are cached; false disables the cache. Default: `.rome-cache/stats` in the working directory. */
  cacheDir?: string | false;
}
const OPTIONS = ["layer", "corpus", "texts", "maxTokens", "maxSamples", "batchTokens", "cacheDir", "edits", "signal", "onProgress"] as const;

export interface Stats {
  layer: number;
  /** Tokens averaged. */
  count: number;
  /** (F, F) float64 E[k kᵀ], symmetric */
  mom2: Float64Array;
  dim: number;
  modelFingerprint: string;
  corpusFingerprint: string;
  /** The cache file, when one was read or written. */
  path?: string;
  /** True when read from the cache. */
  cached: boolean;
  /**
   * When computed: the pass's tokens and wall seconds (shared by the layers measured together),
   * this layer's own accumulation seconds, and tokens per second of the pass.
   */
  throughput?: { tokens: number; seconds: number; accumulateSeconds: number; tokensPerSecond: number; layersInPass: number };
}

export async function computeStats(model: Model, options: StatsOptions): Promise<Stats> {
  checkOptionNames("computeStats", options, OPTIONS);
  const { layer, ...rest } = options;
  return (await computeStatsLayers(model, { ...rest, layers: [checkInt("layer", layer, 0, model.config.nLayer - 1)] }))[0]!;
}

/** Options of computeStatsLayers: those of computeStats with a list of layers. */
export interface MultiStatsOptions extends Omit<StatsOptions, "layer"> {
  /** Layers whose MLP keys are measured, in one pass over the corpus. */
  layers: readonly number[];
}

/**
 * Statistics of several layers in one pass over the corpus: one forward up to the highest layer
 * not already cached, accumulating each layer's keys. Each layer is cached on its own file, as
 * computeStats does; the result follows the order of `layers`.
 */
export async function computeStatsLayers(model: Model, options: MultiStatsOptions): Promise<Stats[]> {
  checkOptionNames("computeStatsLayers", options, [...OPTIONS.filter((o) => o !== "layer"), "layers"]);
  const edits = model.edits.view(options.edits); // the call's edit set, captured before any await
  throwIfAborted(options.signal);
  const cfg = model.config;
  if (!Array.isArray(options.layers) || options.layers.length === 0) throw new RomeError("ERR_ARGUMENT", "layers must be a non-empty array of layer indices");
  const layers = options.layers.map((l, i) => checkInt(`layers[${i}]`, l, 0, cfg.nLayer - 1));
  const texts = readCorpus(options);
  if (texts.length === 0) throw new RomeError("ERR_STATS", "the corpus has no text; give a non-empty corpus file or texts");
  const maxSamples = checkInt("maxSamples", options.maxSamples ?? texts.length, 1, Number.MAX_SAFE_INTEGER);
  const maxTokens = checkInt("maxTokens", options.maxTokens ?? Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER);
  const batchTokens = checkInt("batchTokens", options.batchTokens ?? Math.max(1024, cfg.nPositions), cfg.nPositions, 1 << 24);
  const used = texts.slice(0, maxSamples);
  const corpusFingerprint = createHash("sha256").update(JSON.stringify(used)).update(`|${maxTokens}|${cfg.nPositions}`).digest("hex").slice(0, 32);
  const cacheDir = options.cacheDir === false ? undefined : options.cacheDir ?? join(".rome-cache", "stats");
  const pathOf = (layer: number) => cacheDir ? join(cacheDir, `stats-${model.fingerprint.slice(0, 12)}-layer${layer}-${corpusFingerprint.slice(0, 12)}.safetensors`) : undefined;
  if (cacheDir) removeStaleTemporaries(cacheDir);
  const found = new Map<number, Stats>();
  for (const layer of layers) {
    const path = pathOf(layer);
    if (!path || !existsSync(path)) continue;
    // A cache file is used only when its content hash verifies; anything else is recomputed.
    try {
      const { stats: s, hashed } = readStats(path);
      if (!hashed) throw new RomeError("ERR_STATS_CORRUPT", `${path} has no content hash, so it cannot be verified`);
      if (s.modelFingerprint === model.fingerprint && s.corpusFingerprint === corpusFingerprint && s.layer === layer) found.set(layer, s);
    } catch (e) {
      if (!(e instanceof RomeError)) throw e;
      process.emitWarning(`rome-node: ignoring the statistics cache file ${path} and recomputing it: ${e.message}`, { code: "ROME_STATS_CACHE" });
    }
  }
  const todo = [...new Set(layers.filter((l) => !found.has(l)))];
  if (todo.length === 0) return layers.map((l) => found.get(l)!);

  const F = cfg.nInner;
  const acc = new Map(todo.map((l) => [l, new SecondMoment(F)]));
  const accSeconds = new Map(todo.map((l) => [l, 0]));
  const encs = await model.tokenizer.encodeBatch(used);
  const seqs: number[][] = [];
  let total = 0;
  for (const e of encs) {
    if (total >= maxTokens) break;
    const ids = e.ids.slice(0, Math.min(cfg.nPositions, maxTokens - total));
    if (ids.length === 0) continue;
    seqs.push(ids);
    total += ids.length;
  }
  // Texts of similar length share a batch: little padding (measured 1.6× → 1.02× tokens run).
  seqs.sort((a, b) => a.length - b.length);
  const top = Math.max(...todo);
  const t0 = performance.now();
  let done = 0;
  for (let i = 0; i < seqs.length;) {
    // Pack texts of similar length until the padded batch reaches the token budget.
    const batchSeqs: number[][] = [];
    let maxLen = 0;
    while (i < seqs.length && (batchSeqs.length + 1) * Math.max(maxLen, seqs[i]!.length) <= batchTokens) {
      maxLen = Math.max(maxLen, seqs[i]!.length);
      batchSeqs.push(seqs[i++]!);
    }
    throwIfAborted(options.signal);
    const batch = padBatch(batchSeqs);
    const keyOf = new Map<number, Float32Array>(); // layer → (B, T, F)
    await model.engine.run(batch, { edits, stopLayer: top + 1, needKey: (l) => acc.has(l), hooks: { mlp: (l, s) => { if (acc.has(l)) keyOf.set(l, s.mlpKey!); } } });
    const rows = batchSeqs.reduce((a, s) => a + s.length, 0);
    for (const [layer, key] of keyOf) {
      const ta = performance.now();
      const keys = new Float32Array(rows * F); // (rows, F) real tokens only
      let r = 0;
      batchSeqs.forEach((s, b) => {
        const start = (b * batch.T + batch.pad[b]!) * F;
        keys.set(key.subarray(start, start + s.length * F), r * F);
        r += s.length;
      });
      await acc.get(layer)!.add({ dims: [rows, F], type: "float32", data: keys });
      accSeconds.set(layer, accSeconds.get(layer)! + (performance.now() - ta) / 1000);
    }
    done += rows;
    options.onProgress?.({ phase: "tokens", done, total });
  }
  const seconds = (performance.now() - t0) / 1000;
  for (const layer of todo) {
    const a = acc.get(layer)!;
    if (a.count === 0) throw new RomeError("ERR_STATS", "the corpus has no tokens; give a non-empty corpus");
    const mom2 = a.mean().data;
    const path = pathOf(layer);
    const stats: Stats = {
      layer, count: a.count, mom2, dim: F, modelFingerprint: model.fingerprint, corpusFingerprint, path, cached: false,
      throughput: { tokens: a.count, seconds, accumulateSeconds: accSeconds.get(layer)!, tokensPerSecond: a.count / seconds, layersInPass: todo.length },
    };
    found.set(layer, stats);
    if (!path) continue;
    // The result stands even when it cannot be cached (read-only or full disk): warn, do not fail.
    try {
      mkdirSync(cacheDir!, { recursive: true });
      const meta = { layer: String(layer), count: String(a.count), model: model.fingerprint, corpus: corpusFingerprint };
      writeSafetensors(path, { mom2: { dtype: "F64", shape: [F, F], data: mom2 } }, {
        ...meta, sha256: contentHash(meta, mom2),
        corpus_source: options.corpus ? basename(options.corpus) : "texts", dtype: "float64",
        definition: "mom2 = (1/count) * sum over tokens of k k^T (uncentered) of the MLP key (input of the MLP output projection)",
      });
    } catch (e) {
      process.emitWarning(`rome-node: could not write the statistics cache file ${path}: ${(e as Error).message}`, { code: "ROME_STATS_CACHE" });
      stats.path = undefined;
    }
  }
  return layers.map((l) => found.get(l)!);
}

/**
 * Throws unless `stats` can be used for edits of `model`: ERR_STATS_MISMATCH when they were
 * computed for another model (their fingerprint differs) unless `force`; ERR_NOT_FINITE when mom2
 * holds NaN or infinity or has the wrong length; ERR_STATS when their dimension is not the MLP's.
 */
export function checkStatsFor(model: Model, stats: Stats, force = false): void {
  const foreign = stats.modelFingerprint;
  if (foreign && foreign !== model.fingerprint && force !== true) {
    throw new RomeError("ERR_STATS_MISMATCH", `the statistics were computed for another model (fingerprint ${foreign}, this model's is ${model.fingerprint}); ` +
      "compute them for this model with computeStats, or pass { forceStats: true } to use them anyway");
  }
  if (!(stats.mom2 instanceof Float64Array && stats.mom2.length === stats.dim * stats.dim && stats.mom2.every(Number.isFinite))) {
    throw new RomeError("ERR_NOT_FINITE", `the statistics' mom2 must be a Float64Array of ${stats.dim}² finite values (it holds NaN or infinity, or has the wrong length)`);
  }
  if (stats.dim !== model.config.nInner) throw new RomeError("ERR_STATS", `the statistics are ${stats.dim}-dimensional; this model's MLP keys have ${model.config.nInner}`);
}

/**
 * Reads statistics written by computeStats, or a reference file with `mom2` (and `count` metadata).
 * A file with a content hash that does not match its bytes is ERR_STATS_CORRUPT; non-finite values
 * are ERR_NOT_FINITE.
 */
export function loadStats(path: string): Stats {
  return readStats(path).stats;
}

/** The content hash of a statistics file: its provenance metadata and the bytes of mom2. */
function contentHash(meta: { layer: string; count: string; model: string; corpus: string }, mom2: Float64Array): string {
  return createHash("sha256").update(JSON.stringify([meta.layer, meta.count, meta.model, meta.corpus]))
    .update(new Uint8Array(mom2.buffer, mom2.byteOffset, mom2.byteLength)).digest("hex");
}

function readStats(path: string): { stats: Stats; hashed: boolean } {
  const f = SafetensorsFile.open(path);
  try {
    const e = f.entries.get("mom2");
    if (!e || e.shape.length !== 2 || e.shape[0] !== e.shape[1]) throw new RomeError("ERR_STATS", `${path} has no square 'mom2' tensor`);
    const mom2 = f.readFloat64("mom2");
    const m = f.metadata;
    const hashed = typeof m.sha256 === "string";
    if (hashed && contentHash({ layer: m.layer ?? "", count: m.count ?? "", model: m.model ?? "", corpus: m.corpus ?? "" }, mom2) !== m.sha256) {
      throw new RomeError("ERR_STATS_CORRUPT", `${path}: the content does not match its hash; the file was changed or damaged after it was written (delete it, or let computeStats recompute it)`);
    }
    const bad = mom2.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new RomeError("ERR_NOT_FINITE", `${path}: mom2 holds ${mom2[bad]} at index ${bad}`);
    const layer = Number(m.layer ?? NaN);
    return {
      stats: { layer, count: Number(m.count ?? NaN), mom2, dim: e.shape[0]!, modelFingerprint: m.model ?? "", corpusFingerprint: m.corpus ?? "", path, cached: true },
      hashed,
    };
  } finally {
    f.close();
  }
}

function readCorpus(options: Omit<StatsOptions, "layer">): string[] {
  if (options.texts) {
    if (!Array.isArray(options.texts) || options.texts.some((t) => typeof t !== "string")) throw new RomeError("ERR_ARGUMENT", "texts must be an array of strings");
    return options.texts.filter((t) => t.trim().length > 0);
  }
  if (!options.corpus) throw new RomeError("ERR_ARGUMENT", "computeStats needs a corpus file or texts");
  let raw: string;
  try {
    raw = readFileSync(options.corpus, "utf8");
  } catch (e) {
    throw new RomeError("ERR_STATS", `cannot read corpus ${options.corpus}: ${(e as Error).message}`);
  }
  const lines = raw.split(/\r?\n/).filter((l) => l.trim().length > 0);
  if (options.corpus.endsWith(".jsonl")) {
    return lines.map((l, i) => {
      try {
        const t = JSON.parse(l).text;
        if (typeof t !== "string") throw new Error("no string field 'text'");
        return t;
      } catch (e) {
        throw new RomeError("ERR_STATS", `${options.corpus} line ${i + 1}: ${(e as Error).message}`);
      }
    });
  }
  if (options.corpus.endsWith(".json")) {
    let arr: unknown;
    try {
      arr = JSON.parse(raw);
    } catch (e) {
      throw new RomeError("ERR_STATS", `${options.corpus} is not valid JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(arr)) throw new RomeError("ERR_STATS", `${options.corpus} is not a JSON array`);
    return arr.map((x) => (typeof x === "string" ? x : x?.text)).filter((t): t is string => typeof t === "string" && t.trim().length > 0);
  }
  return lines;
}
