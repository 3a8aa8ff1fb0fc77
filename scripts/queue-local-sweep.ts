// A local sweep in a process of its own, for `npm run bench -- queue`'s side-by-side ceiling: loads
// TinyFacts (threads 1), warms up, prints "ready", then for each line "<out file>" on stdin runs
// traceDataset over the first --facts facts with --samples and --noise into that file and prints
// the seconds it took as one JSON line. Two of these at once measure what the machine allows two
// processes, the queue's 2-worker goal read against it.
import { createInterface } from "node:readline";
import { join } from "node:path";
import { Model } from "../lib/runtime/model.js";
import { traceDataset } from "../lib/trace/dataset.js";
import { readKnownFacts } from "../lib/trace/known.js";
import { arg } from "./bench-util.js";

const model = await Model.load(arg("model")!, { threads: 1 });
const common = { dataset: readKnownFacts(join(arg("model")!, "known.json")).slice(0, Number(arg("facts"))), samples: Number(arg("samples")), noise: Number(arg("noise")) };
await traceDataset(model, { ...common, out: `${arg("warm")!}`, limit: 2 });
console.log("ready");
for await (const out of createInterface({ input: process.stdin })) {
  const t0 = performance.now();
  await traceDataset(model, { ...common, out });
  console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000 }));
}
await model.dispose();
