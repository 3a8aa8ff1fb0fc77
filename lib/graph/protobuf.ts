// The few protobuf wire-format primitives needed to serialise an ONNX ModelProto: varints,
// length-delimited fields and fixed32 floats. Messages are built bottom-up as lists of chunks and
// concatenated once, so large initializers (raw weight bytes) are copied exactly one time — or, as
// deferred fields, written straight into the final buffer by their producer (a file read).

/** Bytes produced into the final buffer when the message is finished. */
export interface Deferred {
  byteLength: number;
  write(target: Uint8Array): void;
}

export class ProtoWriter {
  private readonly chunks: (Uint8Array | Deferred)[] = [];
  private size = 0;

  get byteLength(): number {
    return this.size;
  }

  private push(bytes: Uint8Array | Deferred): void {
    this.chunks.push(bytes);
    this.size += bytes.byteLength;
  }

  private varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.varint(value.byteLength);
    this.push(value);
    return this;
  }

  /** A length-delimited field whose `byteLength` bytes `content` writes at finish(). */
  deferred(field: number, content: Deferred): this {
    this.tag(field, 2);
    this.varint(content.byteLength);
    this.push(content);
    return this;
  }

  message(field: number, inner: ProtoWriter): this {
    this.tag(field, 2);
    this.varint(inner.size);
    for (const c of inner.chunks) this.push(c);
    return this;
  }

  /** The message's bytes, in a new buffer or at the start of `into` when it is large enough. */
  finish(into?: Uint8Array): Uint8Array {
    const out = into && into.byteLength >= this.size ? into.subarray(0, this.size) : new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      if (c instanceof Uint8Array) out.set(c, at);
      else c.write(out.subarray(at, at + c.byteLength));
      at += c.byteLength;
    }
    return out;
  }
}
