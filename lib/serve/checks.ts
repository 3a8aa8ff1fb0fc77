// Limits checked before any model work, each failing with its own code.
import { RomeError } from "../errors.js";
import type { Limits } from "./limits.js";
import type { ServedModel } from "./models.js";

/**
 * Throws ERR_PROMPT_TOO_LONG when a text has more tokens than the limit. Neither tokenizer kind
 * makes more tokens than UTF-8 bytes plus two (a BOS; SentencePiece's word-start "▁"), so only
 * texts that long are tokenized.
 */
export async function checkPromptTokens(model: ServedModel, texts: readonly string[], limits: Limits, what = "prompt"): Promise<void> {
  const max = Math.min(limits.promptTokens, model.replicas[0]!.config.nPositions);
  const long = texts.map((t, i) => [t, i] as const).filter(([t]) => Buffer.byteLength(t) + 2 > max);
  if (long.length === 0) return;
  const encs = await model.tokenizer.encodeBatch(long.map(([t]) => t));
  encs.forEach((e, j) => {
    if (e.ids.length > max) {
      throw new RomeError("ERR_PROMPT_TOO_LONG", `${what} ${long[j]![1]} has ${e.ids.length} tokens, more than the server's limit of ${max} (--max-prompt-tokens and the model's context); shorten it`);
    }
  });
}

/** Throws ERR_VALIDATION when a request lists more prompts than the limit. */
export function checkCount(what: string, n: number, max: number, code: "ERR_VALIDATION" | "ERR_DATASET_TOO_LARGE", flag: string): void {
  if (n > max) throw new RomeError(code, `${n} ${what} in one request, more than the server's limit of ${max} (${flag}); split the request`);
}

/** Throws ERR_TOO_MANY_SAMPLES above the samples limit. */
export function checkSamples(samples: number | undefined, limits: Limits): void {
  if (samples !== undefined && samples > limits.samples) {
    throw new RomeError("ERR_TOO_MANY_SAMPLES", `samples ${samples} is more than the server's limit of ${limits.samples} (--max-samples)`);
  }
}

/** Throws ERR_TOO_MANY_TOKENS above the generation limit. */
export function checkGenerateTokens(maxTokens: number, limits: Limits): void {
  if (maxTokens > limits.generateTokens) {
    throw new RomeError("ERR_TOO_MANY_TOKENS", `maxTokens ${maxTokens} is more than the server's limit of ${limits.generateTokens} (--max-generate-tokens)`);
  }
}

/** Throws ERR_SUBJECT_NOT_FOUND when the subject is not in the prompt. */
export function checkSubject(prompt: string, subject: string, where = "the prompt"): void {
  if (!prompt.includes(subject)) throw new RomeError("ERR_SUBJECT_NOT_FOUND", `the subject ${JSON.stringify(subject)} does not occur in ${where} ${JSON.stringify(prompt)}`);
}
