// The worker host: a model loaded with { worker: true } answers every call bit for bit as the
// in-thread model does (results arrive as transferred typed arrays), keeps edits in step through
// its main-thread mirror, brings errors and aborts back as the same classes, keeps the event loop
// free during long calls, and rejects clearly once disposed or when its worker dies.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { computeStats, exportEdits, HostedModel, loadEdits, loadStats, Model, rome, RomeError, trace, traceDatasetFacts, traceKinds, type FactTrace, type RankOneEdit } from "../lib/index.js";
import { readKnownFacts } from "../lib/trace/known.js";
import { AbortError } from "../lib/runtime/call.js";
import type { ToWorker } from "../lib/host/protocol.js";
import { tempDir, TINYFACTS } from "./helpers.js";

const PROMPTS = ["Castle of Berkbre is located in the city of", "Tower of Deathproust can be found in the city of"];
const TRACE = { prompt: PROMPTS[0]!, subject: "Castle of Berkbre", samples: 4 };
const REQUEST = { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" };
const templates: string[] = JSON.parse(readFileSync(join(TINYFACTS, "golden-edits.json"), "utf8")).templates;

let local: Model;
let hosted: HostedModel;
test.before(async () => {
  [local, hosted] = await Promise.all([Model.load(TINYFACTS), Model.load(TINYFACTS, { worker: true })]);
});
test.after.always(async () => {
  await local?.dispose();
  await hosted?.dispose();
});

function bytes(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

test.serial("every method and hosted function answers bit for bit as the in-thread model", async (t) => {
  t.deepEqual(hosted.config, local.config);
  t.is(hosted.fingerprint, local.fingerprint);
  t.deepEqual(await hosted.tokenizer.encode(PROMPTS[0]!), await local.tokenizer.encode(PROMPTS[0]!));
  t.is(await hosted.tokenizer.decode([258, 296]), local.tokenizer.decode([258, 296]));

  const [h, l] = [await hosted.nextTokenLogits(PROMPTS), await local.nextTokenLogits(PROMPTS)];
  h.forEach((x, i) => {
    t.true(x instanceof Float32Array);
    t.true(bytes(x).equals(bytes(l[i]!)), `logits of prompt ${i}`);
  });
  t.deepEqual(await hosted.predict(PROMPTS, { topK: 3 }), await local.predict(PROMPTS, { topK: 3 }));
  const pairs = PROMPTS.map((prompt) => ({ prompt, target: " Paris" }));
  t.deepEqual(await hosted.logprob(pairs), await local.logprob(pairs));
  t.is(await hosted.generate("Castle of Berkbre is", { maxTokens: 6 }), await local.generate("Castle of Berkbre is", { maxTokens: 6 }));
  const ids = (await local.tokenizer.encode(PROMPTS[0]!)).ids;
  const [fh, fl] = [await hosted.forward(ids, { record: ["mlp_key"] }), await local.forward(ids, { record: ["mlp_key"] })];
  t.true(bytes(fh.logits).equals(bytes(fl.logits)));
  t.true(bytes(fh.records.mlp_key![3]!).equals(bytes(fl.records.mlp_key![3]!)));

  t.deepEqual(await trace(hosted, TRACE), await trace(local, TRACE));
  t.deepEqual(await traceKinds(hosted, TRACE, ["mlp", "attn"]), await traceKinds(local, TRACE, ["mlp", "attn"]));
});

test.serial("a ROME edit made on the worker is the in-thread edit; apply, undo and withOnly stay in step", async (t) => {
  const texts = readFileSync(join(TINYFACTS, "train.txt"), "utf8").split("\n").filter(Boolean).slice(0, 100);
  const [sh, sl] = [await computeStats(hosted, { layer: 1, texts, cacheDir: false }), await computeStats(local, { layer: 1, texts, cacheDir: false })];
  t.true(Buffer.from(sh.mom2.buffer).equals(Buffer.from(sl.mom2.buffer)), "statistics bit for bit");
  t.true(sh.mom2.buffer instanceof SharedArrayBuffer, "large results come back in shared memory");
  // statistics from the worker go back to it without a copy; those read on this thread are cloned
  const options = { stats: sh, layer: 1, contextTemplates: templates, hparams: { vNumGradSteps: 5 } };
  const [eh, el] = [await rome(hosted, REQUEST, options), await rome(local, REQUEST, { ...options, stats: sl })];
  t.true(bytes((await rome(hosted, REQUEST, { ...options, stats: sl })).u).equals(bytes(eh.u)));
  const file = join(TINYFACTS, "stats-layer1.safetensors");
  const [fh, fl] = [await loadStats(file, hosted), loadStats(file)];
  t.true(fh.mom2.buffer instanceof SharedArrayBuffer && Buffer.from(fh.mom2.buffer).equals(Buffer.from(fl.mom2.buffer)), "loadStats(path, hosted) reads on the worker");
  t.true(bytes(eh.u).equals(bytes(el.u)) && bytes(eh.v).equals(bytes(el.v)), "u and v bit for bit");
  t.deepEqual(eh.losses, el.losses);

  const before = await hosted.nextTokenLogits([PROMPTS[0]!]);
  const id = hosted.edits.apply(eh); // synchronous: validated on this thread
  t.is(id, eh.id);
  const localId = local.edits.apply(el);
  t.deepEqual(hosted.edits.list().map((e) => e.id), [id]);
  t.throws(() => hosted.edits.apply({ ...eh, layer: 99 }), { instanceOf: RomeError, code: "ERR_ARGUMENT" });
  t.throws(() => hosted.edits.undo("nope"), { instanceOf: RomeError, code: "ERR_EDIT_UNKNOWN" });
  const [ph, pl] = [await hosted.nextTokenLogits([PROMPTS[0]!]), await local.nextTokenLogits([PROMPTS[0]!])];
  t.true(bytes(ph[0]!).equals(bytes(pl[0]!)), "the next call sees the edit");
  t.false(bytes(ph[0]!).equals(bytes(before[0]!)));
  const off = await hosted.edits.withOnly([], () => hosted.nextTokenLogits([PROMPTS[0]!]));
  t.true(bytes(off[0]!).equals(bytes(before[0]!)), "withOnly([]) runs without the edit");

  const editsFile = join(tempDir(t), "edits.safetensors");
  await exportEdits(hosted, editsFile);
  const [loaded] = await loadEdits(editsFile, hosted);
  t.true(bytes((loaded as RankOneEdit).u).equals(bytes(eh.u)));

  hosted.edits.undo(id);
  local.edits.undo(localId);
  const after = await hosted.nextTokenLogits([PROMPTS[0]!]);
  t.true(bytes(after[0]!).equals(bytes(before[0]!)), "undo restores every bit");
  t.deepEqual(hosted.edits.list(), []);
});

test.serial("errors come back as RomeErrors with their codes, aborts as AbortError, progress as calls", async (t) => {
  await t.throwsAsync(hosted.predict([""]), { instanceOf: RomeError, code: "ERR_EMPTY_PROMPT" });
  await t.throwsAsync(trace(hosted, { ...TRACE, subject: "Paris" }), { instanceOf: RomeError, code: "ERR_SUBJECT_NOT_FOUND" });
  await t.throwsAsync(computeStats(hosted, { layer: 1, texts: [], cacheDir: false }), { instanceOf: RomeError, code: "ERR_STATS" });
  const reason = new Error("stop");
  const err = await t.throwsAsync(hosted.predict(PROMPTS, { signal: AbortSignal.abort(reason) } as never), { instanceOf: AbortError, code: "ERR_ABORTED" });
  t.is(err?.cause, reason);

  // an abort posted right after the call reaches the worker before its first batch
  const controller = new AbortController();
  const running = traceKinds(hosted, { ...TRACE, signal: controller.signal }, ["resid", "mlp", "attn"]);
  controller.abort(reason);
  const inFlight = await t.throwsAsync(running, { instanceOf: AbortError, code: "ERR_ABORTED" });
  t.is(inFlight?.cause, reason);

  const progress: number[][] = [];
  await trace(hosted, { ...TRACE, onProgress: (p) => progress.push([p.done, p.total]) });
  t.true(progress.length > 0);
  t.deepEqual(progress.at(-1)![0], progress.at(-1)![1], "the last report reaches the total");
  await t.throwsAsync(trace(hosted, { ...TRACE, onProgress: () => { throw new Error("from the callback"); } }), { message: "from the callback" });
  t.true(hosted.edits.list().length === 0 && (await hosted.predict([PROMPTS[0]!]))[0]!.length === 5, "the model stays usable");
});

test.serial("traceDatasetFacts streams from the worker: the in-thread facts, one step per next, resumable, early exit and aborts", async (t) => {
  const dir = tempDir(t);
  const facts = readKnownFacts(join(TINYFACTS, "known.json")).slice(0, 3);
  const opts = { dataset: facts, kinds: ["resid", "mlp"] as const, samples: 2, window: 3, noise: 0.47 };
  const strip = ({ seconds: _s, ...r }: FactTrace) => r;
  const expected: unknown[] = [];
  for await (const r of traceDatasetFacts(local, opts)) expected.push(strip(r));
  const progress: number[] = [];
  const got: unknown[] = [];
  for await (const r of traceDatasetFacts(hosted, { ...opts, onProgress: (p) => progress.push(p.done) })) {
    // the worker runs no further ahead than the loop: the fact just received is the last one reported
    t.is(progress.at(-1), got.length + 1);
    got.push(strip(r));
  }
  t.deepEqual(got, expected);
  t.deepEqual(progress, [0, 1, 2, 3]);

  // break after the first fact: the worker's iterator ends and closes the file; a second loop resumes
  const out = join(dir, "facts.jsonl");
  for await (const r of traceDatasetFacts(hosted, { ...opts, out })) {
    t.deepEqual(strip(r), expected[0]);
    break;
  }
  const rest: unknown[] = [];
  for await (const r of traceDatasetFacts(hosted, { ...opts, out })) rest.push(strip(r));
  t.deepEqual(rest, expected.slice(1));
  t.is(readFileSync(out, "utf8").trim().split("\n").length, 3);

  // an abort between steps ends the stream with the caller's reason; one aborted before the start never reaches the worker
  const reason = new Error("stop");
  const c = new AbortController();
  const it = traceDatasetFacts(hosted, { ...opts, signal: c.signal });
  t.deepEqual(strip((await it.next()).value as FactTrace), expected[0]);
  c.abort(reason);
  const err = await t.throwsAsync(it.next(), { instanceOf: AbortError, code: "ERR_ABORTED" });
  t.is(err?.cause, reason);
  t.deepEqual(await it.next(), { done: true, value: undefined });
  await t.throwsAsync(traceDatasetFacts(hosted, { ...opts, signal: AbortSignal.abort(reason) }).next(), { instanceOf: AbortError });
  await t.throwsAsync(traceDatasetFacts(hosted, { ...opts, kinds: ["mlpp" as "mlp"] }).next(), { instanceOf: RomeError, code: "ERR_UNKNOWN_KIND" });
});

test.serial("the event loop stays free during a long hosted call", async (t) => {
  let last = performance.now();
  let late = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    late = Math.max(late, now - last - 10);
    last = now;
    ticks++;
  }, 10);
  const elu = performance.eventLoopUtilization();
  const t0 = performance.now();
  await traceKinds(hosted, { ...TRACE, samples: 6 }, ["resid", "mlp", "attn"]);
  const ms = performance.now() - t0;
  const busy = performance.eventLoopUtilization(elu).utilization;
  clearInterval(timer);
  t.log(`3-kind trace, 6 samples, hosted: ${ms.toFixed(0)} ms; this thread busy ${(100 * busy).toFixed(1)}% of it, ` +
    `a 10 ms timer late by up to ${late.toFixed(1)} ms over ${ticks} ticks (machine shared: lateness includes scheduling delays)`);
  // Busy time counts only callbacks on this thread, so it does not depend on how loaded the machine is;
  // an in-thread trace keeps it near 100%.
  t.true(busy < 0.3, `this thread was busy ${(100 * busy).toFixed(1)}% of the call`);
  t.true(ticks >= ms / 10 / 4, `${ticks} ticks in ${ms.toFixed(0)} ms`);
});

test.serial("a dead worker rejects pending and later calls with ERR_WORKER", async (t) => {
  const doomed = await Model.load(TINYFACTS, { worker: true });
  const pending = traceKinds(doomed, TRACE, ["resid", "mlp", "attn"]);
  // the worker dies between two runs, as a fatal error in it would (never terminate(): see hosted-model.ts)
  (doomed as unknown as { worker: { postMessage(m: ToWorker): void } }).worker.postMessage({ type: "exit", code: 3 });
  await t.throwsAsync(pending, { instanceOf: RomeError, code: "ERR_WORKER" });
  await t.throwsAsync(doomed.predict(PROMPTS), { instanceOf: RomeError, code: "ERR_WORKER" });

  await t.throwsAsync(Model.load(join(TINYFACTS, "missing"), { worker: true }), { instanceOf: RomeError, code: "ERR_MODEL_DIR" });
});

// onnxruntime's binding aborts the process (std::terminate) when a thread ends inside one of its
// calls; Worker.terminate() mid-trace did so within a few rounds. Disposing, or dying, mid-trace
// must end the worker between two runs instead: the test process survives every round.
test.serial("disposing or dying mid-trace ends the worker between runs: 6 rounds, the process survives, calls reject with ERR_WORKER", async (t) => {
  // Each round ends the worker after the trace's k-th progress report (k = 0: at once), never past
  // the 6th of its 12: the trace still has half its runs to do, however fast the machine.
  for (const [round, reports] of [0, 1, 2, 3, 4, 6].entries()) {
    const m = await Model.load(TINYFACTS, { worker: true });
    let seen = 0;
    let reached: () => void = () => {};
    const due = reports === 0 ? Promise.resolve() : new Promise<void>((r) => (reached = r));
    const onProgress = () => ++seen === reports && reached();
    // with a signal, the worker aborts the trace when disposed; a call without one (the predict) runs to its end first
    const pending = traceKinds(m, { ...TRACE, signal: new AbortController().signal, onProgress }, ["resid", "mlp", "attn"]);
    const predicted = m.predict(PROMPTS);
    await due;
    if (round % 2) await m.dispose();
    else (m as unknown as { worker: { postMessage(x: ToWorker): void } }).worker.postMessage({ type: "exit", code: 3 });
    await t.throwsAsync(pending, { instanceOf: RomeError, code: "ERR_WORKER" }, `round ${round}, after ${reports} progress reports`);
    // the predict may have ended before the worker did
    await predicted.then((r) => t.is(r.length, PROMPTS.length), (e) => t.like(e, { code: "ERR_WORKER" }));
    await m.dispose();
  }
});

test.serial("dispose ends the worker: calls pending and later reject with ERR_WORKER (runs last)", async (t) => {
  const pending = hosted.predict(PROMPTS);
  await hosted.dispose();
  await hosted.dispose();
  // A call already answered before the worker ended resolves whole; otherwise it rejects with ERR_WORKER.
  await pending.then((r) => t.is(r.length, PROMPTS.length), (e) => t.like(e, { code: "ERR_WORKER" }));
  await t.throwsAsync(hosted.predict(PROMPTS), { instanceOf: RomeError, code: "ERR_WORKER", message: /disposed/ });
});
