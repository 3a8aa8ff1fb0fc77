// Restoration plans (lib/trace/restore-plan.ts): the addon's applyPlan and the JavaScript fallback
// execute the same plan bit for bit; bad plans are refused before they run (ERR_ARGUMENT) and by
// the addon itself (ERR_NATIVE_ARGUMENT); traces and activation patching give the same numbers on
// either executor, and with the addon disabled (ROME_NATIVE_PATH=none) tracing runs on the fallback.
import test from "ava";
import { spawnSync } from "node:child_process";
import { RomeError } from "../lib/errors.js";
import { nativeAddonForTests } from "../lib/native.js";
import { Model } from "../lib/runtime/model.js";
import { patchActivations } from "../lib/trace/patching.js";
import { forceRestoreBackend, restoreBackend, RestorePlan } from "../lib/trace/restore-plan.js";
import { traceKinds, traceSevered } from "../lib/trace/trace.js";
import { ROOT, TINYFACTS } from "./helpers.js";

const prompt = "Castle of Berkbre is located in the city of";
const subject = "Castle of Berkbre";

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

test("random plans: the addon, the JavaScript fallback and a naive loop write the same bits, the destination among the sources", (t) => {
  const rand = rng(7);
  const int = (n: number) => Math.floor(rand() * n);
  for (let trial = 0; trial < 200; trial++) {
    const W = 1 + int(70);
    const dstVecs = 1 + int(40);
    const sources = Array.from({ length: 1 + int(4) }, () => Float32Array.from({ length: W * (1 + int(30)) }, () => rand() * 2 - 1));
    const init = Float32Array.from({ length: W * dstVecs }, () => rand());
    const withDst = int(2) === 1; // the destination is also the last bound source
    const bound = withDst ? 1 : 0;
    const plan = new RestorePlan(W, bound);
    const slots = sources.map((s) => plan.slot(s));
    const all = withDst ? [init, ...sources] : sources; // slot order: bound first
    const entries: number[][] = [];
    for (let e = 0; e < int(12); e++) {
      const pickSlot = () => (withDst && int(4) === 0 ? 0 : slots[int(slots.length)]!);
      const a = pickSlot();
      const b = int(2) ? pickSlot() : -1;
      const len = (slot: number) => all[slot]!.length / W;
      const n = Math.min(1 + int(5), dstVecs, len(a), b >= 0 ? len(b) : Infinity);
      const d = int(dstVecs - n + 1), at = int(len(a) - n + 1), bt = b >= 0 ? int(len(b) - n + 1) : 0;
      if (b >= 0) plan.add(d, n, a, at, b, bt);
      else plan.copy(d, n, a, at);
      entries.push([d, n, a, at, b, bt]);
    }
    // naive: entry by entry; copies through a temporary (memmove), sums element by element in order
    const ref = init.slice();
    const refSources = withDst ? [ref, ...sources] : sources;
    for (const [d, n, a, at, b, bt] of entries) {
      const x = refSources[a!]!, y = b! >= 0 ? refSources[b!]! : undefined;
      if (y) for (let i = 0; i < n! * W; i++) ref[d! * W + i] = Math.fround(x[at! * W + i]! + y[bt! * W + i]!);
      else ref.set(x.slice(at! * W, (at! + n!) * W), d! * W);
    }
    const outs: Float32Array[] = [];
    for (const backend of ["native", "js"] as const) {
      forceRestoreBackend(backend);
      const out = init.slice();
      plan.run(out, withDst ? [out] : []);
      outs.push(out);
    }
    forceRestoreBackend(undefined);
    t.deepEqual(outs[0], ref, `native, trial ${trial}`);
    t.deepEqual(outs[1], ref, `js, trial ${trial}`);
  }
});

test("bad plans are refused before anything is written", (t) => {
  const dst = new Float32Array(8).fill(3);
  const src = new Float32Array(8);
  const plan = new RestorePlan(4);
  plan.copy(1, 2, plan.slot(src), 0); // vectors 1..2 of a 2-vector dst
  const e = t.throws(() => plan.run(dst), { instanceOf: RomeError }) as RomeError;
  t.is(e.code, "ERR_ARGUMENT");
  t.is(e.message, "restoration plan entry 0 (1, 2, 0, 0, -1, 0) is outside its buffers (width 4)");
  t.throws(() => new RestorePlan(4, 1).copy(0, 1, 0, 0).run(dst), { message: "this plan takes 1 bound sources but received 0" });
  t.deepEqual(dst, new Float32Array(8).fill(3));
  // the addon re-checks on its own: the same entries sent raw
  const raw = nativeAddonForTests();
  const entries = [[0, 1, 0, 0, -1, 0], [1, 2, 0, 0, -1, 0], [0, 1, 1, 0, -1, 0], [0, 1, 0, 2, -1, 0], [0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 2], [0, -1, 0, 0, -1, 0]];
  const msgs = entries.map((row) => {
    dst.fill(3);
    try {
      raw.applyPlan(dst, [src], Int32Array.from([0, 1, 0, 0, -1, 0, ...row]), 4);
      return "returned";
    } catch (err) {
      t.deepEqual(dst, new Float32Array(8).fill(3), "a refused plan writes nothing, not even its valid first entry");
      return `${(err as RomeError).code}: ${(err as RomeError).message}`;
    }
  });
  t.is(msgs[0], "returned");
  t.deepEqual(msgs.slice(1), [
    "ERR_NATIVE_ARGUMENT: applyPlan: plan entry 1 writes outside dst",
    "ERR_NATIVE_ARGUMENT: applyPlan: plan entry 1 names source 1 of 1",
    "ERR_NATIVE_ARGUMENT: applyPlan: plan entry 1 reads outside source 0",
    "ERR_NATIVE_ARGUMENT: applyPlan: plan entry 1 names source 1 of 1",
    "ERR_NATIVE_ARGUMENT: applyPlan: plan entry 1 reads outside source 0",
    "ERR_NATIVE_ARGUMENT: applyPlan: plan entry 1 writes outside dst",
  ]);
  t.throws(() => raw.applyPlan(dst, [src], new Int32Array(5), 4), { message: "applyPlan: plan length 5 is not a multiple of 6" });
  t.throws(() => raw.applyPlan(dst, [src], new Int32Array(6), 0.5), { message: "applyPlan: width must be an integer in [1, 2^31 - 1]" });
  t.throws(() => raw.applyPlan(dst, [new Float64Array(8) as never], new Int32Array(6), 4), { message: "Expected Float32Array for sources[0]" });
});

test("traces, severed traces and activation patching: the same bits on the addon and on the JavaScript fallback", async (t) => {
  const model = await Model.load(TINYFACTS, { threads: 1 });
  t.teardown(() => model.dispose());
  const run = async () => ({
    kinds: await traceKinds(model, { prompt, subject, samples: 3, window: 3 }, ["resid", "mlp", "attn"]),
    naive: await traceKinds(model, { prompt, subject, samples: 2, window: 3, strategy: "naive" }, ["mlp"]),
    severed: await traceSevered(model, { prompt, subject, samples: 2, semantics: "reference" }),
    patch: await patchActivations(model, { prompt, corrupt: { subject, noise: 0.3, samples: 3 }, patches: [
      { site: "resid", layers: [1], positions: [0, 2], source: "clean" },
      { site: "attn_out", layers: [2, 3], positions: [1], source: "corrupted" },
      { site: "mlp_out", layers: [0, 4], positions: [3], source: "mean" },
      { site: "mlp_out", layers: [4], positions: [3, 4], source: "zero" },
    ] }),
  });
  forceRestoreBackend("native");
  const native = await run();
  forceRestoreBackend("js");
  const js = await run();
  forceRestoreBackend(undefined);
  t.deepEqual(js, native);
  t.true(native.kinds.resid!.highScore > native.kinds.resid!.lowScore);
});

test("with the addon disabled (ROME_NATIVE_PATH=none) a trace runs on the JavaScript fallback, same numbers", async (t) => {
  const script = `
    import { Model } from "./lib/runtime/model.js";
    import { trace } from "./lib/trace/trace.js";
    import { restoreBackend } from "./lib/trace/restore-plan.js";
    const m = await Model.load(${JSON.stringify(TINYFACTS)}, { threads: 1 });
    const r = await trace(m, { prompt: ${JSON.stringify(prompt)}, subject: ${JSON.stringify(subject)}, samples: 3, kind: "mlp", window: 3 });
    console.log(JSON.stringify({ backend: restoreBackend(), scores: r.scores }));
    await m.dispose();`;
  const child = spawnSync(process.execPath, ["--import=tsx", "--input-type=module", "-e", script], {
    cwd: ROOT, env: { ...process.env, ROME_NATIVE_PATH: "none" }, encoding: "utf8",
  });
  t.is(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as { backend: string; scores: number[][] };
  t.is(out.backend, "js");
  t.is(restoreBackend(), "native");
  const model = await Model.load(TINYFACTS, { threads: 1 });
  t.teardown(() => model.dispose());
  const here = (await traceKinds(model, { prompt, subject, samples: 3, window: 3 }, ["mlp"])).mlp!;
  t.deepEqual(out.scores, here.scores);
});
