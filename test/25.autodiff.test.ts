// Reverse-mode gradients (lib/graph/autodiff.ts) against central finite differences, op by op and
// end to end through a random 2-layer GPT-2 built by the real emitters. Each op case builds a tiny
// forward graph with awkward shapes, loss = ReduceSum(y ⊙ R) for a fixed random R (so every output
// element matters), runs the derived gradient graph in onnxruntime and compares with central
// differences of the forward graph run in onnxruntime.
//   float64 where ORT CPU runs every op of the case in double: step 1e-4, relative tolerance 1e-6;
//   float32 otherwise (exact Gelu: Erf has no double kernel; the GPT-2 case): step 1e-2, tolerance 2e-2.
// Relative error = max |grad - fd| / max(max |fd|, 1e-3) over all elements of all wrt inputs.
import test from "ava";
import ort from "onnxruntime-node";
import { buildGradient, DIFFERENTIABLE_OPS, inferValues } from "../lib/graph/autodiff.js";
import { attr, GraphBuilder, type AttrValue } from "../lib/graph/builder.js";
import { RomeError } from "../lib/errors.js";
import { gpt2 } from "../lib/arch/gpt2.js";
import { llama } from "../lib/arch/llama.js";
import type { ArchDescription, EmitContext, Weights } from "../lib/arch/types.js";
import { applyRotary, cachedAttention, rmsNorm, rotaryTables, silu } from "../lib/graph/ops.js";
import type { ModelConfig } from "../lib/model/config.js";

type F = "float32" | "float64";
const TOL: Record<F, { step: number; rel: number }> = { float64: { step: 1e-4, rel: 1e-6 }, float32: { step: 1e-2, rel: 2e-2 } };
const OPTS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 };

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = "any" | "pos" | "away"; // uniform(-1, 1); uniform(0.5, 1.5); ±uniform(0.2, 1) (kinks at 0)
interface Case {
  title: string;
  inputs: [name: string, dims: number[], kind?: Kind, declared?: (number | string)[]][];
  wrt?: string[]; // default: every input
  yDims?: number[]; // the output's dims when the declared input dims are symbolic
  f32?: boolean;  // skip the float64 attempt
  body(b: GraphBuilder, e: F, x: Record<string, string>): string;
}

const size = (d: number[]) => d.reduce((p, q) => p * q, 1);
const arr = (e: F, vals: number[]) => (e === "float64" ? Float64Array.from(vals) : Float32Array.from(vals));
const cst = (b: GraphBuilder, e: F, dims: number[], vals: number[]) => b.initializer(b.fresh("k"), dims, arr(e, vals), e);
const ints = (b: GraphBuilder, vals: number[], dims?: number[]) => b.constInt64(vals, dims);
const op = (b: GraphBuilder, o: string, ins: string[], at: Record<string, AttrValue> = {}) => b.op(o, ins, at);

function forwardGraph(c: Case, e: F, seed: number): GraphBuilder {
  const b = new GraphBuilder(c.title.replace(/\W+/g, "_"));
  const x: Record<string, string> = {};
  for (const [name, dims, , declared] of c.inputs) x[name] = b.input(name, e, declared ?? dims);
  const y = c.body(b, e, x);
  const dims = c.yDims ?? (inferValues(b).get(y)!.shape as number[]);
  const r = rng(seed + 7);
  const R = cst(b, e, dims, Array.from({ length: size(dims) }, () => 2 * r() - 1));
  b.output("loss", b.op("ReduceSum", [b.op("Mul", [y, R])], { keepdims: attr.int(0) }), e, []);
  return b;
}

function sample(kind: Kind, r: () => number): number {
  if (kind === "pos") return 0.5 + r();
  if (kind === "away") return (r() < 0.5 ? -1 : 1) * (0.2 + 0.8 * r());
  return 2 * r() - 1;
}

interface Result { elem: F; rel: number; lossDiff: number }

async function check(c: Case, seed: number): Promise<Result> {
  for (const e of (c.f32 ? ["float32"] : ["float64", "float32"]) as F[]) {
    const fwd = forwardGraph(c, e, seed);
    const wrt = c.wrt ?? c.inputs.map(([n]) => n);
    const grad = buildGradient(fwd, { loss: "loss", wrt });
    let fs: ort.InferenceSession, gs: ort.InferenceSession;
    try {
      fs = await ort.InferenceSession.create(fwd.toBytes(), OPTS);
      gs = await ort.InferenceSession.create(grad.toBytes(), OPTS);
    } catch (err) {
      if (e === "float64") continue; // no double kernel for some op: fall back to float32
      throw err;
    }
    const r = rng(seed);
    const vals: Record<string, Float32Array | Float64Array> = {};
    for (const [name, dims, kind] of c.inputs) vals[name] = arr(e, Array.from({ length: size(dims) }, () => sample(kind ?? "any", r)));
    const feeds = () => Object.fromEntries(c.inputs.map(([n, d]) => [n, new ort.Tensor(e, vals[n]!, d)]));
    const lossOf = async () => Number((await fs.run(feeds())).loss!.data[0]);
    const out = await gs.run(feeds());
    const lossDiff = Math.abs(Number(out.loss!.data[0]) - (await lossOf()));
    const { step } = TOL[e];
    let num = 0, den = 1e-3;
    for (const w of wrt) {
      const g = out[`grad_${w}`]!.data as Float32Array;
      const v = vals[w]!;
      for (let i = 0; i < v.length; i++) {
        const x0 = v[i]!;
        v[i] = x0 + step;
        const lp = await lossOf();
        v[i] = x0 - step;
        const lm = await lossOf();
        v[i] = x0;
        const fd = (lp - lm) / (2 * step);
        num = Math.max(num, Math.abs(g[i]! - fd));
        den = Math.max(den, Math.abs(fd));
      }
    }
    await fs.release();
    await gs.release();
    return { elem: e, rel: num / den, lossDiff };
  }
  throw new Error("unreachable");
}

const perm = (p: number[]) => ({ perm: attr.ints(p) });
const axis = (a: number) => ({ axis: attr.int(a) });
const CASES: Case[] = [
  { title: "MatMul 2Dx2D", inputs: [["a", [3, 5]], ["b", [5, 4]]], body: (b, _e, x) => op(b, "MatMul", [x.a!, x.b!]) },
  { title: "MatMul 3Dx2D", inputs: [["a", [2, 3, 5]], ["b", [5, 4]]], body: (b, _e, x) => op(b, "MatMul", [x.a!, x.b!]) },
  { title: "MatMul 4Dx4D", inputs: [["a", [2, 3, 4, 5]], ["b", [2, 3, 5, 2]]], body: (b, _e, x) => op(b, "MatMul", [x.a!, x.b!]) },
  { title: "MatMul batch-broadcast 3Dx4D", inputs: [["a", [3, 4, 5]], ["b", [2, 1, 5, 2]]], body: (b, _e, x) => op(b, "MatMul", [x.a!, x.b!]) },
  { title: "MatMul wrt one operand", inputs: [["a", [2, 3, 5]], ["b", [5, 4]]], wrt: ["a"], body: (b, _e, x) => op(b, "MatMul", [x.a!, x.b!]) },
  { title: "Gemm transB=1 with bias", inputs: [["a", [3, 5]], ["b", [4, 5]], ["c", [4]]], body: (b, _e, x) => op(b, "Gemm", [x.a!, x.b!, x.c!], { transB: attr.int(1) }) },
  {
    title: "Gemm transA=1 alpha beta", inputs: [["a", [5, 3]], ["b", [5, 4]], ["c", [1, 4]]],
    body: (b, _e, x) => op(b, "Gemm", [x.a!, x.b!, x.c!], { transA: attr.int(1), alpha: attr.float(0.75), beta: attr.float(1.5) }),
  },
  { title: "Gemm transB=1 no bias (tied head)", inputs: [["a", [3, 5]], ["b", [7, 5]]], body: (b, _e, x) => op(b, "Gemm", [x.a!, x.b!], { transB: attr.int(1) }) },
  { title: "Add broadcast (2,3,4)+(4)", inputs: [["x", [2, 3, 4]], ["y", [4]]], body: (b, _e, x) => op(b, "Add", [x.x!, x.y!]) },
  { title: "Sub broadcast (2,1,4)-(3,1)", inputs: [["x", [2, 1, 4]], ["y", [3, 1]]], body: (b, _e, x) => op(b, "Sub", [x.x!, x.y!]) },
  { title: "Mul broadcast (2,3,4)*(1,3,1)", inputs: [["x", [2, 3, 4]], ["y", [1, 3, 1]]], body: (b, _e, x) => op(b, "Mul", [x.x!, x.y!]) },
  { title: "Div broadcast (2,3,4)/(4)", inputs: [["x", [2, 3, 4]], ["y", [4], "pos"]], body: (b, _e, x) => op(b, "Div", [x.x!, x.y!]) },
  { title: "Div scalar numerator", inputs: [["x", []], ["y", [2, 3], "pos"]], body: (b, _e, x) => op(b, "Div", [x.x!, x.y!]) },
  { title: "Neg", inputs: [["x", [2, 5]]], body: (b, _e, x) => op(b, "Neg", [x.x!]) },
  { title: "Tanh", inputs: [["x", [2, 5]]], body: (b, _e, x) => op(b, "Tanh", [x.x!]) },
  { title: "Exp", inputs: [["x", [2, 5]]], body: (b, _e, x) => op(b, "Exp", [x.x!]) },
  { title: "Log", inputs: [["x", [2, 5], "pos"]], body: (b, _e, x) => op(b, "Log", [x.x!]) },
  { title: "Sqrt", inputs: [["x", [2, 5], "pos"]], body: (b, _e, x) => op(b, "Sqrt", [x.x!]) },
  { title: "Pow constant exponent 3", inputs: [["x", [2, 5]]], body: (b, e, x) => op(b, "Pow", [x.x!, cst(b, e, [], [3])]) },
  { title: "Pow constant exponent 0.5 (int64 2 too)", inputs: [["x", [2, 5], "pos"]], body: (b, e, x) => op(b, "Add", [op(b, "Pow", [x.x!, cst(b, e, [], [0.5])]), op(b, "Pow", [x.x!, ints(b, [2], [])])]) },
  { title: "Reciprocal, Sigmoid, Relu", inputs: [["x", [3, 4], "away"]], body: (b, _e, x) => op(b, "Add", [op(b, "Reciprocal", [x.x!]), op(b, "Mul", [op(b, "Sigmoid", [x.x!]), op(b, "Relu", [x.x!])])]) },
  {
    title: "LayerNormalization (X, scale, bias)", inputs: [["x", [2, 3, 6]], ["s", [6], "pos"], ["c", [6]]],
    body: (b, _e, x) => op(b, "LayerNormalization", [x.x!, x.s!, x.c!], { axis: attr.int(-1), epsilon: attr.float(1e-5) }),
  },
  {
    title: "LayerNormalization axis 1 of rank 3, no bias", inputs: [["x", [2, 3, 4]], ["s", [3, 4], "pos"]],
    body: (b, _e, x) => op(b, "LayerNormalization", [x.x!, x.s!], { axis: attr.int(1), epsilon: attr.float(1e-3) }),
  },
  { title: "Gelu tanh", inputs: [["x", [3, 7]]], body: (b, _e, x) => op(b, "Gelu", [op(b, "Mul", [x.x!, cst(b, _e, [], [2])])], { approximate: attr.string("tanh") }) },
  { title: "Gelu exact", f32: true, inputs: [["x", [3, 7]]], body: (b, _e, x) => op(b, "Gelu", [op(b, "Mul", [x.x!, cst(b, _e, [], [2])])]) },
  { title: "Softmax axis -1", inputs: [["x", [2, 3, 5]]], body: (b, _e, x) => op(b, "Softmax", [x.x!], axis(-1)) },
  { title: "Softmax axis 1", inputs: [["x", [2, 3, 5]]], body: (b, _e, x) => op(b, "Softmax", [x.x!], axis(1)) },
  { title: "LogSoftmax axis -1", inputs: [["x", [2, 3, 5]]], body: (b, _e, x) => op(b, "LogSoftmax", [x.x!], axis(-1)) },
  { title: "Reshape (2,3,4)->(0,-1)", inputs: [["x", [2, 3, 4]]], body: (b, _e, x) => op(b, "Reshape", [x.x!, ints(b, [0, -1])]) },
  { title: "Transpose perm 2,0,1", inputs: [["x", [2, 3, 4]]], body: (b, _e, x) => op(b, "Transpose", [x.x!], perm([2, 0, 1])) },
  {
    title: "Split sizes (one output unused) + Concat", inputs: [["x", [2, 3, 6]]],
    body: (b, _e, x) => {
      const [p, , q] = b.opMulti("Split", [x.x!, ints(b, [1, 3, 2])], 3, axis(-1));
      return op(b, "Concat", [q!, op(b, "Tanh", [p!])], axis(-1));
    },
  },
  { title: "Concat axis 1", inputs: [["x", [2, 2, 3]], ["y", [2, 4, 3]]], body: (b, _e, x) => op(b, "Concat", [x.x!, x.y!], axis(1)) },
  { title: "Gather axis 0 (repeats, negative)", inputs: [["x", [5, 3]]], body: (b, _e, x) => op(b, "Gather", [x.x!, ints(b, [0, 2, -1, 2, 2, 1], [2, 3])], axis(0)) },
  { title: "Gather axis 1 (1-D index)", inputs: [["x", [2, 5, 3]]], body: (b, _e, x) => op(b, "Gather", [x.x!, ints(b, [1, 3, 3, -5])], axis(1)) },
  { title: "Gather axis 1 (2-D index)", inputs: [["x", [2, 5, 3]]], body: (b, _e, x) => op(b, "Gather", [x.x!, ints(b, [4, 0, 4, 2], [2, 2])], axis(1)) },
  { title: "Gather axis 0 scalar index", inputs: [["x", [4, 3]]], body: (b, _e, x) => op(b, "Gather", [x.x!, ints(b, [2], [])], axis(0)) },
  { title: "GatherND batch_dims 0", inputs: [["x", [2, 4, 3]]], body: (b, _e, x) => op(b, "GatherND", [x.x!, ints(b, [0, 1, 1, 3, 0, 1, -1, 0], [4, 2])]) },
  { title: "GatherElements axis 1", inputs: [["x", [3, 5]]], body: (b, _e, x) => op(b, "GatherElements", [x.x!, ints(b, [0, 4, 2, 2, -1, 3], [3, 2])], axis(1)) },
  { title: "ReduceSum axes [1] keepdims 0", inputs: [["x", [2, 3, 4]]], body: (b, _e, x) => op(b, "ReduceSum", [x.x!, ints(b, [1])], { keepdims: attr.int(0) }) },
  { title: "ReduceMean axes [-1] keepdims 1", inputs: [["x", [2, 3, 4]]], body: (b, _e, x) => op(b, "ReduceMean", [x.x!, ints(b, [-1])]) },
  { title: "ReduceMean all axes", inputs: [["x", [2, 3]]], body: (b, _e, x) => op(b, "ReduceMean", [x.x!], { keepdims: attr.int(0) }) },
  { title: "Identity, Cast float->float", inputs: [["x", [2, 3]]], body: (b, e, x) => op(b, "Cast", [op(b, "Identity", [x.x!])], { to: attr.int(e === "float64" ? 11 : 1) }) },
  {
    title: "Where (constant condition, broadcast)", inputs: [["x", [2, 3]], ["y", [3]]],
    body: (b, _e, x) => op(b, "Where", [b.initializer(b.fresh("cond"), [2, 3], Uint8Array.from([1, 0, 1, 0, 0, 1]), "bool"), x.x!, x.y!]),
  },
  {
    title: "Cross-entropy (LogSoftmax+GatherElements+ReduceMean)", inputs: [["x", [4, 7]]],
    body: (b, _e, x) => {
      const lp = op(b, "LogSoftmax", [x.x!], axis(-1));
      return op(b, "Neg", [op(b, "ReduceMean", [op(b, "GatherElements", [lp, ints(b, [3, 0, 6, 3], [4, 1])], axis(1))], { keepdims: attr.int(0) })]);
    },
  },
  {
    title: "Unsqueeze, Squeeze, Flatten, Expand, Sum", inputs: [["x", [3, 1]], ["y", [2, 3, 4]], ["z", [4]]],
    body: (b, _e, x) => {
      const ex = op(b, "Expand", [x.x!, ints(b, [2, 3, 4])]);
      const sq = op(b, "Squeeze", [op(b, "Unsqueeze", [x.z!, ints(b, [0, 2])]), ints(b, [2])]); // (1, 4)
      const s = op(b, "Sum", [ex, x.y!, sq]);
      return op(b, "Flatten", [s], axis(1));
    },
  },
  {
    // Symbolic dims leave broadcasting and sizes undecided statically: runtime Shape-based reductions.
    title: "symbolic dims: MatMul 3Dx2D, undecided broadcast Add, Concat", yDims: [2, 6, 4],
    inputs: [["a", [2, 3, 5], "any", ["B", "T", "K"]], ["w", [5, 4], "any", ["K", 4]], ["c", [1, 4], "any", ["C", 4]], ["d", [2, 3, 4], "any", ["B", "S", 4]]],
    body: (b, _e, x) => op(b, "Concat", [op(b, "Add", [op(b, "MatMul", [x.a!, x.w!]), x.c!]), x.d!], axis(1)),
  },
  // The new architectures' building blocks, as the emitters of lib/graph/ops.ts compose them
  // (float32: their constants are float32).
  { title: "RMSNorm (rmsNorm)", f32: true, inputs: [["x", [2, 3, 6]], ["g", [6], "pos"]], body: (b, _e, x) => rmsNorm(b, x.x!, x.g!, 1e-5) },
  { title: "SiLU gate · up (the SwiGLU key)", f32: true, inputs: [["g", [2, 7]], ["u", [2, 7]]], body: (b, _e, x) => op(b, "Mul", [silu(b, op(b, "Mul", [x.g!, cst(b, "float32", [], [2])])), x.u!]) },
  ...(["half", "interleaved"] as const).map((pairs): Case => ({
    title: `rotary, ${pairs} pairs, on 4 of 6 head dims at positions 3…5`, f32: true, inputs: [["x", [2, 2, 3, 6]]],
    body: (b, _e, x) => {
      const rope = { theta: 100, dims: 4, pairs };
      return applyRotary(b, x.x!, rotaryTables(b, b.constInt64([3, 4, 5, 3, 4, 5], [2, 3]), rope), rope, 6);
    },
  })),
  {
    title: "grouped-query attention: 4 query heads over 2 key/value heads, with past", f32: true,
    inputs: [["q", [1, 4, 2, 3]], ["k", [1, 2, 2, 3]], ["v", [1, 2, 2, 3]], ["pk", [1, 2, 1, 3]], ["pv", [1, 2, 1, 3]]],
    body: (b, _e, x) => {
      const bias = b.constFloat([0, 0, -1e9, 0, 0, 0], [1, 1, 2, 3]);
      const att = cachedAttention(b, x.q!, x.k!, x.v!, x.pk!, x.pv!, bias, 3, 12, { nHead: 4, nKvHead: 2 });
      return op(b, "Concat", [att.context, op(b, "Reshape", [att.presentKey, ints(b, [1, 2, -1])]), op(b, "Reshape", [att.presentValue, ints(b, [1, 2, -1])])], axis(-1));
    },
  },
  ...[{ nHead: 4, nKvHead: 2 }, { nHead: 2, nKvHead: 2 }].map((groups): Case => ({
    title: `attention to the past apart from the new columns (splitPast), ${groups.nHead} query heads over ${groups.nKvHead} key/value heads`, f32: true,
    inputs: [["q", [1, groups.nHead, 2, 3]], ["k", [1, 2, 2, 3]], ["v", [1, 2, 2, 3]], ["pk", [1, 2, 1, 3]], ["pv", [1, 2, 1, 3]]],
    body: (b, _e, x) => {
      const bias = b.constFloat([0, 0, -1e9, 0, 0, 0], [1, 1, 2, 3]);
      return cachedAttention(b, x.q!, x.k!, x.v!, x.pk!, x.pv!, bias, 3, 3 * groups.nHead, groups, true).context;
    },
  })),
  {
    // The last layer of MEMIT's target graph: queries at some columns only, keys and values at all.
    title: "attention (splitPast) with queries at columns 0 and 2 of 3 only, 4 query heads over 2 key/value heads", f32: true,
    inputs: [["q", [1, 4, 3, 3]], ["k", [1, 2, 3, 3]], ["v", [1, 2, 3, 3]], ["pk", [1, 2, 1, 3]], ["pv", [1, 2, 1, 3]]],
    body: (b, _e, x) => {
      const bias = b.constFloat([0, 0, -1e9, -1e9, 0, 0, 0, -1e9, 0, 0, 0, 0], [1, 1, 3, 4]);
      return cachedAttention(b, x.q!, x.k!, x.v!, x.pk!, x.pv!, bias, 3, 12, { nHead: 4, nKvHead: 2 }, true, b.constInt64([0, 2])).context;
    },
  },
  {
    title: "fan-out and a constant branch", inputs: [["x", [3, 4]], ["w", [4]]], wrt: ["x"],
    body: (b, _e, x) => op(b, "Add", [op(b, "Mul", [x.x!, op(b, "Tanh", [x.x!])]), op(b, "Mul", [x.x!, op(b, "Exp", [x.w!])])]),
  },
];

const table: string[] = [];
for (const [i, c] of CASES.entries()) {
  test(`gradient of ${c.title} matches central differences`, async (t) => {
    const r = await check(c, 1000 + i);
    const line = `${c.title}: ${r.elem}, max rel err ${r.rel.toExponential(2)} (tol ${TOL[r.elem].rel})`;
    table.push(line);
    t.log(line);
    t.true(r.lossDiff <= 1e-5, `loss output differs from the forward loss by ${r.lossDiff}`);
    t.true(r.rel <= TOL[r.elem].rel, line);
  });
}

test("every supported op is exercised by a case", (t) => {
  const used = new Set<string>();
  for (const c of CASES) {
    const b = forwardGraph(c, "float32", 0);
    for (const n of b.nodes) used.add(n.op);
  }
  const missing = DIFFERENTIABLE_OPS.filter((o) => !used.has(o));
  t.deepEqual(missing, []);
});

test("symbolic dims take the runtime (Shape-based) broadcast reduction; static ones do not", (t) => {
  const opsOf = (title: string) => {
    const c = CASES.find((k) => k.title.startsWith(title))!;
    return buildGradient(forwardGraph(c, "float32", 0), { loss: "loss", wrt: c.inputs.map(([n]) => n) }).nodes.map((n) => n.op);
  };
  t.true(opsOf("symbolic dims").includes("NonZero"));
  t.false(opsOf("Add broadcast").includes("NonZero"));
  t.false(opsOf("Sub broadcast").includes("NonZero"));
  t.false(opsOf("MatMul 3Dx2D").includes("Concat"));
  t.true(opsOf("symbolic dims").includes("Concat"));
});

test("a wrt input that does not reach the loss gets a zero gradient; constant nodes are pruned", async (t) => {
  const b = new GraphBuilder("zero");
  const x = b.input("x", "float32", [2, 3]);
  b.input("u", "float32", [4]);
  const w = b.input("w", "float32", [2, 3]);
  b.output("loss", b.op("ReduceSum", [b.op("Mul", [x, b.op("Exp", [w])])], { keepdims: attr.int(0) }), "float32", []);
  b.output("unused", b.op("Sin", [w]), "float32", [2, 3]);
  const g = buildGradient(b, { loss: "loss", wrt: ["x", "u"] });
  t.false(g.nodes.some((n) => n.op === "Sin"));
  const s = await ort.InferenceSession.create(g.toBytes(), OPTS);
  const wv = Float32Array.from([0, 1, -1, 0.5, 2, -2]);
  const out = await s.run({ x: new ort.Tensor("float32", new Float32Array(6).fill(1), [2, 3]), u: new ort.Tensor("float32", new Float32Array(4), [4]), w: new ort.Tensor("float32", wv, [2, 3]) });
  t.deepEqual(Array.from(out.grad_u!.data as Float32Array), [0, 0, 0, 0]);
  (out.grad_x!.data as Float32Array).forEach((v, i) => t.true(Math.abs(v - Math.exp(wv[i]!)) < 1e-5));
  await s.release();
});

test("unsupported ops, non-inputs and non-float inputs are refused with ERR_ARGUMENT", (t) => {
  const b = new GraphBuilder("bad");
  const x = b.input("x", "float32", [3]);
  const ids = b.input("ids", "int64", [3]);
  b.output("loss", b.op("ReduceSum", [b.op("Sin", [x])], { keepdims: attr.int(0) }), "float32", []);
  b.output("n", b.op("ReduceSum", [b.op("Cast", [ids], { to: attr.int(1) }), b.constInt64([0])], { keepdims: attr.int(0) }), "float32", []);
  const code = (fn: () => unknown) => {
    try { fn(); } catch (e) { return e instanceof RomeError ? e.code : String(e); }
    return "no error";
  };
  t.is(code(() => buildGradient(b, { loss: "loss", wrt: ["x"] })), "ERR_ARGUMENT");
  t.is(code(() => buildGradient(b, { loss: "loss", wrt: ["nope"] })), "ERR_ARGUMENT");
  t.is(code(() => buildGradient(b, { loss: "n", wrt: ["ids"] })), "ERR_ARGUMENT");
  t.is(code(() => buildGradient(b, { loss: "missing", wrt: ["x"] })), "ERR_ARGUMENT");
});

// ---- end to end: δ added to one MLP output of a random 2-layer model, NLL of target tokens ----

const E2E: [title: string, arch: ArchDescription, cfg: ModelConfig][] = [
  ["GPT-2", gpt2, {
    arch: "gpt2", nLayer: 2, nEmbd: 16, nHead: 2, nKvHead: 2, headDim: 8, nInner: 64, vocabSize: 50, nPositions: 16, layerNormEps: 1e-5,
    activation: "gelu_new", tieWordEmbeddings: true, eosTokenId: 0, bosTokenId: 0,
  }],
  ["Llama (grouped-query 4:2, rotary, SwiGLU, RMSNorm, untied head)", llama, {
    arch: "llama", nLayer: 2, nEmbd: 16, nHead: 4, nKvHead: 2, headDim: 4, nInner: 24, vocabSize: 50, nPositions: 16, layerNormEps: 1e-5,
    activation: "silu", tieWordEmbeddings: false, eosTokenId: 0, bosTokenId: 0, gatedMlp: true,
    rope: { theta: 10000, dims: 4, pairs: "half" }, biases: { qkv: true, attnOut: false, mlp: false },
  }],
];

for (const [title, arch, cfg] of E2E) test(`${title} (2 layers, random weights): d NLL / d delta matches central differences`, async (t) => {
  const r = rng(42);
  const normal = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const weights: Weights = new Map();
  for (const [name, shape] of arch.weightShapes(cfg)) {
    const isLnW = /(ln_\w+|norm)\.weight$/.test(name);
    const scale = /^w[tp]e|embed_tokens/.test(name) ? 0.5 : 0.2;
    weights.set(name, { shape, data: Float32Array.from({ length: size(shape) }, () => (isLnW ? 1 : 0) + scale * normal()) });
  }
  const [B, T, D, H, Dh] = [2, 6, cfg.nEmbd, cfg.nKvHead, cfg.headDim];
  const b = new GraphBuilder("gpt2_vstar");
  const added = new Set<string>();
  const ctx: EmitContext = {
    b, cfg,
    w(name) {
      if (!added.has(name)) {
        b.initializer(name, weights.get(name)!.shape, weights.get(name)!.data);
        added.add(name);
      }
      return name;
    },
  };
  const ids = b.input("ids", "int64", ["B", "T"]);
  const positions = b.input("positions", "int64", ["B", "T"]);
  const pastKey = b.input("past_key", "float32", ["B", H, 0, Dh]);
  const pastValue = b.input("past_value", "float32", ["B", H, 0, Dh]);
  const delta = b.input("delta", "float32", [D]);
  const causal = Array.from({ length: B * T * T }, (_, i) => ((i % T) > Math.floor(i / T) % T ? -1e4 : 0));
  const bias = b.constFloat(causal, [B, 1, T, T]);
  // δ at the subject's last token: position 2 of row 0, position 3 of row 1
  const mask = b.constFloat(Array.from({ length: B * T }, (_, i) => (i === 2 || i === T + 3 ? 1 : 0)), [B, T, 1]);
  const emb = arch.emitEmbed(ctx, { ids, positions });
  let resid = b.op("Add", [emb.tokEmbed, emb.posEmbed]);
  for (let l = 0; l < cfg.nLayer; l++) {
    const att = arch.emitAttention(ctx, l, { resid, pastKey, pastValue, bias, positions });
    const mid = b.op("Add", [resid, att.attnOut]);
    let mlpOut = arch.emitMlp(ctx, l, { residMid: mid, resid }).mlpOut;
    if (l === 0) mlpOut = b.op("Add", [mlpOut, b.op("Mul", [mask, delta])]);
    resid = b.op("Add", [mid, mlpOut]);
  }
  // NLL of target tokens predicted at (row, position) pairs
  const select = b.constInt64([0, 2, 0, 3, 1, 4, 1, 5], [4, 2]);
  const logits = arch.emitHead(ctx, b.op("GatherND", [resid, select]));
  const targets = b.constInt64([7, 11, 3, 42], [4, 1]);
  const picked = b.op("GatherElements", [b.op("LogSoftmax", [logits], axis(-1)), targets], axis(1));
  b.output("loss", b.op("Neg", [b.op("ReduceMean", [picked], { keepdims: attr.int(0) })]), "float32", []);
  b.output("logits", logits, "float32", [4, cfg.vocabSize]);

  const grad = buildGradient(b, { loss: "loss", wrt: ["delta"], keep: ["logits"] });
  const fs = await ort.InferenceSession.create(b.toBytes(), OPTS);
  const gs = await ort.InferenceSession.create(grad.toBytes(), OPTS);
  const idv = BigInt64Array.from(Array.from({ length: B * T }, () => BigInt(Math.floor(r() * cfg.vocabSize))));
  const pos = BigInt64Array.from(Array.from({ length: B * T }, (_, i) => BigInt(i % T)));
  const dv = Float32Array.from({ length: D }, () => normal());
  const feeds = () => ({
    ids: new ort.Tensor("int64", idv, [B, T]), positions: new ort.Tensor("int64", pos, [B, T]),
    past_key: new ort.Tensor("float32", new Float32Array(0), [B, H, 0, Dh]), past_value: new ort.Tensor("float32", new Float32Array(0), [B, H, 0, Dh]),
    delta: new ort.Tensor("float32", dv, [D]),
  });
  const lossOf = async () => Number((await fs.run(feeds(), ["loss"])).loss!.data[0]);
  const out = await gs.run(feeds());
  const ref = await fs.run(feeds());
  t.true(Math.abs(Number(out.loss!.data[0]) - Number(ref.loss!.data[0])) < 1e-5);
  t.true(Array.from(out.logits!.data as Float32Array).every((v, i) => Math.abs(v - (ref.logits!.data as Float32Array)[i]!) < 1e-5));
  const g = out.grad_delta!.data as Float32Array;
  const { step, rel } = TOL.float32;
  let num = 0, den = 1e-3;
  for (let i = 0; i < D; i++) {
    const x0 = dv[i]!;
    dv[i] = x0 + step;
    const lp = await lossOf();
    dv[i] = x0 - step;
    const lm = await lossOf();
    dv[i] = x0;
    const fd = (lp - lm) / (2 * step);
    num = Math.max(num, Math.abs(g[i]! - fd));
    den = Math.max(den, Math.abs(fd));
  }
  const line = `${title} 2-layer d loss/d delta: float32, max rel err ${(num / den).toExponential(2)} (tol ${rel}), |grad|max ${den.toFixed(4)}, ${grad.nodes.length} nodes`;
  t.log(line);
  t.true(den > 1e-2, "the gradient should not vanish");
  t.true(num / den <= rel, line);
  await fs.release();
  await gs.release();
});

test.after.always(() => {
  if (process.env.AUTODIFF_TABLE) console.log(table.sort().join("\n"));
});
