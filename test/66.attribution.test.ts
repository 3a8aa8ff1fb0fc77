import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { Model } from "../lib/runtime/model.js";
import { recallAt, spearman, topIndices } from "../lib/trace/agreement.js";
import { restoredProbability } from "../lib/trace/attribution.js";
import { traceKinds, traceSevered, type TraceResult } from "../lib/trace/trace.js";
import { TINYFACTS } from "./helpers.js";

const known = JSON.parse(readFileSync(join(TINYFACTS, "known.json"), "utf8"));
const KINDS = ["resid", "mlp", "attn"] as const;

let model: Model;
test.before(async () => {
  model = await Model.load(TINYFACTS);
});
test.after.always(async () => model?.dispose());

/** The cells the noise can reach (tokens from the subject's first on), flattened. */
const live = (r: TraceResult, grid: number[][] = r.scores) => grid.slice(r.subjectRange[0]).flat();

test("with little noise the first-order estimate ranks the cells as the exact trace does", async (t) => {
  const f = known[0];
  const opts = { prompt: f.prompt, subject: f.subject, noise: 0.005, samples: 2, window: 3 };
  const exact = await traceKinds(model, opts, KINDS);
  const est = await traceKinds(model, { ...opts, strategy: "attribution" }, KINDS);
  for (const k of KINDS) {
    const rho = spearman(live(exact[k]!), live(est[k]!));
    t.log(k, rho);
    t.true(rho > 0.9, `${k}: Spearman ${rho}`);
    t.is(est[k]!.strategy, "attribution");
    t.is(est[k]!.lowScore, exact[k]!.lowScore);
    // Tokens before the subject: nothing to restore, the estimate is the low score exactly.
    est[k]!.scores.slice(0, est[k]!.subjectRange[0]).flat().forEach((v) => t.is(v, est[k]!.lowScore));
  }
  t.true(est.resid!.flops.executed < exact.resid!.flops.executed / 5);
});

test("at the reference's noise level the estimate still correlates, and finds most of the exact top cells", async (t) => {
  let rho = 0;
  let recall = 0;
  let n = 0;
  for (const f of known.slice(0, 2)) {
    const opts = { prompt: f.prompt, subject: f.subject, noise: 0.47, samples: 3 };
    const exact = await traceKinds(model, opts, KINDS);
    const est = await traceKinds(model, { ...opts, strategy: "attribution" }, KINDS);
    for (const k of KINDS) {
      rho += spearman(live(exact[k]!), live(est[k]!));
      recall += recallAt(live(exact[k]!), live(est[k]!), 5, 10);
      n++;
    }
  }
  t.true(rho / n > 0.2, `mean Spearman ${rho / n}`);
  t.true(recall / n >= 0.5, `mean recall of the exact top 5 in the estimate's top 10 ${recall / n}`);
});

test("refine computes exactly the top k cells per kind by estimate, equal to the exact sweep's", async (t) => {
  const f = known[3];
  const opts = { prompt: f.prompt, subject: f.subject, noise: 0.47, samples: 3, window: 5 };
  const exact = await traceKinds(model, opts, KINDS);
  const refined = await traceKinds(model, { ...opts, strategy: "refine", topK: 4 }, KINDS);
  for (const k of KINDS) {
    const r = refined[k]!;
    const mask = r.attribution!.exact!.flat();
    const est = r.attribution!.score.flat();
    const L = r.scores[0]!.length;
    const b = r.subjectRange[0] * L;
    // the chosen cells: the 4 best estimates among the reachable ones
    const chosen = topIndices(est.slice(b), 4).map((i) => i + b).sort((x, y) => x - y);
    t.deepEqual(mask.flatMap((x, i) => (x ? [i] : [])), chosen, k);
    const ex = exact[k]!.scores.flat();
    r.scores.flat().forEach((v, i) => {
      if (mask[i]) t.true(Math.abs(v - ex[i]!) <= 1e-6, `${k} cell ${i}: ${v} vs ${ex[i]}`);
      else t.is(v, est[i]!);
    });
    t.true(r.flops.executed < exact[k]!.flops.executed);
  }
});

test("the gradient session belongs to the model: built once, freed by dispose", async (t) => {
  const own = await Model.load(TINYFACTS);
  const opts = { prompt: known[0].prompt, subject: known[0].subject, noise: 0.1, samples: 2, kind: "resid" as const, strategy: "attribution" as const };
  const held = own.resources.size;
  const first = await traceKinds(own, opts, ["resid"]);
  t.is(own.resources.size, held + 1);
  t.deepEqual(await traceKinds(own, opts, ["resid"]), first);
  t.is(own.resources.size, held + 1);
  await own.dispose();
  t.is(own.resources.size, 0);
  await t.throwsAsync(traceKinds(own, opts, ["resid"]), { instanceOf: RomeError });
});

test("strategy and topK are checked", async (t) => {
  const f = known[0];
  await t.throwsAsync(traceKinds(model, { prompt: f.prompt, subject: f.subject, strategy: "guess" as never }, ["resid"]), { code: "ERR_ARGUMENT" });
  await t.throwsAsync(traceKinds(model, { prompt: f.prompt, subject: f.subject, strategy: "refine", topK: 0 }, ["resid"]), { code: "ERR_ARGUMENT" });
  await t.throwsAsync(traceSevered(model, { prompt: f.prompt, subject: f.subject, strategy: "attribution" }), { code: "ERR_ARGUMENT" });
});

test("a change of log p becomes a change of log-odds: first order in p for small changes, within [0, 1] for large", (t) => {
  t.is(restoredProbability(0.3, 0), 0.3);
  t.true(Math.abs(restoredProbability(0.3, 1e-4) - 0.3 * (1 + 1e-4)) < 1e-8);
  const big = restoredProbability(0.001, 6);
  t.true(big > 0.1 && big < 1, `${big}`);
  for (const d of [-500, -50, 50, 500]) t.true(restoredProbability(0.9, d) >= 0 && restoredProbability(0.9, d) <= 1, `${d}`);
});

test("agreement measures: Spearman with ties, top indices, recall", (t) => {
  t.is(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  t.is(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  t.true(Math.abs(spearman([1, 1, 2, 3], [1, 2, 3, 4]) - 0.9486832980505138) < 1e-12); // scipy.stats.spearmanr
  t.deepEqual(topIndices([0.1, 0.5, 0.5, 0.2], 2), [1, 2]);
  t.is(recallAt([5, 4, 3, 2, 1], [1, 2, 3, 4, 5], 2, 3), 0);
  t.is(recallAt([5, 4, 3, 2, 1], [5, 1, 4, 2, 3], 2, 3), 0.5);
});
