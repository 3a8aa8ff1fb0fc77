import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { batchTargets, memitSolver, setupBatch, type MemitOptions } from "../lib/edit/memit.js";
import { prepareBatch, type MemitRequest } from "../lib/edit/memit-requests.js";
import { spreadUpdates } from "../lib/edit/memit-spread.js";
import { computeStats, computeStatsLayers, loadStats, type Stats } from "../lib/edit/stats.js";
import { SafetensorsFile } from "../lib/model/safetensors.js";
import { Model } from "../lib/runtime/model.js";
import { maxAbsDiff, relFrobenius, tempDir, TINYFACTS } from "./helpers.js";

// The reference code's batch of 10 CounterFact records (kmeng01/memit at layers [0, 1], λ 20, clamp 4, 100 steps).
const golden = JSON.parse(readFileSync(join(TINYFACTS, "golden-memit.json"), "utf8"));
const tensors = SafetensorsFile.open(join(TINYFACTS, "golden-memit.safetensors"));
const read = (name: string): Float32Array | Float64Array => (tensors.entries.get(name)!.dtype === "F64" ? tensors.readFloat64(name) : tensors.readFloat32(name));
const requests: MemitRequest[] = golden.records.map((r: { requested_rewrite: { prompt: string; subject: string; target_new: { str: string }; relation_id: string } }) => ({
  prompt: r.requested_rewrite.prompt, subject: r.requested_rewrite.subject, targetNew: r.requested_rewrite.target_new.str, relationId: r.requested_rewrite.relation_id,
}));
const hp = golden.meta.hparams;

let model: Model;
let stats: Stats[];
let options: MemitOptions;
test.before(async () => {
  model = await Model.load(TINYFACTS);
  stats = [0, 1].map((l) => ({ ...loadStats(join(TINYFACTS, `stats-layer${l}.safetensors`)), layer: l }));
  options = {
    layers: hp.layers, stats, contextTemplates: golden.meta.template_groups,
    hparams: { mom2UpdateWeight: hp.mom2_update_weight, clampNormFactor: hp.clamp_norm_factor, vNumGradSteps: hp.v_num_grad_steps, vLr: hp.v_lr, vWeightDecay: hp.v_weight_decay, klFactor: hp.kl_factor },
  };
});
test.after.always(async () => {
  tensors.close();
  await model?.dispose();
});

test.serial("ΔW per layer, the keys and adj_k match the reference's golden batch within 1e-3 relative (its z, templates, statistics)", async (t) => {
  const setup = await setupBatch(model, requests, options, "memit");
  const N = requests.length;
  const { nInner: F, nEmbd: D } = model.config;
  const spread = await spreadUpdates(model, setup.batch, read("z") as Float32Array, setup.layers, memitSolver(model, setup.stats, hp.mom2_update_weight));
  t.deepEqual(spread.layers.map((l) => l.layer), [0, 1]);
  for (const [i, l] of spread.layers.entries()) {
    const delta = new Float64Array(F * D); // (F, D) = U V
    for (let f = 0; f < F; f++) for (let r = 0; r < N; r++) for (let d = 0; d < D; d++) delta[f * D + d] += l.u[f * N + r]! * l.v[r * D + d]!;
    const e = relFrobenius(delta, read(`layer${l.layer}.delta`));
    t.true(e < 1e-3, `layer ${l.layer}: ΔW relative error ${e}`);
    t.true(relFrobenius(spread.keys[i]!, read(`layer${l.layer}.keys`)) < 1e-5, `layer ${l.layer} keys`);
    t.true(relFrobenius(l.v, read(`layer${l.layer}.resid`)) < 1e-4, `layer ${l.layer} resid (z − z_cur, spread)`);
    const adjT = new Float64Array(N * F); // reference layout (N, F)
    for (let f = 0; f < F; f++) for (let r = 0; r < N; r++) adjT[r * F + f] = l.u[f * N + r]!;
    t.true(relFrobenius(adjT, read(`layer${l.layer}.adj_k`)) < 1e-3, `layer ${l.layer} adj_k`);
    t.true(Math.abs(spread.report[i]!.updateNorm - golden.meta.update_checks[l.layer].delta_fro_norm) < 1e-3 * golden.meta.update_checks[l.layer].delta_fro_norm);
  }
});

test.serial("batched targets z match the reference's z (one converging early, one running every step)", async (t) => {
  // Requests 2 (stops at step 50, loss < 5e-2) and 8 (100 steps) of the golden batch, optimised together.
  const pick = [2, 8];
  const setup = await setupBatch(model, pick.map((i) => requests[i]!), options, "memit");
  const z = await batchTargets(model, setup, options);
  const D = model.config.nEmbd;
  const zRef = read("z");
  pick.forEach((i, r) => {
    const e = relFrobenius(z.z.subarray(r * D, (r + 1) * D), zRef.subarray(i * D, (i + 1) * D));
    t.true(e < 1e-3, `request ${i}: z relative error ${e}`);
  });
  t.deepEqual(z.converged, [true, false]);
  t.is(z.losses[0]!.length, 50);
  t.is(z.losses[1]!.length, 100);
  const last = golden.records[8].z_opt.losses.at(-1);
  t.true(Math.abs(z.losses[1]!.at(-1)!.loss - last.loss) < 2e-3, `final loss ${z.losses[1]!.at(-1)!.loss} vs ${last.loss}`);
});

test.serial("requests with one subject and relation but two objects are refused; a shared subject alone is reported", async (t) => {
  const a = { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" };
  const err = await t.throwsAsync(prepareBatch(model, [a, { ...a, targetNew: "Lyon" }], [["{}"]]), { instanceOf: RomeError });
  t.is((err as RomeError).code, "ERR_EDIT_CONFLICT");
  t.regex(err!.message, /requests 0 and 1 .*Castle of Berkbre/);
  const ok = await prepareBatch(model, [a, { prompt: "{} is a landmark in the country of", subject: "Castle of Berkbre", targetNew: "Peru" }, requests[1]!], [["{}"]]);
  t.deepEqual(ok.sharedSubjects, [{ subject: "Castle of Berkbre", requests: [0, 1] }]);
  const same = await prepareBatch(model, [a, { ...a, targetNew: " Berlin" }], [["{}"]]);
  t.deepEqual(same.sharedSubjects, []);
});

test.serial("computeStatsLayers measures several layers in one pass, equal to the reference's, cached per layer", async (t) => {
  const dir = tempDir(t);
  const corpus = join(TINYFACTS, "train.txt");
  const both = await computeStatsLayers(model, { layers: [1, 0], corpus, cacheDir: dir });
  t.deepEqual(both.map((s) => s.layer), [1, 0]);
  for (const s of both) {
    t.false(s.cached);
    t.is(s.count, 46427);
    t.is(s.throughput?.layersInPass, 2);
    t.true(s.throughput!.tokensPerSecond > 0);
    const d = maxAbsDiff(s.mom2, stats[s.layer]!.mom2);
    t.true(d <= 1e-5, `layer ${s.layer}: max difference to the reference's float32 statistics ${d}`);
  }
  const zero = await computeStats(model, { layer: 0, corpus, cacheDir: dir });
  t.true(zero.cached);
  t.is(maxAbsDiff(zero.mom2, both[1]!.mom2), 0);
  const mixed = await computeStatsLayers(model, { layers: [0, 2], corpus, cacheDir: dir });
  t.true(mixed[0]!.cached);
  t.is(mixed[1]!.throughput?.layersInPass, 1);
});
