// Tokenization through the npm `tokenizers` package: from tokenizer.json, or from GPT-2's
// vocab.json + merges.txt (byte-level BPE, no prefix space, <|endoftext|> special). Encodings keep
// character offsets (in JavaScript string units) so later work finds a subject's tokens from
// offsets, never by searching decoded strings. Decoding maps byte-level symbols back to UTF-8.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import tokenizers from "tokenizers";
import { RomeError } from "../errors.js";

export interface Encoded {
  ids: number[];
  /** Per token, [start, end) in UTF-16 units of the input string. */
  offsets: [number, number][];
}

const EOT = "<|endoftext|>";

export class Tokenizer {
  private readonly inner: tokenizers.Tokenizer;
  private readonly byteDecoder: Map<string, number>;
  /** Number of ids, added tokens included. */
  readonly vocabSize: number;
  readonly eosTokenId: number;

  private constructor(inner: tokenizers.Tokenizer, source: string) {
    this.inner = inner;
    this.byteDecoder = new Map(bytesToUnicode().map((ch, byte) => [ch, byte]));
    this.vocabSize = inner.getVocabSize(true);
    const eos = inner.tokenToId(EOT);
    if (eos === null || eos === undefined) {
      throw new RomeError("ERR_TOKENIZER", `${source}: the tokenizer has no ${EOT} token`);
    }
    this.eosTokenId = eos;
  }

  /** Loads tokenizer.json if present, else vocab.json + merges.txt, from a model directory. */
  static async load(dir: string): Promise<Tokenizer> {
    const json = join(dir, "tokenizer.json");
    if (existsSync(json)) return Tokenizer.fromJson(json);
    const vocab = join(dir, "vocab.json");
    const merges = join(dir, "merges.txt");
    if (existsSync(vocab) && existsSync(merges)) return Tokenizer.fromVocabMerges(vocab, merges);
    throw new RomeError("ERR_TOKENIZER", `${dir} has no tokenizer.json and no vocab.json + merges.txt; copy the tokenizer files of the model into its directory`);
  }

  static fromJson(path: string): Tokenizer {
    let inner: tokenizers.Tokenizer;
    try {
      JSON.parse(readFileSync(path, "utf8"));
      inner = tokenizers.Tokenizer.fromFile(path);
    } catch (e) {
      throw new RomeError("ERR_TOKENIZER", `${path} is not a valid tokenizer file (${(e as Error).message})`);
    }
    return new Tokenizer(inner, path);
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
    return new Tokenizer(inner, vocabPath);
  }

  async encode(text: string): Promise<Encoded> {
    return this.convert(text, await this.inner.encode(text, null, { addSpecialTokens: false }));
  }

  async encodeBatch(texts: string[]): Promise<Encoded[]> {
    if (texts.length === 0) return [];
    const encs = await this.inner.encodeBatch(texts, { addSpecialTokens: false });
    return encs.map((enc, i) => this.convert(texts[i]!, enc));
  }

  /** Decodes ids to text (byte-level symbols → UTF-8; special tokens kept as text). */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const tok = this.inner.idToToken(id);
      if (tok === null || tok === undefined) throw new RomeError("ERR_TOKENIZER", `token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      if (tok === EOT) {
        bytes.push(...Buffer.from(tok, "utf8"));
        continue;
      }
      for (const ch of tok) {
        const b = this.byteDecoder.get(ch);
        if (b === undefined) bytes.push(...Buffer.from(ch, "utf8"));
        else bytes.push(b);
      }
    }
    return Buffer.from(bytes).toString("utf8");
  }

  /** Text of a single token, for display. */
  tokenText(id: number): string {
    return this.decode([id]);
  }

  tokenToId(token: string): number | undefined {
    return this.inner.tokenToId(token) ?? undefined;
  }

  private convert(text: string, enc: tokenizers.Encoding): Encoded {
    const ids = enc.getIds();
    const raw = enc.getOffsets();
    const toUtf16 = codePointToUtf16(text);
    const offsets = raw.map(([s, e]) => [toUtf16(s!), toUtf16(e!)] as [number, number]);
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
