// `npx tsx scripts/lab-arena.ts DIR`: the speed side of Model.load's `memoryArena` option. Loads the
// checkpoint in DIR twice in one process (arenas on and off) and times engine runs of B×T token
// batches with the two models interleaved, 7 rounds (the first dropped), printing median ms.
// The memory side is `npm run bench -- host --arena off,on` (docs/memory.md).
import { padBatch } from "../lib/runtime/batch.js";
import { Model } from "../lib/runtime/model.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: npx tsx scripts/lab-arena.ts CHECKPOINT_DIR");
const models = { on: await Model.load(dir, { memoryArena: true }), off: await Model.load(dir, { memoryArena: false }) };
const shapes = [[1, 1], [1, 16], [8, 64], [64, 16]] as const;
const times: Record<string, number[]> = {};
for (let round = 0; round < 7; round++) {
  for (const [B, T] of shapes) {
    const batch = padBatch(Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 131 + t * 17) % models.on.config.vocabSize)));
    for (const k of ["on", "off"] as const) {
      const t0 = performance.now();
      await models[k].engine.run(batch, { edits: models[k].edits.view() });
      (times[`${B}x${T}`] ??= []).push(performance.now() - t0);
    }
  }
}
const median = (v: number[]) => v.slice(2).sort((a, b) => a - b)[Math.floor((v.length - 2) / 2)]!; // round 0 of each setting dropped
console.log("rows×tokens  arena on ms  arena off ms");
for (const [key, v] of Object.entries(times)) {
  const on = v.filter((_, i) => i % 2 === 0);
  const off = v.filter((_, i) => i % 2 === 1);
  console.log(key.padEnd(12), median(on).toFixed(1).padStart(11), median(off).toFixed(1).padStart(13));
}
for (const m of Object.values(models)) await m.dispose();
