// How well one grid of trace scores (an estimate) ranks the cells of another (the exact trace):
// Spearman's rank correlation, whether the top cells coincide, and the recall of the exact top k
// cells among the estimate's top m. Ties get their average rank.

/** Ranks (1-based, ties averaged) of xs. */
function ranks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(xs.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) r[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/** Spearman's ρ between two equally long lists (NaN when either is constant). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  const ra = ranks(a);
  const rb = ranks(b);
  const n = a.length;
  const mean = (n + 1) / 2;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (ra[i]! - mean) * (rb[i]! - mean);
    saa += (ra[i]! - mean) ** 2;
    sbb += (rb[i]! - mean) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** Indices of the k largest values (ties broken by index). */
export function topIndices(xs: readonly number[], k: number): number[] {
  return xs.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map((p) => p[1]);
}

/** Share of the exact grid's top k cells found among the estimate's top m cells. */
export function recallAt(exact: readonly number[], estimate: readonly number[], k: number, m: number): number {
  const mine = new Set(topIndices(estimate, m));
  const want = topIndices(exact, k);
  return want.filter((i) => mine.has(i)).length / want.length;
}
