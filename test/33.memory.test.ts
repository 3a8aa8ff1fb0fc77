import test from "ava";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { valueSession } from "../lib/edit/value-graph.js";
import { loadCheckpoint } from "../lib/model/checkpoint.js";
import { Model } from "../lib/runtime/model.js";
import { ROOT, TINYFACTS } from "./helpers.js";

test("load and dispose 20 times in a fresh process: resident memory grows by at most 5% after warm-up", (t) => {
  const out = execFileSync(process.execPath, ["--import=tsx", "--expose-gc", join(ROOT, "test", "fixtures", "load-dispose.ts"), TINYFACTS, "20"], { encoding: "utf8", cwd: ROOT });
  const rss = JSON.parse(out.trim().split("\n").at(-1)!) as number[];
  t.is(rss.length, 20);
  const warm = rss[4]!;
  const growth = rss[19]! / warm - 1;
  t.log(`RSS after cycle 5: ${(warm / 2 ** 20).toFixed(1)} MiB, after cycle 20: ${(rss[19]! / 2 ** 20).toFixed(1)} MiB (${(100 * growth).toFixed(1)}%)`);
  t.true(growth <= 0.05, `RSS grew by ${(100 * growth).toFixed(1)}% between cycles 5 and 20`);
});

test("a loaded model streams its weights: same fingerprint as reading the whole checkpoint, weights read back on demand", async (t) => {
  const whole = loadCheckpoint(TINYFACTS);
  const model = await Model.load(TINYFACTS);
  t.is(model.fingerprint, whole.fingerprint);
  const name = "h.2.mlp.c_proj.weight";
  const a = model.weights.get(name)!;
  t.deepEqual(a.data, whole.weights.get(name)!.data);
  t.not(model.weights.get(name)!.data, a.data); // a fresh read each time: nothing resident to alias
  await model.dispose();
  const e = t.throws(() => model.weights.get(name), { instanceOf: RomeError }) as RomeError;
  t.is(e.code, "ERR_DISPOSED");
});

test("the model owns its gradient sessions: built once, freed by dispose, refused afterwards", async (t) => {
  const model = await Model.load(TINYFACTS);
  const s = await valueSession(model, 1);
  t.is(await valueSession(model, 1), s);
  t.is(model.resources.size, 1);
  await model.dispose();
  t.is(model.resources.size, 0);
  const e = t.throws(() => valueSession(model, 1), { instanceOf: RomeError }) as RomeError;
  t.is(e.code, "ERR_DISPOSED");
});

test("load reports progress per segment up to the total, and an aborted load rejects with AbortError", async (t) => {
  const seen: number[] = [];
  let total = 0;
  const model = await Model.load(TINYFACTS, { onProgress: (p) => { t.is(p.phase, "load"); seen.push(p.done); total = p.total; } });
  t.deepEqual(seen, Array.from({ length: total }, (_, i) => i + 1));
  t.is(total, 2 + 2 * model.config.nLayer); // embeddings, attention and MLP per layer, head
  await model.dispose();
  const controller = new AbortController();
  const e = await t.throwsAsync(Model.load(TINYFACTS, { signal: controller.signal, onProgress: (p) => { if (p.done === 3) controller.abort(new Error("enough")); } }));
  t.is(e!.name, "AbortError");
  t.is((e as RomeError).code, "ERR_ABORTED");
});

test("memoryArena only changes where onnxruntime's buffers come from: bit-identical logits, and a non-boolean is refused", async (t) => {
  const prompts = ["Castle of Berkbre is located in the city of", "The"];
  const off = await Model.load(TINYFACTS);
  const on = await Model.load(TINYFACTS, { memoryArena: true });
  t.false(off.memoryArena);
  t.true(on.memoryArena);
  for (let run = 0; run < 2; run++) { // the second run reuses the arena's buffers
    const [a, b] = [await off.nextTokenLogits(prompts), await on.nextTokenLogits(prompts)];
    for (let i = 0; i < prompts.length; i++) t.deepEqual(a[i], b[i]);
  }
  await off.dispose();
  await on.dispose();
  const e = await t.throwsAsync(Model.load(TINYFACTS, { memoryArena: "yes" as unknown as boolean }), { instanceOf: RomeError }) as RomeError;
  t.is(e.code, "ERR_ARGUMENT");
  t.regex(e.message, /memoryArena must be true or false/);
});
