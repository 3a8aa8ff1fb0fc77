// `npm run bench -- threads [--facts 4] [--rounds 3] [--samples 10] [--gpt2] [--gpt2-facts 1] [--configs t1,t2,...]`
//
// Does a second onnxruntime thread survive contention? TinyFacts causal traces (3 kinds through
// traceKinds, samples 10, noise 0.47) in facts/s, for these configurations, each in its own child
// process (so that OpenMP's environment can differ), models loaded once:
//   t1           threads 1
//   t2-spin      threads 2, intra-op pool spinning (onnxruntime's own default; rome-node's before)
//   t2           threads 2, no spinning (rome-node's default)
//   t2-omp-pass  threads 2, no spinning, OMP_WAIT_POLICY=PASSIVE for the addon's OpenMP
//   2×t1         two processes with threads 1, each tracing half of the facts at the same time
//                (data parallelism: no barrier between the two threads' operators)
// under two conditions, interleaved round by round so that drift in the machine's load hits all
// alike: "quiet" (whatever else runs on the machine) and "contended" (plus one CPU-bound
// competitor process per core, started and stopped by this benchmark). The ratio of each
// configuration to t1 in the same condition and round is the result; the median over rounds is
// printed. `--gpt2` adds the GPT-2-small shape (random weights, known_1000 facts). Each process's
// resident memory after loading and one warm-up trace is printed too.
import { fork, spawn, type ChildProcess } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { arg, printTable, writeResults } from "./bench-util.js";

interface Config { name: string; threads: number; spinning: boolean; env?: Record<string, string>; procs?: number }
const ALL: Config[] = [
  { name: "t1", threads: 1, spinning: false },
  { name: "t2-spin", threads: 2, spinning: true },
  { name: "t2", threads: 2, spinning: false },
  { name: "t2-omp-pass", threads: 2, spinning: false, env: { OMP_WAIT_POLICY: "PASSIVE" } },
  { name: "2×t1", threads: 1, spinning: false, procs: 2 },
];
const wanted = arg("configs")?.split(",");
const CONFIGS = ALL.filter((c) => c.name === "t1" || !wanted || wanted.includes(c.name));
const facts = Number(arg("facts") ?? 4);
const rounds = Number(arg("rounds") ?? 3);
const samples = Number(arg("samples") ?? 10);
const gpt2 = process.argv.includes("--gpt2");
const gpt2Facts = Number(arg("gpt2-facts") ?? 1);

/** Trace the facts whose index is `part[0]` modulo `part[1]`. */
type Request = { shape: "tinyfacts" | "gpt2"; part: [number, number] };
type Reply = { seconds: number; facts: number };

if (process.argv.includes("--child")) await child(JSON.parse(arg("child")!) as Config);
else await parent();

/** A configuration's process: loads the models, then traces the same facts on each request. */
async function child(cfg: Config): Promise<void> {
  const { Model } = await import("../lib/runtime/model.js");
  const { Tokenizer } = await import("../lib/model/tokenizer.js");
  const { readKnownFacts } = await import("../lib/trace/known.js");
  const { traceKinds } = await import("../lib/trace/trace.js");
  const { randomGpt2 } = await import("./random-model.js");
  const models = {
    tinyfacts: { model: await Model.load("models/tinyfacts", { threads: cfg.threads, spinning: cfg.spinning }), facts: readKnownFacts("models/tinyfacts/known.json").slice(0, facts) },
    gpt2: gpt2
      ? await (async () => {
        const { arch, config, weights } = randomGpt2({}, 1);
        const tokenizer = await Tokenizer.load("models/tiny-gpt2-random");
        return { model: await Model.fromWeights(arch, config, weights, { threads: cfg.threads, spinning: cfg.spinning, tokenizer }), facts: readKnownFacts("data/known_1000.json").slice(0, gpt2Facts) };
      })()
      : undefined,
  };
  const run = async ({ shape, part: [i, n] }: Request): Promise<Reply> => {
    const m = models[shape]!;
    const mine = m.facts.filter((_, k) => k % n === i);
    const t0 = performance.now();
    for (const f of mine) await traceKinds(m.model, { prompt: f.prompt, subject: f.subject, samples, noise: 0.47 }, ["resid", "mlp", "attn"]);
    return { seconds: (performance.now() - t0) / 1000, facts: mine.length };
  };
  await run({ shape: "tinyfacts", part: [0, 1] }); // warm-up
  process.on("message", (req: Request) => void run(req).then((r) => process.send!(r)));
  process.send!({ ready: true, rss: process.memoryUsage().rss });
}

async function parent(): Promise<void> {
  const here = fileURLToPath(import.meta.url);
  const procs = new Map<string, ChildProcess[]>();
  const rss: Record<string, number[]> = {};
  for (const c of CONFIGS) {
    for (let i = 0; i < (c.procs ?? 1); i++) {
      const p = fork(here, ["--child", JSON.stringify(c), "--facts", String(facts), "--samples", String(samples), "--gpt2-facts", String(gpt2Facts), ...(gpt2 ? ["--gpt2"] : [])],
        { execArgv: process.execArgv, env: { ...process.env, ...c.env } });
      const ready = await new Promise<{ rss: number }>((resolve, reject) => {
        p.once("message", (m: { rss: number }) => resolve(m));
        p.once("exit", (code) => reject(new Error(`configuration ${c.name} exited with ${code}`)));
      });
      (rss[c.name] ??= []).push(ready.rss / 2 ** 20);
      (procs.get(c.name) ?? procs.set(c.name, []).get(c.name)!).push(p);
    }
  }
  console.log(`resident memory per process after loading and a warm-up (MiB): ${Object.entries(rss).map(([k, v]) => `${k} ${v.map((x) => x.toFixed(0)).join(" + ")}`).join(", ")}`);
  /** Runs the facts on a configuration's processes at once (each its share): facts and the wall seconds until the last is done. */
  const ask = async (name: string, shape: Request["shape"]): Promise<Reply> => {
    const ps = procs.get(name)!;
    const t0 = performance.now();
    const replies = await Promise.all(ps.map((p, i) => new Promise<Reply>((resolve) => {
      p.once("message", (r: Reply) => resolve(r));
      p.send({ shape, part: [i, ps.length] } satisfies Request);
    })));
    const wall = (performance.now() - t0) / 1000;
    // One process: its own clock (no message latency); several: the parent's, first send to last reply.
    return { seconds: ps.length === 1 ? replies[0]!.seconds : wall, facts: replies.reduce((a, r) => a + r.facts, 0) };
  };
  const shapes: Request["shape"][] = gpt2 ? ["tinyfacts", "gpt2"] : ["tinyfacts"];
  const conditions = ["quiet", "contended"] as const;
  // (shape, condition, config) → facts/s per round
  const rate = new Map<string, number[]>();
  const loads: Record<string, number[]> = { quiet: [], contended: [] };
  /** Prints the table so far (medians over the rounds done) and writes the results. */
  const report = (label: string) => {
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
    };
    const rows: Record<string, string | number>[] = [];
    for (const shape of shapes) {
      for (const cond of conditions) {
        const base = rate.get(`${shape}|${cond}|t1`)!;
        for (const c of CONFIGS) {
          const xs = rate.get(`${shape}|${cond}|${c.name}`)!;
          const ratios = xs.map((x, i) => x / base[i]!);
          rows.push({
            shape, condition: cond, config: c.name, "facts/s (median)": median(xs),
            "÷ t1 (median)": median(ratios), "÷ t1 (worst)": Math.min(...ratios),
          });
        }
      }
    }
    console.log(`\nthreads benchmark (${label}): ${cpus().length} cores, ${facts} TinyFacts facts × 3 kinds per measurement, samples ${samples};` +
      ` 1-min load average during quiet rounds ${loads.quiet!.map((x) => x.toFixed(1)).join(", ")}, contended ${loads.contended!.map((x) => x.toFixed(1)).join(", ")}`);
    printTable("facts/s by configuration; ratios to threads 1 in the same round and condition", rows);
    writeResults("threads", { label, facts, samples, rounds, configs: CONFIGS, loads, rss, rows, raw: Object.fromEntries(rate) });
  };
  for (let r = 0; r < rounds; r++) {
    for (const cond of conditions) {
      const competitors = cond === "contended" ? cpus().map(() => spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" })) : [];
      try {
        for (const shape of shapes) {
          // Alternate the order each round so that no configuration always runs first.
          const order = r % 2 === 0 ? CONFIGS : [...CONFIGS].reverse();
          for (const c of order) {
            const rep = await ask(c.name, shape);
            const key = `${shape}|${cond}|${c.name}`;
            (rate.get(key) ?? rate.set(key, []).get(key)!).push(rep.facts / rep.seconds);
          }
        }
        loads[cond]!.push(loadavg()[0]!);
      } finally {
        for (const k of competitors) k.kill();
      }
    }
    console.error(`round ${r + 1}/${rounds} done`);
    report(r + 1 < rounds ? `after round ${r + 1} of ${rounds}` : "final");
  }
  for (const ps of procs.values()) for (const p of ps) p.kill();
}
