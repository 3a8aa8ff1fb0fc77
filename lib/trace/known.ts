// Known-facts datasets in the schema of ROME's `known_1000.json` (the facts that causal tracing
// sweeps over). Every record is checked before a long run starts, and a bad one is reported by
// its index and field rather than failing halfway through the run.

import { RomeError } from "../errors.js";
import { describeValue as describe, readJsonFile } from "../io/json.js";

/** One fact, with the file's own field names. */
export interface KnownFact {
  /** Unique non-negative integer id. */
  known_id: number;
  /** Subject as it appears in `prompt` (non-empty). */
  subject: string;
  /** The true object, without a leading space ("Paris"). */
  attribute: string;
  /** Prompt with "{}" where the subject goes; in known_1000 it may be shorter than `prompt`. */
  template: string;
  /** The model's continuation recorded when the dataset was made (" Paris ..."). */
  prediction: string;
  /** The text traced; contains `subject`. */
  prompt: string;
  /** Wikidata relation ("P131"). */
  relation_id: string;
}

export interface KnownFactsOptions {
  /**
   * Fields that may be missing (they read as ""). Default: template, prediction and relation_id,
   * so that hand-made datasets need only known_id, subject, attribute and prompt. [] requires all.
   */
  optional?: ReadonlyArray<"template" | "prediction" | "relation_id">;
}

const STRING_FIELDS = ["subject", "attribute", "template", "prediction", "prompt", "relation_id"] as const;
const DEFAULT_OPTIONAL = ["template", "prediction", "relation_id"] as const;

/** Reads and validates a known-facts JSON file. Throws ERR_DATASET (or ERR_IO when unreadable). */
export function readKnownFacts(file: string, options: KnownFactsOptions = {}): KnownFact[] {
  const data = readJsonFile(file);
  return parseKnownFacts(data, file, options);
}

/** Validates parsed JSON as known facts; `source` names it in error messages. */
export function parseKnownFacts(data: unknown, source = "known facts", options: KnownFactsOptions = {}): KnownFact[] {
  const optional: readonly string[] = options.optional ?? DEFAULT_OPTIONAL;
  if (!Array.isArray(data)) {
    throw new RomeError("ERR_DATASET", `${source}: expected a JSON array of records but found ${describe(data)}`);
  }
  const seen = new Map<number, number>();
  return data.map((raw: unknown, i): KnownFact => {
    const fail = (field: string, what: string) =>
      new RomeError("ERR_DATASET", `${source}: record ${i}, field '${field}': ${what}`);
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new RomeError("ERR_DATASET", `${source}: record ${i}: expected an object but found ${describe(raw)}`);
    }
    const r = raw as Record<string, unknown>;
    const id = r.known_id;
    if (id === undefined) throw fail("known_id", "missing");
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) {
      throw fail("known_id", `expected a non-negative integer but found ${describe(id)}`);
    }
    const earlier = seen.get(id);
    if (earlier !== undefined) throw fail("known_id", `${id} is also the id of record ${earlier}`);
    seen.set(id, i);
    const fact = { known_id: id } as KnownFact;
    for (const field of STRING_FIELDS) {
      const v = r[field];
      if (v === undefined && optional.includes(field)) { fact[field] = ""; continue; }
      if (v === undefined) throw fail(field, "missing");
      if (typeof v !== "string") throw fail(field, `expected a string but found ${describe(v)}`);
      fact[field] = v;
    }
    if (fact.subject.trim() === "") throw fail("subject", "empty");
    if (fact.attribute.trim() === "") throw fail("attribute", "empty");
    if (!fact.prompt.includes(fact.subject)) {
      throw fail("prompt", `does not contain the subject ${JSON.stringify(fact.subject)}`);
    }
    if (fact.template !== "" && !fact.template.includes("{}")) throw fail("template", `has no "{}" placeholder`);
    return fact;
  });
}
