// Where ROME reads and writes: the subject's last token in a prompt built from a template. The
// subject is placed by formatting the template, so its characters are known exactly, and its
// tokens come from the tokenizer's offsets — never from searching decoded tokens.
import { RomeError } from "../errors.js";
import type { Tokenizer } from "../model/tokenizer.js";
import { tokenRange } from "../trace/subject.js";

export interface Located {
  text: string;
  ids: number[];
  /** Index of the subject's last token in ids. */
  index: number;
}

/**
 * Formats `template` ("... {} ...") with the subject, tokenizes it (optionally followed by
 * `suffixIds`), and finds the subject's last token.
 */
export async function locateSubject(tok: Tokenizer, template: string, subject: string): Promise<Located> {
  const at = template.indexOf("{}");
  if (at < 0) throw new RomeError("ERR_ARGUMENT", `the prompt template ${JSON.stringify(template)} has no "{}" for the subject`);
  if (typeof subject !== "string" || subject.trim().length === 0) throw new RomeError("ERR_EMPTY_SUBJECT", "the subject is empty");
  const text = template.slice(0, at) + subject + template.slice(at + 2);
  const enc = await tok.encode(text);
  const [, end] = tokenRange(enc, [at, at + subject.length]);
  return { text, ids: enc.ids, index: end - 1 };
}
