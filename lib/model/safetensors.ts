// Reads and writes the safetensors format (an 8-byte little-endian header length, a JSON header of
// { name: { dtype, shape, data_offsets } }, then the raw bytes). Reading goes tensor by tensor
// through a file descriptor, widening F16/BF16 to f32 in chunks, so a large checkpoint is never
// held twice in memory. Every malformed-file case gets its own RomeError code and the file name.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { RomeError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { checkNoOverlap } from "./validate.js";

export type SafetensorsDtype = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32";

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range within the data section (after the header). */
  begin: number;
  end: number;
}

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4 };
const MAX_HEADER = 100 * 1024 * 1024;

/** An open safetensors file: its header is parsed and checked, tensors are read on demand. */
export class SafetensorsFile {
  readonly path: string;
  readonly entries: Map<string, TensorEntry>;
  readonly metadata: Record<string, string>;
  private readonly fd: number;
  private readonly dataStart: number;

  private constructor(path: string, fd: number, entries: Map<string, TensorEntry>, metadata: Record<string, string>, dataStart: number) {
    this.path = path;
    this.fd = fd;
    this.entries = entries;
    this.metadata = metadata;
    this.dataStart = dataStart;
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new RomeError("ERR_MODEL_DIR", `Cannot open safetensors file ${path}: ${(e as Error).message}`);
    }
    try {
      return SafetensorsFile.parse(path, fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  private static parse(path: string, fd: number): SafetensorsFile {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new RomeError("ERR_MODEL_DIR", `${path} is not a file`);
    const size = st.size;
    if (size < 8) throw new RomeError("ERR_SAFETENSORS_TRUNCATED", `${path} is ${size} bytes: too short for a safetensors header`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > MAX_HEADER || headerLen < 2) {
      throw new RomeError("ERR_SAFETENSORS_HEADER", `${path}: header length ${headerLen} is not plausible; the file is not safetensors or is corrupt`);
    }
    if (8 + headerLen > size) {
      throw new RomeError("ERR_SAFETENSORS_TRUNCATED", `${path}: header needs ${headerLen} bytes but the file has ${size - 8}; the file is truncated`);
    }
    const headerBuf = Buffer.alloc(headerLen);
    readSync(fd, headerBuf, 0, headerLen, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headerBuf.toString("utf8"));
    } catch (e) {
      throw new RomeError("ERR_SAFETENSORS_HEADER", `${path}: header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) {
      throw new RomeError("ERR_SAFETENSORS_HEADER", `${path}: header is not a JSON object`);
    }
    const dataStart = 8 + headerLen;
    const dataSize = size - dataStart;
    const entries = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header)) {
      if (name === "__metadata__") {
        metadata = (raw ?? {}) as Record<string, string>;
        continue;
      }
      const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof info?.dtype !== "string" || !(info.dtype in DTYPE_BYTES)) {
        throw new RomeError("ERR_DTYPE", `${path}: tensor '${name}' has dtype ${JSON.stringify(info?.dtype)}; supported: ${Object.keys(DTYPE_BYTES).join(", ")}`);
      }
      const shape = info.shape;
      const offs = info.data_offsets;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0) ||
          !Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0)) {
        throw new RomeError("ERR_SAFETENSORS_HEADER", `${path}: tensor '${name}' has a malformed shape or data_offsets`);
      }
      const dtype = info.dtype as SafetensorsDtype;
      const [begin, end] = offs as [number, number];
      const numel = (shape as number[]).reduce((a, b) => a * b, 1);
      if (end < begin || end - begin !== numel * DTYPE_BYTES[dtype]) {
        throw new RomeError("ERR_SAFETENSORS_OFFSETS", `${path}: tensor '${name}' spans bytes [${begin}, ${end}) but its shape [${shape}] of ${dtype} needs ${numel * DTYPE_BYTES[dtype]}`);
      }
      if (end > dataSize) {
        throw new RomeError(end > dataSize && begin <= dataSize ? "ERR_SAFETENSORS_TRUNCATED" : "ERR_SAFETENSORS_OFFSETS",
          `${path}: tensor '${name}' ends at byte ${end} of the data section but the file holds only ${dataSize}; the file is truncated or corrupt`);
      }
      entries.set(name, { name, dtype, shape: shape as number[], begin, end });
    }
    checkNoOverlap(path, entries.values());
    return new SafetensorsFile(path, fd, entries, metadata, dataStart);
  }

  /** Reads a floating-point tensor as f32 (F16/BF16 widened, F64 narrowed). */
  readFloat32(name: string): Float32Array {
    const e = this.entry(name);
    const numel = (e.end - e.begin) / DTYPE_BYTES[e.dtype];
    const out = new Float32Array(numel);
    if (e.dtype === "F32") {
      this.readInto(e.begin, new Uint8Array(out.buffer), e.end - e.begin);
      return out;
    }
    if (e.dtype === "I64" || e.dtype === "I32") {
      throw new RomeError("ERR_DTYPE", `${this.path}: tensor '${name}' is ${e.dtype}, expected a floating-point tensor`);
    }
    const bytes = DTYPE_BYTES[e.dtype];
    const chunkElems = 1 << 20;
    const chunk = Buffer.alloc(chunkElems * bytes);
    for (let i = 0; i < numel; i += chunkElems) {
      const n = Math.min(chunkElems, numel - i);
      this.readInto(e.begin + i * bytes, chunk, n * bytes);
      widen(e.dtype, chunk, out, i, n);
    }
    return out;
  }

  /** Where an F32 tensor's raw little-endian bytes lie in the file (absolute byte offset and length), or undefined for other types. */
  rawF32Range(name: string): { offset: number; length: number } | undefined {
    const e = this.entry(name);
    return e.dtype === "F32" ? { offset: this.dataStart + e.begin, length: e.end - e.begin } : undefined;
  }

  /** Reads an F32 tensor's raw little-endian bytes into `target` (exactly its byte length). */
  readRawF32(name: string, target: Uint8Array): void {
    const e = this.entry(name);
    if (e.dtype !== "F32" || target.byteLength !== e.end - e.begin) {
      throw new RomeError("ERR_DTYPE", `${this.path}: tensor '${name}' is ${e.dtype} of ${e.end - e.begin} bytes; a raw F32 read of ${target.byteLength} bytes was asked`);
    }
    this.readInto(e.begin, target, target.byteLength);
  }

  /** Reads a tensor as float64 (F64 exact, other float types widened). */
  readFloat64(name: string): Float64Array {
    const e = this.entry(name);
    if (e.dtype === "F64") {
      const out = new Float64Array((e.end - e.begin) / 8);
      this.readInto(e.begin, new Uint8Array(out.buffer), e.end - e.begin);
      return out;
    }
    return Float64Array.from(this.readFloat32(name));
  }

  entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) throw new RomeError("ERR_MISSING_TENSOR", `${this.path}: no tensor named '${name}'`);
    return e;
  }

  close(): void {
    closeSync(this.fd);
  }

  private readInto(offset: number, target: Uint8Array, length: number): void {
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, target, done, length - done, this.dataStart + offset + done);
      if (n === 0) throw new RomeError("ERR_SAFETENSORS_TRUNCATED", `${this.path}: unexpected end of file`);
      done += n;
    }
  }
}

function widen(dtype: SafetensorsDtype, src: Buffer, out: Float32Array, at: number, n: number): void {
  if (dtype === "BF16") {
    const u32 = new Uint32Array(1);
    const f32 = new Float32Array(u32.buffer);
    for (let i = 0; i < n; i++) {
      u32[0] = src.readUInt16LE(2 * i) << 16;
      out[at + i] = f32[0]!;
    }
  } else if (dtype === "F16") {
    for (let i = 0; i < n; i++) out[at + i] = halfToFloat(src.readUInt16LE(2 * i));
  } else if (dtype === "F64") {
    for (let i = 0; i < n; i++) out[at + i] = src.readDoubleLE(8 * i);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export interface TensorToWrite {
  dtype: "F32" | "F64";
  shape: number[];
  /** The values, or a function that produces them when the file is written (one tensor in memory at a time). */
  data: Float32Array | Float64Array | (() => Float32Array | Float64Array);
}

/** Writes tensors (sorted by name, 8-byte aligned) and string metadata to `path` atomically. */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): void {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const sizes = new Map<string, number>();
  for (const name of names) {
    const t = tensors[name]!;
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (typeof t.data !== "function") checkLength(name, t, t.data);
    const bytes = numel * DTYPE_BYTES[t.dtype];
    sizes.set(name, bytes);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  function* parts(): Generator<Uint8Array> {
    yield len;
    yield headerBytes;
    for (const name of names) {
      const t = tensors[name]!;
      const d = typeof t.data === "function" ? checkLength(name, t, t.data()) : t.data;
      if (d.byteLength !== sizes.get(name)) throw new RomeError("ERR_SHAPE", `tensor '${name}' is ${d.constructor.name} but its dtype is ${t.dtype}`);
      yield new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    }
  }
  writeFileAtomic(path, parts());
}

function checkLength<T extends Float32Array | Float64Array>(name: string, t: TensorToWrite, data: T): T {
  const numel = t.shape.reduce((a, b) => a * b, 1);
  if (numel !== data.length) throw new RomeError("ERR_SHAPE", `tensor '${name}': shape [${t.shape}] needs ${numel} values but data has ${data.length}`);
  return data;
}
