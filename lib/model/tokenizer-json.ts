// What a Hugging Face tokenizer.json (with its tokenizer_config.json) says about the things
// rome-node needs beyond ids: the kind of tokens (byte-level, as GPT-2, Llama 3 and Qwen2 ship them;
// SentencePiece-style "▁" pieces with byte fallback, as Llama 2 and TinyLlama do), the BOS the
// tokenizer puts before a prompt, and the same tokenizer without its word-start marker, for text
// that continues a prompt (a target after its prompt).
import { RomeError } from "../errors.js";

export type TokenizerKind = "byte-level" | "sentencepiece";

/** The word-start marker of SentencePiece vocabularies (U+2581). */
export const WORD_START = "\u2581";

type Json = Record<string, unknown>;

/** The steps of a component, Sequence or single ("pretokenizers", "normalizers", …). */
function steps(component: unknown): Json[] {
  if (typeof component !== "object" || component === null) return [];
  const c = component as Json;
  if (c.type === "Sequence") {
    const list = c.pretokenizers ?? c.normalizers ?? c.decoders ?? c.processors;
    return Array.isArray(list) ? list.flatMap(steps) : [];
  }
  return [c];
}

/** Byte-level when a ByteLevel pre-tokenizer or decoder is present; SentencePiece-style when "▁" marks words. */
export function tokenizerKind(json: Json, source: string): TokenizerKind {
  const pre = steps(json.pre_tokenizer);
  const dec = steps(json.decoder);
  if ([...pre, ...dec].some((s) => s.type === "ByteLevel")) return "byte-level";
  const marksWords = [...pre, ...dec].some((s) => s.type === "Metaspace") ||
    steps(json.normalizer).some((s) => s.type === "Replace" && s.content === WORD_START) ||
    dec.some((s) => s.type === "Replace" && (s.pattern as Json | undefined)?.String === WORD_START);
  if (marksWords) return "sentencepiece";
  throw new RomeError("ERR_TOKENIZER", `${source}: neither a byte-level tokenizer (ByteLevel pre-tokenizer or decoder) nor a SentencePiece-style one ("${WORD_START}" word marks); rome-node reads these two kinds`);
}

/** True when the tokenizer puts "▁" before the first word (Prepend normalizer, or Metaspace prepending). */
export function addsWordStart(json: Json): boolean {
  if (steps(json.normalizer).some((s) => s.type === "Prepend" && s.prepend === WORD_START)) return true;
  return steps(json.pre_tokenizer).some((s) => s.type === "Metaspace" &&
    (s.prepend_scheme !== undefined ? s.prepend_scheme !== "never" : s.add_prefix_space !== false));
}

/** A copy of tokenizer.json that does not put "▁" before the first word: text continuing a prompt. */
export function withoutWordStart(json: Json): Json {
  const copy = structuredClone(json);
  const dropPrepend = (n: unknown): unknown => {
    if (typeof n !== "object" || n === null) return n;
    const c = n as Json;
    if (c.type === "Prepend" && c.prepend === WORD_START) return null;
    if (c.type === "Sequence" && Array.isArray(c.normalizers)) c.normalizers = c.normalizers.map(dropPrepend).filter((x) => x !== null);
    return c;
  };
  copy.normalizer = dropPrepend(copy.normalizer);
  for (const s of steps(copy.pre_tokenizer)) {
    if (s.type !== "Metaspace") continue;
    if ("prepend_scheme" in s) s.prepend_scheme = "never";
    if ("add_prefix_space" in s) s.add_prefix_space = false;
  }
  return copy;
}

/** The special token the post-processor's template puts before a single sequence, if any. */
function templateBos(json: Json): string | undefined {
  const template = steps(json.post_processor).find((s) => s.type === "TemplateProcessing");
  const single = template?.single;
  const first = Array.isArray(single) ? single[0] as Json | undefined : undefined;
  const special = first?.SpecialToken as Json | undefined;
  return typeof special?.id === "string" ? special.id : undefined;
}

/** A token named in tokenizer_config.json: a string, an AddedToken object, or null. */
function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as Json).content === "string") return (v as Json).content as string;
  return undefined;
}

export interface SpecialTokens {
  /** Token put before every prompt; undefined when the tokenizer adds none. */
  bos?: string;
  /** End-of-text token, when the files name one. */
  eos?: string;
}

/**
 * BOS and EOS as Hugging Face's fast tokenizers resolve them: `add_bos_token` in
 * tokenizer_config.json decides when present (Llama's tokenizer rebuilds its template from it),
 * else the post-processor's template; `addBos` overrides both. The BOS token is the config's
 * `bos_token`, else the template's.
 */
export function specialTokens(json: Json, config: Json, source: string, addBos?: boolean): SpecialTokens {
  const fromTemplate = templateBos(json);
  const named = tokenName(config.bos_token);
  const add = addBos ?? (typeof config.add_bos_token === "boolean" ? config.add_bos_token : fromTemplate !== undefined);
  const bos = add ? named ?? fromTemplate : undefined;
  if (add && bos === undefined) throw new RomeError("ERR_TOKENIZER", `${source}: a BOS is to be added but neither tokenizer_config.json's bos_token nor the post-processor names it; set bos_token`);
  return { bos, eos: tokenName(config.eos_token) };
}
