// How a run is cut into shards of similar cost. Shards stay runs of consecutive units (facts,
// records, batches), so the client still writes the lines in dataset order as shards finish and a
// retried shard still replaces exactly its own lines; only where the cuts fall changes. The cost of
// a unit is estimated from its prompts' token counts: a causal trace restores every (token, layer)
// cell with a forward pass over all the tokens, so its cost grows as tokens²; an edit's as its
// prompts' tokens. The split is a pure function of the costs, so every client cuts alike.

/**
 * Cuts units with costs `costs` into `count` runs of consecutive units (fewer when there are fewer
 * units) whose costs are as even as the units allow: cut j falls where the running cost is nearest
 * j/count of the total. Returns each run's [start, end) indices, in order, covering every unit once.
 */
export function balancedRuns(costs: readonly number[], count: number): [number, number][] {
  const n = costs.length;
  const k = Math.min(Math.max(1, Math.floor(count)), n);
  if (n === 0) return [];
  for (const c of costs) if (!(c >= 0) || !Number.isFinite(c)) throw new RangeError(`Expected finite costs of at least 0 but received ${c}`);
  const prefix = [0];
  for (const c of costs) prefix.push(prefix.at(-1)! + c);
  const total = prefix[n]!;
  const runs: [number, number][] = [];
  let start = 0;
  for (let j = 1; j < k; j++) {
    const target = (total * j) / k;
    // Each run keeps at least one unit, and leaves one for each run after it.
    let best = start + 1;
    for (let i = start + 2; i <= n - (k - j); i++) {
      if (Math.abs(prefix[i]! - target) < Math.abs(prefix[best]! - target)) best = i;
      else if (prefix[i]! > target) break;
    }
    runs.push([start, best]);
    start = best;
  }
  runs.push([start, n]);
  return runs;
}

/** The estimated cost of tracing a prompt of `tokens` tokens (relative units). */
export function traceCost(tokens: number): number {
  return tokens * tokens;
}
