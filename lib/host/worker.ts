// The worker side of a hosted model: loads the model on this thread, then runs each call message
// as the in-thread model would (calls interleave at their awaits exactly as concurrent calls on an
// in-thread model do; edit operations apply in message order), with an AbortController per call
// that the main thread's abort message aborts and proxies that post progress callbacks back.
import { parentPort, workerData, type MessagePort } from "node:worker_threads";
import { Model } from "../runtime/model.js";
import { HOSTED_FUNCTIONS, isHostedFunction } from "./functions.js";
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
  const controllers = new Map<number, AbortController>();
  port.on("message", (m: ToWorker) => {
    if (m.type === "abort") controllers.get(m.id)?.abort();
    else if (m.type === "dispose") void dispose(port, model, post);
    else void call(m, model, controllers, post);
  });
}

async function call(m: Extract<ToWorker, { type: "call" }>, model: Model, controllers: Map<number, AbortController>,
  post: (m: FromWorker, transfer?: ArrayBuffer[]) => void): Promise<void> {
  const args = m.args;
  for (const slot of m.callbacks) {
    (args[slot[0]] as Record<string, unknown>)[slot[1]] = (...a: unknown[]) => post({ type: "callback", id: m.id, slot, args: a });
  }
  if (m.signal) {
    const controller = new AbortController();
    controllers.set(m.id, controller);
    (args[m.signal[0]] as Record<string, unknown>)[m.signal[1]] = controller.signal;
  }
  try {
    const run = () => invoke(model, m.target, m.name, args);
    const result = await (m.scope ? model.edits.withOnly(m.scope, run) : run());
    const { value, transfer } = forTransfer(result);
    post({ type: "result", id: m.id, value }, transfer);
  } catch (e) {
    post({ type: "error", id: m.id, error: serializeError(e) });
  } finally {
    controllers.delete(m.id);
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

async function dispose(port: MessagePort, model: Model, post: (m: FromWorker) => void): Promise<void> {
  await model.dispose();
  post({ type: "disposed" });
  port.close();
}
