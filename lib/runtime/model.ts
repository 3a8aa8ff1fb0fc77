// The public Model: a loaded checkpoint, its tokenizer and its engine, with the text-level
// operations users call — next-token logits, top-k predictions, generation with a KV cache,
// teacher-forced log-probabilities — and `forward` for recorded intermediate states.
import { checkInt, checkOptionNames, RomeError } from "../errors.js";
import type { ArchDescription, Weights, WeightSource } from "../arch/types.js";
import { Fingerprint, fingerprint, openCheckpoint } from "../model/checkpoint.js";
import type { ModelConfig } from "../model/config.js";
import { Tokenizer } from "../model/tokenizer.js";
import { HostedModel } from "../host/hosted-model.js";
import { trimHeap } from "../native-heap.js";
import { nativeCapabilities, niceNativeThread } from "../native-load.js";
import { nextStep, padBatch } from "./batch.js";
import { throwIfAborted, type CallOptions } from "./call.js";
import { Engine, SITES, type RunResult, type Site } from "./engine.js";
import { EditSet, type EditSelection } from "./edits.js";
import { ModelResources } from "./resources.js";
import type { SessionOptions } from "./session.js";
import { logSoftmaxAt, pickToken, seededRandom, softmax, topK } from "./sampling.js";

export interface LoadOptions {
  /** onnxruntime intra-op threads per segment. Default 1; range 1–64. */
  threads?: number;
  /**
   * Let onnxruntime's intra-op threads spin between operators. Default false: spinning threads
   * compete with any other process for shared cores (2 threads measured 10× slower than 1).
   */
  spinning?: boolean;
  /**
   * Keep an onnxruntime CPU memory arena (and memory patterns) per session. Default false: every
   * segment's arena would hold the intermediates of its largest batch for the model's lifetime, and
   * with one session per half-block those add up (on the GPT-2-small shape a 3-kind trace peaked at
   * 4.3× the checkpoint with arenas, 2.0× without); without it each run's intermediates are freed
   * when it ends. True can be a little faster for many small calls.
   */
  memoryArena?: boolean;
  /** Prompts per engine batch in batched calls (nextTokenLogits, logprob). Default 64; 1–4096. */
  batchSize?: number;
  /**
   * Run the model on a worker thread: `Model.load` then returns a HostedModel with the same methods
   * (lib/host/), whose work never blocks this thread's event loop. Default false (in-thread).
   */
  worker?: boolean;
  /**
   * Added to the OS nice value of the thread that loads and runs the model, and so of onnxruntime's
   * threads, which it creates at load: with `worker: true` a higher value lets the caller's thread
   * take a shared core sooner, but the model then also yields to every other process (on a busy
   * machine a worker at +10 traced about 3× slower; docs/host-latency.md). In-thread it would lower the
   * caller's own thread. Default 0; range 0–19. Linux with the native addon; ignored elsewhere.
   */
  nice?: number;
}
const LOAD_OPTIONS = ["threads", "spinning", "memoryArena", "batchSize", "worker", "nice"] as const;

function checkLoadOptions(options: LoadOptions): { threads: number; batchSize: number; spinning: boolean; memoryArena: boolean; nice: number } {
  const spinning = options.spinning ?? false;
  if (typeof spinning !== "boolean") throw new RomeError("ERR_ARGUMENT", `spinning must be true or false, received ${JSON.stringify(spinning)}`);
  const memoryArena = options.memoryArena ?? false;
  if (typeof memoryArena !== "boolean") throw new RomeError("ERR_ARGUMENT", `memoryArena must be true or false, received ${JSON.stringify(memoryArena)}`);
  return { threads: checkInt("threads", options.threads ?? 1, 1, 64), batchSize: checkInt("batchSize", options.batchSize ?? 64, 1, 4096), spinning, memoryArena,
    nice: checkInt("nice", options.nice ?? 0, 0, 19) };
}

/** Adds `nice` to this thread's nice value before the engine creates onnxruntime's threads (which inherit it). */
function niceThisThread(nice: number): void {
  if (nice === 0) return;
  let capable: boolean;
  try {
    capable = nativeCapabilities().threadNice;
  } catch {
    return; // no native addon (ROME_NATIVE_PATH=none): the model runs at the caller's priority
  }
  if (capable) niceNativeThread(nice);
}

/** Options of every model call: the edit set it runs with, cancellation and progress. */
export interface ModelCallOptions extends CallOptions {
  /**
   * The edits this call runs with: ids of applied edits (exactly those, for this call only) or an
   * EditView. Default: the model's enabled edits when the call starts; applying, undoing or
   * switching edits while it runs does not change its results.
   */
  edits?: EditSelection;
}
const MODEL_CALL_OPTIONS = ["edits", "signal", "onProgress"] as const;

export interface Prediction { token: string; id: number; prob: number }
export interface LogprobResult {
  /** Sum of the target tokens' log-probabilities (natural log). */
  sum: number;
  /** Mean over target tokens (the reference's per-token NLL is −mean). */
  mean: number;
  /** Per target token: id, text, log-probability, and whether it is the most likely token there (token accuracy). */
  tokens: { id: number; token: string; logprob: number; top1: boolean }[];
}
export interface GenerateOptions extends ModelCallOptions {
  /** Tokens to generate. Default 20. */
  maxTokens?: number;
  /** 1 = greedy (default); k > 1 samples among the k most likely tokens. */
  topK?: number;
  /** Seed of the sampling generator. Default 0. */
  seed?: number;
}
export interface ForwardOptions {
  record?: readonly Site[];
  /** As ModelCallOptions.edits. */
  edits?: EditSelection;
}

export class Model {
  readonly config: ModelConfig;
  readonly arch: ArchDescription;
  /**
   * Base weights by canonical name, never modified. For a loaded model each `get` reads the tensor
   * back from the checkpoint file (nothing stays resident beside onnxruntime's copy); for a model
   * built with fromWeights it is the caller's Map.
   */
  readonly weights: WeightSource;
  readonly fingerprint: string;
  readonly engine: Engine;
  readonly threads: number;
  /** Whether onnxruntime's intra-op threads spin (LoadOptions.spinning). */
  readonly spinning: boolean;
  /** Whether onnxruntime sessions keep a memory arena (LoadOptions.memoryArena). */
  readonly memoryArena: boolean;
  readonly batchSize: number;
  /** Edits applied to this model (low-rank factors beside the unchanged base weights). */
  readonly edits: EditSet;
  /** The directory the model was loaded from (undefined for models built in memory). */
  readonly sourceDir?: string;
  /** Canonical weight name → name in the checkpoint. */
  readonly storedNames: Map<string, string>;
  /** Sessions and caches this model created (gradient sessions, context templates); freed by dispose(). */
  readonly resources = new ModelResources();
  private readonly tok?: Tokenizer;
  private readonly onDispose?: () => void;

  private constructor(init: { arch: ArchDescription; config: ModelConfig; weights: WeightSource; fingerprint: string; engine: Engine; tokenizer?: Tokenizer; threads: number; spinning: boolean; memoryArena: boolean; batchSize: number; sourceDir?: string; storedNames?: Map<string, string>; onDispose?: () => void }) {
    this.arch = init.arch;
    this.config = init.config;
    this.weights = init.weights;
    this.fingerprint = init.fingerprint;
    this.engine = init.engine;
    this.tok = init.tokenizer;
    this.threads = init.threads;
    this.spinning = init.spinning;
    this.memoryArena = init.memoryArena;
    this.batchSize = init.batchSize;
    this.sourceDir = init.sourceDir;
    this.storedNames = init.storedNames ?? new Map([...init.weights.keys()].map((k) => [k, init.arch.prefixes[0] + k]));
    this.edits = new EditSet(init.config);
    this.onDispose = init.onDispose;
  }

  /**
   * Loads a Hugging Face model directory (config.json, safetensors, tokenizer files). The weights
   * stream from the file one segment at a time into onnxruntime, with the event loop served in
   * between; the file stays open until dispose(), to read base weights back when needed.
   */
  static load(dir: string, options: LoadOptions & CallOptions & { worker: true }): Promise<HostedModel>;
  static load(dir: string, options?: LoadOptions & CallOptions & { worker?: false }): Promise<Model>;
  static load(dir: string, options: LoadOptions & CallOptions): Promise<Model | HostedModel>;
  static async load(dir: string, options: LoadOptions & CallOptions = {}): Promise<Model | HostedModel> {
    checkOptionNames("Model.load", options, [...LOAD_OPTIONS, "signal", "onProgress"]);
    const { worker, signal, onProgress, ...inThread } = options;
    if (worker) {
      checkLoadOptions(inThread); // here, before a worker starts
      return HostedModel.load(dir, inThread);
    }
    const { threads, batchSize, spinning, memoryArena, nice } = checkLoadOptions(inThread);
    niceThisThread(nice);
    const ckpt = openCheckpoint(dir);
    try {
      const tokenizer = await Tokenizer.load(dir);
      if (tokenizer.vocabSize > ckpt.config.vocabSize) {
        throw new RomeError("ERR_TOKENIZER", `${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${ckpt.config.vocabSize}`);
      }
      // The fingerprint samples each weight the first time a segment reads it.
      const fp = new Fingerprint(ckpt.config);
      const source = ckpt.weights;
      const sampled: WeightSource = {
        get(name) {
          const w = source.get(name);
          if (w && !fp.has(name)) fp.add(name, w);
          return w;
        },
        keys: () => source.keys(),
        shapeOf: (name) => source.shapeOf(name),
        rawF32(name) {
          const raw = source.rawF32(name);
          if (!raw || fp.has(name)) return raw;
          return { byteLength: raw.byteLength, write(target) { raw.write(target); fp.addRaw(name, source.shapeOf(name)!, target); } };
        },
        externalF32: (name) => source.externalF32(name, fp.has(name) ? undefined : fp.addSampled(name, source.shapeOf(name)!)),
      };
      const engine = await Engine.create(ckpt.arch, ckpt.config, sampled, { threads, spinning, memoryArena }, { signal, onProgress });
      try {
        await source.checked(); // the f32 weights onnxruntime read from the file, checked meanwhile on a worker thread
      } catch (e) {
        await engine.release();
        throw e;
      }
      for (const name of source.keys()) if (!fp.has(name)) fp.add(name, source.get(name)!);
      return new Model({
        arch: ckpt.arch, config: ckpt.config, weights: source, engine, threads, spinning, memoryArena, batchSize, tokenizer, sourceDir: dir,
        storedNames: ckpt.storedNames, fingerprint: fp.digest(), onDispose: () => source.close(),
      });
    } catch (e) {
      ckpt.weights.close();
      throw e;
    }
  }

  /** Builds a model from weights in memory (tests, benchmarks, converted checkpoints). */
  static async fromWeights(arch: ArchDescription, config: ModelConfig, weights: Weights,
    options: Omit<LoadOptions, "worker"> & { tokenizer?: Tokenizer; fingerprint?: string; sourceDir?: string; storedNames?: Map<string, string> } = {}): Promise<Model> {
    const { threads, batchSize, spinning, memoryArena, nice } = checkLoadOptions(options);
    niceThisThread(nice);
    const engine = await Engine.create(arch, config, weights, { threads, spinning, memoryArena });
    return new Model({
      arch, config, weights, engine, threads, spinning, memoryArena, batchSize, tokenizer: options.tokenizer, sourceDir: options.sourceDir, storedNames: options.storedNames,
      fingerprint: options.fingerprint ?? fingerprint(config, weights),
    });
  }

  /** The options of every onnxruntime session the model creates (segments, gradient graphs). */
  get sessionOptions(): SessionOptions {
    return { threads: this.threads, spinning: this.spinning, memoryArena: this.memoryArena };
  }

  get tokenizer(): Tokenizer {
    if (!this.tok) throw new RomeError("ERR_TOKENIZER", "this model was built without a tokenizer; pass one to Model.fromWeights");
    return this.tok;
  }

  /** Tokenizes prompts, checking they are non-empty and fit the context (with `reserve` tokens). */
  async encodePrompts(prompts: readonly string[], reserve = 0): Promise<number[][]> {
    if (!Array.isArray(prompts)) throw new RomeError("ERR_ARGUMENT", "Expected an array of prompt strings");
    prompts.forEach((p, i) => {
      if (typeof p !== "string") throw new RomeError("ERR_ARGUMENT", `Expected a string for prompt ${i} but received ${typeof p}`);
    });
    const encs = await this.tokenizer.encodeBatch([...prompts]);
    return encs.map((e, i) => {
      if (e.ids.length === 0) throw new RomeError("ERR_EMPTY_PROMPT", `prompt ${i} is empty; a next-token prediction needs at least one token (prefix it with "<|endoftext|>" to condition on nothing)`);
      this.checkLength(e.ids.length + reserve, `prompt ${i}`);
      return e.ids;
    });
  }

  checkLength(n: number, what: string): void {
    if (n > this.config.nPositions) {
      throw new RomeError("ERR_CONTEXT_LENGTH", `${what} needs ${n} positions but the model's context is ${this.config.nPositions} tokens; shorten it`);
    }
  }

  /**
   * Last-position logits (V) for each token sequence, batched; progress "sequences", checked for
   * abort between batches.
   */
  async logitsForIds(seqs: readonly (readonly number[])[], options: ModelCallOptions = {}): Promise<Float32Array[]> {
    const edits = this.edits.view(options.edits);
    const V = this.config.vocabSize;
    const out: Float32Array[] = [];
    for (let s = 0; s < seqs.length; s += this.batchSize) {
      throwIfAborted(options.signal);
      const chunk = seqs.slice(s, s + this.batchSize);
      const batch = padBatch(chunk);
      const { logits } = await this.engine.run(batch, { edits, head: chunk.map((_, b) => [b, batch.T - 1] as const) });
      for (let b = 0; b < chunk.length; b++) out.push(logits!.slice(b * V, (b + 1) * V));
      options.onProgress?.({ phase: "sequences", done: out.length, total: seqs.length });
    }
    return out;
  }

  /** Logits (V) of the next token after each prompt. */
  async nextTokenLogits(prompts: readonly string[], options: ModelCallOptions = {}): Promise<Float32Array[]> {
    checkOptionNames("nextTokenLogits", options, MODEL_CALL_OPTIONS);
    const edits = this.edits.view(options.edits);
    throwIfAborted(options.signal);
    return this.logitsForIds(await this.encodePrompts(prompts), { ...options, edits });
  }

  /** The `topK` most likely next tokens after each prompt, with probabilities. */
  async predict(prompts: readonly string[], options: ModelCallOptions & { topK?: number } = {}): Promise<Prediction[][]> {
    checkOptionNames("predict", options, ["topK", ...MODEL_CALL_OPTIONS]);
    const k = checkInt("topK", options.topK ?? 5, 1, this.config.vocabSize);
    const { topK: _k, ...call } = options;
    const logits = await this.nextTokenLogits(prompts, call);
    return logits.map((l) => {
      const p = softmax(l);
      return topK(p, k).map((id) => ({ id, token: this.tokenizer.tokenText(id), prob: p[id]! }));
    });
  }

  /** Generates a continuation (text only, prompt excluded) with a KV cache; progress "tokens". */
  async generate(prompt: string, options: GenerateOptions = {}): Promise<string> {
    checkOptionNames("generate", options, ["maxTokens", "topK", "seed", ...MODEL_CALL_OPTIONS]);
    const edits = this.edits.view(options.edits);
    const maxTokens = checkInt("maxTokens", options.maxTokens ?? 20, 0, this.config.nPositions);
    throwIfAborted(options.signal);
    const [ids] = await this.encodePrompts([prompt], maxTokens);
    return this.tokenizer.decode(await this.generateIds(ids!, { ...options, maxTokens, edits }));
  }

  /**
   * Generated token ids after `ids`, stopping early at end-of-text. Checks for abort before each
   * token; progress "tokens" reaches maxTokens (at once when end-of-text stops it early).
   */
  async generateIds(ids: readonly number[], options: GenerateOptions = {}): Promise<number[]> {
    const edits = this.edits.view(options.edits);
    const maxTokens = checkInt("maxTokens", options.maxTokens ?? 20, 0, this.config.nPositions);
    const k = checkInt("topK", options.topK ?? 1, 1, this.config.vocabSize);
    const random = seededRandom(checkInt("seed", options.seed ?? 0, 0, 2 ** 32 - 1));
    this.checkLength(ids.length + maxTokens, "prompt + maxTokens");
    const out: number[] = [];
    let batch = padBatch([ids]);
    let run: RunResult | undefined;
    for (let i = 0; i < maxTokens; i++) {
      throwIfAborted(options.signal);
      run = await this.engine.run(batch, { edits, cache: run?.cache, keepCache: true, head: [[0, batch.T - 1]] });
      const next = pickToken(run.logits!, k, random);
      if (next === this.config.eosTokenId) break;
      out.push(next);
      options.onProgress?.({ phase: "tokens", done: out.length, total: maxTokens });
      batch = nextStep(batch, [next]);
    }
    if (out.length < maxTokens) options.onProgress?.({ phase: "tokens", done: maxTokens, total: maxTokens });
    return out;
  }

  /**
   * Teacher-forced log-probability of `target` after `prompt` for each pair. Prompt and target
   * are tokenized separately: the prompt as a prompt (with the tokenizer's BOS), the target as its
   * continuation (keeping its own leading space).
   */
  async logprob(pairs: readonly { prompt: string; target: string }[], options: ModelCallOptions = {}): Promise<LogprobResult[]> {
    checkOptionNames("logprob", options, MODEL_CALL_OPTIONS);
    const edits = this.edits.view(options.edits);
    throwIfAborted(options.signal);
    if (!Array.isArray(pairs)) throw new RomeError("ERR_ARGUMENT", "Expected an array of { prompt, target } pairs");
    const prompts = await this.encodePrompts(pairs.map((p) => p.prompt));
    const targets = await this.tokenizer.encodeBatch(pairs.map((p, i) => {
      if (typeof p.target !== "string" || p.target.length === 0) throw new RomeError("ERR_ARGUMENT", `pair ${i}: target must be a non-empty string`);
      return p.target;
    }), { continuation: true });
    const seqs = prompts.map((p, i) => {
      const seq = [...p, ...targets[i]!.ids];
      this.checkLength(seq.length, `pair ${i} (prompt + target)`);
      return seq;
    });
    const V = this.config.vocabSize;
    const results: LogprobResult[] = [];
    for (let s = 0; s < seqs.length; s += this.batchSize) {
      throwIfAborted(options.signal);
      const chunk = seqs.slice(s, s + this.batchSize);
      const batch = padBatch(chunk);
      // The logits predicting target token j sit at the position of the token before it.
      const select: [number, number][] = [];
      chunk.forEach((_, b) => {
        const i = s + b;
        const nT = targets[i]!.ids.length;
        for (let j = 0; j < nT; j++) select.push([b, batch.T - nT - 1 + j]);
      });
      const { logits } = await this.engine.run(batch, { edits, head: select });
      let row = 0;
      chunk.forEach((_, b) => {
        const tids = targets[s + b]!.ids;
        const tokens = tids.map((id) => {
          const l = logits!.subarray(row * V, (row + 1) * V);
          row++;
          return { id, token: this.tokenizer.tokenText(id), logprob: logSoftmaxAt(l, id), top1: l.every((x) => x <= l[id]!) };
        });
        const sum = tokens.reduce((a, t) => a + t.logprob, 0);
        results.push({ sum, mean: sum / tokens.length, tokens });
      });
      options.onProgress?.({ phase: "pairs", done: results.length, total: seqs.length });
    }
    return results;
  }

  /**
   * Runs token ids (one sequence, or a batch of equal-length sequences) through the model,
   * recording the requested states per layer, each (B, T, D) or (B, T, F) for mlp_key, and the
   * logits (B, V) at the last position.
   */
  async forward(ids: readonly number[] | readonly (readonly number[])[], options: ForwardOptions = {}): Promise<{ records: RunResult["records"]; logits: Float32Array; B: number; T: number }> {
    checkOptionNames("forward", options, ["record", "edits"]);
    const edits = this.edits.view(options.edits);
    const seqs = (Array.isArray(ids[0]) ? ids : [ids]) as readonly (readonly number[])[];
    const T = seqs[0]?.length ?? 0;
    if (T === 0) throw new RomeError("ERR_EMPTY_PROMPT", "forward needs at least one token");
    for (const s of seqs) {
      if (s.length !== T) throw new RomeError("ERR_ARGUMENT", "forward takes sequences of equal length; use nextTokenLogits for prompts of different lengths");
      for (const id of s) checkInt("token id", id, 0, this.config.vocabSize - 1);
    }
    this.checkLength(T, "the sequence");
    for (const site of options.record ?? []) {
      if (!SITES.includes(site)) throw new RomeError("ERR_ARGUMENT", `unknown site '${site}'; sites: ${SITES.join(", ")}`);
    }
    const batch = padBatch(seqs);
    const res = await this.engine.run(batch, { edits, record: options.record, head: seqs.map((_, b) => [b, T - 1] as const) });
    return { records: res.records, logits: res.logits!, B: seqs.length, T };
  }

  /** Frees the engine's sessions, everything the model created (gradient sessions, caches) and
   * the checkpoint file. The model cannot be used afterwards. */
  async dispose(): Promise<void> {
    await this.resources.dispose();
    await this.engine.release();
    trimHeap(); // the sessions' memory lay in the heap (engine.ts reserves it there at load)
    this.onDispose?.();
  }
}
