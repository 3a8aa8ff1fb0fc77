// Edit datasets in the three schemas editing studies use, read into one shape: CounterFact (the
// reference's schema, scored with its probability metrics), zsRE in MEND's schema (scored by token
// accuracy, as the reference's zsRE evaluation), and the single-file schema other toolkits use
// (prompt, subject, target_new, ground_truth, rephrase_prompt, locality_prompt; token accuracy).
// Every record is validated; errors name the file, the record and the field.
import { describeValue as describe, readJsonFile } from "../io/json.js";
import { RomeError } from "../errors.js";
import type { MemitRequest } from "../edit/memit-requests.js";
import { parseCounterFact, type CounterFactRecord } from "./counterfact.js";

export type DatasetSchema = "counterfact" | "zsre" | "single";

/** A prompt and the text that should follow it (leading space included). */
export interface Probe {
  prompt: string;
  target: string;
}

export interface EditRecord {
  /** case_id, or the record's index in the file. */
  id: number;
  request: MemitRequest;
  /** CounterFact records keep their own fields (scored with the reference's metrics). */
  counterfact?: CounterFactRecord;
  /** Token-accuracy probes (zsRE and the single-file schema): the rewrite, its paraphrases, unrelated prompts. */
  rewrite: Probe[];
  paraphrase: Probe[];
  /** `target` undefined: the model's own top-1 token before any edit is the target. */
  locality: { prompt: string; target?: string }[];
}

export interface EditDataset {
  schema: DatasetSchema;
  records: EditRecord[];
}

/** Reads a dataset file, recognising its schema from the first record. */
export function readEditDataset(file: string): EditDataset {
  return parseEditDataset(readJsonFile(file), file);
}

export function parseEditDataset(data: unknown, source: string): EditDataset {
  if (!Array.isArray(data) || data.length === 0) throw new RomeError("ERR_DATASET", `${source}: expected a non-empty JSON array of records but found ${describe(data)}`);
  const first = data[0] as Record<string, unknown>;
  if (first && typeof first === "object" && "requested_rewrite" in first) {
    return { schema: "counterfact", records: parseCounterFact(data, source).map(fromCounterFact) };
  }
  if (first && typeof first === "object" && "src" in first && "alt" in first) return { schema: "zsre", records: data.map((r, i) => fromZsre(r, i, source)) };
  if (first && typeof first === "object" && "target_new" in first && "prompt" in first) return { schema: "single", records: data.map((r, i) => fromSingle(r, i, source)) };
  throw new RomeError("ERR_DATASET", `${source}: record 0 matches no known schema: CounterFact (requested_rewrite), zsRE in MEND's schema (src, alt, rephrase, loc, loc_ans, subject) or the single-file schema (prompt, subject, target_new, ground_truth, rephrase_prompt, locality_prompt)`);
}

function fromCounterFact(r: CounterFactRecord): EditRecord {
  const rr = r.requested_rewrite;
  return {
    id: r.case_id, counterfact: r, rewrite: [], paraphrase: [], locality: [],
    request: { prompt: rr.prompt, subject: rr.subject, targetNew: rr.target_new.str, targetTrue: rr.target_true.str, ...(rr.relation_id ? { relationId: rr.relation_id } : {}) },
  };
}

type Fail = (field: string, what: string) => RomeError;

function failer(source: string, i: number): Fail {
  return (field, what) => new RomeError("ERR_DATASET", `${source}: record ${i}, field '${field}': ${what}`);
}

function text(fail: Fail, raw: Record<string, unknown>, field: string, optional = false): string | undefined {
  const v = raw[field];
  if (v === undefined && optional) return undefined;
  if (v === undefined) throw fail(field, "missing");
  if (typeof v !== "string" || v.trim() === "") throw fail(field, `expected a non-empty string but found ${describe(v)}`);
  return v;
}

/** The prompt as a template: the first occurrence of the subject becomes "{}". */
function templateOf(fail: Fail, field: string, prompt: string, subject: string): string {
  const at = prompt.indexOf(subject);
  if (at < 0) throw fail(field, `does not contain the subject ${JSON.stringify(subject)}`);
  return prompt.slice(0, at) + "{}" + prompt.slice(at + subject.length);
}

const space = (s: string) => (/^\s/.test(s) ? s : " " + s);

function record(raw: unknown, i: number, source: string): [Record<string, unknown>, Fail] {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new RomeError("ERR_DATASET", `${source}: record ${i}: expected an object but found ${describe(raw)}`);
  return [raw as Record<string, unknown>, failer(source, i)];
}

function fromZsre(raw: unknown, i: number, source: string): EditRecord {
  const [r, fail] = record(raw, i, source);
  const subject = text(fail, r, "subject")!;
  const src = text(fail, r, "src")!;
  const alt = text(fail, r, "alt")!;
  const rephrase = text(fail, r, "rephrase")!;
  const loc = text(fail, r, "loc")!;
  const locAns = text(fail, r, "loc_ans")!;
  const answers = r.answers;
  if (answers !== undefined && (!Array.isArray(answers) || answers.some((a) => typeof a !== "string"))) throw fail("answers", `expected an array of strings but found ${describe(answers)}`);
  const id = r.case_id === undefined ? i : r.case_id;
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0) throw fail("case_id", `expected a non-negative integer but found ${describe(id)}`);
  return {
    id,
    request: { prompt: templateOf(fail, "src", src, subject), subject, targetNew: alt, ...(Array.isArray(answers) && answers.length ? { targetTrue: answers[0] as string } : {}) },
    rewrite: [{ prompt: src, target: space(alt) }],
    paraphrase: [{ prompt: rephrase, target: space(alt) }],
    locality: [{ prompt: loc + "?", target: space(locAns) }],
  };
}

function fromSingle(raw: unknown, i: number, source: string): EditRecord {
  const [r, fail] = record(raw, i, source);
  const subject = text(fail, r, "subject")!;
  const prompt = text(fail, r, "prompt")!;
  const targetNew = text(fail, r, "target_new")!;
  const groundTruth = text(fail, r, "ground_truth", true);
  const rephrase = text(fail, r, "rephrase_prompt")!;
  const locality = text(fail, r, "locality_prompt")!;
  const localityTruth = text(fail, r, "locality_ground_truth", true);
  return {
    id: i,
    request: { prompt: templateOf(fail, "prompt", prompt, subject), subject, targetNew, ...(groundTruth ? { targetTrue: groundTruth } : {}) },
    rewrite: [{ prompt, target: space(targetNew) }],
    paraphrase: [{ prompt: rephrase, target: space(targetNew) }],
    locality: [{ prompt: locality, ...(localityTruth ? { target: space(localityTruth) } : {}) }],
  };
}
