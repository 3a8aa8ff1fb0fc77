import test from "ava";
import { balancedRuns, traceCost } from "../lib/queue/balance.js";

/** The cost of each run of a split. */
const runCosts = (costs: number[], runs: [number, number][]) => runs.map(([a, b]) => costs.slice(a, b).reduce((x, y) => x + y, 0));

test("balancedRuns cuts consecutive units into the asked number of runs, each unit once, in order", (t) => {
  const costs = [5, 1, 1, 1, 1, 5, 1, 1, 9, 1, 1, 1];
  for (let k = 1; k <= costs.length + 2; k++) {
    const runs = balancedRuns(costs, k);
    t.is(runs.length, Math.min(k, costs.length));
    t.is(runs[0]![0], 0);
    t.is(runs.at(-1)![1], costs.length);
    for (let i = 0; i < runs.length; i++) {
      t.true(runs[i]![1] > runs[i]![0], `run ${i} of ${k} is not empty`);
      if (i > 0) t.is(runs[i]![0], runs[i - 1]![1], `run ${i} of ${k} starts where the one before ends`);
    }
  }
  t.deepEqual(balancedRuns([], 3), []);
  t.deepEqual(balancedRuns([0, 0, 0], 2), [[0, 1], [1, 3]]);
});

test("balancedRuns evens the cost of shards where equal counts would not, and is a pure function of the costs", (t) => {
  // Four long prompts then twelve short ones (tokens 16 and 6): 4 shards of 4 facts would put all long ones in one.
  const costs = [16, 16, 16, 16, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6].map(traceCost);
  const runs = balancedRuns(costs, 4);
  t.deepEqual(runs, [[0, 1], [1, 3], [3, 6], [6, 16]]);
  t.deepEqual(runCosts(costs, runs), [256, 512, 328, 360]);
  const balanced = runCosts(costs, runs);
  const equal = runCosts(costs, [[0, 4], [4, 8], [8, 12], [12, 16]]);
  t.deepEqual(equal, [1024, 144, 144, 144]);
  t.true(Math.max(...balanced) < Math.max(...equal), `largest shard ${Math.max(...balanced)} vs ${Math.max(...equal)} with equal counts`);
  t.deepEqual(balancedRuns(costs, 4), runs, "the same costs give the same cuts");
  // Equal costs: equal counts.
  t.deepEqual(balancedRuns(Array(12).fill(3), 3), [[0, 4], [4, 8], [8, 12]]);
  t.deepEqual(balancedRuns(Array(10).fill(1), 4), [[0, 2], [2, 5], [5, 7], [7, 10]]);
});

test("balancedRuns refuses costs that are not finite and non-negative", (t) => {
  t.throws(() => balancedRuns([1, Number.NaN], 2), { instanceOf: RangeError, message: /finite costs of at least 0 but received NaN/ });
  t.throws(() => balancedRuns([1, -1], 2), { instanceOf: RangeError });
});
