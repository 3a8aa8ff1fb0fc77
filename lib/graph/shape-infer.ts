// Static element types and (partial) shapes of every value of a graph, inferred over the builder's
// op set. The gradient pass needs them to know which axes a broadcast added and which ranks the
// per-op rules work with; symbolic dims stay symbolic.
import type { ElemType, GraphBuilder, InitializerDef, NodeDef } from "./builder.js";
import type { SShape } from "./grad-rules.js";

export interface ValueInfo {
  elem: ElemType;
  /** Static dims where known (number or symbolic name), null for an unknown dim; null shape: unknown rank. */
  shape: SShape | null;
}

const ONNX_ELEM: Record<number, ElemType> = { 1: "float32", 6: "int32", 7: "int64", 9: "bool", 11: "float64" };

/** Integer values of an int64/int32 initializer, or null. */
export function intConst(inits: Map<string, InitializerDef>, name: string | undefined): number[] | null {
  const t = name ? inits.get(name) : undefined;
  if (!t || (t.elem !== "int64" && t.elem !== "int32")) return null;
  return Array.from(t.data as BigInt64Array | Int32Array, Number);
}

function attrOf(n: NodeDef, key: string): number | number[] | string | undefined {
  return n.attrs[key]?.value;
}

function broadcast(shapes: (SShape | null)[]): SShape | null {
  if (shapes.some((s) => s === null)) return null;
  const ss = shapes as SShape[];
  const r = Math.max(...ss.map((s) => s.length));
  const out: SShape = [];
  for (let i = 0; i < r; i++) {
    let d: SShape[number] = 1;
    for (const s of ss) {
      const e = s[i - (r - s.length)];
      if (e === undefined || e === 1) continue;
      if (d === 1) d = e;
      else if (d !== e) d = typeof d === "number" ? d : typeof e === "number" ? e : null;
    }
    out.push(d);
  }
  return out;
}

/**
 * Static element types and shapes of every value in `b`, as far as the op set allows (unknown ops
 * give an unknown shape and their first input's element type).
 */
export function inferValues(b: GraphBuilder): Map<string, ValueInfo> {
  const info = new Map<string, ValueInfo>();
  const inits = new Map(b.initializers.map((t) => [t.name, t]));
  for (const v of b.inputs) info.set(v.name, { elem: v.elem, shape: [...v.dims] });
  for (const t of b.initializers) info.set(t.name, { elem: t.elem, shape: [...t.dims] });
  const sh = (v: string | undefined) => (v ? info.get(v)?.shape ?? null : null);
  const el = (v: string | undefined): ElemType => (v ? info.get(v)?.elem : undefined) ?? "float32";
  const norm = (a: number, r: number) => (a < 0 ? a + r : a);
  const shapeSource = new Map<string, string>(); // output of a whole-shape Shape node → its input
  for (const n of b.nodes) {
    const [x, y] = [n.inputs[0], n.inputs[1]];
    const sx = sh(x);
    let elem = el(x);
    let shapes: (SShape | null)[] = [sx];
    switch (n.op) {
      case "Add": case "Sub": case "Mul": case "Div": case "Pow": case "Sum": case "Max": case "Min":
        shapes = [broadcast(n.inputs.map(sh))]; break;
      case "Equal": case "Less": case "Greater": case "LessOrEqual": case "GreaterOrEqual": case "And": case "Or": case "Not":
        elem = "bool"; shapes = [broadcast(n.inputs.map(sh))]; break;
      case "Where": elem = el(y); shapes = [broadcast(n.inputs.map(sh))]; break;
      case "Cast": elem = ONNX_ELEM[attrOf(n, "to") as number] ?? elem; break;
      case "Shape": {
        elem = "int64";
        if (x && attrOf(n, "start") === undefined && attrOf(n, "end") === undefined) shapeSource.set(n.outputs[0]!, x);
        const st = attrOf(n, "start") as number | undefined, en = attrOf(n, "end") as number | undefined;
        shapes = [sx ? [sx.slice(st ?? 0, en ?? sx.length).length] : [null]];
        break;
      }
      case "Size": elem = "int64"; shapes = [[]]; break;
      case "NonZero": elem = "int64"; shapes = [[sx ? sx.length : null, null]]; break;
      case "ArgMax": case "ArgMin": elem = "int64"; shapes = [null]; break;
      case "MatMul": {
        const sy = sh(y);
        if (!sx || !sy || sx.length < 2 || sy.length < 2) { shapes = [null]; break; }
        const batch = broadcast([sx.slice(0, -2), sy.slice(0, -2)]);
        shapes = [batch ? [...batch, sx[sx.length - 2]!, sy[sy.length - 1]!] : null];
        break;
      }
      case "Gemm": {
        const sy = sh(y);
        const ta = attrOf(n, "transA") === 1, tb = attrOf(n, "transB") === 1;
        shapes = [sx && sy ? [sx[ta ? 1 : 0]!, sy[tb ? 0 : 1]!] : null];
        break;
      }
      case "LayerNormalization": {
        const a = (attrOf(n, "axis") as number | undefined) ?? -1;
        const red = sx ? sx.map((d, i) => (i >= norm(a, sx.length) ? 1 : d)) : null;
        shapes = [sx, red, red];
        break;
      }
      case "Reshape": {
        const c = intConst(inits, y);
        if (c && sx) {
          const out: SShape = c.map((d, i) => (d === 0 ? sx[i] ?? null : d === -1 ? null : d));
          const known = sx.every((d) => typeof d === "number") && out.every((d) => d === null || typeof d === "number");
          if (known && c.includes(-1)) {
            const total = (sx as number[]).reduce((p, d) => p * d, 1);
            const rest = out.reduce<number>((p, d) => (d === null ? p : p * (d as number)), 1);
            out[c.indexOf(-1)] = rest === 0 ? 0 : total / rest;
          }
          shapes = [out];
        } else {
          const ys = sh(y);
          shapes = [ys && typeof ys[0] === "number" ? Array<null>(ys[0]).fill(null) : null];
        }
        break;
      }
      case "Transpose": {
        const p = attrOf(n, "perm") as number[] | undefined;
        shapes = [sx ? (p ?? sx.map((_, i) => sx.length - 1 - i)).map((i) => sx[i]!) : null];
        break;
      }
      case "Split": {
        const a = (attrOf(n, "axis") as number | undefined) ?? 0;
        const sizes = intConst(inits, y);
        shapes = n.outputs.map((_, k) => {
          if (!sx) return null;
          const out = [...sx];
          const ax = norm(a, sx.length), d = sx[ax];
          out[ax] = sizes ? sizes[k]! : typeof d === "number" && d % n.outputs.length === 0 ? d / n.outputs.length : null;
          return out;
        });
        break;
      }
      case "Concat": {
        const ss = n.inputs.map(sh);
        if (ss.some((s) => !s)) { shapes = [null]; break; }
        const ax = norm(attrOf(n, "axis") as number, sx!.length);
        const out = [...sx!];
        out[ax] = ss.reduce<SShape[number]>((p, s) => (typeof p === "number" && typeof s![ax] === "number" ? p + (s![ax] as number) : null), 0);
        shapes = [out];
        break;
      }
      case "Gather": {
        const si = sh(y);
        const ax = sx ? norm((attrOf(n, "axis") as number | undefined) ?? 0, sx.length) : 0;
        shapes = [sx && si ? [...sx.slice(0, ax), ...si, ...sx.slice(ax + 1)] : null];
        break;
      }
      case "GatherND": {
        const si = sh(y), m = si?.[si.length - 1];
        shapes = [sx && si && typeof m === "number" ? [...si.slice(0, -1), ...sx.slice(m)] : null];
        break;
      }
      case "GatherElements": shapes = [sh(y)]; break;
      case "ReduceSum": case "ReduceMean": case "ReduceMax": case "ReduceMin": case "ReduceProd": case "ReduceL2": {
        const axes = intConst(inits, y) ?? (attrOf(n, "axes") as number[] | undefined) ?? null;
        const keep = attrOf(n, "keepdims") !== 0;
        if (!sx || (y && !axes)) { shapes = [null]; break; }
        if (!axes || axes.length === 0) { shapes = [attrOf(n, "noop_with_empty_axes") === 1 ? sx : keep ? sx.map(() => 1) : []]; break; }
        const ax = new Set(axes.map((a) => norm(a, sx.length)));
        shapes = [keep ? sx.map((d, i) => (ax.has(i) ? 1 : d)) : sx.filter((_, i) => !ax.has(i))];
        break;
      }
      case "Unsqueeze": case "Squeeze": {
        const axes = intConst(inits, y);
        if (!sx || (!axes && n.op === "Unsqueeze")) { shapes = [null]; break; }
        if (n.op === "Squeeze") {
          const ax = axes ? new Set(axes.map((a) => norm(a, sx.length))) : null;
          shapes = [ax ? sx.filter((_, i) => !ax.has(i)) : sx.every((d) => typeof d === "number") ? sx.filter((d) => d !== 1) : null];
        } else {
          const r = sx.length + axes!.length, ax = new Set(axes!.map((a) => norm(a, r)));
          const out: SShape = [];
          for (let i = 0, j = 0; i < r; i++) out.push(ax.has(i) ? 1 : sx[j++]!);
          shapes = [out];
        }
        break;
      }
      case "Flatten": {
        const ax = sx ? norm((attrOf(n, "axis") as number | undefined) ?? 1, sx.length) : 0;
        const prod = (ds: SShape) => ds.reduce<SShape[number]>((p, d) => (typeof p === "number" && typeof d === "number" ? p * d : null), 1);
        shapes = [sx ? [prod(sx.slice(0, ax)), prod(sx.slice(ax))] : null];
        break;
      }
      case "Expand": {
        const c = intConst(inits, y);
        const like = y ? shapeSource.get(y) : undefined;
        shapes = [c ? broadcast([sx, c]) : like ? broadcast([sx, sh(like)]) : null];
        break;
      }
      case "ScatterND": case "ScatterElements": case "Identity": case "Neg": case "Tanh": case "Sqrt": case "Exp": case "Log":
      case "Gelu": case "Relu": case "Sigmoid": case "Reciprocal": case "Erf": case "Abs": case "Softmax": case "LogSoftmax":
      case "Sin": case "Cos":
        break;
      default:
        shapes = n.outputs.map(() => null);
    }
    n.outputs.forEach((o, k) => {
      if (o) info.set(o, { elem, shape: shapes[k] ?? (k === 0 ? shapes[0] ?? null : null) });
    });
  }
  return info;
}
