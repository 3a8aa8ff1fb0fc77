// `trace-dataset --redis`: the sweep of traceDataset, split into shards of consecutive facts of
// similar cost (by their prompts' token counts) that the workers of the model's queue trace, under
// the edits of `edits` files when given. The noise level is resolved first (by a worker, from all
// the dataset's subjects, as a local run does), the lines are written in dataset order as shards
// finish, and an existing output is resumed; the summary and plots are the local run's.
import { checkInt, RomeError } from "../errors.js";
import { openJsonl } from "../io/jsonl.js";
import { Tokenizer } from "../model/tokenizer.js";
import { summarizeDataset, writeHeatmaps, type FactTrace, type TraceDatasetOptions, type TraceDatasetResult } from "../trace/dataset.js";
import { TRACE_KINDS } from "../trace/grid.js";
import { readKnownFacts } from "../trace/known.js";
import { balancedRuns, traceCost } from "./balance.js";
import { openQueueClient, type QueueClientOptions, type Shard } from "./client.js";
import { readEditFiles } from "./edit-files.js";
import { JOB, type JobBase, type TraceJob, type TraceJobResult } from "./jobs.js";

export interface QueuedTraceOptions extends Omit<TraceDatasetOptions, "onProgress" | "edits" | "signal">, QueueClientOptions {
  /** Facts per job on average (shards are cut to similar cost, so short prompts make longer shards). Default 4. */
  shardSize?: number;
  /** exportEdits files: every fact is traced with these edits applied (made for this model; checked on the worker). */
  edits?: readonly string[];
}

export async function traceDatasetOnQueue(options: QueuedTraceOptions): Promise<TraceDatasetResult> {
  const facts = typeof options.dataset === "string" ? readKnownFacts(options.dataset) : [...options.dataset];
  const kinds = [...(options.kinds ?? TRACE_KINDS)];
  for (const k of kinds) if (!TRACE_KINDS.includes(k)) throw new RomeError("ERR_UNKNOWN_KIND", `unknown trace kind ${JSON.stringify(k)}`);
  const limit = checkInt("limit", options.limit ?? facts.length, 0, facts.length);
  const shardSize = checkInt("shardSize", options.shardSize ?? 4, 1, 1 << 20);
  const todo = facts.slice(0, limit);
  const edits = readEditFiles(options.edits);
  const tokenizer = await Tokenizer.load(options.model);
  const client = await openQueueClient(options);
  try {
    const noise = options.noise ?? 3 * (await client.single<number>(JOB.noise, { subjects: facts.map((f) => f.subject) }, options));
    const out = openJsonl<FactTrace>(options.out, { keyOf: (r) => r.key });
    const resumed = out.done.size;
    let traced = 0;
    try {
      const pending = todo.filter((f) => !out.done.has(String(f.known_id)));
      const tokens = await Promise.all(pending.map(async (f) => (await tokenizer.encode(f.prompt)).ids.length));
      const shards: Shard<Omit<TraceJob, keyof JobBase>>[] = balancedRuns(tokens.map(traceCost), Math.ceil(pending.length / shardSize)).map(([a, b]) => ({
        name: JOB.trace, units: b - a,
        data: { facts: pending.slice(a, b), kinds, noise, samples: options.samples, window: options.window, seed: options.seed, strategy: options.strategy, edits },
      }));
      await client.shards<Omit<TraceJob, keyof JobBase>, TraceJobResult>(shards, (_i, result) => {
        for (const line of result.lines) {
          if (out.done.has(line.key)) continue;
          out.append(line);
          traced++;
          if (options.heatmaps && line.known_id <= (options.heatmapLimit ?? 200)) writeHeatmaps(options.heatmaps, line);
        }
      }, { signal: options.signal, onProgress: options.onProgress, phase: "facts" });
    } finally {
      out.close();
    }
    const { averages, noiseLevel } = summarizeDataset(options.out, todo, kinds, noise, options.plots);
    return { out: options.out, traced, resumed, averages, noiseLevel };
  } finally {
    await client.close();
  }
}
