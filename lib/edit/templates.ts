// Context templates for ROME's key and value: "{}" plus short prefixes sampled from the model
// itself ("<generated text>. {}"), as the reference does, seeded so an edit is reproducible — or
// given by the caller so two implementations can use the same ones.
import { checkInt, checkOptionNames, RomeError } from "../errors.js";
import type { EditSelection } from "../runtime/edits.js";
import type { Model } from "../runtime/model.js";

export interface TemplateOptions {
  /** [tokens, count] pairs: `count` samples of `tokens` tokens each. Default [[5, 10], [10, 10]]. */
  lengths?: readonly (readonly [number, number])[];
  /** Top-k of the sampling. Default 5. */
  topK?: number;
  /** Seed of the first sample (sample i uses seed + i). Default 0. */
  seed?: number;
  /** The edits the sampling model runs with. Default: the model's enabled edits when the call starts. */
  edits?: EditSelection;
  signal?: AbortSignal;
}

/**
 * ["{}", "<sample>. {}", ...]; samples start after the tokenizer's BOS (<|endoftext|> for a
 * tokenizer without one, as the reference), NFKD-normalised, braces removed.
 */
export async function contextTemplates(model: Model, options: TemplateOptions = {}): Promise<string[]> {
  checkOptionNames("contextTemplates", options, ["lengths", "topK", "seed", "edits", "signal"]);
  const lengths = options.lengths ?? [[5, 10], [10, 10]];
  const topK = checkInt("topK", options.topK ?? 5, 1, model.config.vocabSize);
  const seed = checkInt("seed", options.seed ?? 0, 0, 2 ** 32 - 1);
  const start = model.tokenizer.bosTokenId ?? model.config.eosTokenId;
  const edits = model.edits.view(options.edits);
  const out = ["{}"];
  let i = 0;
  for (const [tokens, count] of lengths) {
    // The reference's max_out_len counts the prompt token: `tokens` − 1 are generated.
    for (let c = 0; c < count; c++, i++) {
      const ids = await model.generateIds([start], { maxTokens: Math.max(1, tokens - 1), topK, seed: seed + i, edits, signal: options.signal });
      const text = model.tokenizer.decode(ids, { start: true }).normalize("NFKD").replaceAll("\n\n", " ").replaceAll("<|endoftext|>", "");
      out.push(text.replaceAll("{", "").replaceAll("}", "") + ". {}");
    }
  }
  return out;
}

/** Checks caller-given templates: strings with exactly one "{}". */
export function checkTemplates(templates: readonly string[]): string[] {
  if (!Array.isArray(templates) || templates.length === 0) throw new RomeError("ERR_ARGUMENT", "contextTemplates must be a non-empty array of strings containing \"{}\"");
  templates.forEach((t, i) => {
    if (typeof t !== "string" || t.split("{}").length !== 2) {
      throw new RomeError("ERR_ARGUMENT", `context template ${i} (${JSON.stringify(t)}) must contain "{}" exactly once`);
    }
  });
  return [...templates];
}

/**
 * `template` with its first "{}" replaced by `text`, literally: never through String.replace, whose
 * patterns (`$&`, `$'`, `$$`) would rewrite user text.
 */
export function fillTemplate(template: string, text: string): string {
  const at = template.indexOf("{}");
  if (at < 0) throw new RomeError("ERR_ARGUMENT", `the template ${JSON.stringify(template)} has no "{}"`);
  return template.slice(0, at) + text + template.slice(at + 2);
}
