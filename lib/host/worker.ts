// The worker side of a hosted model: loads the model on this thread, then runs each call message
// as the in-thread model would (calls interleave at their awaits exactly as concurrent calls on an
// in-thread model do; edit operations apply in message order), with an AbortController per call
// that the main thread's abort message aborts and proxies that post progress callbacks back. A
// stream (an async iterator) lives here between the caller's "next" messages, one step per message,
// so it runs no further ahead than an in-thread loop would.
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { RomeError } from "../errors.js";
import { Model } from "../runtime/model.js";
import { HOSTED_FUNCTIONS, isHostedFunction, isHostedStream } from "./functions.js";
import { forTransfer, serializeError, type FromWorker, type Target, type ToWorker, type WorkerInit } from "./protocol.js";

/** Methods a main-thread HostedModel may call, per target. Anything else is refused. */
const METHODS = {
  model: ["nextTokenLogits", "predict", "generate", "logprob", "forward"],
  tokenizer: ["encode", "encodeBatch", "decode", "tokenText", "tokenToId"],
  edits: ["apply", "undo", "clear", "enableOnly"],
} as const;

export async function serve(): Promise<void> {
  const port = parentPort!;
  const init = workerData as WorkerInit;
  const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  let model: Model;
  try {
    model = await Model.load(init.dir, { ...init.options, worker: false });
  } catch (e) {
    post({ type: "failed", error: serializeError(e) });
    return;
  }
  post({ type: "ready", info: { config: model.config, fingerprint: model.fingerprint, threads: model.threads, batchSize: model.batchSize, sourceDir: model.sourceDir } });
  const calls: Calls = { controllers: new Map(), streams: new Map(), running: new Set() };
  let closing = false;
  port.on("message", (m: ToWorker) => {
    if (m.type === "exit") process.exit(m.code);
    else if (m.type === "abort") calls.controllers.get(m.id)?.abort();
    else if (m.type === "dispose") {
      if (!closing) void close(port, model, calls);
      closing = true;
    } else if (closing) return; // the main thread has rejected this call already
    else if (m.type === "next" || m.type === "return") track(calls, step(m.id, m.type, calls, post));
    else if (m.stream) open(m, model, calls, post);
    else track(calls, call(m, model, calls, post));
  });
}

type Post = (m: FromWorker, transfer?: ArrayBuffer[]) => void;

/** The calls in flight: their abort controllers, the open streams (an iterator, or why it could not be made), and the calls and steps running. */
interface Calls {
  controllers: Map<number, AbortController>;
  streams: Map<number, AsyncIterator<unknown> | { failed: unknown }>;
  running: Set<Promise<void>>;
}

function track(calls: Calls, running: Promise<void>): void {
  calls.running.add(running);
  void running.finally(() => calls.running.delete(running));
}

/** Puts proxies for the call's callbacks and AbortSignal into its arguments. */
function prepare(m: Extract<ToWorker, { type: "call" }>, calls: Calls, post: Post): unknown[] {
  const args = m.args;
  for (const slot of m.callbacks) {
    (args[slot[0]] as Record<string, unknown>)[slot[1]] = (...a: unknown[]) => post({ type: "callback", id: m.id, slot, args: a });
  }
  if (m.signal) {
    const controller = new AbortController();
    calls.controllers.set(m.id, controller);
    (args[m.signal[0]] as Record<string, unknown>)[m.signal[1]] = controller.signal;
  }
  return args;
}

async function call(m: Extract<ToWorker, { type: "call" }>, model: Model, calls: Calls, post: Post): Promise<void> {
  const args = prepare(m, calls, post);
  try {
    const run = () => invoke(model, m.target, m.name, args);
    const result = await (m.scope ? model.edits.withOnly(m.scope, run) : run());
    const { value, transfer } = forTransfer(result);
    post({ type: "result", id: m.id, value }, transfer);
  } catch (e) {
    post({ type: "error", id: m.id, error: serializeError(e) });
  } finally {
    calls.controllers.delete(m.id);
  }
}

/** Creates a stream's iterator now (in the call's edit scope, so it captures its edits in message order); its steps come with "next". */
function open(m: Extract<ToWorker, { type: "call" }>, model: Model, calls: Calls, post: Post): void {
  const args = prepare(m, calls, post);
  try {
    if (m.target !== "function" || !isHostedFunction(m.name) || !isHostedStream(m.name)) throw new Error(`no hosted stream ${m.target}.${m.name}`);
    const entry = HOSTED_FUNCTIONS[m.name];
    args[entry.model] = model;
    const make = () => (entry.fn as (...a: unknown[]) => AsyncIterator<unknown>)(...args);
    let it: AsyncIterator<unknown> | undefined;
    if (m.scope) void model.edits.withOnly(m.scope, () => Promise.resolve(it = make())); // runs `make` synchronously, in the scope
    else it = make();
    calls.streams.set(m.id, it!);
  } catch (e) {
    calls.streams.set(m.id, { failed: e });
  }
}

/** Runs one step of a stream ("next") or ends it ("return"), and answers with the step. */
async function step(id: number, how: "next" | "return", calls: Calls, post: Post): Promise<void> {
  const it = calls.streams.get(id);
  const end = () => {
    calls.streams.delete(id);
    calls.controllers.delete(id);
  };
  try {
    if (!it && how === "return") return post({ type: "result", id, value: { done: true } });
    if (!it) throw new Error(`no open stream ${id}`);
    if ("failed" in it) throw it.failed;
    const r = how === "next" ? await it.next() : (await it.return?.(), { done: true as const, value: undefined });
    if (r.done) end();
    const { value, transfer } = forTransfer(r.done ? { done: true } : { done: false, value: r.value });
    post({ type: "result", id, value }, transfer);
  } catch (e) {
    end();
    post({ type: "error", id, error: serializeError(e) });
  }
}

async function invoke(model: Model, target: Target, name: string, args: unknown[]): Promise<unknown> {
  if (target === "function") {
    if (!isHostedFunction(name)) throw new Error(`no hosted function ${name}`);
    const entry = HOSTED_FUNCTIONS[name];
    args[entry.model] = model;
    return (entry.fn as (...a: unknown[]) => unknown)(...args);
  }
  const methods: readonly string[] = METHODS[target];
  if (!methods.includes(name)) throw new Error(`no hosted method ${target}.${name}`);
  const self = (target === "model" ? model : target === "tokenizer" ? model.tokenizer : model.edits) as unknown as Record<string, (...a: unknown[]) => unknown>;
  return self[name]!(...args);
}

/**
 * Ends this worker: aborts the calls in flight (each stops within one batch; a call without a signal
 * runs to its end), waits for them, closes the open streams, frees the model and closes the port,
 * after which the thread has nothing left to do and ends by itself.
 */
async function close(port: MessagePort, model: Model, calls: Calls): Promise<void> {
  for (const c of calls.controllers.values()) c.abort(new RomeError("ERR_WORKER", "the model is being disposed"));
  while (calls.running.size > 0) await Promise.allSettled([...calls.running]);
  for (const it of calls.streams.values()) if (!("failed" in it)) await it.return?.().catch(() => undefined);
  await model.dispose();
  port.close();
}
