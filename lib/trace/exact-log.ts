// Natural logarithm rounded correctly to the nearest double, in double-double arithmetic.
// V8's Math.log (fdlibm) is off by one ulp for ~3% of arguments where glibc's log (used by numpy
// on Linux) is not, which made our legacy Gaussians differ from numpy's in the last bit.

const LN2_HI = 0.6931471805599453; // ln 2, leading double
const LN2_LO = 2.3190468138462996e-17; // ln 2 − LN2_HI
const SPLITTER = 134217729; // 2^27 + 1, Dekker's split

// A double-double value is hi + lo with |lo| ≤ ulp(hi)/2; functions return [hi, lo] pairs.
type DD = [number, number];

function quickTwoSum(a: number, b: number): DD {
  const s = a + b;
  return [s, b - (s - a)];
}

function twoSum(a: number, b: number): DD {
  const s = a + b;
  const bb = s - a;
  return [s, a - (s - bb) + (b - bb)];
}

function twoProd(a: number, b: number): DD {
  const p = a * b;
  let t = SPLITTER * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = SPLITTER * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return [p, ah * bh - p + ah * bl + al * bh + al * bl];
}

function add(a: DD, b: DD): DD {
  let [s, e] = twoSum(a[0], b[0]);
  const [t, f] = twoSum(a[1], b[1]);
  e += t;
  [s, e] = quickTwoSum(s, e);
  e += f;
  return quickTwoSum(s, e);
}

function mul(a: DD, b: DD): DD {
  const [p, e] = twoProd(a[0], b[0]);
  return quickTwoSum(p, e + (a[0] * b[1] + a[1] * b[0]));
}

function sub(a: DD, b: DD): DD {
  return add(a, [-b[0], -b[1]]);
}

function div(a: DD, b: DD): DD {
  const q1 = a[0] / b[0];
  let r = sub(a, mul([q1, 0], b));
  const q2 = r[0] / b[0];
  r = sub(r, mul([q2, 0], b));
  const q3 = r[0] / b[0];
  return add(quickTwoSum(q1, q2), [q3, 0]);
}

// 1/n for odd n, as double-doubles: the atanh series' coefficients.
const INV_ODD: DD[] = [];
for (let n = 1; n < 80; n += 2) {
  const hi = 1 / n;
  const [p, e] = twoProd(hi, n); // hi·n = p + e exactly; 1 − hi·n = −((p − 1) + e), p − 1 exact
  INV_ODD.push([hi, -(p - 1 + e) / n]);
}

/**
 * ln(x) for a finite x > 0, correctly rounded except in cases closer to a rounding boundary than
 * about 2^-100 relative. Reduction x = m·2^k with m in [√½, √2), then ln m = 2·atanh((m−1)/(m+1))
 * summed as a series in double-double. About 20× slower than Math.log; used for the Gaussians only.
 */
export function exactLog(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return Math.log(x);
  if (x === 1) return 0;
  let k = Math.floor(Math.log2(x));
  let m = x * 2 ** -k; // exact: scaling by a power of two (x is far from the subnormal range here)
  if (!Number.isFinite(m) || m === 0) return Math.log(x); // extreme exponents: not needed by callers
  while (m >= Math.SQRT2) { m /= 2; k++; }
  while (m < Math.SQRT1_2) { m *= 2; k--; }
  const s = div([m - 1, 0], twoSum(m, 1)); // m − 1 is exact (Sterbenz)
  const s2 = mul(s, s);
  let term: DD = s;
  let sum: DD = s;
  for (let j = 1; j < INV_ODD.length; j++) {
    term = mul(term, s2);
    const piece = mul(term, INV_ODD[j]!);
    sum = add(sum, piece);
    if (Math.abs(piece[0]) < Math.abs(sum[0]) * 1e-34) break;
  }
  const lnm: DD = [2 * sum[0], 2 * sum[1]];
  const kln2 = add(twoProd(k, LN2_HI), [k * LN2_LO, 0]);
  const r = add(kln2, lnm);
  return r[0] + r[1];
}
