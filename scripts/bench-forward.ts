// `npm run bench -- forward [--model gpt2|llama] [--source memory|disk] [--threads N] [--shapes 1x1,1x64,8x64,1x512] [--min-seconds S] [--rounds R]`
//
// --model llama: a TinyLlama-1.1B-shaped Llama (22 layers × 2048, grouped-query attention 32:4,
// random weights from scripts/random-model.ts, about 4.4 GB of f32 weights: run it alone on the
// machine). By default it is written as a
// Hugging Face checkpoint (safetensors, the Llama 2-style test tokenizer) to a temporary folder and
// loaded with Model.load, as a user would (`--source memory` builds it in memory instead). It
// reports load time, tokens/s and peak RSS; the one-graph comparison is left out (a 1.1B-parameter
// graph exceeds protobuf's 2 GB), the MatMul baseline stays. Default shapes 1x1,1x32,4x32, 2 rounds.
//
// Forward-pass throughput of a GPT-2-small-shaped model (random weights, built in memory) through
// the segmented engine — what nextTokenLogits runs: engine.run(padBatch(seqs), { head: last
// positions }) — against one unsegmented ONNX graph of the same model, emitted by the same
// architecture description, fed the same inputs (ids, positions, attention bias, empty past) and
// returning only the last-position logits. Next to both, a plain onnxruntime MatMul of shape
// (rows, 768) × (768, 3072) measured in the same run gives the GFLOP/s this machine's ORT reaches.
// Seg and mono are timed in alternating rounds, each round a bench-util `time` median; the figure
// reported is the best round's median, since load from other work on a shared machine only ever
// adds time (the load average is printed so that a noisy run can be recognised).
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { GraphBuilder } from "../lib/graph/builder.js";
import { IO } from "../lib/arch/segments.js";
import type { ArchDescription, EmitContext, Weights } from "../lib/arch/types.js";
import type { ModelConfig } from "../lib/model/config.js";
import { attentionBias, padBatch, type Batch } from "../lib/runtime/batch.js";
import { EditView } from "../lib/runtime/edit-view.js";
import { headFlops, layerFlops } from "../lib/runtime/flops.js";
import { Model } from "../lib/runtime/model.js";
import { arg, printTable, time, writeResults } from "./bench-util.js";
import { randomGpt2, randomLlama, writeRandomLlamaCheckpoint } from "./random-model.js";

const family = arg("model") ?? "gpt2";
if (family !== "gpt2" && family !== "llama") throw new Error(`--model must be gpt2 or llama, not '${family}'`);
const source = arg("source") ?? (family === "llama" ? "disk" : "memory");
if (source !== "memory" && source !== "disk") throw new Error(`--source must be memory or disk, not '${source}'`);
if (source === "disk" && family !== "llama") throw new Error("--source disk is implemented for --model llama");
const threads = Number(arg("threads") ?? 1);
const shapes = (arg("shapes") ?? (family === "llama" ? "1x1,1x32,4x32" : "1x1,1x64,8x64,1x512")).split(",").map((s) => {
  const [B, T] = s.split("x").map(Number);
  if (!B || !T) throw new Error(`bad shape '${s}' (expected BxT, e.g. 8x64)`);
  return { B, T };
});
const minSeconds = Number(arg("min-seconds") ?? 0.6);
const rounds = Number(arg("rounds") ?? (family === "llama" ? 2 : 4));

const sessionOptions: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
  executionMode: "sequential",
  logSeverityLevel: 3,
};

/** The whole model as one graph: embed → layers → final norm + head at `select` positions. */
function compileMonolithic(arch: ArchDescription, cfg: ModelConfig, weights: Weights): GraphBuilder {
  const b = new GraphBuilder("monolithic");
  const added = new Set<string>();
  const ctx: EmitContext = {
    b,
    cfg,
    w(name) {
      const weight = weights.get(name);
      if (!weight) throw new Error(`missing weight ${name}`);
      if (!added.has(name)) {
        b.initializer(name, weight.shape, weight.data);
        added.add(name);
      }
      return name;
    },
  };
  const H = cfg.nKvHead;
  const Dh = cfg.headDim;
  const ids = b.input(IO.ids, "int64", ["B", "T"]);
  const positions = b.input(IO.positions, "int64", ["B", "T"]);
  const bias = b.input(IO.attnBias, "float32", ["B", 1, "T", "S"]);
  const select = b.input(IO.select, "int64", ["N", 2]);
  const { tokEmbed, posEmbed } = arch.emitEmbed(ctx, { ids, positions });
  let resid = b.op("Add", [tokEmbed, posEmbed]);
  for (let l = 0; l < cfg.nLayer; l++) {
    const pastKey = b.input(`${IO.pastKey}_${l}`, "float32", ["B", H, "P", Dh]);
    const pastValue = b.input(`${IO.pastValue}_${l}`, "float32", ["B", H, "P", Dh]);
    const a = arch.emitAttention(ctx, l, { resid, pastKey, pastValue, bias, positions });
    const residMid = b.op("Add", [resid, a.attnOut]);
    const m = arch.emitMlp(ctx, l, { residMid, resid });
    resid = b.op("Add", [residMid, m.mlpOut]);
  }
  const rows = b.op("GatherND", [resid, select]);
  b.output(IO.logits, arch.emitHead(ctx, rows), "float32", ["N", cfg.vocabSize]);
  return b;
}

/** Feeds of the monolithic graph for `batch` (built per run, as the engine builds its own). */
function monoFeeds(cfg: ModelConfig, batch: Batch, lastRows: readonly (readonly [number, number])[]): Record<string, ort.Tensor> {
  const { B, T } = batch;
  const H = cfg.nKvHead;
  const Dh = cfg.headDim;
  const sel = new BigInt64Array(lastRows.length * 2);
  lastRows.forEach(([r, t], i) => {
    sel[2 * i] = BigInt(r);
    sel[2 * i + 1] = BigInt(t);
  });
  const feeds: Record<string, ort.Tensor> = {
    [IO.ids]: new ort.Tensor("int64", batch.ids, [B, T]),
    [IO.positions]: new ort.Tensor("int64", batch.positions, [B, T]),
    [IO.attnBias]: new ort.Tensor("float32", attentionBias(batch), [B, 1, T, T]),
    [IO.select]: new ort.Tensor("int64", sel, [lastRows.length, 2]),
  };
  const empty = new Float32Array(0);
  for (let l = 0; l < cfg.nLayer; l++) {
    feeds[`${IO.pastKey}_${l}`] = new ort.Tensor("float32", empty, [B, H, 0, Dh]);
    feeds[`${IO.pastValue}_${l}`] = new ort.Tensor("float32", empty, [B, H, 0, Dh]);
  }
  return feeds;
}

function randomSeqs(B: number, T: number, vocab: number, seed: number): number[][] {
  let x = seed >>> 0;
  const next = () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % vocab;
  };
  return Array.from({ length: B }, () => Array.from({ length: T }, next));
}

const best = (xs: number[]) => Math.min(...xs);

const t0 = performance.now();
let model: Model;
let mono: ort.InferenceSession | undefined;
let checkpointDir: string | undefined;
let checkpointBytes = 0;
let tWeights: number;
if (source === "disk") {
  // The weights go straight to a safetensors file, one tensor at a time; Model.load streams them.
  checkpointDir = mkdtempSync(join(tmpdir(), "rome-bench-llama-"));
  checkpointBytes = writeRandomLlamaCheckpoint(checkpointDir, {}, join(dirname(fileURLToPath(import.meta.url)), "..", "test", "fixtures", "tokenizers", "llama2"), 1);
  tWeights = performance.now();
  model = await Model.load(checkpointDir, { threads });
} else {
  const { arch, config, weights } = family === "llama" ? randomLlama({}, 1) : randomGpt2({}, 1);
  tWeights = performance.now();
  model = await Model.fromWeights(arch, config, weights, { threads });
  // One graph of a model over 2 GB cannot be serialised (protobuf's limit): no monolithic baseline then.
  if (family === "gpt2") mono = await ort.InferenceSession.create(compileMonolithic(arch, config, weights).toBytes(), sessionOptions);
}
const tSeg = performance.now();
const cfg = model.config;
const params = [...model.arch.weightShapes(cfg)].reduce((n, [, shape]) => n + shape.reduce((a, d) => a * d, 1), 0);
const rssAfterLoad = process.resourceUsage().maxRSS / 1024; // MiB
const name = family === "llama" ? "TinyLlama-1.1B-shaped" : "GPT-2-small-shaped";
console.log(`${name} random model (d=${cfg.nEmbd}, ${cfg.nLayer} layers, ${cfg.nHead}:${cfg.nKvHead} heads, vocab ${cfg.vocabSize}, ${(params / 1e9).toFixed(3)}B parameters), ort threads ${threads}`);
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(" ")} on ${cpus().length} cores`);
console.log(source === "disk"
  ? `checkpoint written ${((tWeights - t0) / 1000).toFixed(1)} s (${(checkpointBytes / 2 ** 30).toFixed(2)} GiB), Model.load ${((tSeg - tWeights) / 1000).toFixed(1)} s (peak RSS ${rssAfterLoad.toFixed(0)} MiB)`
  : `weights ${((tWeights - t0) / 1000).toFixed(1)} s, segmented sessions and monolithic session ${((tSeg - tWeights) / 1000).toFixed(1)} s (peak RSS ${rssAfterLoad.toFixed(0)} MiB)`);

const rowsOut: Record<string, string | number>[] = [];
const results: unknown[] = [];
for (const { B, T } of shapes) {
  const seqs = randomSeqs(B, T, cfg.vocabSize, B * 1000 + T);
  const head = seqs.map((_, b) => [b, T - 1] as const);
  const rows = B * T;

  // correctness: both paths agree on the logits
  const segLogits = (await model.engine.run(padBatch(seqs), { edits: EditView.NONE, head })).logits!;
  let maxDiff = NaN;
  if (mono) {
    const monoLogits = (await mono.run(monoFeeds(cfg, padBatch(seqs), head)))[IO.logits]!.data as Float32Array;
    maxDiff = 0;
    for (let i = 0; i < segLogits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(segLogits[i]! - monoLogits[i]!));
  }

  const D = cfg.nEmbd;
  const F = cfg.nInner;
  const mm = await ort.InferenceSession.create((() => {
    const g = new GraphBuilder("matmul");
    const x = g.input("x", "float32", ["R", D]);
    const w = g.initializer("w", [D, F], new Float32Array(D * F).map((_, i) => ((i * 2654435761) % 1000) / 1e5 - 0.005));
    g.output("y", g.op("MatMul", [x, w]), "float32", ["R", F]);
    return g;
  })().toBytes(), sessionOptions);
  const xData = new Float32Array(rows * D).map((_, i) => ((i * 40503) % 997) / 997 - 0.5);
  const mmFeeds = { x: new ort.Tensor("float32", xData, [rows, D]) };

  const segFn = () => { const batch = padBatch(seqs); return model.engine.run(batch, { edits: EditView.NONE, head }); };
  const monoFn = mono ? () => mono.run(monoFeeds(cfg, padBatch(seqs), head)) : undefined;
  const segMed: number[] = [];
  const monoMed: number[] = [];
  const mmMed: number[] = [];
  for (let r = 0; r < rounds; r++) {
    segMed.push((await time(segFn, minSeconds)).seconds);
    if (monoFn) monoMed.push((await time(monoFn, minSeconds)).seconds);
    mmMed.push((await time(() => mm.run(mmFeeds), minSeconds / 3)).seconds);
  }
  await mm.release();
  const seg = best(segMed);
  const monoS = monoFn ? best(monoMed) : NaN;
  const mmS = best(mmMed);
  const flops = layerFlops(cfg, B, T, 0) * cfg.nLayer + headFlops(cfg, B);
  const mmFlops = 2 * rows * D * F;
  const segGflops = flops / seg / 1e9;
  const mmGflops = mmFlops / mmS / 1e9;
  const row = {
    "B×T": `${B}×${T}`,
    rows,
    "seg ms": seg * 1e3,
    "mono ms": monoS * 1e3,
    "overhead %": (seg / monoS - 1) * 100,
    "tok/s": rows / seg,
    "GFLOP/s": segGflops,
    "MatMul GFLOP/s": mmGflops,
    "vs MatMul": segGflops / mmGflops,
    "max |Δlogit|": maxDiff,
  };
  rowsOut.push(row);
  results.push({ B, T, rows, segSeconds: seg, monoSeconds: monoS, matmulSeconds: mmS, segRounds: segMed, monoRounds: monoMed, flops, segGflops, monoGflops: flops / monoS / 1e9, matmulGflops: mmGflops, overhead: seg / monoS - 1, tokensPerSecond: rows / seg, maxAbsLogitDiff: maxDiff });
  console.log(`${B}×${T}: seg ${(seg * 1e3).toFixed(1)} ms, mono ${(monoS * 1e3).toFixed(1)} ms, MatMul ${(mmS * 1e3).toFixed(2)} ms`);
}

const peakRss = process.resourceUsage().maxRSS / 1024;
console.log(source === "disk"
  ? `Model.load ${((tSeg - tWeights) / 1000).toFixed(1)} s from a ${(checkpointBytes / 2 ** 30).toFixed(2)} GiB checkpoint, peak RSS ${peakRss.toFixed(0)} MiB (${(peakRss * 2 ** 20 / checkpointBytes).toFixed(2)}× the checkpoint)`
  : `load ${((tSeg - t0) / 1000).toFixed(1)} s (weights + sessions), peak RSS ${peakRss.toFixed(0)} MiB`);
printTable(`forward pass, ${name}, random weights, ${threads} ort thread(s); seg = segmented engine (engine.run + head), mono = one graph; GFLOP/s of seg`, rowsOut);
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}; times are the best of ${rounds} rounds' medians`);
if (mono) {
  const over = rowsOut.filter((r) => (r["overhead %"] as number) > 15);
  console.log(over.length ? `\nsegmenting overhead exceeds 15% at ${over.map((r) => r["B×T"]).join(", ")}` : "\nsegmenting overhead ≤ 15% at every shape");
}
writeResults(family === "llama" ? "forward-llama" : "forward", { model: family, source, parameters: params, checkpointBytes, loadSeconds: (tSeg - (source === "disk" ? tWeights : t0)) / 1000, rssAfterLoadMiB: rssAfterLoad, peakRssMiB: peakRss, threads, estimator: "min over rounds of the per-round median", loadavg: loadavg(), config: cfg, rounds, minSeconds, shapes: results, totalSeconds: (performance.now() - t0) / 1000 });
await model.dispose();
await mono?.release();
if (checkpointDir) rmSync(checkpointDir, { recursive: true, force: true });
