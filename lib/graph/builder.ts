// A small ONNX graph builder: typed inputs/outputs with symbolic dimensions, initializers over
// the caller's weight arrays, nodes with attributes. The node list stays structured (op, inputs,
// outputs, attributes) so later passes — the reverse-mode gradient pass among them — can read it
// before it is serialised to a ModelProto for onnxruntime.
import { RomeError } from "../errors.js";
import { ProtoWriter, type Deferred } from "./protobuf.js";

export type ElemType = "float32" | "int64" | "int32" | "bool" | "float64" | "uint8" | "int8";
export type Dim = number | string;

const ONNX_TYPE: Record<ElemType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float64: 11 };

export type AttrValue =
  | { kind: "int"; value: number }
  | { kind: "float"; value: number }
  | { kind: "ints"; value: number[] }
  | { kind: "string"; value: string };

export const attr = {
  int: (value: number): AttrValue => ({ kind: "int", value }),
  float: (value: number): AttrValue => ({ kind: "float", value }),
  ints: (value: number[]): AttrValue => ({ kind: "ints", value }),
  string: (value: string): AttrValue => ({ kind: "string", value }),
};

export interface NodeDef {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  /** Operator domain; absent for the default ONNX domain ("com.microsoft" for onnxruntime's contrib ops). */
  domain?: string;
}

export interface ValueDef {
  name: string;
  elem: ElemType;
  dims: Dim[];
}

export type InitData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;

export interface InitializerDef {
  name: string;
  elem: ElemType;
  dims: number[];
  data: InitData;
  /** Raw little-endian values written into the serialised graph by their source instead of `data`. */
  deferred?: Deferred;
  /** Values that stay in a file (ONNX external data): its name relative to the session's external-data folder, and the byte range. */
  external?: ExternalData;
}

/** Where an external initializer's raw little-endian values lie: `location` in `folder`. */
export interface ExternalData {
  folder: string;
  location: string;
  offset: number;
  length: number;
}

export class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly inputs: ValueDef[] = [];
  readonly outputs: ValueDef[] = [];
  readonly initializers: InitializerDef[] = [];
  private counter = 0;

  constructor(readonly name: string) {}

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  input(name: string, elem: ElemType, dims: Dim[]): string {
    this.inputs.push({ name, elem, dims });
    return name;
  }

  /**
   * Exposes `value` as graph output `name`. A value computed by a node of this graph is renamed
   * (no copy kernel); a graph input, initializer or existing output goes through an Identity.
   */
  output(name: string, value: string, elem: ElemType, dims: Dim[]): void {
    const producer = this.nodes.find((n) => n.outputs.includes(value));
    if (value !== name && producer && !this.outputs.some((o) => o.name === value)) {
      producer.outputs = producer.outputs.map((o) => (o === value ? name : o));
      for (const n of this.nodes) n.inputs = n.inputs.map((i) => (i === value ? name : i));
    } else if (value !== name) {
      this.nodes.push({ op: "Identity", inputs: [value], outputs: [name], attrs: {} });
    }
    this.outputs.push({ name, elem, dims });
  }

  initializer(name: string, dims: number[], data: InitData, elem: ElemType = "float32"): string {
    this.initializers.push({ name, elem, dims, data });
    return name;
  }

  /** An initializer whose raw values `deferred` writes straight into the serialised graph (e.g.
   * read from a checkpoint file), so no JavaScript copy of them exists before serialisation. */
  deferredInitializer(name: string, dims: number[], deferred: Deferred, elem: ElemType = "float32"): string {
    this.initializers.push({ name, elem, dims, data: new Uint8Array(0), deferred });
    return name;
  }

  /**
   * An initializer onnxruntime reads from a file itself (ONNX external data): nothing is copied
   * into the serialised graph. The session must be given the folder the location is relative to.
   */
  externalInitializer(name: string, dims: number[], external: ExternalData, elem: ElemType = "float32"): string {
    if (this.externalFolder !== undefined && this.externalFolder !== external.folder) {
      throw new RomeError("ERR_ARGUMENT", `graph ${this.name}: external data in ${external.folder} and ${this.externalFolder}; one graph reads one folder`);
    }
    this.externalFolder = external.folder;
    this.initializers.push({ name, elem, dims, data: new Uint8Array(0), external });
    return name;
  }

  /** The folder the external initializers' locations are relative to (a session of this graph must be given it). */
  externalFolder?: string;

  /** Small constant tensors (shapes, axes, scalars). */
  constInt64(values: number[], dims: number[] = [values.length]): string {
    return this.initializer(this.fresh("c"), dims, BigInt64Array.from(values.map(BigInt)), "int64");
  }

  constFloat(values: number[], dims: number[] = [values.length]): string {
    return this.initializer(this.fresh("c"), dims, Float32Array.from(values), "float32");
  }

  /** Adds a node with one output and returns the output's name. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    const out = outName ?? this.fresh(op.toLowerCase());
    this.nodes.push({ op, inputs, outputs: [out], attrs });
    return out;
  }

  /** Adds a node of onnxruntime's contrib domain (com.microsoft, opset 1) with one output. */
  contribOp(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    const out = this.fresh(op.toLowerCase());
    this.nodes.push({ op, inputs, outputs: [out], attrs, domain: "com.microsoft" });
    return out;
  }

  /** Adds a node with several outputs. */
  opMulti(op: string, inputs: string[], nOut: number, attrs: Record<string, AttrValue> = {}): string[] {
    const outs = Array.from({ length: nOut }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, inputs, outputs: outs, attrs });
    return outs;
  }

  /** Serialises to an ONNX ModelProto, into `into` when it is large enough (a reused buffer). */
  toBytes(opset = 20, irVersion = 10, into?: Uint8Array): Uint8Array {
    const graph = new ProtoWriter();
    for (const n of this.nodes) graph.message(1, encodeNode(n));
    graph.string(2, this.name);
    for (const init of this.initializers) graph.message(5, encodeTensor(init));
    for (const v of this.inputs) graph.message(11, encodeValueInfo(v));
    for (const v of this.outputs) graph.message(12, encodeValueInfo(v));
    const model = new ProtoWriter();
    model.int(1, irVersion);
    model.string(2, "rome-node");
    model.message(7, graph);
    model.message(8, new ProtoWriter().string(1, "").int(2, opset));
    if (this.nodes.some((n) => n.domain === "com.microsoft")) model.message(8, new ProtoWriter().string(1, "com.microsoft").int(2, 1));
    return model.finish(into);
  }
}

function encodeNode(n: NodeDef): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.outputs[0]!);
  w.string(4, n.op);
  if (n.domain) w.string(7, n.domain);
  for (const [name, a] of Object.entries(n.attrs)) {
    const aw = new ProtoWriter().string(1, name);
    switch (a.kind) {
      case "float": aw.float(2, a.value).int(20, 1); break;
      case "int": aw.int(3, a.value).int(20, 2); break;
      case "string": aw.string(4, a.value).int(20, 3); break;
      case "ints": for (const v of a.value) aw.int(8, v); aw.int(20, 7); break;
    }
    w.message(5, aw);
  }
  return w;
}

function encodeTensor(t: InitializerDef): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d);
  w.int(2, ONNX_TYPE[t.elem]);
  w.string(8, t.name);
  if (t.external) {
    for (const [key, value] of [["location", t.external.location], ["offset", String(t.external.offset)], ["length", String(t.external.length)]]) {
      w.message(13, new ProtoWriter().string(1, key!).string(2, value!)); // external_data: StringStringEntryProto
    }
    w.int(14, 1); // data_location: EXTERNAL
  } else if (t.deferred) {
    w.deferred(9, t.deferred);
  } else {
    w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return w;
}

function encodeValueInfo(v: ValueDef): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.dims) {
    shape.message(1, typeof d === "number" ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  }
  const tensorType = new ProtoWriter().int(1, ONNX_TYPE[v.elem]).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}
