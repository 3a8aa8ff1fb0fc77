// Files rome-node reads back and writes: the statistics cache is verified by a content hash and
// recomputed (with a warning) when it does not verify; statistics of another model are refused;
// edits files with bad metadata are RomeErrors; exportCheckpoint replaces a directory whole, never
// deletes unrelated files, and removes the temporaries of killed runs.
import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { exportCheckpoint, exportEdits, loadEdits } from "../lib/edit/export.js";
import { memit } from "../lib/edit/memit.js";
import { rome } from "../lib/edit/rome.js";
import { computeStats, loadStats } from "../lib/edit/stats.js";
import { loadCheckpoint } from "../lib/model/checkpoint.js";
import { SafetensorsFile, writeSafetensors } from "../lib/model/safetensors.js";
import { Model } from "../lib/runtime/model.js";
import { maxAbsDiff, tempDir, TINYFACTS } from "./helpers.js";

let model: Model;
test.before(async () => {
  model = await Model.load(TINYFACTS, { threads: 1 });
});
test.after.always(async () => model?.dispose());

const TEXTS = ["Castle of Berkbre is located in the city of Montreal.", "Tower of Deathproust can be found in the city of Paris."];

function errorOf(fn: () => unknown): RomeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof RomeError) return e;
    throw e;
  }
  throw new Error("no error");
}

/** Collects the process warnings emitted while `fn` runs. */
async function warnings<T>(fn: () => Promise<T>): Promise<[T, string[]]> {
  const seen: string[] = [];
  const on = (w: Error) => seen.push(w.message);
  process.on("warning", on);
  try {
    const r = await fn();
    await new Promise((res) => setImmediate(res)); // warnings are emitted on the next tick
    return [r, seen];
  } finally {
    process.off("warning", on);
  }
}

/** A pid that no process has: a child that has already exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ["-e", "0"]).pid!;
}

test.serial("the statistics cache: changed bytes or a broken header are recomputed with a warning, never used", async (t) => {
  const cacheDir = tempDir(t);
  const first = await computeStats(model, { layer: 1, texts: TEXTS, cacheDir });
  t.false(first.cached);
  const file = first.path!;
  const pristine = readFileSync(file);
  t.true((await computeStats(model, { layer: 1, texts: TEXTS, cacheDir })).cached);

  // One byte of mom2 changed: the hash fails, loadStats refuses, computeStats recomputes.
  const changed = Buffer.from(pristine);
  changed[changed.length - 3] ^= 0x40;
  writeFileSync(file, changed);
  t.is(errorOf(() => loadStats(file)).code, "ERR_STATS_CORRUPT");
  const [again, w1] = await warnings(() => computeStats(model, { layer: 1, texts: TEXTS, cacheDir }));
  t.false(again.cached);
  t.is(maxAbsDiff(again.mom2, first.mom2), 0);
  t.true(w1.some((m) => /statistics cache file .* does not match its hash/.test(m)), w1.join("\n"));
  t.true(readFileSync(file).equals(pristine));

  // A corrupted header: recomputed, not a hard error.
  const broken = Buffer.from(pristine);
  broken.writeBigUInt64LE(1n << 40n, 0);
  writeFileSync(file, broken);
  const [third, w2] = await warnings(() => computeStats(model, { layer: 1, texts: TEXTS, cacheDir }));
  t.false(third.cached);
  t.true(w2.some((m) => /ERR_|header|not plausible/.test(m)), w2.join("\n"));

  // A cache file without a hash cannot be verified: recomputed too.
  const src = SafetensorsFile.open(file);
  const meta = { ...src.metadata };
  src.close();
  delete meta.sha256;
  writeSafetensors(file, { mom2: { dtype: "F64", shape: [512, 512], data: first.mom2 } }, meta);
  t.false((await warnings(() => computeStats(model, { layer: 1, texts: TEXTS, cacheDir })))[0].cached);
  t.true((await computeStats(model, { layer: 1, texts: TEXTS, cacheDir })).cached);
});

test.serial("statistics computed for another model are refused by rome() unless forceStats", async (t) => {
  const stats = await computeStats(model, { layer: 1, texts: TEXTS, cacheDir: false });
  const foreign = { ...stats, modelFingerprint: "0123456789abcdef0123456789abcdef" };
  const request = { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" };
  const options = { contextTemplates: ["{}"], hparams: { vNumGradSteps: 1 }, ridge: 1e-3 };
  const e = await t.throwsAsync(rome(model, request, { ...options, stats: foreign }), { instanceOf: RomeError });
  t.is((e as RomeError).code, "ERR_STATS_MISMATCH");
  t.regex(e!.message, /forceStats/);
  await t.notThrowsAsync(rome(model, request, { ...options, stats: foreign, forceStats: true }));
});

test.serial("loadEdits: malformed metadata or factors are ERR_EDITS_FILE, never SyntaxError or TypeError", (t) => {
  const dir = tempDir(t);
  const F = model.config.nInner;
  const D = model.config.nEmbd;
  const factors = { "0.u": { dtype: "F32" as const, shape: [F], data: new Float32Array(F) }, "0.v": { dtype: "F32" as const, shape: [D], data: new Float32Array(D) } };
  const meta = (edits: string) => ({ format: "rome-node-edits/1", model: model.fingerprint, edits });
  const cases: [string, string, Record<string, typeof factors["0.u"]>][] = [
    ["not JSON", "{not json", factors],
    ["an object", "{}", factors],
    ["null entry", "[null]", factors],
    ["numeric id", '[{"id":1,"layer":1}]', factors],
    ["layer out of range", '[{"id":"a","layer":99}]', factors],
    ["string layer", '[{"id":"a","layer":"1"}]', factors],
    ["info an array", '[{"id":"a","layer":1,"info":[]}]', factors],
    ["missing factors", '[{"id":"a","layer":1},{"id":"b","layer":1}]', factors],
    ["wrong size", '[{"id":"a","layer":1}]', { ...factors, "0.u": { dtype: "F32", shape: [3], data: new Float32Array(3) } }],
  ];
  for (const [name, edits, tensors] of cases) {
    const file = join(dir, `${name}.safetensors`);
    writeSafetensors(file, tensors, meta(edits));
    t.is(errorOf(() => loadEdits(file, model)).code, "ERR_EDITS_FILE", name);
  }
  const nan = join(dir, "nan.safetensors");
  const u = new Float32Array(F);
  u[5] = NaN;
  writeSafetensors(nan, { ...factors, "0.u": { dtype: "F32", shape: [F], data: u } }, meta('[{"id":"a","layer":1}]'));
  t.is(errorOf(() => loadEdits(nan, model)).code, "ERR_NOT_FINITE");
  writeSafetensors(join(dir, "other.safetensors"), factors, { format: "something-else" });
  t.is(errorOf(() => loadEdits(join(dir, "other.safetensors"), model)).code, "ERR_EDITS_FILE");
});

test.serial("exportCheckpoint writes the directory whole, replaces only earlier exports, removes stale temporaries", async (t) => {
  const root = tempDir(t);
  const id = model.edits.apply({ layer: 1, u: new Float32Array(model.config.nInner).fill(0.01), v: new Float32Array(model.config.nEmbd).fill(0.02) });
  try {
    const out = join(root, "ckpt");
    // Temporaries of a killed run (a dead pid) beside the target are removed; a live process's are not.
    const dead = deadPid();
    mkdirSync(join(root, `.ckpt.${dead}.0badc0de.tmp`));
    writeFileSync(join(root, `.ckpt.${dead}.0badc0de.tmp`, "model.safetensors"), "partial");
    writeFileSync(join(root, `.edits.safetensors.${dead}.12345678.tmp`), "partial");
    writeFileSync(join(root, `.keep.${process.pid}.12345678.tmp`), "in flight");
    await exportCheckpoint(model, out);
    t.deepEqual(readdirSync(root).sort(), [`.keep.${process.pid}.12345678.tmp`, "ckpt"]);
    t.is(loadCheckpoint(out).weights.size, 4 + 12 * 6);

    // An earlier export is replaced whole.
    await exportCheckpoint(model, out);
    t.true(loadCheckpoint(out).fingerprint.length > 0);
    t.deepEqual(readdirSync(root).filter((n) => n.startsWith(".ckpt")), []);

    // A directory with other files is never replaced; a missing parent is ERR_IO before any work.
    const other = join(root, "mine");
    mkdirSync(other);
    writeFileSync(join(other, "notes.txt"), "keep me");
    t.is((await t.throwsAsync(exportCheckpoint(model, other), { instanceOf: RomeError }))!.code, "ERR_IO");
    t.is(readFileSync(join(other, "notes.txt"), "utf8"), "keep me");
    t.is((await t.throwsAsync(exportCheckpoint(model, join(root, "absent", "ckpt")), { instanceOf: RomeError }))!.code, "ERR_IO");
    t.false(existsSync(join(root, "absent")));
    t.deepEqual(readdirSync(root).filter((n) => n.startsWith(".") && !n.startsWith(".keep")), []);

    exportEdits(model, join(root, "edits.safetensors"));
    t.is(loadEdits(join(root, "edits.safetensors"), model).length, 1);
  } finally {
    model.edits.undo(id);
  }
});

test.serial("a malformed .json corpus is ERR_STATS; a cache folder that cannot be written warns and keeps the result", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "corpus.json"), "[not json");
  const e = await t.throwsAsync(computeStats(model, { layer: 1, corpus: join(dir, "corpus.json"), cacheDir: false }), { instanceOf: RomeError });
  t.is((e as RomeError).code, "ERR_STATS");
  const [s, w] = await warnings(() => computeStats(model, { layer: 1, texts: TEXTS, cacheDir: join(dir, "corpus.json") }));
  t.false(s.cached);
  t.is(s.path, undefined);
  t.true(w.some((m) => /could not write the statistics cache/.test(m)));
});

test.serial("memit refuses statistics of another model too, unless forceStats", async (t) => {
  const stats = await computeStats(model, { layer: 1, texts: TEXTS, cacheDir: false });
  const foreign = { ...stats, modelFingerprint: "0123456789abcdef0123456789abcdef" };
  const request = { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" };
  const e = await t.throwsAsync(memit(model, [request], { layers: [1], stats: [foreign], contextTemplates: ["{}"] }), { instanceOf: RomeError });
  t.is((e as RomeError).code, "ERR_STATS_MISMATCH");
});
