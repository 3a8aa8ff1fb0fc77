// `npm run bench -- edit [--threads 1] [--native-threads 1] [--tiny-edits 5] [--gpt2-edits 2]
//   [--gpt2-layer 5] [--gpt2-steps 20] [--stats-tokens 20000] [--corpus FILE] [--only gpt2|tiny]`
//
// Seconds per ROME edit with the statistics already computed (and the gradient session already
// built), split as rome() reports it — context templates, key, value optimisation, update — with
// the per-step cost of the derived gradient session (value seconds / steps, and the session runs
// themselves timed by wrapping the session's `run`), on
//   - TinyFacts (models/tinyfacts): layer 1, its hyperparameters (100 value steps, early stop as the
//     reference), sampled context templates, requests from its counterfact.json, statistics over
//     its train.txt;
//   - a GPT-2-small-shaped model with random weights (12 layers, d 768, GPT-2's tokenizer):
//     layer 5 (`--gpt2-layer`), 20 value steps, the rest GPT-2 XL's hyperparameters (what
//     defaultHparams gives this shape), requests built from data/known_1000.json, statistics over
//     the first `--stats-tokens` tokens of a corpus: `--corpus FILE` if given, else data/wikitext*.txt
//     if the project has one, else a synthetic corpus of known_1000's prompts + recorded predictions
//     (one text per fact).
// Statistics throughput (tokens/s) is computeStats with cacheDir false, timed once per model.
// The first edit of a model is reported apart ("cold": template sampling, the Cholesky factor of
// the statistics); the gradient session is built before it and timed on its own.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { computeStats, type Stats } from "../lib/edit/stats.js";
import { rome, type RomeEdit, type RomeRequest } from "../lib/edit/rome.js";
import { defaultHparams } from "../lib/edit/hparams.js";
import { valueSession } from "../lib/edit/value-graph.js";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { nativeCapabilities, setNativeThreads } from "../lib/native.js";
import { headFlops, layerFlops } from "../lib/runtime/flops.js";
import { Model } from "../lib/runtime/model.js";
import { readKnownFacts } from "../lib/trace/known.js";
import { arg, printTable, writeResults } from "./bench-util.js";
import { randomGpt2 } from "./random-model.js";

const threads = Number(arg("threads") ?? 1);
const nativeThreads = Number(arg("native-threads") ?? 1);
const tinyEdits = Number(arg("tiny-edits") ?? 5);
const gptEdits = Number(arg("gpt2-edits") ?? 2);
const gptLayer = Number(arg("gpt2-layer") ?? 5);
const gptSteps = Number(arg("gpt2-steps") ?? 20);
const statsTokens = Number(arg("stats-tokens") ?? 20000);
const corpusArg = arg("corpus");
const only = arg("only");
const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");

interface SessionProf { runs: number; seconds: number; B: number; /** window columns */ T: number; /** cached columns before the window */ P: number; nn: number }

interface ModelResult {
  model: string;
  layer: number;
  steps: number;
  stats: { source: string; tokens: number; seconds: number; tokensPerSecond: number; segmentSeconds: number; paddedTokens: number };
  sessionBuildSeconds: number;
  cold: EditRecord;
  edits: EditRecord[];
  mean: EditRecord;
}
interface EditRecord {
  subject: string;
  seconds: RomeEdit["seconds"];
  steps: number;
  sessionRuns: number;
  sessionSeconds: number;
  /** value gradient batch (prompts B, window columns W, cached columns before the window P) */
  batch: [number, number, number];
  /** forward FLOPs of one gradient-session run (its backward adds about as much again) */
  forwardFlops: number;
}

/** Times `count` + 1 edits (the first is cold) with the statistics given. */
async function benchEdits(name: string, model: Model, layer: number, stats: Stats, requests: RomeRequest[], count: number,
  hparams: Record<string, unknown>, statsInfo: ModelResult["stats"]): Promise<ModelResult> {
  const tb = performance.now();
  const vs = await valueSession(model, layer);
  const sessionBuildSeconds = (performance.now() - tb) / 1000;
  const prof: SessionProf = { runs: 0, seconds: 0, B: 0, T: 0, P: 0, nn: 0 };
  const session = vs.session as unknown as { run: (...a: unknown[]) => Promise<unknown> };
  const run = session.run.bind(vs.session);
  session.run = async (...a: unknown[]) => {
    const t0 = performance.now();
    const r = await run(...a);
    prof.seconds += (performance.now() - t0) / 1000;
    prof.runs++;
    const feeds = a[0] as Record<string, { dims: readonly number[] }>;
    [prof.B, prof.T] = feeds.resid!.dims as [number, number];
    prof.P = feeds[`past_key_${layer + 1}`]?.dims[2] ?? 0;
    prof.nn = feeds.target_ids!.dims[0]!;
    return r;
  };
  console.log(`${name}: gradient session of layer ${layer} built in ${sessionBuildSeconds.toFixed(2)} s`);
  const records: EditRecord[] = [];
  for (let i = 0; i <= count; i++) {
    const req = requests[i % requests.length]!;
    prof.runs = 0;
    prof.seconds = 0;
    const e = await rome(model, req, { stats, layer, hparams, guard: { maxNormRatio: 1e12, minDenominator: 0 } });
    // forward FLOPs of one session run: the layers above `layer` on the B × W window tokens (attending
    // to P cached columns too), the head at Nn + 1 rows
    const fwd = (model.config.nLayer - layer - 1) * layerFlops(model.config, prof.B, prof.T, prof.P) + headFlops(model.config, prof.nn + 1);
    const rec = { subject: req.subject, seconds: e.seconds, steps: e.losses.length, sessionRuns: prof.runs, sessionSeconds: prof.seconds, batch: [prof.B, prof.T, prof.P] as [number, number, number], forwardFlops: fwd };
    records.push(rec);
    const s = e.seconds;
    console.log(`${name} edit ${i}${i === 0 ? " (cold)" : ""} ${JSON.stringify(req.subject)} → ${JSON.stringify(req.targetNew)}: total ${s.total.toFixed(2)} s ` +
      `(templates ${s.templates.toFixed(2)}, key ${s.key.toFixed(3)}, value ${s.value.toFixed(2)} over ${rec.steps} steps / ${prof.runs} session runs ${prof.seconds.toFixed(2)} s, update ${s.update.toFixed(3)}); ` +
      `final loss ${e.losses[e.losses.length - 1]!.loss.toFixed(3)}, load ${load()}`);
  }
  const warm = records.slice(1);
  const avg = (f: (r: EditRecord) => number) => warm.reduce((a, r) => a + f(r), 0) / Math.max(1, warm.length);
  const mean: EditRecord = {
    subject: "mean of warm edits",
    seconds: {
      templates: avg((r) => r.seconds.templates), key: avg((r) => r.seconds.key), value: avg((r) => r.seconds.value),
      update: avg((r) => r.seconds.update), total: avg((r) => r.seconds.total),
    },
    steps: avg((r) => r.steps), sessionRuns: avg((r) => r.sessionRuns), sessionSeconds: avg((r) => r.sessionSeconds),
    batch: warm[0]?.batch ?? records[0]!.batch, forwardFlops: avg((r) => r.forwardFlops),
  };
  return { model: name, layer, steps: hparams.vNumGradSteps as number, stats: statsInfo, sessionBuildSeconds, cold: records[0]!, edits: warm, mean };
}

async function timedStats(model: Model, layer: number, opts: { corpus?: string; texts?: string[]; maxTokens?: number }, source: string): Promise<{ stats: Stats; info: ModelResult["stats"] }> {
  // the engine's segment calls are timed (wrapped on the instance, then restored): the rest is
  // tokenization, copying keys out of the batch and the addon's float64 accumulation
  const e = model.engine as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  let segSeconds = 0;
  let tokenRows = 0;
  const saved: [string, unknown][] = [];
  for (const name of ["embed", "attn", "mlp"]) {
    const orig = e[name]!;
    saved.push([name, Object.getOwnPropertyDescriptor(e, name)]);
    e[name] = async (...a: unknown[]) => {
      const t = performance.now();
      const r = await orig.apply(model.engine, a);
      segSeconds += (performance.now() - t) / 1000;
      if (name === "embed") tokenRows += (a[0] as { B: number; T: number }).B * (a[0] as { B: number; T: number }).T;
      return r;
    };
  }
  const t0 = performance.now();
  const stats = await computeStats(model, { layer, cacheDir: false, ...opts });
  const seconds = (performance.now() - t0) / 1000;
  for (const [name] of saved) delete e[name];
  const info = { source, tokens: stats.count, seconds, tokensPerSecond: stats.count / seconds, segmentSeconds: segSeconds, paddedTokens: tokenRows };
  console.log(`statistics of layer ${layer} over ${stats.count} tokens (${tokenRows} with padding) of ${source}: ${seconds.toFixed(2)} s ` +
    `(segments ${segSeconds.toFixed(2)} s, rest ${(seconds - segSeconds).toFixed(2)} s), ${info.tokensPerSecond.toFixed(0)} tokens/s (load ${load()})`);
  return { stats, info };
}

// --- main ------------------------------------------------------------------------------------------

const t0 = performance.now();
const nt = setNativeThreads(nativeThreads);
console.log(`edit benchmark: ${threads} ort thread(s), ${nt} native thread(s) (${JSON.stringify(nativeCapabilities())}), ${cpus().length} cores, load ${load()}`);
const results: ModelResult[] = [];

if (only !== "gpt2") {
  const model = await Model.load("models/tinyfacts", { threads });
  const hp = defaultHparams(model.config);
  const { stats, info } = await timedStats(model, hp.layer, { corpus: "models/tinyfacts/train.txt" }, "models/tinyfacts/train.txt (every line)");
  const cf = JSON.parse(readFileSync("models/tinyfacts/counterfact.json", "utf8")) as { requested_rewrite: { prompt: string; subject: string; target_new: { str: string }; target_true: { str: string } } }[];
  const requests = cf.map((r) => ({ prompt: r.requested_rewrite.prompt, subject: r.requested_rewrite.subject, targetNew: r.requested_rewrite.target_new.str, targetTrue: r.requested_rewrite.target_true.str }));
  results.push(await benchEdits("tinyfacts", model, hp.layer, stats, requests, tinyEdits, { ...hp }, info));
  await model.dispose();
}

if (only !== "tiny") {
  const tok = await Tokenizer.load("models/tiny-gpt2-random");
  const { arch, config, weights } = randomGpt2({}, 1);
  const model = await Model.fromWeights(arch, config, weights, { threads, tokenizer: tok });
  const hp = { ...defaultHparams(config), layer: gptLayer, vNumGradSteps: gptSteps };
  const known = readKnownFacts("data/known_1000.json");
  const wikitext = existsSync("data") ? readdirSync("data").find((f) => /^wikitext.*\.txt$/.test(f)) : undefined;
  let corpus: { corpus?: string; texts?: string[] };
  let source: string;
  if (corpusArg) {
    corpus = { corpus: corpusArg };
    source = corpusArg;
  } else if (wikitext) {
    corpus = { corpus: `data/${wikitext}` };
    source = `data/${wikitext}`;
  } else {
    corpus = { texts: known.map((f) => f.prompt + f.prediction) };
    source = "synthetic corpus: data/known_1000.json prompt + prediction per fact";
  }
  const { stats, info } = await timedStats(model, gptLayer, { ...corpus, maxTokens: statsTokens }, source);
  // Requests: each fact's prompt with its subject as "{}", the next fact's attribute as the new object.
  const requests: RomeRequest[] = known.slice(0, gptEdits + 1).map((f, i) => ({
    prompt: f.prompt.replace(f.subject, "{}"), subject: f.subject,
    targetNew: known.find((g, j) => j > i && g.attribute !== f.attribute)!.attribute, targetTrue: f.attribute,
  }));
  results.push(await benchEdits("gpt2-small-random", model, gptLayer, stats, requests, gptEdits, { ...hp }, info));
  await model.dispose();
}

const rows = results.flatMap((r) => [r.cold, r.mean].map((e, i) => ({
  model: r.model, layer: r.layer, edit: i === 0 ? "cold (1st)" : `warm (mean of ${r.edits.length})`,
  "templates s": e.seconds.templates, "key s": e.seconds.key, "value s": e.seconds.value, "update s": e.seconds.update, "total s": e.seconds.total,
  steps: e.steps, "value s/step": e.seconds.value / e.steps,
  "session runs": e.sessionRuns, "s/session run": e.sessionSeconds / Math.max(1, e.sessionRuns),
  "value outside session s": e.seconds.value - e.sessionSeconds,
  "B×(P+W)": `${e.batch[0]}×(${e.batch[2]}+${e.batch[1]})`, "fwd GFLOP/run": e.forwardFlops / 1e9,
  "2×fwd GFLOP/s": (2 * e.forwardFlops * e.sessionRuns) / e.sessionSeconds / 1e9,
})));
printTable(`seconds per ROME edit, statistics precomputed, gradient session prebuilt; ${threads} ort thread(s), ${nt} native thread(s)`, rows);
printTable("statistics throughput (computeStats, cacheDir false)", results.map((r) => ({
  model: r.model, layer: r.layer, corpus: r.stats.source, tokens: r.stats.tokens, "padded tokens": r.stats.paddedTokens, "seconds": r.stats.seconds,
  "segments s": r.stats.segmentSeconds, "accumulate+JS s": r.stats.seconds - r.stats.segmentSeconds, "tokens/s": r.stats.tokensPerSecond,
  "session build s": r.sessionBuildSeconds,
})));
console.log(`\nload average ${load()}; total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
writeResults("edit", { threads, nativeThreads: nt, loadavg: loadavg(), models: results, totalSeconds: (performance.now() - t0) / 1000 });
