// `npm run bench -- attribution [--facts 100] [--gpt2-facts 2] [--samples 10] [--top-k 10] [--only tiny|gpt2]`
//
// Attribution patching against the exact sweep, same facts, one run: per fact and kind (resid,
// mlp, attn; window 10) the Spearman correlation of the estimate with the exact scores, whether
// the top cells agree, and the recall of the exact top 5 cells in the estimate's top 10 — over the
// cells the noise can reach (tokens from the subject's first on; earlier ones are the low score in
// both). Also for the estimate of log p (mean per-sample first-order change of log p(answer)),
// the quantity attribution patching is usually stated in. Then FLOPs and seconds per fact (three
// kinds through traceKinds) of the estimate, of refine (k cells per kind) and of the exact sweep.
// Models: TinyFacts (its known.json) and the GPT-2-small shape with random weights (known_1000).
// Noise: 3 × the std of the subject-token embeddings over the facts traced (the reference's s3).
import { cpus, loadavg } from "node:os";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { Model } from "../lib/runtime/model.js";
import { recallAt, spearman, topIndices } from "../lib/trace/agreement.js";
import { readKnownFacts, type KnownFact } from "../lib/trace/known.js";
import { subjectEmbeddingStd } from "../lib/trace/noise.js";
import { traceKinds, type TraceResult, type TraceStrategy } from "../lib/trace/trace.js";
import type { TraceKind } from "../lib/trace/grid.js";
import { arg, printTable, writeResults } from "./bench-util.js";
import { randomGpt2 } from "./random-model.js";

const tinyFacts = Number(arg("facts") ?? 100);
const gptFacts = Number(arg("gpt2-facts") ?? 2);
const samples = Number(arg("samples") ?? 10);
const topK = Number(arg("top-k") ?? 10);
const only = arg("only");
const KINDS: readonly TraceKind[] = ["resid", "mlp", "attn"];
const STRATEGIES: readonly TraceStrategy[] = ["attribution", "refine", "minimal"];

interface Agreement { rho: number[]; rhoLog: number[]; top: number[]; recall: number[] }

async function benchModel(name: string, model: Model, facts: KnownFact[]) {
  const level = 3 * (await subjectEmbeddingStd(model, facts.map((f) => f.subject)));
  const agree: Record<string, Agreement> = Object.fromEntries(KINDS.map((k) => [k, { rho: [], rhoLog: [], top: [], recall: [] }]));
  const cost: Record<string, { seconds: number; flops: number }> = Object.fromEntries(STRATEGIES.map((s) => [s, { seconds: 0, flops: 0 }]));
  // warm-up: sessions (the gradient graph is built on first use)
  await traceKinds(model, { prompt: facts[0]!.prompt, subject: facts[0]!.subject, samples: 2, noise: level, strategy: "attribution" }, ["resid"]);
  for (const [i, f] of facts.entries()) {
    const res: Partial<Record<TraceStrategy, Partial<Record<TraceKind, TraceResult>>>> = {};
    for (const strategy of STRATEGIES) {
      const t0 = performance.now();
      res[strategy] = await traceKinds(model, { prompt: f.prompt, subject: f.subject, samples, noise: level, window: 10, strategy, topK }, KINDS);
      cost[strategy]!.seconds += (performance.now() - t0) / 1000;
      cost[strategy]!.flops += res[strategy]!.resid!.flops.executed;
    }
    for (const k of KINDS) {
      const ex = res.minimal![k]!;
      const est = res.attribution![k]!;
      const b = ex.subjectRange[0];
      const e = ex.scores.slice(b).flat();
      const a = est.scores.slice(b).flat();
      const lg = est.attribution!.logp.slice(b).flat();
      agree[k]!.rho.push(spearman(e, a));
      agree[k]!.rhoLog.push(spearman(e, lg));
      agree[k]!.top.push(topIndices(e, 1)[0] === topIndices(a, 1)[0] ? 1 : 0);
      agree[k]!.recall.push(recallAt(e, a, 5, 10));
      // refine's exact cells are the exact sweep's
      const r = res.refine![k]!;
      r.attribution!.exact!.flat().forEach((x, j) => {
        if (x && Math.abs(r.scores.flat()[j]! - ex.scores.flat()[j]!) > 1e-5) throw new Error(`${name} fact ${i} ${k}: refine cell ${j} differs from the exact sweep`);
      });
    }
    if ((i + 1) % 10 === 0) console.error(`${name}: ${i + 1}/${facts.length} facts`);
  }
  const mean = (xs: number[]) => xs.filter((x) => !Number.isNaN(x)).reduce((s, x) => s + x, 0) / xs.filter((x) => !Number.isNaN(x)).length;
  const median = (xs: number[]) => {
    const s = xs.filter((x) => !Number.isNaN(x)).sort((p, q) => p - q);
    return s[Math.floor(s.length / 2)]!;
  };
  const agreeRows = KINDS.map((k) => ({
    model: name, kind: k, facts: facts.length,
    "Spearman mean": mean(agree[k]!.rho), "Spearman median": median(agree[k]!.rho),
    "Spearman (log p est.) mean": mean(agree[k]!.rhoLog),
    "top cell agrees": mean(agree[k]!.top), "recall exact top-5 in est. top-10": mean(agree[k]!.recall),
  }));
  const exact = cost.minimal!;
  const costRows = STRATEGIES.map((s) => ({
    model: name, strategy: s === "minimal" ? "exact (minimal sweep)" : s === "refine" ? `refine k=${topK}` : "estimate",
    "s/fact": cost[s]!.seconds / facts.length, "GFLOP/fact": cost[s]!.flops / facts.length / 1e9,
    "time ÷ exact": cost[s]!.seconds / exact.seconds, "FLOPs ÷ exact": cost[s]!.flops / exact.flops,
  }));
  return { name, noise: level, agreeRows, costRows, raw: agree };
}

const reports = [];
console.log(`attribution benchmark: samples ${samples}, window 10, 3 kinds per call, top-k ${topK}; ${cpus().length} cores, load ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
if (only !== "gpt2") {
  const model = await Model.load("models/tinyfacts");
  reports.push(await benchModel("tinyfacts", model, readKnownFacts("models/tinyfacts/known.json").slice(0, tinyFacts)));
  await model.dispose();
}
if (only !== "tiny") {
  const tokenizer = await Tokenizer.load("models/tiny-gpt2-random");
  const { arch, config, weights } = randomGpt2({}, 1);
  const model = await Model.fromWeights(arch, config, weights, { tokenizer });
  reports.push(await benchModel("gpt2-small-random", model, readKnownFacts("data/known_1000.json").slice(0, gptFacts)));
  await model.dispose();
}
printTable("agreement of the estimate with the exact sweep (cells from the subject's first token on)", reports.flatMap((r) => r.agreeRows));
printTable("cost per fact (3 kinds)", reports.flatMap((r) => r.costRows));
console.log(`load at the end ${loadavg().map((x) => x.toFixed(1)).join(" ")} (the machine is shared: seconds are contended, ratios are within this run)`);
writeResults("attribution", { samples, topK, reports });
