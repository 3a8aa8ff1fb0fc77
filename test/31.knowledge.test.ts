import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Model } from "../lib/runtime/model.js";
import { TINYFACTS } from "./helpers.js";

// The fixture README states the accuracy measured by an independent PyTorch implementation.
const README = readFileSync(join(TINYFACTS, "README.md"), "utf8");
const stated = Number(/rewrite prompts of `counterfact.json`[^:]*: ([0-9.]+)/.exec(README)![1]);

test("TinyFacts answers its own facts: top-1 accuracy on CounterFact rewrite prompts ≥ the README's figure", async (t) => {
  const records = JSON.parse(readFileSync(join(TINYFACTS, "counterfact.json"), "utf8"));
  const model = await Model.load(TINYFACTS, { batchSize: 128 });
  type Rec = { requested_rewrite: { prompt: string; subject: string; target_true: { str: string } } };
  const prompts = records.map((r: Rec) => r.requested_rewrite.prompt.replace("{}", r.requested_rewrite.subject));
  const truths = await model.tokenizer.encodeBatch(records.map((r: Rec) => " " + r.requested_rewrite.target_true.str));
  const logits = await model.nextTokenLogits(prompts);
  let correct = 0;
  logits.forEach((l, i) => {
    let best = 0;
    for (let v = 1; v < l.length; v++) if (l[v]! > l[best]!) best = v;
    if (best === truths[i]!.ids[0]) correct++;
  });
  const acc = correct / records.length;
  t.log(`top-1 ${correct}/${records.length} = ${acc.toFixed(3)} (README: ${stated})`);
  t.true(stated > 0.9);
  t.true(acc >= stated, `accuracy ${acc} below the stated ${stated}`);
  await model.dispose();
});
