// A model on a worker thread behind the Model API, so that a service's event loop stays free while
// the model works. Every call is a message; results come back with their buffers transferred.
// Edits keep a main-thread mirror (the same EditSet code validates and assigns ids synchronously),
// and each edit operation is posted in order, so any later call sees it. A worker that dies rejects
// the pending calls and every later call with ERR_WORKER; the model must then be loaded again.
// The thread is never terminated from outside: onnxruntime's binding aborts the whole process when
// a thread ends inside one of its calls, so the worker is asked to end and ends by itself.
// A function that returns an async iterator (traceDatasetFacts) is a stream: the caller's iterator
// posts one "next" per step, so the worker runs no further ahead than an in-thread loop.
import { Worker } from "node:worker_threads";
import { RomeError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import type { DecodeOptions, Encoded, EncodeOptions } from "../model/tokenizer.js";
import { AbortError } from "../runtime/call.js";
import { EditSet, type Edit, type NewEdit } from "../runtime/edits.js";
import type { LoadOptions, Model } from "../runtime/model.js";
import type { HostedFunctionName, HostedStreamName } from "./functions.js";
import { reviveError, slotKey, splitArgs, type FromWorker, type ModelInfo, type Target, type ToWorker, type WorkerInit } from "./protocol.js";

/** A call in flight: a request awaiting its answer, or an open stream (awaiting one when `step` is set). */
interface Pending {
  /** The step awaiting an answer (for a request: its whole answer). */
  step?: { resolve(value: unknown): void; reject(error: Error): void };
  stream: boolean;
  callbacks: Map<string, (...a: unknown[]) => void>;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** The tokenizer of a hosted model: the Tokenizer's methods, each answered by the worker. */
export class HostedTokenizer {
  constructor(private readonly host: HostedModel) {}
  encode(text: string, options: EncodeOptions = {}): Promise<Encoded> { return this.host.request("tokenizer", "encode", [text, options]) as Promise<Encoded>; }
  encodeBatch(texts: string[], options: EncodeOptions = {}): Promise<Encoded[]> { return this.host.request("tokenizer", "encodeBatch", [texts, options]) as Promise<Encoded[]>; }
  decode(ids: readonly number[], options: DecodeOptions = {}): Promise<string> { return this.host.request("tokenizer", "decode", [ids, options]) as Promise<string>; }
  tokenText(id: number): Promise<string> { return this.host.request("tokenizer", "tokenText", [id]) as Promise<string>; }
  tokenToId(token: string): Promise<number | undefined> { return this.host.request("tokenizer", "tokenToId", [token]) as Promise<number | undefined>; }
}

/**
 * The edits of a hosted model: an EditSet on the main thread whose every change is also posted to
 * the worker's EditSet. Reads (list, get, all) answer from the mirror; `withOnly` works as in-thread.
 */
class MirroredEdits extends EditSet {
  constructor(private readonly host: HostedModel, config: ModelConfig) {
    super(config);
  }

  override apply(edit: NewEdit): string {
    const id = super.apply(edit);
    this.host.post("apply", [{ ...edit, id }]);
    return id;
  }

  override undo(id: string): Edit {
    const edit = super.undo(id);
    this.host.post("undo", [id]);
    return edit;
  }

  override clear(): void {
    super.clear();
    this.host.post("clear", []);
  }

  override enableOnly(ids?: readonly string[]): void {
    super.enableOnly(ids);
    this.host.post("enableOnly", [ids]);
  }
}

/** tsx's ESM API, which the worker registers when the library runs from its TypeScript sources. */
function tsxApi(): string {
  try {
    return import.meta.resolve("tsx/esm/api");
  } catch (e) {
    throw new RomeError("ERR_WORKER", "rome-node runs from its TypeScript sources, and its worker needs tsx to load them; install tsx or build dist/ (npm run build:ts)", { cause: e });
  }
}

export class HostedModel {
  readonly config: ModelConfig;
  readonly fingerprint: string;
  readonly threads: number;
  readonly batchSize: number;
  readonly sourceDir?: string;
  readonly tokenizer: HostedTokenizer;
  /** Edits applied to this model; the same API as `Model.edits`. */
  readonly edits: EditSet;
  private readonly mirror: MirroredEdits;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Why calls now fail (the worker died or the model was disposed). */
  private failure?: RomeError;
  private exited = false;
  /** Settles when the worker thread has ended, once it was asked to (see close). */
  private closing?: Promise<void>;

  private constructor(private readonly worker: Worker, info: ModelInfo) {
    this.config = info.config;
    this.fingerprint = info.fingerprint;
    this.threads = info.threads;
    this.batchSize = info.batchSize;
    this.sourceDir = info.sourceDir;
    this.tokenizer = new HostedTokenizer(this);
    this.edits = this.mirror = new MirroredEdits(this, info.config);
    worker.on("message", (m: FromWorker) => this.receive(m));
    worker.on("error", (e: Error) => this.fail(`failed: ${e.message}`));
    worker.on("exit", (code) => {
      this.exited = true;
      this.fail(`exited with code ${code}`);
    });
    worker.unref();
  }

  /** Starts a worker thread and loads the model directory there (see Model.load for the options). */
  static async load(dir: string, options: Omit<LoadOptions, "worker"> = {}): Promise<HostedModel> {
    const here = import.meta.url;
    const fromSources = here.endsWith(".ts");
    const init: WorkerInit = {
      module: new URL(`./worker.${fromSources ? "ts" : "js"}`, here).href,
      tsx: fromSources ? tsxApi() : undefined,
      dir,
      options,
    };
    // The entry is plain JavaScript in lib/ (shipped with the package): ../../lib/host/ from both lib/host/ and dist/host/.
    const worker = new Worker(new URL("../../lib/host/worker-entry.mjs", here), { workerData: init, execArgv: [] });
    return new Promise((resolve, reject) => {
      const onExit = (code: number) => reject(new RomeError("ERR_WORKER", `the model's worker thread exited with code ${code} while loading ${dir}`));
      const onError = (e: Error) => { worker.off("exit", onExit); reject(new RomeError("ERR_WORKER", `the model's worker thread failed while loading ${dir}: ${e.message}`, { cause: e })); };
      worker.once("error", onError);
      worker.once("exit", onExit);
      worker.once("message", (m: FromWorker) => {
        worker.off("error", onError);
        worker.off("exit", onExit);
        // after "failed" the worker has returned from its entry, and its thread ends by itself
        if (m.type === "ready") resolve(new HostedModel(worker, m.info));
        else reject(m.type === "failed" ? reviveError(m.error) : new RomeError("ERR_WORKER", `unexpected first message ${m.type} from the model's worker`));
      });
    });
  }

  /** Logits (V) of the next token after each prompt. */
  nextTokenLogits(...args: Parameters<Model["nextTokenLogits"]>): ReturnType<Model["nextTokenLogits"]> {
    return this.request("model", "nextTokenLogits", args) as ReturnType<Model["nextTokenLogits"]>;
  }

  /** The `topK` most likely next tokens after each prompt, with probabilities. */
  predict(...args: Parameters<Model["predict"]>): ReturnType<Model["predict"]> {
    return this.request("model", "predict", args) as ReturnType<Model["predict"]>;
  }

  /** Generates a continuation (text only, prompt excluded) with a KV cache. */
  generate(...args: Parameters<Model["generate"]>): ReturnType<Model["generate"]> {
    return this.request("model", "generate", args) as ReturnType<Model["generate"]>;
  }

  /** Teacher-forced log-probability of `target` after `prompt` for each pair. */
  logprob(...args: Parameters<Model["logprob"]>): ReturnType<Model["logprob"]> {
    return this.request("model", "logprob", args) as ReturnType<Model["logprob"]>;
  }

  /** Runs token ids through the model, recording the requested states per layer. */
  forward(...args: Parameters<Model["forward"]>): ReturnType<Model["forward"]> {
    return this.request("model", "forward", args) as ReturnType<Model["forward"]>;
  }

  /** Runs a hosted free function (lib/host/functions.ts) on the worker; the model argument is `null` here. */
  callFunction(name: HostedFunctionName, args: unknown[]): Promise<unknown> {
    return this.request("function", name, args);
  }

  /**
   * Runs a hosted function that returns an async iterator on the worker: the call (and its edit
   * set) is posted now, and each `next` of the returned iterator is one step there. Leaving the
   * loop early (`break`, `return()`) ends the worker's iterator too.
   */
  streamFunction(name: HostedStreamName, args: unknown[]): AsyncGenerator<unknown, void, undefined> {
    const id = this.open("function", name, args, true);
    return this.steps(id);
  }

  private async *steps(id: number | Error): AsyncGenerator<unknown, void, undefined> {
    if (id instanceof Error) throw id;
    let open = true;
    try {
      for (;;) {
        let r: IteratorResult<unknown>;
        try {
          r = await this.step(id, "next") as IteratorResult<unknown>;
        } catch (e) {
          open = false; // the worker ended the stream with this error
          throw e;
        }
        if (r.done) { open = false; return; }
        yield r.value;
      }
    } finally {
      if (open) await this.step(id, "return").catch(() => undefined);
    }
  }

  /**
   * Frees the model and ends its worker; every later call rejects with ERR_WORKER. The calls still
   * running that were given a signal are aborted and reject with ERR_WORKER within one batch; the
   * others run to their end first. Disposing twice is harmless.
   */
  async dispose(): Promise<void> {
    this.failure ??= new RomeError("ERR_WORKER", "this model was disposed; load it again to use it");
    await this.close();
    this.rejectAll(this.failure);
  }

  /**
   * Posts a call and resolves with its result. Callbacks and AbortSignals in options are proxied;
   * a call made inside `edits.withOnly` carries the scope's edit ids, and runs in the same scope.
   */
  request(target: Target, name: string, args: readonly unknown[]): Promise<unknown> {
    const id = this.open(target, name, args, false);
    return id instanceof Error ? Promise.reject(id) : this.answer(id);
  }

  /** Posts a call (a request, or a stream's creation) and registers it; or says why it cannot be made. */
  private open(target: Target, name: string, args: readonly unknown[], stream: boolean): number | Error {
    if (this.failure) return this.failure;
    const split = splitArgs(args);
    if (split.abort?.aborted) return new AbortError(split.abort.reason);
    const id = this.nextId++;
    const p: Pending = { stream, callbacks: split.fns, signal: split.abort };
    if (split.abort) {
      p.onAbort = () => this.worker.postMessage({ type: "abort", id } satisfies ToWorker);
      split.abort.addEventListener("abort", p.onAbort, { once: true });
    }
    const scope = target === "edits" ? undefined : this.mirror.scoped()?.ids; // the innermost withOnly scope's edits travel with the call
    this.worker.postMessage({ type: "call", id, target, name, args: split.args, callbacks: split.callbacks, signal: split.signal, scope, ...(stream ? { stream } : {}) } satisfies ToWorker);
    this.pending.set(id, p);
    return id;
  }

  /** Awaits the answer to a call's message (posted already); the worker holds the process meanwhile. */
  private answer(id: number): Promise<unknown> {
    const p = this.pending.get(id);
    if (!p) return Promise.reject(this.failure ?? new RomeError("ERR_WORKER", `call ${id} is not open`));
    this.worker.ref();
    return new Promise((resolve, reject) => (p.step = { resolve, reject }));
  }

  /** Posts one step of an open stream and awaits it. */
  private step(id: number, how: "next" | "return"): Promise<unknown> {
    if (!this.pending.has(id)) return how === "return" ? Promise.resolve({ done: true }) : Promise.reject(this.failure ?? new RomeError("ERR_WORKER", `stream ${id} is closed`));
    this.worker.postMessage({ type: how, id } satisfies ToWorker);
    return this.answer(id);
  }

  /** Posts an edit operation already applied to the mirror; its failure would leave the two apart, so it ends the host. */
  post(op: "apply" | "undo" | "clear" | "enableOnly", args: unknown[]): void {
    this.request("edits", op, args).catch((e: Error) => {
      if (!this.failure) this.fail(`could not repeat edits.${op} (${e.message}), so its edits no longer match the main thread's`);
    });
  }

  private receive(m: FromWorker): void {
    if (m.type !== "result" && m.type !== "error" && m.type !== "callback") return;
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === "callback") {
      try {
        p.callbacks.get(slotKey(m.slot))?.(...m.args);
      } catch (e) {
        // as in-thread, a callback that throws ends its call: reject it, and stop the worker's side if it can be aborted
        const step = p.step;
        this.settle(m.id, p);
        step?.reject(e as Error);
        this.worker.postMessage({ type: "abort", id: m.id } satisfies ToWorker);
        if (p.stream) this.worker.postMessage({ type: "return", id: m.id } satisfies ToWorker);
      }
      return;
    }
    const step = p.step;
    if (p.stream && m.type === "result" && !(m.value as IteratorResult<unknown>).done) {
      p.step = undefined; // the stream stays open for its next step
      this.release();
    } else {
      this.settle(m.id, p);
    }
    if (m.type === "result") step?.resolve(m.value);
    else step?.reject(this.failure ?? reviveError(m.error, p.signal)); // while disposing, the worker's aborts are ERR_WORKER
  }

  private settle(id: number, p: Pending): void {
    this.pending.delete(id);
    p.step = undefined;
    if (p.onAbort) p.signal!.removeEventListener("abort", p.onAbort);
    this.release();
  }

  /** Lets the process exit while no call awaits an answer (an open stream between steps does not hold it). */
  private release(): void {
    if (!this.closing && ![...this.pending.values()].some((p) => p.step)) this.worker.unref();
  }

  private fail(why: string): void {
    if (this.failure) return;
    this.failure = new RomeError("ERR_WORKER", `the model's worker thread ${why}; load the model again`);
    this.rejectAll(this.failure);
    void this.close();
  }

  /** Asks the worker to end (unless it has) and settles when its thread has ended. */
  private close(): Promise<void> {
    this.closing ??= this.exited ? Promise.resolve() : new Promise<void>((resolve) => {
      this.worker.ref();
      this.worker.once("exit", () => resolve());
      this.worker.postMessage({ type: "dispose" } satisfies ToWorker);
    });
    return this.closing;
  }

  private rejectAll(error: RomeError): void {
    for (const [id, p] of [...this.pending]) {
      const step = p.step;
      this.settle(id, p);
      step?.reject(error);
    }
  }
}
