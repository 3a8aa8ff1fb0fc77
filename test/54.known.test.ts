// Known-facts datasets: the TinyFacts fixture and ROME's known_1000.json (copied into data/)
// parse; malformed records fail with ERR_DATASET naming the record index and the field.
import test from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readKnownFacts, parseKnownFacts } from "../lib/trace/known.js";
import { RomeError } from "../lib/errors.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

test("TinyFacts known.json: 990 facts, subjects in prompts", (t) => {
  const facts = readKnownFacts(path.join(root, "models/tinyfacts/known.json"));
  t.is(facts.length, 990);
  t.deepEqual(facts[0], {
    known_id: 0,
    subject: "Castle of Berkbre",
    attribute: "Montreal",
    template: "{} is located in the city of",
    prediction: " Montreal",
    prompt: "Castle of Berkbre is located in the city of",
    relation_id: "P131",
  });
  t.true(facts.every((f) => f.prompt.includes(f.subject)));
});

test("ROME's known_1000.json: 1,209 facts with unique ids", (t) => {
  const facts = readKnownFacts(path.join(root, "data/known_1000.json"), { optional: [] });
  t.is(facts.length, 1209);
  t.is(new Set(facts.map((f) => f.known_id)).size, 1209);
  t.is(facts[0]!.subject, "Vinson Massif");
  t.is(facts[0]!.prompt, "Vinson Massif is located in the continent of");
  t.is(facts[1208]!.known_id, 1208);
});

const good = { known_id: 0, subject: "Eiffel Tower", attribute: "Paris", prompt: "The Eiffel Tower is in", template: "The {} is in", prediction: " Paris", relation_id: "P131" };

function code(t: { throws: (fn: () => unknown, e: object) => unknown }, data: unknown, re: RegExp, options = {}) {
  const err = t.throws(() => parseKnownFacts(data, "facts.json", options), { instanceOf: RomeError }) as RomeError;
  return { code: err.code, ok: re.test(err.message), message: err.message };
}

test("malformed records name the record index and field", (t) => {
  const cases: [unknown, RegExp][] = [
    [{ not: "an array" }, /expected a JSON array/],
    [[good, 5], /record 1: expected an object/],
    [[good, { ...good, known_id: 1, subject: undefined }], /record 1, field 'subject': missing/],
    [[good, { ...good, known_id: "1" }], /record 1, field 'known_id': expected a non-negative integer/],
    [[good, { ...good }], /record 1, field 'known_id': 0 is also the id of record 0/],
    [[{ ...good, attribute: 3 }], /record 0, field 'attribute': expected a string but found number 3/],
    [[{ ...good, subject: "  " }], /record 0, field 'subject': empty/],
    [[{ ...good, subject: "Louvre" }], /record 0, field 'prompt': does not contain the subject "Louvre"/],
    [[{ ...good, template: "no placeholder" }], /record 0, field 'template': has no "\{\}"/],
  ];
  for (const [data, re] of cases) {
    const r = code(t, data, re);
    t.is(r.code, "ERR_DATASET");
    t.true(r.ok, `${r.message} should match ${re}`);
  }
  // optional fields: missing template/prediction/relation_id allowed by default, not with optional: []
  const minimal = { known_id: 3, subject: "Eiffel Tower", attribute: "Paris", prompt: "The Eiffel Tower is in" };
  t.is(parseKnownFacts([minimal])[0]!.template, "");
  t.true(code(t, [minimal], /record 0, field 'template': missing/, { optional: [] }).ok);
});

test("unreadable or non-JSON files", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rome-known-"));
  const bad = path.join(dir, "bad.json");
  fs.writeFileSync(bad, "[{");
  t.is(t.throws(() => readKnownFacts(bad), { instanceOf: RomeError })?.code, "ERR_DATASET");
  t.is(t.throws(() => readKnownFacts(path.join(dir, "missing.json")), { instanceOf: RomeError })?.code, "ERR_IO");
  fs.rmSync(dir, { recursive: true });
});
