// Writes the small tokenizers of test/fixtures/tokenizers/, laid out as Llama-family checkpoints ship
// them, with vocabularies learned (plain BPE, 300 merges) from the first 2,000 lines of TinyFacts'
// train.txt, so nothing outside this repository is needed:
//   llama2/            SentencePiece-style BPE as Llama 2 and TinyLlama: Prepend("▁") + Replace(" ", "▁")
//                      normalizer, byte fallback (<0x00>…<0xFF>), a <s> template, tokenizer_config.json
//                      with add_bos_token: true
//   llama2-metaspace/  the same vocabulary with the Metaspace pre-tokenizer (prepend_scheme "first") of
//                      newer conversions; BOS from the post-processor's template alone
//   llama3/            byte-level BPE with Llama 3's split regex and a <|begin_of_text|> template
//   qwen2/             byte-level BPE with no BOS (tokenizer_config.json: bos_token null)
//
//   npx tsx scripts/make-tokenizer-fixtures.ts
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "test", "fixtures", "tokenizers");
const MERGES = 300;
const lines = readFileSync(join(ROOT, "models", "tinyfacts", "train.txt"), "utf8").split("\n").slice(0, 2000);
const WS = "\u2581";

/** Plain BPE: `words` (symbol sequences with counts) → merges, most frequent pair first, ties by text. */
function learn(words: Map<string, number>, split: (w: string) => string[], n: number): [string, string][] {
  const seqs = [...words].map(([w, c]) => ({ syms: split(w), c }));
  const merges: [string, string][] = [];
  for (let m = 0; m < n; m++) {
    const counts = new Map<string, number>();
    for (const { syms, c } of seqs) for (let i = 0; i + 1 < syms.length; i++) {
      const k = syms[i] + "\u0000" + syms[i + 1];
      counts.set(k, (counts.get(k) ?? 0) + c);
    }
    let best: string | undefined;
    for (const [k, c] of counts) if (best === undefined || c > counts.get(best)! || (c === counts.get(best)! && k < best)) best = k;
    if (best === undefined) break;
    const [a, b] = best.split("\u0000") as [string, string];
    merges.push([a, b]);
    for (const s of seqs) {
      const out: string[] = [];
      for (let i = 0; i < s.syms.length; i++) {
        if (i + 1 < s.syms.length && s.syms[i] === a && s.syms[i + 1] === b) { out.push(a + b); i++; } else out.push(s.syms[i]!);
      }
      s.syms = out;
    }
  }
  return merges;
}

function count(pieces: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of pieces) m.set(p, (m.get(p) ?? 0) + 1);
  return m;
}

const added = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
const template = (bos: string, id: number) => ({
  type: "TemplateProcessing",
  single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
  pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
  special_tokens: { [bos]: { id: bos, ids: [id], tokens: [bos] } },
});
function write(dir: string, files: Record<string, unknown>): void {
  mkdirSync(join(OUT, dir), { recursive: true });
  for (const [name, value] of Object.entries(files)) writeFileSync(join(OUT, dir, name), JSON.stringify(value, null, 1) + "\n");
}

// SentencePiece-style: words with "▁" before each; base symbols are the corpus' characters.
{
  const words = count(lines.flatMap((l) => l.split(" ").filter(Boolean).map((w) => WS + w)));
  const chars = [...new Set([...words.keys()].flatMap((w) => [...w]))].sort();
  const merges = learn(words, (w) => [...w], MERGES);
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  for (const t of [...chars, ...merges.map(([a, b]) => a + b)]) if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  const model = { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges };
  const specials = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")];
  write("llama2", {
    "tokenizer.json": {
      version: "1.0", truncation: null, padding: null, added_tokens: specials,
      normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: WS }, { type: "Replace", pattern: { String: " " }, content: WS }] },
      pre_tokenizer: null, post_processor: template("<s>", 1),
      decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: WS }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
      model,
    },
    "tokenizer_config.json": { add_bos_token: true, add_eos_token: false, bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", legacy: true, model_max_length: 2048, tokenizer_class: "LlamaTokenizer" },
  });
  write("llama2-metaspace", {
    "tokenizer.json": {
      version: "1.0", truncation: null, padding: null, added_tokens: specials, normalizer: null,
      pre_tokenizer: { type: "Metaspace", replacement: WS, prepend_scheme: "first", split: false },
      post_processor: template("<s>", 1),
      decoder: { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: WS }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
      model,
    },
  });
}

// Byte-level: GPT-2's byte ↔ character table; words keep their leading space ("Ġword").
{
  const table: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) table.push((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++));
  const toSymbols = (s: string) => [...Buffer.from(s, "utf8")].map((b) => table[b]!).join("");
  const pieces = lines.flatMap((l) => l.match(/ ?[A-Za-z]+| ?[^\sA-Za-z]+/g) ?? []).map(toSymbols);
  const merges = learn(count(pieces), (w) => [...w], MERGES);
  const vocab: Record<string, number> = {};
  for (const t of [...table, ...merges.map(([a, b]) => a + b)]) if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  const model = { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges };
  const V = Object.keys(vocab).length;
  const split = {
    type: "Split", behavior: "Isolated", invert: false,
    pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" },
  };
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false };
  write("llama3", {
    "tokenizer.json": {
      version: "1.0", truncation: null, padding: null, added_tokens: [added(V, "<|begin_of_text|>"), added(V + 1, "<|end_of_text|>")],
      normalizer: null, pre_tokenizer: { type: "Sequence", pretokenizers: [split, byteLevel] },
      post_processor: { type: "Sequence", processors: [{ type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true }, template("<|begin_of_text|>", V)] },
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model,
    },
    "tokenizer_config.json": { bos_token: "<|begin_of_text|>", eos_token: "<|end_of_text|>", model_max_length: 131072, tokenizer_class: "PreTrainedTokenizerFast" },
  });
  write("qwen2", {
    "tokenizer.json": {
      version: "1.0", truncation: null, padding: null, added_tokens: [added(V, "<|endoftext|>")],
      normalizer: { type: "NFC" }, pre_tokenizer: { type: "Sequence", pretokenizers: [split, byteLevel] },
      post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
      decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
      model,
    },
    "tokenizer_config.json": { add_prefix_space: false, bos_token: null, eos_token: "<|endoftext|>", pad_token: "<|endoftext|>", tokenizer_class: "Qwen2Tokenizer" },
  });
}
console.log(`wrote ${OUT}`);
