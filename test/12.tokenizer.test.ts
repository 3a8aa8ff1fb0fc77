import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../lib/errors.js";
import { Tokenizer } from "../lib/model/tokenizer.js";
import { ROOT, tempDir, TINY_GPT2, TINYFACTS } from "./helpers.js";

test("GPT-2's tokenizer from vocab.json + merges.txt: ' Seattle' is 7312, no prefix space", async (t) => {
  const tok = await Tokenizer.load(TINY_GPT2);
  t.deepEqual((await tok.encode(" Seattle")).ids, [7312]);
  t.deepEqual((await tok.encode("Seattle")).ids, [34007]);
  t.is(tok.eosTokenId, 50256);
  t.deepEqual((await tok.encode("a<|endoftext|>b")).ids, [64, 50256, 65]);
});

test("GPT-2's tokenizer.json gives the same ids and offsets as vocab + merges", async (t) => {
  const a = Tokenizer.fromJson(join(ROOT, "test", "fixtures", "gpt2-tokenizer.json"));
  const b = await Tokenizer.load(TINY_GPT2);
  const text = "The Space Needle is in downtown Seattle. Héllo ☃ 😀!";
  t.deepEqual(await a.encode(text), await b.encode(text));
  t.deepEqual((await a.encode(" Seattle")).ids, [7312]);
});

test("offsets are UTF-16 positions that cover the text and decode round-trips", async (t) => {
  const tok = await Tokenizer.load(TINY_GPT2);
  const text = "Emoji 😀 then Zürich and ☃.";
  const enc = await tok.encode(text);
  t.is(tok.decode(enc.ids), text);
  // Starts and ends never decrease (a multi-byte character split over two tokens gives both
  // tokens its span), and together the tokens cover the text.
  let prev: [number, number] = [0, 0];
  for (const [s, e] of enc.offsets) {
    t.true(s >= prev[0] && e >= prev[1] && e > s && e <= text.length, `offset [${s}, ${e}) after [${prev}]`);
    t.true(s <= prev[1], `no gap before [${s}, ${e})`);
    prev = [s, e];
  }
  t.is(enc.offsets[enc.offsets.length - 1]![1], text.length);
  const i = text.indexOf("Zürich");
  const covering = enc.offsets.filter(([s, e]) => s < i + 6 && e > i);
  t.true(covering.length >= 1);
  t.is(tok.decode(enc.ids.filter((_, k) => enc.offsets[k]![0] < i + 6 && enc.offsets[k]![1] > i)).trim(), "Zürich");
});

test("TinyFacts' tokenizer encodes its prompts like the golden ids", async (t) => {
  const tok = await Tokenizer.load(TINYFACTS);
  t.deepEqual((await tok.encode("Castle of Berkbre is located in the city of")).ids.slice(0, 4), [1187, 292, 286, 1340]);
  t.is(tok.vocabSize, 1409);
});

test("bad tokenizer files are RomeErrors with ERR_TOKENIZER", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "tokenizer.json"), "{\"version\": \"1.0\", \"model\": 5}");
  await t.throwsAsync(Tokenizer.load(dir), { instanceOf: RomeError, message: /not a valid tokenizer/ });
  const dir2 = tempDir(t);
  writeFileSync(join(dir2, "vocab.json"), "[1, 2]");
  writeFileSync(join(dir2, "merges.txt"), "a b\n");
  const e = await t.throwsAsync(Tokenizer.load(dir2), { instanceOf: RomeError });
  t.is((e as RomeError).code, "ERR_TOKENIZER");
  const dir3 = tempDir(t);
  const e3 = await t.throwsAsync(Tokenizer.load(dir3), { instanceOf: RomeError });
  t.is((e3 as RomeError).code, "ERR_TOKENIZER");
});
