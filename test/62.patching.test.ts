import test from "ava";
import { RomeError } from "../lib/errors.js";
import { Model } from "../lib/runtime/model.js";
import { patchActivations } from "../lib/trace/patching.js";
import { trace } from "../lib/trace/trace.js";
import { TINYFACTS } from "./helpers.js";

const prompt = "Castle of Berkbre is located in the city of";
const subject = "Castle of Berkbre";
const corrupt = { subject, noise: 0.47, samples: 4 };
let model: Model;
test.before(async () => {
  model = await Model.load(TINYFACTS);
});
test.after.always(async () => model?.dispose());

test("tracing's restorations are special cases of activation patching", async (t) => {
  const resid = await trace(model, { prompt, subject, noise: 0.47, samples: 4, kind: "resid" });
  const mlp = await trace(model, { prompt, subject, noise: 0.47, samples: 4, kind: "mlp", window: 3 });
  const attn = await trace(model, { prompt, subject, noise: 0.47, samples: 4, kind: "attn", window: 3 });
  for (const [tok, layer] of [[3, 0], [4, 2], [10, 1]] as const) {
    const r = await patchActivations(model, { prompt, corrupt, patches: [{ site: "resid", layers: [layer], positions: [tok], source: "clean" }] });
    t.true(Math.abs(r.patched - resid.scores[tok]![layer]!) < 1e-6, `resid (${tok}, ${layer})`);
    t.true(Math.abs(r.unpatched - resid.lowScore) < 1e-6);
    const win = [layer - 1, layer, layer + 1].filter((l) => l >= 0 && l < 6);
    const m = await patchActivations(model, { prompt, corrupt, patches: [{ site: "mlp_out", layers: win, positions: [tok], source: "clean" }] });
    t.true(Math.abs(m.patched - mlp.scores[tok]![layer]!) < 1e-6, `mlp (${tok}, ${layer})`);
    const a = await patchActivations(model, { prompt, corrupt, patches: [{ site: "attn_out", layers: win, positions: [tok], source: "clean" }] });
    t.true(Math.abs(a.patched - attn.scores[tok]![layer]!) < 1e-6, `attn (${tok}, ${layer})`);
  }
});

test("patching the clean MLP key is patching the clean MLP output", async (t) => {
  const byKey = await patchActivations(model, { prompt, corrupt, patches: [{ site: "mlp_key", layers: [0], positions: [3], source: "clean" }] });
  const byOut = await patchActivations(model, { prompt, corrupt, patches: [{ site: "mlp_out", layers: [0], positions: [3], source: "clean" }] });
  t.true(Math.abs(byKey.patched - byOut.patched) < 1e-5, `${byKey.patched} vs ${byOut.patched}`);
  t.true(byKey.patched > byKey.unpatched + 0.2, "the first-name MLP at layer 0 carries the fact");
});

test("zero and mean ablations, given vectors, and the identity patch", async (t) => {
  const same = await patchActivations(model, { prompt, patches: [{ site: "resid", layers: [2], positions: [0, 5, 10], source: "clean" }] });
  t.is(same.patched, same.clean);
  const zero = await patchActivations(model, { prompt, patches: [{ site: "mlp_out", layers: [0], positions: [3, 4], source: "zero" }] });
  t.true(zero.patched < zero.clean - 0.1, `zeroing the subject's layer-0 MLP output lowers p: ${zero.patched}`);
  const mean = await patchActivations(model, { prompt, patches: [{ site: "attn_out", layers: [1, 2, 3], positions: [10], source: "mean" }] });
  t.true(mean.patched < mean.clean);
  const given = await patchActivations(model, { prompt, patches: [{ site: "mlp_out", layers: [0], positions: [3, 4], source: new Float32Array(128) }] });
  t.is(given.patched, zero.patched);
});

test("bad patches are RomeErrors", async (t) => {
  const code = async (p: object) => ((await t.throwsAsync(patchActivations(model, { prompt, ...p } as never), { instanceOf: RomeError })) as RomeError).code;
  t.is(await code({ patches: [{ site: "neurons", layers: [0], positions: [0], source: "clean" }] }), "ERR_UNKNOWN_KIND");
  t.is(await code({ patches: [{ site: "resid", layers: [6], positions: [0], source: "clean" }] }), "ERR_ARGUMENT");
  t.is(await code({ patches: [{ site: "resid", layers: [0], positions: [11], source: "clean" }] }), "ERR_ARGUMENT");
  t.is(await code({ patches: [{ site: "resid", layers: [0], positions: [0], source: "corrupted" }] }), "ERR_ARGUMENT");
  t.is(await code({ patches: [{ site: "mlp_key", layers: [0], positions: [0], source: new Float32Array(128) }] }), "ERR_ARGUMENT");
});
