// `npm run bench -- host [--shapes small,xl] [--scenarios load,predict,trace,edit] [--modes in-thread,worker]
//   [--dir DIR] [--xl-samples 2] [--xl-kinds resid] [--edit-steps 3] [--threads 1] [--arena off,on] [--baseline CHECKOUT] [--evict-head]`
//
// Memory and event-loop figures of one model in one process, per scenario in a fresh child process
// (so each peak RSS is that scenario's own):
//   - load: Model.load alone (time, largest event-loop delay);
//   - predict: load + one predict;
//   - trace: load + traceKinds over resid/mlp/attn with 10 noise samples (on the XL shape
//     `--xl-kinds` and `--xl-samples`, default resid with 2 samples, as a full trace takes too long);
//   - edit: load + one ROME edit at the middle layer with statistics read from a cache file
//     (synthetic: the identity, so no corpus run is needed), 5 fixed context templates and
//     `--edit-steps` value steps.
// Each scenario runs in-thread and with the worker host (`Model.load(dir, { worker: true })`: the
// model on a worker thread of the same process, so the child's peak RSS counts the caller's thread
// and the worker together).
// `--arena` lists the settings of Model.load's `memoryArena` to run each scenario with (default off,
// the library's default; "on" is onnxruntime's arena per session, the behaviour before it was an option).
// Peak RSS is the kernel's high-water mark (VmHWM) of the child, reported over the checkpoint's size.
// The largest event-loop delay is how late a 10 ms interval timer fired at worst during the phase.
// Checkpoints are random GPT-2s written by scripts/random-model.ts into `--dir` (default
// $TMPDIR/rome-node-host-bench) on first use: the GPT-2-small shape (498 MB) and a GPT-2-XL shape
// (48 layers × 1600, 6.2 GB). Run the XL shape alone on the machine.
// `--baseline CHECKOUT` runs every row a second time with another checkout's lib/ (its build/ and
// node_modules in place), for before/after figures in one run. `--evict-head` (in-thread rows only)
// drops the checkpoint's pages from the page cache once the head segment has opened, as memory
// pressure does on the XL shape while the layers stream past, so that the first predict shows what
// the head's unembedding costs when it must come back from the disk.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { writeSafetensors } from "../lib/model/safetensors.js";
import type { TraceKind } from "../lib/trace/grid.js";
import { arg, printTable, writeResults } from "./bench-util.js";
import { writeRandomCheckpoint } from "./random-model.js";

const SHAPES = {
  small: {},
  xl: { nLayer: 48, nEmbd: 1600, nHead: 25 },
} as const;
type Shape = keyof typeof SHAPES;
const SCENARIOS = ["load", "predict", "trace", "edit"] as const;
type Scenario = (typeof SCENARIOS)[number];
const MODES = ["in-thread", "worker"] as const;
type Mode = (typeof MODES)[number];

const PROMPT = "The Eiffel Tower is located in the city of";
const SUBJECT = "The Eiffel Tower";
const TEMPLATES = ["{}", "The following is true. {}", "I read this in a book. {}", "He said that. {}", "Everyone knows it. {}"];

interface ChildResult {
  loadSeconds: number;
  loadMaxDelayMs: number;
  opSeconds: number;
  opMaxDelayMs: number;
  /** Page faults of the process that read from the disk during the operation. */
  opMajorFaults: number;
  peakRssBytes: number;
  what: string;
}

/** Largest lateness of a 10 ms interval timer between start() and stop(). */
class LoopDelay {
  private timer?: NodeJS.Timeout;
  private max = 0;
  start(): void {
    this.max = 0;
    let expected = performance.now() + 10;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.max = Math.max(this.max, now - expected);
      expected = now + 10;
    }, 10);
  }
  stop(): number {
    clearInterval(this.timer);
    return this.max;
  }
}

function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return Number(m![1]) * 1024;
}

/** Drops `file`'s pages from the page cache (those no process has mapped). */
function evict(file: string): void {
  execFileSync("dd", [`if=${file}`, "iflag=nocache", "count=0"], { stdio: "ignore" });
}

async function child(scenario: Scenario, dir: string, shape: Shape, mode: Mode, lib: string): Promise<void> {
  const { Model } = (await import(pathToFileURL(join(lib, "runtime", "model.ts")).href)) as typeof import("../lib/runtime/model.js");
  const { loadStats, rome, traceKinds } = (await import(pathToFileURL(join(lib, "host", "api.ts")).href)) as typeof import("../lib/host/api.js");
  const threads = Number(arg("threads") ?? 1);
  const evictHead = process.argv.includes("--evict-head") && mode === "in-thread";
  const delay = new LoopDelay();
  delay.start();
  const t0 = performance.now();
  // memoryArena only when on: a baseline checkout from before the option would refuse its name
  const arena = arg("arena") === "on" ? { memoryArena: true } : {};
  const model = await Model.load(dir, mode === "worker" ? { threads, worker: true, ...arena }
    : { threads, ...arena, onProgress: (p) => { if (evictHead && p.done === 2) evict(join(dir, "model.safetensors")); } });
  const loadSeconds = (performance.now() - t0) / 1000;
  const loadMaxDelayMs = delay.stop();
  delay.start();
  const faults = process.resourceUsage().majorPageFault;
  const t1 = performance.now();
  let what = "";
  if (scenario === "predict") {
    await model.predict([PROMPT]);
    what = "predict 1 prompt";
  } else if (scenario === "trace") {
    const kinds = (shape === "xl" ? (arg("xl-kinds") ?? "resid") : "resid,mlp,attn").split(",") as TraceKind[];
    const samples = shape === "xl" ? Number(arg("xl-samples") ?? 2) : 10;
    await traceKinds(model, { prompt: PROMPT, subject: SUBJECT, samples }, kinds);
    what = `traceKinds ${kinds.join("/")}, ${samples} samples`;
  } else if (scenario === "edit") {
    const layer = Math.floor(model.config.nLayer / 2);
    const stats = await loadStats(statsFile(dir, layer, model.config.nInner), model); // read where the model lives
    const steps = Number(arg("edit-steps") ?? 3);
    await rome(model, { prompt: "{} is located in the city of", subject: SUBJECT, targetNew: "Rome" },
      { stats, layer, contextTemplates: TEMPLATES, hparams: { vNumGradSteps: steps }, guard: { maxNormRatio: 1e12, minDenominator: 0 } });
    what = `rome layer ${layer}, ${TEMPLATES.length} templates, ${steps} steps`;
  }
  const opSeconds = (performance.now() - t1) / 1000;
  const opMaxDelayMs = delay.stop();
  const opMajorFaults = process.resourceUsage().majorPageFault - faults;
  const result: ChildResult = { loadSeconds, loadMaxDelayMs, opSeconds, opMaxDelayMs, opMajorFaults, peakRssBytes: peakRss(), what };
  await model.dispose();
  process.stdout.write("RESULT " + JSON.stringify(result) + "\n");
}

/** Identity statistics of `layer` (F × F float64), written once beside the checkpoint. */
function statsFile(dir: string, layer: number, F: number): string {
  return join(dir, `stats-identity-${layer}-${F}.safetensors`);
}

function ensureCheckpoint(shape: Shape, root: string): string {
  const dir = join(root, shape);
  if (!existsSync(join(dir, "config.json"))) {
    console.log(`writing the ${shape} checkpoint to ${dir}…`);
    writeRandomCheckpoint(dir, SHAPES[shape], join("test", "fixtures", "gpt2-tokenizer.json"), 1);
  }
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  const F: number = cfg.n_inner ?? 4 * cfg.n_embd;
  const layer = Math.floor(cfg.n_layer / 2);
  const path = statsFile(dir, layer, F);
  if (!existsSync(path)) {
    const mom2 = new Float64Array(F * F); // (F, F)
    for (let i = 0; i < F; i++) mom2[i * F + i] = 1;
    writeSafetensors(path, { mom2: { dtype: "F64", shape: [F, F], data: mom2 } }, { layer: String(layer), count: "1", model: "", corpus: "identity" });
  }
  return dir;
}

async function parent(): Promise<void> {
  const root = arg("dir") ?? join(tmpdir(), "rome-node-host-bench");
  const shapes = (arg("shapes") ?? "small,xl").split(",") as Shape[];
  const rows: Record<string, string | number>[] = [];
  const records: unknown[] = [];
  for (const shape of shapes) {
    if (!(shape in SHAPES)) throw new Error(`unknown shape ${shape}; shapes: ${Object.keys(SHAPES).join(", ")}`);
    const dir = ensureCheckpoint(shape, root);
    const size = statSync(join(dir, "model.safetensors")).size;
    const libs = [{ name: "this", lib: resolve("lib") }, ...(arg("baseline") ? [{ name: "baseline", lib: resolve(arg("baseline")!, "lib") }] : [])];
    const runs = ((arg("scenarios")?.split(",") ?? SCENARIOS) as Scenario[]).flatMap((s) => ((arg("modes")?.split(",") ?? MODES) as Mode[]).map((m) => [s, m] as const));
    for (const [scenario, mode, arena] of runs.flatMap(([s, m]) => (arg("arena") ?? "off").split(",").map((a) => [s, m, a] as const))) for (const { name: code, lib } of libs) {
      if (arena !== "off" && arena !== "on") throw new Error(`--arena takes off and/or on, not ${arena}`);
      if (!SCENARIOS.includes(scenario)) throw new Error(`unknown scenario ${scenario}; scenarios: ${SCENARIOS.join(", ")}`);
      if (!MODES.includes(mode)) throw new Error(`unknown mode ${mode}; modes: ${MODES.join(", ")}`);
      const args = ["--import=tsx", "scripts/bench-host.ts", "--child", scenario, "--ckpt", dir, "--shape", shape, "--mode", mode, "--arena", arena, "--lib", lib];
      for (const k of ["threads", "xl-samples", "xl-kinds", "edit-steps"]) if (arg(k)) args.push(`--${k}`, arg(k)!);
      if (process.argv.includes("--evict-head")) args.push("--evict-head");
      const out = execFileSync(process.execPath, args, { encoding: "utf8", maxBuffer: 1 << 26, stdio: ["ignore", "pipe", "inherit"] });
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      if (!line) throw new Error(`child ${shape}/${scenario} printed no result:\n${out}`);
      const r = JSON.parse(line.slice(7)) as ChildResult;
      records.push({ shape, scenario, mode, memoryArena: arena === "on", code, checkpointBytes: size, ...r });
      rows.push({
        shape, scenario, mode, arena, ...(libs.length > 1 ? { code } : {}), what: r.what || "-", "load s": r.loadSeconds, "load max delay ms": r.loadMaxDelayMs,
        "op s": scenario === "load" ? "-" : r.opSeconds, "op max delay ms": scenario === "load" ? "-" : r.opMaxDelayMs,
        "op major faults": scenario === "load" ? "-" : r.opMajorFaults,
        "peak RSS GB": r.peakRssBytes / 1e9, "peak / checkpoint": r.peakRssBytes / size,
      });
      console.log(JSON.stringify(records.at(-1)));
    }
  }
  printTable("in-thread and worker-hosted model: load time, peak RSS (caller + worker) over checkpoint size, largest event-loop delay (10 ms timer)", rows);
  writeResults("host", records);
}

const childScenario = arg("child") as Scenario | undefined;
if (childScenario) await child(childScenario, arg("ckpt")!, arg("shape") as Shape, (arg("mode") ?? "in-thread") as Mode, arg("lib") ?? resolve("lib"));
else await parent();
