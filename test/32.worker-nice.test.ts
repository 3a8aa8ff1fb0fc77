// Thread priority of the worker host: the addon's niceThread changes the nice value of the calling
// thread alone (read back from /proc/thread-self on that thread), and a model loaded with
// { worker: true, nice } runs on a thread nice'd by that much while the caller's thread keeps its
// own (by default nothing is nice'd). Linux only: elsewhere niceThread returns null.
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { Model, niceNativeThread, RomeError } from "../lib/index.js";
import * as native from "../lib/native.js";
import { TINYFACTS } from "./helpers.js";

const { path, capabilities } = native.loadNative();

/** The nice value in /proc/.../stat (field 19; the fields after the command's closing parenthesis start at field 3). */
function niceOf(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}
const mainNice = () => niceOf(readFileSync("/proc/thread-self/stat", "utf8"));
/** The nice values of this process's threads. */
function threadNices(): number[] {
  return readdirSync("/proc/self/task").map((tid) => niceOf(readFileSync(`/proc/self/task/${tid}/stat`, "utf8")));
}

test("niceThread validates its increment in TypeScript and in C++", (t) => {
  for (const bad of [1.5, 40, -40, Number.NaN]) t.throws(() => niceNativeThread(bad), { instanceOf: RomeError, code: "ERR_ARGUMENT" });
  t.throws(() => native.nativeAddonForTests().niceThread(40), { code: "ERR_NATIVE_ARGUMENT", message: /\[-39, 39\]/ });
});

test.serial("niceThread raises the nice value of the calling thread only", async (t) => {
  if (!capabilities.threadNice) {
    t.is(niceNativeThread(0), null);
    return;
  }
  const before = mainNice();
  // the worker loads the addon itself and reads its own thread's stat on its own thread
  const src = `
    const { parentPort, workerData } = require("node:worker_threads");
    const { readFileSync } = require("node:fs");
    const nice = () => { const s = readFileSync("/proc/thread-self/stat", "utf8"); return Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[16]); };
    const addon = require(workerData.path);
    const was = nice();
    const returned = addon.niceThread(3);
    parentPort.postMessage({ was, returned, now: nice(), again: addon.niceThread(30) });`;
  const worker = new Worker(src, { eval: true, workerData: { path } });
  const r = await new Promise<{ was: number; returned: number; now: number; again: number }>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  await new Promise((resolve) => worker.once("exit", resolve));
  t.is(r.was, before, "a new thread starts at its creator's nice value");
  t.is(r.returned, Math.min(19, before + 3));
  t.is(r.now, r.returned);
  t.is(r.again, 19, "clamped to 19 as nice(2) does");
  t.is(mainNice(), before, "the caller's thread is untouched");
});

test.serial("a hosted model's worker runs nice'd by its nice option, by default not at all, and the caller's thread keeps its own", async (t) => {
  if (!capabilities.threadNice) return t.pass("no per-thread nice values here");
  const before = mainNice();
  // the default first, while no thread of this process has been nice'd (the test above awaited its worker's exit)
  const plain = await Model.load(TINYFACTS, { worker: true });
  try {
    t.deepEqual([...new Set(threadNices())], [before], "by default every thread stays at the caller's value");
  } finally {
    await plain.dispose();
  }
  const expected = Math.min(19, before + 5);
  const niced = await Model.load(TINYFACTS, { worker: true, nice: 5 });
  try {
    if (expected > before) t.true(threadNices().includes(expected), `thread nice values: ${threadNices().join(" ")}`);
    t.is(mainNice(), before);
  } finally {
    await niced.dispose();
  }
  await t.throwsAsync(Model.load(TINYFACTS, { worker: true, nice: 20 }), { instanceOf: RomeError, code: "ERR_ARGUMENT" });
});
