// CounterFact evaluation (Meng et al. 2022 §4; rome-reference.md §5): read records in CounterFact's
// schema, score each record's rewrite, paraphrase and neighbourhood prompts with both objects by
// mean per-token NLL of the target tokens — exactly the reference's probability metrics — and
// optionally generation fluency. Whatever edits the model has enabled are what gets measured.
import { describeValue as describe, readJsonFile } from "../io/json.js";
import { RomeError, checkInt, checkOptionNames } from "../errors.js";
import type { RomeRequest } from "../edit/rome.js";
import { throwIfAborted } from "../runtime/call.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Model, ModelCallOptions } from "../runtime/model.js";
import {
  bootstrapInterval, harmonicMean, magnitude, meanInterval, successRate, textEntropy,
  type Interval, type PromptScore,
} from "./metrics.js";

/** One CounterFact record, with the file's own field names. */
export interface CounterFactRecord {
  /** Unique non-negative integer id. */
  case_id: number;
  pararel_idx?: number;
  requested_rewrite: {
    /** Prompt with "{}" exactly once where the subject goes. */
    prompt: string;
    relation_id?: string;
    subject: string;
    /** The counterfactual object, without a leading space ("Berlin"). */
    target_new: { str: string; id?: string };
    /** The true object. */
    target_true: { str: string; id?: string };
  };
  /** Other wordings of the rewrite prompt, subject included (PS). */
  paraphrase_prompts: string[];
  /** Prompts about other subjects whose true object is target_true (NS). */
  neighborhood_prompts: string[];
  /** Prompts about subjects whose object is target_new (kept; not scored by the reference's probability metrics). */
  attribute_prompts: string[];
  /** Prompts for generation (GE). */
  generation_prompts: string[];
}

const PROMPT_LISTS = ["paraphrase_prompts", "neighborhood_prompts", "attribute_prompts", "generation_prompts"] as const;

/** Reads and validates a CounterFact-style JSON array. Throws ERR_DATASET naming record and field (ERR_IO when unreadable). */
export function readCounterFact(file: string): CounterFactRecord[] {
  const data = readJsonFile(file);
  return parseCounterFact(data, file);
}

/**
 * Validates parsed JSON as CounterFact records; `source` names it in error messages. Required:
 * case_id, requested_rewrite.{prompt, subject, target_new.str, target_true.str}, paraphrase_prompts
 * and neighborhood_prompts (arrays of non-empty strings, possibly empty arrays). attribute_prompts
 * and generation_prompts may be missing (read as []). Extra fields are dropped.
 */
export function parseCounterFact(data: unknown, source = "counterfact"): CounterFactRecord[] {
  if (!Array.isArray(data)) throw new RomeError("ERR_DATASET", `${source}: expected a JSON array of records but found ${describe(data)}`);
  const seen = new Map<number, number>();
  return data.map((raw: unknown, i): CounterFactRecord => {
    const fail = (field: string, what: string) => new RomeError("ERR_DATASET", `${source}: record ${i}, field '${field}': ${what}`);
    if (!isObject(raw)) throw new RomeError("ERR_DATASET", `${source}: record ${i}: expected an object but found ${describe(raw)}`);
    const id = raw.case_id;
    if (id === undefined) throw fail("case_id", "missing");
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) throw fail("case_id", `expected a non-negative integer but found ${describe(id)}`);
    const earlier = seen.get(id);
    if (earlier !== undefined) throw fail("case_id", `${id} is also the id of record ${earlier}`);
    seen.set(id, i);

    const rr = raw.requested_rewrite;
    if (rr === undefined) throw fail("requested_rewrite", "missing");
    if (!isObject(rr)) throw fail("requested_rewrite", `expected an object but found ${describe(rr)}`);
    const str = (field: string, v: unknown, optional = false): string | undefined => {
      if (v === undefined && optional) return undefined;
      if (v === undefined) throw fail(field, "missing");
      if (typeof v !== "string") throw fail(field, `expected a string but found ${describe(v)}`);
      return v;
    };
    const prompt = str("requested_rewrite.prompt", rr.prompt)!;
    if (prompt.split("{}").length !== 2) throw fail("requested_rewrite.prompt", `must contain "{}" exactly once where the subject goes, found ${describe(prompt)}`);
    const subject = str("requested_rewrite.subject", rr.subject)!;
    if (subject.trim() === "") throw fail("requested_rewrite.subject", "empty");
    const target = (name: "target_new" | "target_true") => {
      const t = rr[name];
      const field = `requested_rewrite.${name}`;
      if (t === undefined) throw fail(field, "missing");
      if (!isObject(t)) throw fail(field, `expected an object { str } but found ${describe(t)}`);
      const s = str(`${field}.str`, t.str)!;
      if (s.trim() === "") throw fail(`${field}.str`, "empty");
      const out: { str: string; id?: string } = { str: s };
      const tid = t.id;
      if (tid !== undefined) out.id = typeof tid === "number" ? String(tid) : str(`${field}.id`, tid);
      return out;
    };
    const targetNew = target("target_new");
    const targetTrue = target("target_true");
    if (targetNew.str.trim() === targetTrue.str.trim()) throw fail("requested_rewrite.target_new.str", `is the same as target_true (${describe(targetTrue.str)})`);

    const lists = {} as Record<(typeof PROMPT_LISTS)[number], string[]>;
    for (const field of PROMPT_LISTS) {
      const v = raw[field];
      if (v === undefined && (field === "attribute_prompts" || field === "generation_prompts")) { lists[field] = []; continue; }
      if (v === undefined) throw fail(field, "missing");
      if (!Array.isArray(v)) throw fail(field, `expected an array of strings but found ${describe(v)}`);
      v.forEach((p: unknown, j) => {
        if (typeof p !== "string" || p.trim() === "") throw fail(`${field}[${j}]`, `expected a non-empty string but found ${describe(p)}`);
      });
      lists[field] = [...(v as string[])];
    }
    const relation = str("requested_rewrite.relation_id", rr.relation_id, true);
    const rec: CounterFactRecord = {
      case_id: id,
      requested_rewrite: { prompt, subject, target_new: targetNew, target_true: targetTrue, ...(relation !== undefined ? { relation_id: relation } : {}) },
      ...lists,
    };
    if (typeof raw.pararel_idx === "number") rec.pararel_idx = raw.pararel_idx;
    return rec;
  });
}

/** The ROME request a record asks for. */
export function toRomeRequest(record: CounterFactRecord): RomeRequest {
  const r = record.requested_rewrite;
  return { prompt: r.prompt, subject: r.subject, targetNew: r.target_new.str, targetTrue: r.target_true.str };
}

/** The rewrite prompt: requested_rewrite.prompt with the subject in place of "{}". */
export function rewritePrompt(record: CounterFactRecord): string {
  return record.requested_rewrite.prompt.replace("{}", () => record.requested_rewrite.subject);
}

/** The reference's metrics of one record (rome-reference.md §5), on the model as it is. Fractions in [0, 1]. */
export interface RecordMetrics {
  case_id: number;
  rewrite: PromptScore[];
  paraphrase: PromptScore[];
  neighborhood: PromptScore[];
  /** Efficacy: rewrite prompts with NLL_true > NLL_new. */
  es: number;
  /** mean(e^−NLL_new − e^−NLL_true) on the rewrite prompts. */
  em: number;
  ps: number;
  pm: number;
  /** Neighbourhood: prompts with NLL_true < NLL_new (NaN when the record has none). */
  ns: number;
  nm: number;
  /** Generation entropy (bits), when asked for. */
  ge?: number;
  generations?: string[];
}

export interface GenerationOptions {
  /** Total tokens per generation, prompt included, as the reference's max_out_len. Default 100, capped at the model's context. */
  maxLength?: number;
  /** Top-k sampling. Default 5 (the reference's). */
  topK?: number;
  /** Base seed; each generation uses its own seed derived from case_id and prompt index. Default 0. */
  seed?: number;
}

/**
 * `edits`: the edit set scored (default: the model's enabled edits when the call starts). Abort
 * stops within one group of records; progress phase "records".
 */
export interface EvaluateOptions extends ModelCallOptions {
  /** Records scored per model.logprob call (which batches by the model's batchSize). Default 32; 1–4096. */
  recordsPerCall?: number;
  /** Also sample from generation_prompts and compute GE. Default false (generation is far slower than scoring). */
  generation?: boolean | GenerationOptions;
}
const EVAL_OPTIONS = ["recordsPerCall", "generation", "edits", "signal", "onProgress"] as const;

/**
 * Scores every record on the model with its currently enabled edits. Prompt and " " + object are
 * tokenized separately (model.logprob) and compared by mean per-token NLL, as the reference does.
 */
export async function evaluateRecords(model: Model, records: readonly CounterFactRecord[], options: EvaluateOptions = {}): Promise<RecordMetrics[]> {
  checkOptionNames("evaluateRecords", options, EVAL_OPTIONS);
  const edits = model.edits.view(options.edits); // the call's edit set, captured before any await
  const { signal } = options;
  records = parseCounterFact(records, "evaluateRecords records"); // a malformed record is ERR_DATASET, not a TypeError
  const per = checkInt("recordsPerCall", options.recordsPerCall ?? 32, 1, 4096);
  const gen = options.generation === true ? {} : options.generation || undefined;
  if (gen) checkOptionNames("generation", gen, ["maxLength", "topK", "seed"]);
  const out: RecordMetrics[] = [];
  for (let s = 0; s < records.length; s += per) {
    throwIfAborted(signal);
    const group = records.slice(s, s + per);
    const pairs: { prompt: string; target: string }[] = [];
    const layout = group.map((rec) => {
      const lists = [[rewritePrompt(rec)], rec.paraphrase_prompts, rec.neighborhood_prompts];
      const start = pairs.length;
      for (const list of lists) {
        for (const prompt of list) {
          pairs.push({ prompt, target: " " + rec.requested_rewrite.target_new.str }, { prompt, target: " " + rec.requested_rewrite.target_true.str });
        }
      }
      return { start, lists };
    });
    const lp = await model.logprob(pairs, { edits, signal });
    for (const [g, rec] of group.entries()) {
      let at = layout[g]!.start;
      const [rewrite, paraphrase, neighborhood] = layout[g]!.lists.map((list) =>
        list.map((prompt): PromptScore => {
          const score = { prompt, nllNew: -lp[at]!.mean, nllTrue: -lp[at + 1]!.mean };
          at += 2;
          return score;
        })) as [PromptScore[], PromptScore[], PromptScore[]];
      const m: RecordMetrics = {
        case_id: rec.case_id, rewrite, paraphrase, neighborhood,
        es: successRate(rewrite, "new"), em: magnitude(rewrite, "new"),
        ps: successRate(paraphrase, "new"), pm: magnitude(paraphrase, "new"),
        ns: successRate(neighborhood, "true"), nm: magnitude(neighborhood, "true"),
      };
      if (gen) {
        m.generations = [];
        for (const [j, prompt] of rec.generation_prompts.entries()) {
          m.generations.push(await generateText(model, prompt, { ...gen, seed: (gen.seed ?? 0) + rec.case_id * 64 + j }, { edits, signal }));
        }
        m.ge = m.generations.length ? m.generations.reduce((a, t) => a + textEntropy(t), 0) / m.generations.length : NaN;
      }
      out.push(m);
    }
    options.onProgress?.({ phase: "records", done: out.length, total: records.length });
  }
  return out;
}

/**
 * The prompt and a top-k sampled continuation, `maxLength` tokens in all, as the reference's
 * generate_fast returns them. TinyFacts ends sentences with <|endoftext|>; where the reference
 * would keep sampling past it, this appends it (dropped from the text) and samples on.
 */
export async function generateText(model: Model, prompt: string, options: GenerationOptions = {}, call: { edits?: EditView; signal?: AbortSignal } = {}): Promise<string> {
  const edits = model.edits.view(call.edits);
  checkOptionNames("generateText", options, ["maxLength", "topK", "seed"]);
  const [ids] = await model.encodePrompts([prompt]);
  const total = Math.min(checkInt("maxLength", options.maxLength ?? 100, 1, 1 << 20), model.config.nPositions);
  const seq = [...ids!];
  const eos = model.config.eosTokenId;
  for (let round = 0; seq.length < total; round++) {
    const got = await model.generateIds(seq, { maxTokens: total - seq.length, topK: options.topK ?? 5, seed: ((options.seed ?? 0) * 1009 + round) >>> 0, edits, signal: call.signal });
    seq.push(...got);
    if (seq.length < total) seq.push(eos);
  }
  return model.tokenizer.decode(seq.filter((t) => t !== eos), { start: true });
}

/** Aggregates over records: means with 95% intervals (fractions), S with a bootstrap interval. */
export interface MetricsSummary {
  n: number;
  es: Interval;
  em: Interval;
  ps: Interval;
  pm: Interval;
  ns: Interval;
  nm: Interval;
  /** Harmonic mean of the mean ES, PS and NS (as the reference's summarize.py), with a seeded percentile-bootstrap 95% interval over records. */
  s: { value: number; lo: number; hi: number };
  ge?: Interval;
}

export function summarize(metrics: readonly RecordMetrics[]): MetricsSummary {
  const pick = (k: "es" | "em" | "ps" | "pm" | "ns" | "nm" | "ge") => meanInterval(metrics.map((m) => m[k] ?? NaN));
  const score = (idx: readonly number[]) => {
    const sel = idx.map((i) => metrics[i]!);
    return harmonicMean([
      meanInterval(sel.map((m) => m.es)).mean, meanInterval(sel.map((m) => m.ps)).mean, meanInterval(sel.map((m) => m.ns)).mean,
    ]);
  };
  const all = metrics.map((_, i) => i);
  const out: MetricsSummary = {
    n: metrics.length, es: pick("es"), em: pick("em"), ps: pick("ps"), pm: pick("pm"), ns: pick("ns"), nm: pick("nm"),
    s: { value: score(all), ...bootstrapInterval(metrics.length, score) },
  };
  if (metrics.some((m) => m.ge !== undefined)) out.ge = pick("ge");
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
