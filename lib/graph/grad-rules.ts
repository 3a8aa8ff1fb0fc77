// Reverse-mode rules, one per forward op: given the gradients of a node's outputs, emit ONNX nodes
// (opset 20) computing the gradients of its inputs. Rules read forward values freely (the gradient
// graph contains the forward nodes); autodiff.ts walks the graph, sums fan-out and prunes.
import type { AttrValue, ElemType, GraphBuilder, NodeDef } from "./builder.js";

export type SDim = number | string | null;
export type SShape = SDim[];

/** What a rule works with. Values named here are forward values unless a rule created them. */
export interface GradCtx {
  /** The gradient graph being built (contains the forward nodes). */
  b: GraphBuilder;
  node: NodeDef;
  /** Static shape of a forward value (null: unknown rank). */
  shape(v: string): SShape | null;
  /** Static rank of a forward value; fails when unknown. */
  rank(v: string): number;
  elem(v: string): ElemType;
  elemCode(e: ElemType): number;
  /** Values of an integer initializer, or null. */
  intConst(v: string): number[] | null;
  /** True when input k needs a gradient (depends on a wrt input and is float). */
  needs(k: number): boolean;
  /** A 0-d constant of the given element type. */
  scalar(value: number, elem: ElemType): string;
  /** A 1-D int64 constant. */
  ints(values: number[]): string;
  /** Sums g (static shape gShape where known) down to x's shape (x broadcasts to g). */
  sumTo(g: string, gShape: SShape | null, x: string): string;
  zerosLike(v: string): string;
  fail(msg: string): never;
}

/** Gradients of the node's inputs (null where an input needs none) from its outputs' (null: zero). */
export type GradRule = (c: GradCtx, gy: (string | null)[]) => (string | null)[];

const int = (value: number): AttrValue => ({ kind: "int", value });
const ints = (value: number[]): AttrValue => ({ kind: "ints", value });
const str = (value: string): AttrValue => ({ kind: "string", value });

function a(n: NodeDef, key: string, dflt: number): number;
function a(n: NodeDef, key: string, dflt: string): string;
function a(n: NodeDef, key: string, dflt: number | string): number | string {
  return (n.attrs[key]?.value as number | string | undefined) ?? dflt;
}

/** Shorthands bound to one context. */
function h(c: GradCtx) {
  const { b } = c;
  const y = c.node.outputs[0]!;
  const E = c.elem(y);
  return {
    y, E,
    k: (v: number) => c.scalar(v, E),
    op: (op: string, inputs: string[], attrs: Record<string, AttrValue> = {}) => b.op(op, inputs, attrs),
    add: (p: string, q: string) => b.op("Add", [p, q]),
    sub: (p: string, q: string) => b.op("Sub", [p, q]),
    mul: (p: string, q: string) => b.op("Mul", [p, q]),
    div: (p: string, q: string) => b.op("Div", [p, q]),
    /** x's shape as a value: a constant when static, else a Shape node. */
    shapeOp: (v: string) => {
      const s = c.shape(v);
      return s && s.every((d) => typeof d === "number") ? c.ints(s as number[]) : b.op("Shape", [v]);
    },
    /** Swaps the last two axes of a value of rank r. */
    swap: (v: string, r: number) => b.op("Transpose", [v], { perm: ints([...Array(r - 2).keys(), r - 1, r - 2]) }),
    reshapeLike: (g: string, x: string) => {
      const s = c.shape(x);
      return b.op("Reshape", [g, s && s.every((d) => typeof d === "number") ? c.ints(s as number[]) : b.op("Shape", [x])]);
    },
    /** Replaces negative indices by index + n (n broadcasts against idx). */
    wrapIndex: (idx: string, n: string) => {
      const zero = c.scalar(0, "int64");
      return b.op("Where", [b.op("Less", [idx, zero]), b.op("Add", [idx, n]), idx]);
    },
  };
}

function unary(fn: (c: GradCtx, g: string, x: string, H: ReturnType<typeof h>) => string): GradRule {
  return (c, [g]) => [fn(c, g!, c.node.inputs[0]!, h(c))];
}

const sameShape: GradRule = (c, [g]) => [h(c).reshapeLike(g!, c.node.inputs[0]!)];

function gemm(c: GradCtx, g: string): (string | null)[] {
  const [A, B, C] = c.node.inputs as [string, string, string | undefined];
  const H = h(c);
  const alpha = a(c.node, "alpha", 1), beta = a(c.node, "beta", 1);
  const tA = a(c.node, "transA", 0), tB = a(c.node, "transB", 0);
  const ga = (p: string, q: string, ta: number, tb: number) =>
    H.op("Gemm", [p, q], { alpha: { kind: "float", value: alpha }, transA: int(ta), transB: int(tb) });
  const out: (string | null)[] = [null, null, null];
  if (c.needs(0)) out[0] = tA === 0 ? ga(g, B, 0, 1 - tB) : ga(B, g, tB, 1);
  if (c.needs(1)) out[1] = tB === 0 ? ga(A, g, 1 - tA, 0) : ga(g, A, 1, tA);
  if (C && c.needs(2)) out[2] = c.sumTo(beta === 1 ? g : H.mul(g, H.k(beta)), c.shape(H.y), C);
  return out;
}

function matmul(c: GradCtx, g: string): (string | null)[] {
  const [A, B] = c.node.inputs as [string, string];
  const H = h(c);
  const rA = c.rank(A), rB = c.rank(B);
  if (rA < 2 || rB < 2) c.fail("1-D operands are not supported");
  const sA = c.shape(A), sB = c.shape(B), sY = c.shape(H.y);
  const full = (s: SShape | null) => (sY && s ? [...sY.slice(0, -2), s[s.length - 2]!, s[s.length - 1]!] : null);
  const out: (string | null)[] = [null, null];
  if (c.needs(0)) {
    if (rA === 2 && rB === 2) out[0] = H.op("Gemm", [g, B], { transB: int(1) });
    else if (rB === 2) out[0] = H.op("MatMul", [g, H.swap(B, 2)]);
    else out[0] = c.sumTo(H.op("MatMul", [g, H.swap(B, rB)]), full(sA), A);
  }
  if (c.needs(1)) {
    if (rA === 2 && rB === 2) out[1] = H.op("Gemm", [A, g], { transA: int(1) });
    else if (rB === 2) {
      // (..., M, K) x (K, N): fold the batch into rows and take one 2-D product.
      const K = sA?.[sA.length - 1], N = sY?.[sY.length - 1];
      const rows = (v: string, d: SDim) =>
        H.op("Reshape", [v, typeof d === "number" ? c.ints([-1, d]) : H.op("Concat", [c.ints([-1]), H.op("Shape", [v], { start: int(-1) })], { axis: int(0) })]);
      out[1] = H.op("Gemm", [rows(A, K ?? null), rows(g, N ?? null)], { transA: int(1) });
    } else out[1] = c.sumTo(H.op("MatMul", [H.swap(A, rA), g]), full(sB), B);
  }
  return out;
}

function layerNorm(c: GradCtx, gy: (string | null)[]): (string | null)[] {
  if (gy[1] || gy[2]) c.fail("gradients through the Mean / InvStdDev outputs are not supported");
  const g = gy[0]!;
  const [X, S, Bi] = c.node.inputs as [string, string, string | undefined];
  const H = h(c);
  const axis = a(c.node, "axis", -1);
  const axes = axis < 0 ? Array.from({ length: -axis }, (_, i) => axis + i) : Array.from({ length: c.rank(X) - axis }, (_, i) => axis + i);
  const ax = c.ints(axes);
  const mean = (v: string) => H.op("ReduceMean", [v, ax], { keepdims: int(1) });
  let xhat: string;
  let rstd: string;
  if (H.E === "float32" && a(c.node, "stash_type", 1) === 1) {
    // The forward node's own statistics (its optional Mean and InvStdDev outputs, float32 here,
    // added to the gradient graph's copy of the node), not recomputed: two reductions and four
    // elementwise ops over x fewer per layer norm.
    const fwd = c.b.nodes.find((n) => n.op === "LayerNormalization" && n.outputs[0] === H.y)!;
    for (let k = 1; k <= 2; k++) if (!fwd.outputs[k]) fwd.outputs[k] = c.b.fresh(k === 1 ? "ln_mean" : "ln_rstd");
    rstd = fwd.outputs[2]!; // (..., 1, …, 1)
    xhat = H.mul(H.sub(X, fwd.outputs[1]!), rstd);
  } else {
    const eps = Math.fround(a(c.node, "epsilon", 1e-5));
    const xc = H.sub(X, mean(X));
    rstd = H.op("Reciprocal", [H.op("Sqrt", [H.add(mean(H.mul(xc, xc)), H.k(eps))])]);
    xhat = H.mul(xc, rstd);
  }
  const out: (string | null)[] = [null, null, null];
  if (c.needs(0)) {
    const gh = H.mul(g, S);
    out[0] = H.mul(rstd, H.sub(H.sub(gh, mean(gh)), H.mul(xhat, mean(H.mul(gh, xhat)))));
  }
  if (c.needs(1)) out[1] = c.sumTo(H.mul(g, xhat), c.shape(H.y), S);
  if (Bi && c.needs(2)) out[2] = c.sumTo(g, c.shape(H.y), Bi);
  return out;
}

function gelu(c: GradCtx, g: string, x: string, H: ReturnType<typeof h>): string {
  const one = H.k(1);
  const x2 = H.mul(x, x);
  let d: string;
  if (a(c.node, "approximate", "none") === "tanh") {
    // y = x/2 (1 + tanh u) = x σ(2u), u = √(2/π) (x + 0.044715 x³): with σ = σ(2u),
    // dy/dx = σ + x σ (1 − σ) d(2u)/dx = σ (1 + x (1 − σ) d(2u)/dx), in 12 elementwise ops (the
    // tanh form takes 17: they dominate the gradient of an MLP's activations).
    const s2 = 2 * Math.sqrt(2 / Math.PI), k = 0.044715;
    const sg = H.op("Sigmoid", [H.mul(x, H.add(H.mul(x2, H.k(s2 * k)), H.k(s2)))]);
    const dv = H.add(H.mul(x2, H.k(3 * s2 * k)), H.k(s2)); // d(2u)/dx
    d = H.mul(sg, H.add(H.mul(H.mul(x, dv), H.sub(one, sg)), one));
  } else {
    // y = x Φ(x): dy/dx = Φ(x) + x φ(x)
    const half = H.k(0.5);
    const cdf = H.mul(half, H.add(one, H.op("Erf", [H.mul(x, H.k(Math.SQRT1_2))])));
    const pdf = H.mul(H.op("Exp", [H.mul(x2, H.k(-0.5))]), H.k(1 / Math.sqrt(2 * Math.PI)));
    d = H.add(cdf, H.mul(x, pdf));
  }
  return H.mul(g, d);
}

/** Scatter-adds g into zeros of data's shape along Gather's axis. */
function gather(c: GradCtx, g: string): (string | null)[] {
  const [data, idx] = c.node.inputs as [string, string];
  const H = h(c);
  const r = c.rank(data);
  const ax = a(c.node, "axis", 0) < 0 ? a(c.node, "axis", 0) + r : a(c.node, "axis", 0);
  const dShape = H.shapeOp(data);
  const n = H.op("Gather", [dShape, c.scalar(ax, "int64")]);
  const where = H.op("Unsqueeze", [H.wrapIndex(idx, n), c.ints([-1])]);
  const add = { reduction: str("add") };
  if (ax === 0) return [H.op("ScatterND", [c.zerosLike(data), where, g], add), null];
  // Move the gathered axis to the front (data) and the index axes to the front (g), scatter, move back.
  const ri = c.rank(idx);
  const permD = [ax, ...Array(ax).keys(), ...Array.from({ length: r - ax - 1 }, (_, i) => ax + 1 + i)];
  const permG = [...Array.from({ length: ri }, (_, i) => ax + i), ...Array(ax).keys(), ...Array.from({ length: r - ax - 1 }, (_, i) => ax + ri + i)];
  const zeros = H.op("Expand", [H.k(0), H.op("Gather", [dShape, c.ints(permD)])]);
  const s = H.op("ScatterND", [zeros, where, H.op("Transpose", [g], { perm: ints(permG) })], add);
  const inv = permD.map((_, i) => permD.indexOf(i));
  return [H.op("Transpose", [s], { perm: ints(inv) }), null];
}

function reduce(mean: boolean): GradRule {
  return (c, [g]) => {
    const [x, axesIn] = c.node.inputs as [string, string | undefined];
    const H = h(c);
    const attrAxes = c.node.attrs.axes?.value as number[] | undefined;
    const axes = axesIn ? axesIn : attrAxes ? c.ints(attrAxes) : null;
    const emptyAxes = axes === null || (axesIn !== undefined && c.intConst(axesIn)?.length === 0);
    if (emptyAxes && a(c.node, "noop_with_empty_axes", 0) === 1) return [g!, null];
    const gk = a(c.node, "keepdims", 1) === 1 || emptyAxes ? g! : H.op("Unsqueeze", [g!, axes!]);
    let gx = H.op("Expand", [gk, H.shapeOp(x)]);
    if (mean) {
      const count = H.op("Div", [H.op("Size", [x]), H.op("Size", [H.y])]);
      gx = H.div(gx, H.op("Cast", [count], { to: int(c.elemCode(H.E)) }));
    }
    return [gx, null];
  };
}

function broadcastBinary(fn: (c: GradCtx, g: string, p: string, q: string, H: ReturnType<typeof h>) => [string | null, string | null]): GradRule {
  return (c, [g]) => {
    const [p, q] = c.node.inputs as [string, string];
    const H = h(c);
    const [gp, gq] = fn(c, g!, p, q, H);
    const sY = c.shape(H.y);
    return [gp && c.needs(0) ? c.sumTo(gp, sY, p) : null, gq && c.needs(1) ? c.sumTo(gq, sY, q) : null];
  };
}

export const GRAD_RULES: Record<string, GradRule> = {
  Identity: (_c, [g]) => [g!],
  Cast: (c, [g]) => [c.elem(c.node.inputs[0]!) === c.elem(c.node.outputs[0]!) ? g! : c.b.op("Cast", [g!], { to: int(c.elemCode(c.elem(c.node.inputs[0]!))) })],
  Neg: unary((_c, g, _x, H) => H.op("Neg", [g])),
  Add: broadcastBinary((_c, g) => [g, g]),
  Sub: broadcastBinary((c, g, _p, _q, H) => [g, c.needs(1) ? H.op("Neg", [g]) : null]),
  Mul: broadcastBinary((c, g, p, q, H) => [c.needs(0) ? H.mul(g, q) : null, c.needs(1) ? H.mul(g, p) : null]),
  Div: broadcastBinary((c, g, _p, q, H) => [c.needs(0) ? H.div(g, q) : null, c.needs(1) ? H.op("Neg", [H.mul(g, H.div(H.y, q))]) : null]),
  Sum: (c, [g]) => c.node.inputs.map((v, k) => (c.needs(k) ? c.sumTo(g!, c.shape(c.node.outputs[0]!), v) : null)),
  Pow: (c, [g]) => {
    if (c.needs(1)) c.fail("only a constant exponent is supported");
    const [x, p] = c.node.inputs as [string, string];
    const H = h(c);
    const pf = c.elem(p) === H.E ? p : H.op("Cast", [p], { to: int(c.elemCode(H.E)) });
    return [c.sumTo(H.mul(g!, H.mul(pf, H.op("Pow", [x, H.sub(pf, H.k(1))]))), c.shape(H.y), x), null];
  },
  Sqrt: unary((_c, g, _x, H) => H.div(H.mul(g, H.k(0.5)), H.y)),
  Exp: unary((_c, g, _x, H) => H.mul(g, H.y)),
  Log: unary((_c, g, x, H) => H.div(g, x)),
  Reciprocal: unary((_c, g, _x, H) => H.op("Neg", [H.mul(g, H.mul(H.y, H.y))])),
  Tanh: unary((_c, g, _x, H) => H.mul(g, H.sub(H.k(1), H.mul(H.y, H.y)))),
  Sigmoid: unary((_c, g, _x, H) => H.mul(g, H.mul(H.y, H.sub(H.k(1), H.y)))),
  Relu: unary((_c, g, x, H) => H.op("Where", [H.op("Greater", [x, H.k(0)]), g, H.k(0)])),
  Gelu: unary(gelu),
  Softmax: unary((c, g, _x, H) => {
    const s = H.op("ReduceSum", [H.mul(g, H.y), c.ints([a(c.node, "axis", -1)])], { keepdims: int(1) });
    return H.mul(H.y, H.sub(g, s));
  }),
  LogSoftmax: unary((c, g, _x, H) => {
    const s = H.op("ReduceSum", [g, c.ints([a(c.node, "axis", -1)])], { keepdims: int(1) });
    return H.sub(g, H.mul(H.op("Exp", [H.y]), s));
  }),
  MatMul: (c, [g]) => matmul(c, g!),
  Gemm: (c, [g]) => gemm(c, g!),
  LayerNormalization: layerNorm,
  Reshape: (c, gy) => [...sameShape(c, gy), null],
  Flatten: sameShape,
  Squeeze: (c, gy) => [...sameShape(c, gy), null],
  Unsqueeze: (c, gy) => [...sameShape(c, gy), null],
  Expand: (c, [g]) => [c.sumTo(g!, c.shape(c.node.outputs[0]!), c.node.inputs[0]!), null],
  Transpose: (c, [g]) => {
    const perm = c.node.attrs.perm?.value as number[] | undefined;
    if (!perm) return [c.b.op("Transpose", [g!])];
    return [c.b.op("Transpose", [g!], { perm: ints(perm.map((_, i) => perm.indexOf(i))) })];
  },
  Split: (c, gy) => {
    const parts = c.node.outputs.map((o, k) => gy[k] ?? c.zerosLike(o));
    return [c.b.op("Concat", parts, { axis: int(a(c.node, "axis", 0)) }), null];
  },
  Concat: (c, [g]) => {
    const axis = a(c.node, "axis", 0);
    const H = h(c);
    const dims = c.node.inputs.map((v) => c.shape(v)?.at(axis) ?? null);
    const sizes = dims.every((d) => typeof d === "number")
      ? c.ints(dims as number[])
      : H.op("Concat", c.node.inputs.map((v) => H.op("Gather", [H.op("Shape", [v]), c.ints([axis])])), { axis: int(0) });
    return c.b.opMulti("Split", [g!, sizes], dims.length, { axis: int(axis) });
  },
  Gather: (c, [g]) => gather(c, g!),
  GatherND: (c, [g]) => {
    if (a(c.node, "batch_dims", 0) !== 0) c.fail("batch_dims other than 0 is not supported");
    const [data, idx] = c.node.inputs as [string, string];
    const H = h(c);
    const dims = H.op("Slice", [H.shapeOp(data), c.ints([0]), H.op("Shape", [idx], { start: int(-1) })]);
    return [H.op("ScatterND", [c.zerosLike(data), H.wrapIndex(idx, dims), g!], { reduction: str("add") }), null];
  },
  GatherElements: (c, [g]) => {
    const [data, idx] = c.node.inputs as [string, string];
    const H = h(c);
    const axis = a(c.node, "axis", 0);
    const n = H.op("Gather", [H.shapeOp(data), c.scalar(axis, "int64")]);
    return [H.op("ScatterElements", [c.zerosLike(data), H.wrapIndex(idx, n), g!], { axis: int(axis), reduction: str("add") }), null];
  },
  ReduceSum: reduce(false),
  ReduceMean: reduce(true),
  Where: (c, [g]) => {
    const [cond, p, q] = c.node.inputs as [string, string, string];
    const H = h(c);
    const sY = c.shape(H.y);
    return [
      null,
      c.needs(1) ? c.sumTo(H.op("Where", [cond, g!, H.k(0)]), sY, p) : null,
      c.needs(2) ? c.sumTo(H.op("Where", [cond, H.k(0), g!]), sY, q) : null,
    ];
  },
};
