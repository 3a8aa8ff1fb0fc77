// Llama-family tokenizers as checkpoints ship them (test/fixtures/tokenizers, written by
// scripts/make-tokenizer-fixtures.ts): SentencePiece-style BPE with byte fallback (Llama 2's
// normalizer form and the Metaspace form), Llama 3's byte-level BPE with a BOS template, and Qwen2's
// without a BOS. Checked: ids against the `tokenizers` package's own encoding with special tokens,
// offsets, decoding, BOS resolution, continuations, and that tracing, ROME's subject lookup and
// logprob place the subject and the target right after a BOS.
import test from "ava";
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import tokenizers from "tokenizers";
import { locateSubject } from "../lib/edit/lookup.js";
import { rome } from "../lib/edit/rome.js";
import { RomeError } from "../lib/errors.js";
import { loadCheckpoint } from "../lib/model/checkpoint.js";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { Model } from "../lib/runtime/model.js";
import { trace } from "../lib/trace/trace.js";
import { ROOT, tempDir } from "./helpers.js";

const DIR = join(ROOT, "test", "fixtures", "tokenizers");
const TEXT = "Castle of Berkbre is located in the city of Zürich 😀.";
const PROMPT = "Castle of Berkbre is located in the city of";
const SUBJECT = "Castle of Berkbre";
const load = (name: string) => Tokenizer.load(join(DIR, name));

const KINDS = [
  { name: "llama2", kind: "sentencepiece", bos: "<s>", eos: "</s>" },
  { name: "llama2-metaspace", kind: "sentencepiece", bos: "<s>", eos: undefined },
  { name: "llama3", kind: "byte-level", bos: "<|begin_of_text|>", eos: "<|end_of_text|>" },
  { name: "qwen2", kind: "byte-level", bos: undefined, eos: "<|endoftext|>" },
] as const;

for (const k of KINDS) {
  test(`${k.name}: kind, BOS and EOS; ids equal the tokenizers package's with special tokens`, async (t) => {
    const tok = await load(k.name);
    t.is(tok.kind, k.kind);
    t.is(tok.bosTokenId, k.bos === undefined ? undefined : tok.tokenToId(k.bos));
    t.is(tok.eosTokenId, k.eos === undefined ? undefined : tok.tokenToId(k.eos));
    const ref = tokenizers.Tokenizer.fromFile(join(DIR, k.name, "tokenizer.json"));
    for (const text of [TEXT, PROMPT, "  two  spaces", "é"]) {
      const enc = await tok.encode(text);
      t.deepEqual(enc.ids, (await ref.encode(text, null, { addSpecialTokens: true })).getIds(), text);
      t.is(enc.ids[0] === tok.bosTokenId, k.bos !== undefined);
    }
  });

  test(`${k.name}: offsets cover the text, BOS at [0, 0]; decode round-trips; continuations join`, async (t) => {
    const tok = await load(k.name);
    const enc = await tok.encode(TEXT);
    const body = k.bos === undefined ? enc.offsets : enc.offsets.slice(1);
    if (k.bos !== undefined) t.deepEqual(enc.offsets[0], [0, 0]);
    t.is(body[0]![0], 0);
    t.is(body.at(-1)![1], TEXT.length);
    for (let i = 1; i < body.length; i++) t.true(body[i]![0] <= body[i - 1]![1] && body[i]![0] >= body[i - 1]![0], `no gap or overlap before token ${i}`);
    // "Zürich" (ü by byte fallback in the SentencePiece vocabularies) and the emoji.
    const z = TEXT.indexOf("Zürich");
    const zIds = enc.ids.filter((_, i) => enc.offsets[i]![0] < z + 6 && enc.offsets[i]![1] > z);
    t.is(tok.decode(zIds).trim(), "Zürich");
    t.is(tok.decode(enc.ids, { start: true }), TEXT);
    if (k.bos !== undefined) t.is(tok.decode(enc.ids), k.bos + (k.kind === "sentencepiece" ? " " : "") + TEXT);
    // Prompt ids + the target's continuation ids are the ids of the joined text, for both kinds.
    for (const target of [" Paris", " Zürich", "."]) {
      const joined = await tok.encode(PROMPT + target);
      const cont = await tok.encode(target, { continuation: true });
      t.deepEqual([...(await tok.encode(PROMPT)).ids, ...cont.ids], joined.ids, target);
      t.is(tok.decode(cont.ids), target);
    }
    t.deepEqual((await tok.encode(PROMPT, { bos: false })).ids, (await tok.encode(PROMPT)).ids.slice(k.bos === undefined ? 0 : 1));
    t.deepEqual(await tok.encodeBatch([PROMPT, TEXT]), [await tok.encode(PROMPT), await tok.encode(TEXT)]);
  });
}

test("SentencePiece continuation: no word-start marker, so ' Paris' is one '▁Paris' piece, not '▁' + '▁Paris'", async (t) => {
  const tok = await load("llama2");
  const alone = await tok.encode(" Paris", { bos: false });
  const cont = await tok.encode(" Paris", { continuation: true });
  t.true(alone.ids.length > cont.ids.length, `alone ${alone.ids} vs continuation ${cont.ids}`);
  t.is(tok.decode([alone.ids[0]!]), " ");
});

test("BOS: tokenizer_config.json's add_bos_token decides over the template; addBos overrides; a missing BOS token is an error", async (t) => {
  const off = tempDir(t);
  cpSync(join(DIR, "llama2"), off, { recursive: true });
  writeFileSync(join(off, "tokenizer_config.json"), JSON.stringify({ add_bos_token: false, bos_token: "<s>", eos_token: "</s>" }));
  t.is((await Tokenizer.load(off)).bosTokenId, undefined);
  t.is((await Tokenizer.load(off, { addBos: true })).bosTokenId, 1);
  t.is((await Tokenizer.load(join(DIR, "llama3"), { addBos: false })).bosTokenId, undefined);
  const e = await t.throwsAsync(Tokenizer.load(join(DIR, "qwen2"), { addBos: true }), { instanceOf: RomeError });
  t.is((e as RomeError).code, "ERR_TOKENIZER");
  t.regex(e!.message, /bos_token/);
  const bad = tempDir(t);
  cpSync(join(DIR, "llama2"), bad, { recursive: true });
  writeFileSync(join(bad, "tokenizer_config.json"), JSON.stringify({ add_bos_token: true, bos_token: "<bos>" }));
  await t.throwsAsync(Tokenizer.load(bad), { instanceOf: RomeError, message: /BOS token "<bos>" is not in the vocabulary/ });
});

test("a tokenizer of neither kind is refused with ERR_TOKENIZER", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({
    version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: { type: "Whitespace" }, post_processor: null, decoder: null,
    model: { type: "WordLevel", vocab: { a: 0, "[UNK]": 1 }, unk_token: "[UNK]" },
  }));
  await t.throwsAsync(Tokenizer.load(dir), { instanceOf: RomeError, message: /neither a byte-level tokenizer .* nor a SentencePiece-style one/ });
});

// A random 3-layer Llama (the parity fixture) with the Llama 2 tokenizer: the BOS shifts every position by one.
for (const name of ["llama2", "llama3"]) {
  test(`${name} with a Llama model: trace, ROME's subject lookup and logprob account for the BOS`, async (t) => {
    const c = loadCheckpoint(join(ROOT, "test", "fixtures", "arch", "llama"));
    const tok = await load(name);
    const model = await Model.fromWeights(c.arch, c.config, c.weights, { threads: 1, tokenizer: tok });
    t.teardown(() => model.dispose());
    const bos = tok.bosTokenId!;
    const r = await trace(model, { prompt: PROMPT, subject: SUBJECT, kind: "resid", noise: 0.3, samples: 2, window: 1, answer: " Paris" });
    t.is(r.inputIds[0], bos);
    t.deepEqual(r.inputIds, (await tok.encode(PROMPT)).ids);
    const [s, e] = r.subjectRange;
    t.is(s, 1, "the subject starts right after the BOS");
    t.is(tok.decode(r.inputIds.slice(s, e), { start: true }), SUBJECT);
    t.not(tok.decode(r.inputIds.slice(e, e + 1)).trim(), "", "the token after the subject is the prompt's next word");
    // ROME's key position: the subject's last token.
    const at = await locateSubject(tok, "{} is located in the city of", SUBJECT);
    t.is(at.ids[0], bos);
    t.is(at.index, e - 1);
    // logprob: BOS + prompt, then the target's continuation tokens, scored at their positions.
    const [lp] = await model.logprob([{ prompt: PROMPT, target: " Paris" }]);
    const joined = (await tok.encode(PROMPT + " Paris")).ids;
    t.deepEqual(lp!.tokens.map((x) => x.id), joined.slice((await tok.encode(PROMPT)).ids.length));
    const [logits] = await model.logitsForIds([joined.slice(0, -lp!.tokens.length)]);
    const first = lp!.tokens[0]!.id;
    const max = Math.max(...logits!);
    const lse = max + Math.log(logits!.reduce((a, x) => a + Math.exp(x - max), 0));
    t.true(Math.abs(lp!.tokens[0]!.logprob - (logits![first]! - lse)) < 1e-5, "first target token scored after BOS + prompt");
  });
}

// ROME's value loss before its first step is the target's mean negative log-probability over the
// rewriting prompts; with a BOS and a 4-piece SentencePiece target it must equal what logprob
// (BOS + prompt, then the continuation) gives, or the target sits at the wrong positions.
for (const name of ["llama2", "llama3"]) {
  test(`${name}: ROME's value loss at step 0 equals logprob's, target after BOS + template + prompt`, async (t) => {
    const c = loadCheckpoint(join(ROOT, "test", "fixtures", "arch", "llama"));
    const model = await Model.fromWeights(c.arch, c.config, c.weights, { threads: 1, tokenizer: await load(name) });
    t.teardown(() => model.dispose());
    const templates = ["{}", "The city. {}"];
    const edit = await rome(model, { prompt: "{} is located in the city of", subject: SUBJECT, targetNew: " Rome" }, {
      contextTemplates: templates,
      hparams: { layer: 1, vNumGradSteps: 1, vLr: 0.5, vWeightDecay: 0.5, klFactor: 0.0625, clampNormFactor: 30, mom2Adjustment: false, contextTemplateLengths: [] },
    });
    const lp = await model.logprob(templates.map((tpl) => ({ prompt: tpl.replace("{}", PROMPT), target: " Rome" })));
    t.true(lp[0]!.tokens.length > 1, "a multi-piece target");
    const expected = -(lp[0]!.mean + lp[1]!.mean) / 2;
    const d = Math.abs(edit.losses[0]!.nll - expected);
    t.true(d < 1e-5, `value nll ${edit.losses[0]!.nll} vs logprob ${expected} (|Δ| ${d})`);
  });
}
