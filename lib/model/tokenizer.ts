// Tokenization through the npm `tokenizers` package: from tokenizer.json (byte-level BPE as GPT-2,
// Llama 3 and Qwen2 ship it, or SentencePiece-style "▁" pieces with byte fallback as Llama 2 and
// TinyLlama do), with the BOS tokenizer_config.json or the post-processor asks for; or from GPT-2's
// vocab.json + merges.txt (byte-level BPE, no prefix space, <|endoftext|> special). Encodings keep
// character offsets (in JavaScript string units) so later work finds a subject's tokens from
// offsets, never by searching decoded strings. A prompt's encoding starts with the BOS (offsets
// [0, 0]); a continuation (a target after its prompt) has no BOS and no word-start marker, so
// prompt ids + continuation ids are the ids of the joined text.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import tokenizers from "tokenizers";
import { RomeError } from "../errors.js";
import { addsWordStart, specialTokens, tokenizerKind, withoutWordStart, WORD_START, type TokenizerKind } from "./tokenizer-json.js";

export interface Encoded {
  ids: number[];
  /** Per token, [start, end) in UTF-16 units of the input string; [0, 0] for the BOS. */
  offsets: [number, number][];
}

export interface EncodeOptions {
  /** Put the tokenizer's BOS first, when it has one. Default true. */
  bos?: boolean;
  /**
   * The text continues a prompt (a target after it): no BOS, and no "▁" before its first word
   * (SentencePiece-style tokenizers). Default false.
   */
  continuation?: boolean;
}

export interface DecodeOptions {
  /**
   * The ids begin a text, as a prompt's encoding does: special tokens (BOS, EOS) are dropped and the
   * space a SentencePiece-style tokenizer put before the first word is removed. Default false: the
   * ids continue a text (leading space kept, special tokens as their text).
   */
  start?: boolean;
}

export interface TokenizerOptions {
  /** Add a BOS before prompts (true, false), overriding tokenizer_config.json and the post-processor. */
  addBos?: boolean;
}

const EOT = "<|endoftext|>";
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

interface Parts {
  kind: TokenizerKind;
  /** Encodes continuations; the main one when it puts no word start. */
  continuation?: tokenizers.Tokenizer;
  /** Added tokens: id → [content, special]. */
  added: Map<number, [string, boolean]>;
  bos?: string;
  eos?: string;
  wordStart: boolean;
  byteFallback: boolean;
}

export class Tokenizer {
  private readonly inner: tokenizers.Tokenizer;
  private readonly continuation: tokenizers.Tokenizer;
  private readonly byteDecoder: Map<string, number>;
  private readonly added: Map<number, [string, boolean]>;
  private readonly wordStart: boolean;
  private readonly byteFallback: boolean;
  readonly kind: TokenizerKind;
  /** Number of ids, added tokens included. */
  readonly vocabSize: number;
  /** The token put before every prompt; undefined when the tokenizer adds none. */
  readonly bosTokenId?: number;
  /** The end-of-text token, when the tokenizer files name one (or have <|endoftext|>). */
  readonly eosTokenId?: number;

  private constructor(inner: tokenizers.Tokenizer, parts: Parts, source: string) {
    this.inner = inner;
    this.continuation = parts.continuation ?? inner;
    this.kind = parts.kind;
    this.added = parts.added;
    this.wordStart = parts.wordStart;
    this.byteFallback = parts.byteFallback;
    this.byteDecoder = new Map(bytesToUnicode().map((ch, byte) => [ch, byte]));
    this.vocabSize = inner.getVocabSize(true);
    const idOf = (name: string, what: string) => {
      const id = inner.tokenToId(name);
      if (id === null || id === undefined) throw new RomeError("ERR_TOKENIZER", `${source}: the ${what} token ${JSON.stringify(name)} is not in the vocabulary`);
      return id;
    };
    if (parts.bos !== undefined) this.bosTokenId = idOf(parts.bos, "BOS");
    if (parts.eos !== undefined) this.eosTokenId = idOf(parts.eos, "EOS");
    else this.eosTokenId = inner.tokenToId(EOT) ?? undefined;
  }

  /** Loads tokenizer.json (with tokenizer_config.json) if present, else vocab.json + merges.txt, from a model directory. */
  static async load(dir: string, options: TokenizerOptions = {}): Promise<Tokenizer> {
    const json = join(dir, "tokenizer.json");
    if (existsSync(json)) return Tokenizer.fromJson(json, options);
    const vocab = join(dir, "vocab.json");
    const merges = join(dir, "merges.txt");
    if (existsSync(vocab) && existsSync(merges)) return Tokenizer.fromVocabMerges(vocab, merges);
    throw new RomeError("ERR_TOKENIZER", `${dir} has no tokenizer.json and no vocab.json + merges.txt; copy the tokenizer files of the model into its directory`);
  }

  /** tokenizer.json, with tokenizer_config.json from the same folder when there is one. */
  static fromJson(path: string, options: TokenizerOptions = {}): Tokenizer {
    let json: Record<string, unknown>;
    let config: Record<string, unknown> = {};
    const configPath = join(dirname(path), "tokenizer_config.json");
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
      if (existsSync(configPath)) config = JSON.parse(readFileSync(configPath, "utf8"));
    } catch (e) {
      throw new RomeError("ERR_TOKENIZER", `${path} is not a valid tokenizer file (${(e as Error).message})`);
    }
    if (typeof json !== "object" || json === null || typeof config !== "object" || config === null) {
      throw new RomeError("ERR_TOKENIZER", `${path} is not a valid tokenizer file (not a JSON object)`);
    }
    let inner: tokenizers.Tokenizer;
    try {
      inner = tokenizers.Tokenizer.fromString(JSON.stringify(json));
    } catch (e) {
      throw new RomeError("ERR_TOKENIZER", `${path} is not a valid tokenizer file (${(e as Error).message})`);
    }
    const kind = tokenizerKind(json, path);
    const wordStart = kind === "sentencepiece" && addsWordStart(json);
    const { bos, eos } = specialTokens(json, config, path, options.addBos);
    const added = new Map<number, [string, boolean]>();
    for (const a of Array.isArray(json.added_tokens) ? json.added_tokens as { id: number; content: string; special?: boolean }[] : []) added.set(a.id, [a.content, a.special === true]);
    return new Tokenizer(inner, {
      kind, added, bos, eos, wordStart,
      continuation: wordStart ? tokenizers.Tokenizer.fromString(JSON.stringify(withoutWordStart(json))) : undefined,
      byteFallback: (json.model as { byte_fallback?: boolean } | undefined)?.byte_fallback === true,
    }, path);
  }

  static async fromVocabMerges(vocabPath: string, mergesPath: string): Promise<Tokenizer> {
    let inner: tokenizers.Tokenizer;
    try {
      const vocab = JSON.parse(readFileSync(vocabPath, "utf8"));
      if (typeof vocab !== "object" || vocab === null || Array.isArray(vocab)) throw new Error("vocab.json is not an object of token → id");
      const merges = readFileSync(mergesPath, "utf8").split("\n")
        .filter((line) => line.length > 0 && !line.startsWith("#version"))
        .map((line, i) => {
          const pair = line.split(" ");
          if (pair.length !== 2) throw new Error(`merges.txt line ${i + 1} is not a pair: ${JSON.stringify(line)}`);
          return pair as [string, string];
        });
      inner = new tokenizers.Tokenizer(tokenizers.BPE.init(vocab, merges));
      inner.setPreTokenizer(tokenizers.byteLevelPreTokenizer(false, true));
      inner.addSpecialTokens([EOT]);
    } catch (e) {
      if (e instanceof RomeError) throw e;
      throw new RomeError("ERR_TOKENIZER", `Cannot build a tokenizer from ${vocabPath} and ${mergesPath} (${(e as Error).message})`);
    }
    const eot = inner.tokenToId(EOT);
    if (eot === null || eot === undefined) throw new RomeError("ERR_TOKENIZER", `${vocabPath}: the tokenizer has no ${EOT} token`);
    return new Tokenizer(inner, { kind: "byte-level", added: new Map([[eot, [EOT, true]]]), wordStart: false, byteFallback: false }, vocabPath);
  }

  async encode(text: string, options: EncodeOptions = {}): Promise<Encoded> {
    const [inner, bos] = this.mode(options);
    return this.convert(text, await inner.encode(text, null, { addSpecialTokens: false }), bos);
  }

  async encodeBatch(texts: string[], options: EncodeOptions = {}): Promise<Encoded[]> {
    if (texts.length === 0) return [];
    const [inner, bos] = this.mode(options);
    const encs = await inner.encodeBatch(texts, { addSpecialTokens: false });
    return encs.map((enc, i) => this.convert(texts[i]!, enc, bos));
  }

  /**
   * Decodes ids to text: byte-level symbols or "▁" pieces and <0xNN> byte pieces → UTF-8; added
   * tokens as their text (special ones dropped with `start`).
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const tok = this.inner.idToToken(id);
      if (tok === null || tok === undefined) throw new RomeError("ERR_TOKENIZER", `token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      const added = this.added.get(id);
      if (added) {
        if (!(options.start && added[1])) bytes.push(...Buffer.from(added[0], "utf8"));
        continue;
      }
      if (this.kind === "sentencepiece") {
        const byte = this.byteFallback ? BYTE_PIECE.exec(tok) : null;
        if (byte) bytes.push(parseInt(byte[1]!, 16));
        else bytes.push(...Buffer.from(tok.replaceAll(WORD_START, " "), "utf8"));
        continue;
      }
      for (const ch of tok) {
        const b = this.byteDecoder.get(ch);
        if (b === undefined) bytes.push(...Buffer.from(ch, "utf8"));
        else bytes.push(b);
      }
    }
    const text = Buffer.from(bytes).toString("utf8");
    return options.start && this.wordStart && text.startsWith(" ") ? text.slice(1) : text;
  }

  /** Text of a single token, for display (a continuation: " Paris"). */
  tokenText(id: number): string {
    return this.decode([id]);
  }

  tokenToId(token: string): number | undefined {
    return this.inner.tokenToId(token) ?? undefined;
  }

  private mode(options: EncodeOptions): [tokenizers.Tokenizer, number | undefined] {
    if (options.continuation) return [this.continuation, undefined];
    return [this.inner, options.bos === false ? undefined : this.bosTokenId];
  }

  private convert(text: string, enc: tokenizers.Encoding, bos: number | undefined): Encoded {
    const ids = enc.getIds();
    const raw = enc.getOffsets();
    const toUtf16 = codePointToUtf16(text);
    const offsets = raw.map(([s, e]) => [toUtf16(s!), toUtf16(e!)] as [number, number]);
    if (bos !== undefined) {
      ids.unshift(bos);
      offsets.unshift([0, 0]);
    }
    return { ids, offsets };
  }
}

/** Maps code-point offsets (what the Rust tokenizer reports) to UTF-16 offsets (JavaScript's). */
function codePointToUtf16(text: string): (cp: number) => number {
  if (!/[\uD800-\uDBFF]/.test(text)) return (cp) => cp;
  const map: number[] = [];
  let u = 0;
  for (const ch of text) {
    map.push(u);
    u += ch.length;
  }
  map.push(u);
  return (cp) => map[cp] ?? u;
}

/** GPT-2's reversible byte ↔ printable-character table: index = byte value. */
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return table;
}
