#!/usr/bin/env node
// The rome-node command line: predictions, generation, causal traces of one fact or a dataset,
// and a demo on the bundled TinyFacts model. Errors print their code and exit with status 2.
import { Command, InvalidArgumentError } from "commander";
import { basename, dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RomeError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { Model } from "../runtime/model.js";
import { traceDataset } from "../trace/dataset.js";
import { TRACE_KINDS, type TraceKind } from "../trace/grid.js";
import { heatmapSvg, svgToPng } from "../trace/heatmap.js";
import { traceKinds, type TraceStrategy } from "../trace/trace.js";
import { checkCheckpointTarget, exportCheckpoint, exportEdits, loadEdits } from "../edit/export.js";
import { rome } from "../edit/rome.js";
import { computeStats } from "../edit/stats.js";
import { defaultHparams } from "../edit/hparams.js";
import { fillTemplate } from "../edit/templates.js";
import { readKnownFacts } from "../trace/known.js";
import { Progress } from "./progress.js";
import { readEditDataset } from "../eval/datasets.js";
import { EDIT_METHODS, EDIT_MODES, runEdits, type EditMethod, type EditMode, type RunLine } from "../eval/edit-run.js";
import { runPlotSvg, summarizeRun, summaryCsv } from "../eval/run-summary.js";
import { defaultMemitHparams } from "../edit/memit-hparams.js";
import { computeStatsLayers } from "../edit/stats.js";
import { registerServe } from "./commands/serve.js";
import { queueProgress, registerWorkerCommand, withRedisOptions, type RedisFlags } from "./commands/queue.js";
import { runEditsOnQueue } from "../queue/eval-client.js";
import { traceDatasetOnQueue } from "../queue/trace-client.js";
import { checkInputFile, checkOutputDir, checkOutputFile, checkParentDir, checkPromptTemplate, checkText } from "./validate.js";

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DEFAULT_MODEL = join(PACKAGE_ROOT, "models", "tinyfacts");

/** An integer flag value in [min, max]. */
const intIn = (min: number, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got ${v}`);
  return n;
};
const int = intIn(0);
const positive = intIn(1);
const num = (v: string) => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got ${v}`);
  return n;
};
const strategy = (v: string) => {
  if (v !== "minimal" && v !== "naive" && v !== "attribution" && v !== "refine") throw new InvalidArgumentError(`expected minimal, naive, attribution or refine, got ${v}`);
  return v;
};
const form = (v: string) => {
  if (v !== "r-rome" && v !== "reference") throw new InvalidArgumentError(`expected r-rome or reference, got ${v}`);
  return v;
};
const kinds = (v: string): TraceKind[] => {
  const ks = v === "all" ? [...TRACE_KINDS] : v.split(",");
  for (const k of ks) if (!TRACE_KINDS.includes(k as TraceKind)) throw new InvalidArgumentError(`unknown kind ${k}; use ${TRACE_KINDS.join(", ")} or all`);
  return ks as TraceKind[];
};

async function withModel<T>(opts: { model: string; threads: number }, fn: (m: Model) => Promise<T>): Promise<T> {
  const model = await Model.load(opts.model, { threads: opts.threads });
  try {
    return await fn(model);
  } finally {
    await model.dispose();
  }
}

const program = new Command("rome-node")
  .description("Locate and edit factual associations in GPT-style language models")
  .option("-m, --model <dir>", "Hugging Face model directory", DEFAULT_MODEL)
  .option("-t, --threads <n>", "onnxruntime threads", intIn(1, 1024), 1);

program.command("predict")
  .description("top-k next tokens after each prompt")
  .argument("<prompts...>")
  .option("-k, --top-k <k>", "tokens to show", positive, 5)
  .action(async (prompts: string[], o: { topK: number }) => {
    prompts.forEach((p, i) => checkText(`prompt ${i + 1}`, p));
    await withModel(program.opts(), async (m) => {
      const preds = await m.predict(prompts, { topK: o.topK });
      prompts.forEach((p, i) => {
        console.log(p);
        for (const x of preds[i]!) console.log(`  ${JSON.stringify(x.token).padEnd(16)} ${x.prob.toFixed(4)}`);
      });
    });
  });

program.command("generate")
  .description("continue a prompt (greedy, or top-k sampling with a seed)")
  .argument("<prompt>")
  .option("-n, --max-tokens <n>", "tokens to generate", positive, 20)
  .option("-k, --top-k <k>", "1 = greedy", positive, 1)
  .option("-s, --seed <seed>", "sampling seed", int, 0)
  .action(async (prompt: string, o: { maxTokens: number; topK: number; seed: number }) => {
    await withModel(program.opts(), async (m) => console.log(prompt + (await m.generate(prompt, o))));
  });

program.command("trace")
  .description("causal trace of one fact; writes heatmaps (.svg/.png) or the result (.json)")
  .requiredOption("-p, --prompt <text>")
  .requiredOption("-s, --subject <text>")
  .option("--kind <kinds>", "resid, mlp, attn, comma-separated, or all", kinds, ["resid"] as TraceKind[])
  .option("--samples <n>", "noise samples", intIn(1, 1024), 10)
  .option("--noise <level>", "Gaussian noise level (default: 3 × std of the subject's embeddings)", num)
  .option("--window <n>", "layers restored together for mlp/attn", positive, 10)
  .option("--strategy <s>", "minimal, naive, attribution (first-order estimates) or refine (estimates, exact top k)", strategy, "minimal")
  .option("--top-k <n>", "cells per kind that --strategy refine computes exactly", positive, 10)
  .option("-o, --out <file>", "output: name.svg, name.png or name.json (one file per kind: name-<kind>.ext)")
  .action(async (o: { prompt: string; subject: string; kind: TraceKind[]; samples: number; noise?: number; window: number; strategy: TraceStrategy; topK: number; out?: string }) => {
    checkText("-p/--prompt", o.prompt);
    checkText("-s/--subject", o.subject);
    if (!o.prompt.includes(o.subject)) throw new RomeError("ERR_SUBJECT_NOT_FOUND", `the subject ${JSON.stringify(o.subject)} does not occur in the prompt ${JSON.stringify(o.prompt)}`);
    if (o.out) checkOutputFile("-o/--out", o.out, [".svg", ".png", ".json"]);
    await withModel(program.opts(), async (m) => {
      const res = await traceKinds(m, { prompt: o.prompt, subject: o.subject, samples: o.samples, noise: o.noise, window: o.window, strategy: o.strategy, topK: o.topK }, o.kind);
      for (const k of o.kind) {
        const r = res[k]!;
        console.log(`${k}: answer ${JSON.stringify(r.answer.token)} high ${r.highScore.toFixed(4)} low ${r.lowScore.toFixed(4)} noise ${r.noiseLevel.toFixed(4)} ` +
          `FLOPs ${(r.flops.executed / 1e9).toFixed(3)} G (minimal ${(r.flops.minimal / 1e9).toFixed(3)} G)`);
        printGrid(r.tokens, r.scores, r.subjectRange);
        if (o.out) {
          const ext = extname(o.out);
          const file = o.kind.length > 1 ? o.out.slice(0, -ext.length) + `-${k}` + ext : o.out;
          const svg = heatmapSvg(r);
          writeFileAtomic(file, ext === ".json" ? JSON.stringify(r) : ext === ".png" ? svgToPng(svg) : svg);
          console.log(`wrote ${file}`);
        }
      }
    });
  });

withRedisOptions(program.command("trace-dataset")
  .description("trace every fact of a known-facts JSON file (resumable JSON lines + averaged effects)")
  .requiredOption("-d, --dataset <file>", "known_1000.json-style file")
  .requiredOption("-o, --out <file>", "results, one JSON line per fact; an existing file is resumed")
  .option("--kinds <kinds>", "resid, mlp, attn, comma-separated, or all", kinds, [...TRACE_KINDS] as TraceKind[])
  .option("--limit <n>", "first n facts only", positive)
  .option("--samples <n>", "noise samples", intIn(1, 1024), 10)
  .option("--noise <level>", "Gaussian noise level (default: s3 over the dataset's subjects)", num)
  .option("--window <n>", "layers restored together for mlp/attn", positive, 10)
  .option("--heatmaps <dir>", "write per-fact heatmaps here")
  .option("--plots <dir>", "write averaged plots here")
  .option("--edits <files...>", "edits files (exportEdits) applied while every fact is traced"), "facts (on average; shards are cut to similar cost)")
  .action(async ({ redis, prefix, shardSize, edits, ...o }: { dataset: string; out: string; kinds: TraceKind[]; limit?: number; samples: number; noise?: number; window: number; heatmaps?: string; plots?: string; edits?: string[] } & RedisFlags) => {
    checkParentDir("-o/--out", o.out);
    for (const f of edits ?? []) checkInputFile("--edits", f);
    if (o.heatmaps) checkOutputDir("--heatmaps", o.heatmaps);
    if (o.plots) checkOutputDir("--plots", o.plots);
    const facts = readKnownFacts(o.dataset); // a malformed dataset fails here, before the model loads
    let bar: Progress | undefined;
    const res = redis
      ? await traceDatasetOnQueue({ ...o, dataset: facts, model: program.opts().model, redis, prefix, shardSize, edits, ...queueProgress("tracing") })
      : await withModel(program.opts(), (m) => {
        for (const [i, f] of (edits ?? []).entries()) for (const e of loadEdits(f, m)) m.edits.apply({ ...e, id: `base-${i}-${e.id}` });
        return traceDataset(m, {
          ...o, dataset: facts,
          onProgress: (p) => (bar ??= new Progress("tracing (facts)", p.total)).update(p.done),
        });
      });
    console.log(`traced ${res.traced} facts (${res.resumed} resumed) → ${res.out}; noise level ${res.noiseLevel.toFixed(4)}`);
    for (const [k, avg] of Object.entries(res.averages)) {
      console.log(`${k}: ${avg!.n} correct facts, high ${avg!.highMean.toFixed(4)} low ${avg!.lowMean.toFixed(4)}; peak indirect effect by bucket:`);
      avg!.buckets.forEach((b, i) => {
        const row = avg!.mean[i]!;
        const best = row.reduce((a, v, j) => (v > row[a]! ? j : a), 0);
        console.log(`  ${b.padEnd(24)} ${Number.isNaN(row[best]!) ? "   n/a" : row[best]!.toFixed(4)} at layer ${best} (±${avg!.ci95[i]![best]!.toFixed(4)})`);
      });
    }
  });

program.command("edit")
  .description("rewrite a fact with ROME; prints predictions before and after, optionally exports")
  .requiredOption("-p, --prompt <template>", 'prompt with "{}" for the subject, e.g. "{} is located in the city of"')
  .requiredOption("-s, --subject <text>")
  .requiredOption("-n, --target-new <text>", "the new object")
  .requiredOption("-c, --corpus <file>", "text corpus for the key statistics (cached in .rome-cache/)")
  .option("--layer <n>", "edited layer (default: the model family's)", int)
  .option("--form <form>", "r-rome or reference", form, "r-rome")
  .option("--steps <n>", "value optimisation steps (default: the model family's)", positive)
  .option("--export-edits <file>", "write the edit factors (safetensors)")
  .option("--export-checkpoint <dir>", "write a checkpoint with the edit merged")
  .action(async (o: { prompt: string; subject: string; targetNew: string; corpus: string; layer?: number; form: "r-rome" | "reference"; steps?: number; exportEdits?: string; exportCheckpoint?: string }) => {
    checkPromptTemplate("-p/--prompt", o.prompt);
    checkText("-s/--subject", o.subject);
    checkText("-n/--target-new", o.targetNew);
    checkInputFile("-c/--corpus", o.corpus);
    if (o.exportEdits) checkOutputFile("--export-edits", o.exportEdits, [".safetensors"]);
    if (o.exportCheckpoint) checkCheckpointTarget(o.exportCheckpoint);
    await withModel(program.opts(), async (m) => {
      if (o.layer !== undefined && o.layer >= m.config.nLayer) throw new RomeError("ERR_ARGUMENT", `--layer ${o.layer}: the model has layers 0 to ${m.config.nLayer - 1}`);
      const layer = o.layer ?? defaultHparams(m.config).layer;
      const text = fillTemplate(o.prompt, o.subject);
      const show = async (label: string) => {
        const [p] = await m.predict([text], { topK: 3 });
        console.log(`${label}: ${text} → ${p!.map((x) => `${JSON.stringify(x.token)} ${(100 * x.prob).toFixed(1)}%`).join(", ")}`);
      };
      await show("before");
      let bar: Progress | undefined;
      const stats = await computeStats(m, { layer, corpus: o.corpus, onProgress: (p) => (bar ??= new Progress("statistics (tokens)", p.total)).update(p.done) });
      const edit = await rome(m, { prompt: o.prompt, subject: o.subject, targetNew: o.targetNew }, {
        stats, layer, form: o.form, hparams: o.steps ? { vNumGradSteps: o.steps } : undefined,
      });
      m.edits.apply(edit);
      await show("after ");
      console.log(`layer ${edit.layer}, ${edit.form}: ‖ΔW‖ ${edit.norms.update.toFixed(3)} (‖W‖ ${edit.norms.weight.toFixed(3)}), ` +
        `${edit.losses.length} value steps, final loss ${edit.losses.at(-1)!.loss.toFixed(4)}, ${edit.seconds.total.toFixed(2)} s`);
      if (o.exportEdits) { exportEdits(m, o.exportEdits); console.log(`wrote ${o.exportEdits}`); }
      if (o.exportCheckpoint) { await exportCheckpoint(m, o.exportCheckpoint); console.log(`wrote ${o.exportCheckpoint}`); }
    });
  });

withRedisOptions(program.command("eval")
  .description("an editing study: edit dataset records with a method and mode, score them, resumable; a summary (JSON, CSV) and a plot")
  .requiredOption("--method <method>", "rome, r-rome, memit or alphaedit")
  .requiredOption("--mode <mode>", "alone, sequential or batch")
  .requiredOption("-d, --dataset <file>", "CounterFact, zsRE (MEND schema) or single-file schema JSON")
  .requiredOption("-o, --out <file>", "JSON lines, one per record (alone) or batch; resumed when it exists")
  .option("--batch-size <n>", "records per batch (sequential, batch)", positive, 10)
  .option("-n, --n <n>", "records to edit (the first n)", positive)
  .option("--untouched <n>", "facts after the edited ones probed for top-1 accuracy (sequential, batch)", int, 200)
  .option("-c, --corpus <file>", "text corpus for the key statistics (default: the model's train.txt)")
  .option("--steps <n>", "value/target optimisation steps (default: the model family's)", positive)
  .option("--edits <files...>", "edits files (exportEdits) applied under every record"), "records (alone) or batches (batch)")
  .action(async ({ redis, prefix, shardSize, edits, ...o }: { method: EditMethod; mode: EditMode; dataset: string; out: string; batchSize: number; n?: number; untouched: number; corpus?: string; steps?: number; edits?: string[] } & RedisFlags) => {
    if (!EDIT_METHODS.includes(o.method)) throw new RomeError("ERR_ARGUMENT", `--method must be one of ${EDIT_METHODS.join(", ")}`);
    if (!EDIT_MODES.includes(o.mode)) throw new RomeError("ERR_ARGUMENT", `--mode must be one of ${EDIT_MODES.join(", ")}`);
    checkInputFile("-d/--dataset", o.dataset);
    const corpus = o.corpus ?? join(program.opts().model, "train.txt");
    checkInputFile("-c/--corpus", corpus);
    for (const f of edits ?? []) checkInputFile("--edits", f);
    const { records: all } = readEditDataset(o.dataset);
    const n = Math.min(o.n ?? all.length, all.length);
    const records = all.slice(0, n);
    const untouched = all.slice(n, n + o.untouched);
    const hparams = o.steps ? { vNumGradSteps: o.steps } : undefined;
    const total = o.mode === "alone" ? n : Math.ceil(n / o.batchSize);
    const bar = new Progress(`${o.method} ${o.mode}`, total);
    const onLine = (done: number, _t: number, line: RunLine) => bar.update(done, `ES ${(100 * line.scores.reduce((a, s) => a + s.es, 0) / line.scores.length).toFixed(0)}%`);
    const lines = redis
      ? await runEditsOnQueue(records, {
        method: o.method, mode: o.mode, batchSize: o.batchSize, out: o.out, untouched, corpus, edits, hparams, onLine,
        model: program.opts().model, redis, prefix, shardSize, onWorkers: queueProgress(`${o.method} ${o.mode}`).onWorkers,
      })
      : await withModel(program.opts(), async (m) => {
        const layers = o.method === "memit" || o.method === "alphaedit" ? defaultMemitHparams(m.config).layers : [defaultHparams(m.config).layer];
        let sbar: Progress | undefined;
        const stats = await computeStatsLayers(m, { layers, corpus, onProgress: (p) => (sbar ??= new Progress("statistics (tokens)", p.total)).update(p.done) });
        for (const [i, f] of (edits ?? []).entries()) for (const e of loadEdits(f, m)) m.edits.apply({ ...e, id: `base-${i}-${e.id}` });
        return runEdits(m, records, { method: o.method, mode: o.mode, batchSize: o.batchSize, out: o.out, stats, untouched, ...(hparams ? { hparams } : {}), onLine });
      });
    const summary = summarizeRun(lines);
    const base = o.out.replace(/\.jsonl$/, "");
    writeFileAtomic(`${base}.summary.json`, JSON.stringify({ method: o.method, mode: o.mode, batchSize: o.batchSize, dataset: o.dataset, ...summary }, null, 2));
    writeFileAtomic(`${base}.summary.csv`, summaryCsv(summary));
    const svg = runPlotSvg(lines, `${o.method}, ${o.mode}${o.mode === "alone" ? "" : ` (batches of ${o.batchSize})`}: ${basename(o.dataset)}`);
    writeFileAtomic(`${base}.svg`, svg);
    writeFileAtomic(`${base}.png`, svgToPng(svg));
    const pctOf = (k: string) => summary.metrics[k] ? `${(100 * summary.metrics[k]!.mean).toFixed(1)} [${(100 * summary.metrics[k]!.lo).toFixed(1)}, ${(100 * summary.metrics[k]!.hi).toFixed(1)}]` : "n/a";
    console.log(`${summary.records} records in ${summary.lines} lines: ES ${pctOf("es")}, PS ${pctOf("ps")}, NS ${pctOf("ns")} (% with 95% intervals)` +
      `${summary.esSoFar !== undefined ? `, ES of all edits ${(100 * summary.esSoFar).toFixed(1)}` : ""}${summary.untouched !== undefined ? `, untouched top-1 ${(100 * summary.untouched).toFixed(1)}` : ""}`);
    console.log(`seconds: ${Object.entries(summary.seconds).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}`);
    console.log(`wrote ${base}.summary.json, ${base}.summary.csv, ${base}.svg, ${base}.png`);
  });

program.command("demo")
  .description("predictions, a generation and a causal trace on the bundled TinyFacts model")
  .action(async () => {
    await withModel(program.opts(), async (m) => {
      const prompts = ["Castle of Berkbre is located in the city of", "Castle of Berkbre is located in the country of"];
      console.log(`model: ${program.opts().model} (${m.config.nLayer} layers, d=${m.config.nEmbd}, vocab ${m.config.vocabSize})\n`);
      const preds = await m.predict(prompts, { topK: 3 });
      prompts.forEach((p, i) => console.log(`${p} → ${preds[i]!.map((x) => `${JSON.stringify(x.token)} ${(100 * x.prob).toFixed(1)}%`).join(", ")}`));
      console.log(`\ngreedy: Castle of Berkbre is${await m.generate("Castle of Berkbre is", { maxTokens: 12 })}`);
      const t0 = performance.now();
      const res = await traceKinds(m, { prompt: prompts[0]!, subject: "Castle of Berkbre", noise: 0.4689, window: 3 }, ["resid", "mlp", "attn"]);
      console.log(`\ncausal trace (3 kinds, 10 samples, window 3, ${(performance.now() - t0).toFixed(0)} ms): where is the fact recalled?`);
      for (const k of TRACE_KINDS) {
        const r = res[k]!;
        console.log(`\n${k} (p(${r.answer.token.trim()}): clean ${r.highScore.toFixed(3)}, corrupted ${r.lowScore.toFixed(3)})`);
        printGrid(r.tokens, r.scores, r.subjectRange);
      }
      const layer = defaultHparams(m.config).layer;
      const corpus = join(program.opts().model, "train.txt");
      const t1 = performance.now();
      const stats = await computeStats(m, { layer, corpus });
      const edit = await rome(m, { prompt: "{} is located in the city of", subject: "Castle of Berkbre", targetNew: "Berlin" }, { stats, layer });
      const id = m.edits.apply(edit);
      console.log(`\nROME edit at layer ${layer} (${edit.form}, ${((performance.now() - t1) / 1000).toFixed(1)} s with statistics): Castle of Berkbre → Berlin`);
      const after = await m.predict([...prompts, "Tower of Deathproust can be found in the city of"], { topK: 1 });
      for (const [i, p] of [...prompts, "Tower of Deathproust can be found in the city of"].entries()) console.log(`  ${p} → ${JSON.stringify(after[i]![0]!.token)}`);
      m.edits.undo(id);
      const [back] = await m.predict([prompts[0]!], { topK: 1 });
      console.log(`undone: ${prompts[0]} → ${JSON.stringify(back![0]!.token)}`);
    });
  });

registerServe(program);
registerWorkerCommand(program);

function printGrid(tokens: string[], scores: number[][], [b, e]: [number, number]): void {
  const L = scores[0]?.length ?? 0;
  console.log(" ".repeat(16) + Array.from({ length: L }, (_, l) => `L${l}`.padStart(7)).join(""));
  tokens.forEach((tok, i) => {
    const label = (JSON.stringify(tok).slice(1, -1) + (i >= b && i < e ? "*" : "")).slice(0, 15).padEnd(16);
    console.log(label + scores[i]!.map((v) => v.toFixed(3).padStart(7)).join(""));
  });
}

program.parseAsync().catch((e: unknown) => {
  if (e instanceof RomeError) {
    console.error(`error [${e.code}]: ${e.message}`);
    process.exit(2);
  }
  throw e;
});
