// Reverse-mode differentiation over the graph builder's op set. From a forward graph, a scalar loss
// value and some of its inputs, `buildGradient` emits a new graph with the same inputs and
// initializers that computes the loss and d loss / d input for each of them in one onnxruntime run
// (ROME's v* optimisation: the loss over the layers above the edited one, differentiated with
// respect to δ). The per-op rules live in grad-rules.ts; this file walks the graph, tracks static
// element types and (partial) shapes, reduces broadcast gradients, and prunes what no output needs.
import { RomeError } from "../errors.js";
import type { Dim, ElemType, GraphBuilder as GraphBuilderT, NodeDef } from "./builder.js";
import { GraphBuilder } from "./builder.js";
import { GRAD_RULES, type GradCtx, type SShape } from "./grad-rules.js";
import { inferValues, intConst } from "./shape-infer.js";

export type { SDim, SShape } from "./grad-rules.js";
export { inferValues, type ValueInfo } from "./shape-infer.js";


export interface GradientOptions {
  /** Name of the scalar float value to differentiate (a graph output or any intermediate value). */
  loss: string;
  /** Graph inputs (or initializers) to differentiate with respect to; outputs are named `grad_<name>`. */
  wrt: string[];
  /** Further forward values to expose as outputs of the gradient graph, under their own names. */
  keep?: string[];
  /** Name of the new graph (default `<forward name>_grad`). */
  name?: string;
}

/** Ops whose gradient `buildGradient` knows. */
export const DIFFERENTIABLE_OPS: readonly string[] = Object.keys(GRAD_RULES).sort();

const FLOAT = new Set<ElemType>(["float32", "float64"]);
const ONNX_CODE: Record<ElemType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float64: 11 };

const fail = (msg: string): never => {
  throw new RomeError("ERR_ARGUMENT", `buildGradient: ${msg}`);
};


/**
 * A new graph computing `opts.loss`, the `keep` values and `grad_<w>` = d loss / d w for each w in
 * `opts.wrt` (a non-scalar loss is differentiated as the sum of its elements). Same inputs and
 * initializers as `forward`; forward nodes no output needs are left out.
 */
export function buildGradient(forward: GraphBuilderT, opts: GradientOptions): GraphBuilder {
  const info = inferValues(forward);
  const inits = new Map(forward.initializers.map((t) => [t.name, t]));
  const graphValues = new Set([...forward.inputs.map((v) => v.name), ...inits.keys()]);
  const producer = new Map<string, number>();
  forward.nodes.forEach((n, i) => {
    for (const v of n.inputs) {
      if (v && !graphValues.has(v) && !producer.has(v)) fail(`node ${i} (${n.op}) reads '${v}' before any node produces it`);
    }
    for (const o of n.outputs) if (o) producer.set(o, i);
  });
  const known = (v: string) => graphValues.has(v) || producer.has(v);
  const loss = opts.loss;
  if (!known(loss)) fail(`loss '${loss}' is not a value of graph ${forward.name}`);
  const lossInfo = info.get(loss)!;
  if (!FLOAT.has(lossInfo.elem)) fail(`loss '${loss}' is ${lossInfo.elem}, not a float`);
  if (!lossInfo.shape) fail(`the rank of loss '${loss}' cannot be inferred`);
  if (opts.wrt.length === 0) fail("wrt names no input");
  for (const w of opts.wrt) {
    if (!graphValues.has(w)) fail(`'${w}' is neither an input nor an initializer of graph ${forward.name}`);
    if (!FLOAT.has(info.get(w)!.elem)) fail(`'${w}' is ${info.get(w)!.elem}; only float inputs have gradients`);
  }
  for (const k of opts.keep ?? []) if (!known(k)) fail(`keep: '${k}' is not a value of graph ${forward.name}`);

  // Values that depend on a wrt input through float values.
  const dep = new Set(opts.wrt);
  for (const n of forward.nodes) {
    if (n.inputs.some((v) => dep.has(v))) for (const o of n.outputs) if (o && FLOAT.has(info.get(o)!.elem)) dep.add(o);
  }
  // Nodes the loss depends on.
  const onPath = new Set<number>();
  const stack = [loss];
  const seen = new Set<string>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = producer.get(v);
    if (p === undefined) continue;
    onPath.add(p);
    for (const i of forward.nodes[p]!.inputs) if (i) stack.push(i);
  }

  const b = new GraphBuilder(opts.name ?? `${forward.name}_grad`);
  // Keep fresh names clear of every forward name of the form prefix_N.
  let maxSuffix = -1;
  for (const v of [...graphValues, ...producer.keys()]) {
    const m = /_(\d+)$/.exec(v);
    if (m) maxSuffix = Math.max(maxSuffix, Number(m[1]));
  }
  if (maxSuffix > 1e7) fail(`value names with suffixes up to _${maxSuffix} leave no room for fresh names`);
  for (let i = 0; i <= maxSuffix; i++) b.fresh("");
  for (const v of forward.inputs) b.inputs.push({ ...v, dims: [...v.dims] });
  for (const t of forward.initializers) b.initializers.push(t);
  b.externalFolder = forward.externalFolder; // the same external initializers, read from the same folder
  for (const n of forward.nodes) b.nodes.push({ op: n.op, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } });

  const consts = new Map<string, string>();
  const scalar = (value: number, elem: ElemType): string => {
    const key = `${elem}:${value}`;
    let c = consts.get(key);
    if (!c) {
      const data = elem === "float64" ? Float64Array.of(value) : elem === "int64" ? BigInt64Array.of(BigInt(value)) : Float32Array.of(value);
      c = b.initializer(b.fresh("c"), [], data, elem);
      consts.set(key, c);
    }
    return c;
  };
  const ints = (values: number[]): string => {
    const key = `ints:${values.join(",")}`;
    let c = consts.get(key);
    if (!c) consts.set(key, (c = b.constInt64(values)));
    return c;
  };
  const shapeOf = (v: string) => info.get(v)?.shape ?? null;
  const elemOf = (v: string): ElemType => info.get(v)?.elem ?? fail(`no element type known for '${v}'`);
  const rankOf = (v: string): number => shapeOf(v)?.length ?? fail(`the rank of '${v}' cannot be inferred`);

  /** Sums g (of static shape gShape, where known) down to the shape of x, which broadcasts to it. */
  const sumTo = (g: string, gShape: SShape | null, x: string): string => {
    const xs = shapeOf(x);
    if (gShape && xs && gShape.length >= xs.length) {
      const lead = gShape.length - xs.length;
      const axes = Array.from({ length: lead }, (_, i) => i);
      let decided = true;
      xs.forEach((xd, j) => {
        const gd = gShape[lead + j];
        if (xd !== null && xd === gd) return;
        if (xd === 1) { if (gd !== 1) axes.push(lead + j); return; }
        decided = false;
      });
      if (decided) {
        if (axes.length === 0) return g;
        if (axes.length === lead) return b.op("ReduceSum", [g, ints(axes)], { keepdims: { kind: "int", value: 0 } });
        const r = b.op("ReduceSum", [g, ints(axes)], { keepdims: { kind: "int", value: 1 } });
        if (lead === 0) return r;
        return b.op("Reshape", [r, xs.every((d) => typeof d === "number") ? ints(xs as number[]) : b.op("Shape", [x])]);
      }
    }
    // Runtime: pad x's shape with leading ones to g's rank, sum over the axes where it is 1.
    const xShape = b.op("Shape", [x]);
    const diff = b.op("Sub", [b.op("Shape", [b.op("Shape", [g])]), b.op("Shape", [xShape])]);
    const padded = b.op("Concat", [b.op("Expand", [scalar(1, "int64"), diff]), xShape], { axis: { kind: "int", value: 0 } });
    const axes = b.op("Reshape", [b.op("NonZero", [b.op("Equal", [padded, scalar(1, "int64")])]), ints([-1])]);
    const r = b.op("ReduceSum", [g, axes], { keepdims: { kind: "int", value: 1 }, noop_with_empty_axes: { kind: "int", value: 1 } });
    return b.op("Reshape", [r, xShape]);
  };
  const zerosLike = (v: string) => {
    const s = shapeOf(v);
    return b.op("Expand", [scalar(0, elemOf(v)), s && s.every((d) => typeof d === "number") ? ints(s as number[]) : b.op("Shape", [v])]);
  };

  // Gradient contributions per value, summed on first read.
  const parts = new Map<string, string[]>();
  const summed = new Map<string, string | null>();
  const gradOf = (v: string): string | null => {
    if (summed.has(v)) return summed.get(v)!;
    const ps = parts.get(v) ?? [];
    const g = ps.length === 0 ? null : ps.length === 1 ? ps[0]! : b.op("Sum", ps);
    summed.set(v, g);
    return g;
  };
  const addPart = (v: string, g: string) => {
    if (summed.has(v)) fail(`internal: gradient of '${v}' extended after it was read`);
    parts.set(v, [...(parts.get(v) ?? []), g]);
  };
  const lossShape = lossInfo.shape!;
  addPart(loss, lossShape.length === 0 ? scalar(1, lossInfo.elem) : b.op("Expand", [scalar(1, lossInfo.elem), b.op("Shape", [loss])]));

  for (let i = forward.nodes.length - 1; i >= 0; i--) {
    if (!onPath.has(i)) continue;
    const node = forward.nodes[i]!;
    const needs = node.inputs.map((v) => !!v && dep.has(v) && FLOAT.has(elemOf(v)));
    if (!needs.some(Boolean)) continue;
    const gy = node.outputs.map((o) => (o ? gradOf(o) : null));
    if (gy.every((g) => g === null)) continue;
    const rule = GRAD_RULES[node.op];
    if (!rule) fail(`no gradient rule for ${node.op} (node ${i}, output '${node.outputs[0]}'); supported: ${DIFFERENTIABLE_OPS.join(", ")}`);
    const ctx: GradCtx = {
      b, node, scalar, ints, sumTo, zerosLike,
      shape: shapeOf, elem: elemOf, rank: rankOf,
      elemCode: (e) => ONNX_CODE[e],
      intConst: (v) => intConst(inits, v),
      needs: (k) => needs[k] === true,
      fail: (msg) => fail(`${node.op} (node ${i}, output '${node.outputs[0]}'): ${msg}`),
    };
    const gx = rule!(ctx, gy);
    node.inputs.forEach((v, k) => {
      if (!needs[k]) return;
      const g = gx[k];
      if (!g) fail(`internal: the ${node.op} rule gave no gradient for input ${k}`);
      addPart(v, g!);
    });
  }

  const outputs: [name: string, value: string, elem: ElemType, dims: Dim[]][] = [[loss, loss, lossInfo.elem, lossShape.map((d, k) => d ?? `loss_d${k}`)]];
  for (const k of opts.keep ?? []) {
    if (k === loss) continue;
    const ki = info.get(k)!;
    if (!ki.shape) fail(`keep: the rank of '${k}' cannot be inferred`);
    outputs.push([k, k, ki.elem, ki.shape!.map((d, j) => d ?? `${k}_d${j}`)]);
  }
  for (const w of opts.wrt) {
    const name = `grad_${w}`;
    if (known(name)) fail(`output name '${name}' is already a value of graph ${forward.name}`);
    const wi = info.get(w)!;
    outputs.push([name, gradOf(w) ?? zerosLike(w), wi.elem, wi.shape!.map((d, j) => d ?? `${w}_d${j}`)]);
  }
  // Backward values are renamed to their output names; forward values and shared ones get an Identity.
  const claimed = new Set<string>();
  for (const [name, value, elem, dims] of outputs) {
    if (value !== name) {
      const producer = b.nodes.find((n) => n.outputs.includes(value));
      if (producer && !known(value) && !claimed.has(value)) {
        producer.outputs = producer.outputs.map((o) => (o === value ? name : o));
        for (const n of b.nodes) n.inputs = n.inputs.map((i) => (i === value ? name : i));
      } else {
        b.nodes.push({ op: "Identity", inputs: [value], outputs: [name], attrs: {} });
      }
      claimed.add(value);
    }
    b.outputs.push({ name, elem, dims });
  }
  prune(b);
  return b;
}

/** Drops nodes whose outputs no graph output needs. */
function prune(b: GraphBuilder): void {
  const needed = new Set(b.outputs.map((o) => o.name));
  const kept: NodeDef[] = [];
  for (let i = b.nodes.length - 1; i >= 0; i--) {
    const n = b.nodes[i]!;
    if (!n.outputs.some((o) => needed.has(o))) continue;
    kept.push(n);
    for (const v of n.inputs) if (v) needed.add(v);
  }
  b.nodes.splice(0, b.nodes.length, ...kept.reverse());
}
