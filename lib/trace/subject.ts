// Finds the subject's tokens in a prompt from the tokenizer's character offsets — never by string
// search over decoded tokens — as the token range [start, end) of every token overlapping the
// subject's characters.
import { RomeError } from "../errors.js";
import type { Encoded } from "../model/tokenizer.js";

export interface SubjectLocation {
  /** Which occurrence of the subject text (0 = first, the reference's choice). */
  occurrence?: number;
  /** An explicit character range [start, end) in the prompt, instead of searching the text. */
  charRange?: [number, number];
}

/** Character range [start, end) of the subject in the prompt. */
export function subjectChars(prompt: string, subject: string, where: SubjectLocation = {}): [number, number] {
  if (where.charRange) {
    const [s, e] = where.charRange;
    if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > prompt.length || e <= s) {
      throw new RomeError("ERR_ARGUMENT", `charRange [${s}, ${e}) is not a non-empty range within the prompt (length ${prompt.length})`);
    }
    return [s, e];
  }
  if (typeof subject !== "string" || subject.trim().length === 0) {
    throw new RomeError("ERR_EMPTY_SUBJECT", "the subject is empty; give the subject text as it appears in the prompt");
  }
  const occurrence = where.occurrence ?? 0;
  let at = -1;
  for (let i = 0; i <= occurrence; i++) {
    at = prompt.indexOf(subject, at + 1);
    if (at < 0) {
      throw new RomeError("ERR_SUBJECT_NOT_FOUND", i === 0
        ? `the subject ${JSON.stringify(subject)} does not occur in the prompt ${JSON.stringify(prompt)}; the subject must be part of the prompt, spelt the same way`
        : `the subject ${JSON.stringify(subject)} occurs only ${i} time(s) in the prompt; occurrence ${occurrence} does not exist`);
    }
  }
  return [at, at + subject.length];
}

/** Token range [start, end) of the tokens that overlap characters [s, e). */
export function tokenRange(enc: Encoded, [s, e]: [number, number]): [number, number] {
  let first = -1;
  let last = -1;
  enc.offsets.forEach(([ts, te], i) => {
    // A leading-space token " Berk" spans the space before the subject: overlap, not containment.
    if (ts < e && te > s) {
      if (first < 0) first = i;
      last = i;
    }
  });
  if (first < 0) throw new RomeError("ERR_SUBJECT_NOT_FOUND", `no token covers characters [${s}, ${e}) of the prompt`);
  return [first, last + 1];
}
