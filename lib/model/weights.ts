// A checkpoint's weights read on demand: the safetensors files stay open and every `get` reads the
// tensor afresh (widened to f32), so the process holds no resident JavaScript copy of the model —
// onnxruntime's sessions hold the copy that computes, and the base weights needed again (edit norms,
// patching, exports) come back from the file.
import { endianness } from "node:os";
import { basename, dirname } from "node:path";
import { RomeError } from "../errors.js";
import type { Weight, WeightSource } from "../arch/types.js";
import type { SafetensorsFile } from "./safetensors.js";
import { weightScanner } from "./scan.js";
import { checkFinite } from "./validate.js";

export class CheckpointWeights implements WeightSource {
  private closed = false;
  private readonly scans: Promise<void>[] = [];
  private failed?: Error;
  private readonly scanned = new Set<string>(); // weights whose check has started

  /** `located`: canonical name → the file holding it, its stored name and its checked shape. */
  constructor(private readonly files: readonly SafetensorsFile[], private readonly located: Map<string, { file: SafetensorsFile; stored: string; shape: number[] }>) {}

  get(name: string): Weight | undefined {
    const at = this.located.get(name);
    if (!at) return undefined;
    if (this.closed) throw new RomeError("ERR_DISPOSED", `cannot read weight '${name}': the model was disposed`);
    const data = at.file.readFloat32(at.stored);
    checkFinite(at.file.path, at.stored, data);
    return { shape: at.shape, data };
  }

  rawF32(name: string): { byteLength: number; write(target: Uint8Array): void } | undefined {
    const at = this.located.get(name);
    const e = at?.file.entry(at.stored);
    if (!at || e!.dtype !== "F32") return undefined;
    return {
      byteLength: e!.end - e!.begin,
      write: (target) => {
        if (this.closed) throw new RomeError("ERR_DISPOSED", `cannot read weight '${name}': the model was disposed`);
        at.file.readRawF32(at.stored, target);
        checkFiniteRaw(at.file.path, at.stored, target);
      },
    };
  }

  /**
   * The named F32 weight as external data: its file's folder and name, byte offset and length. Its
   * values are checked off this thread meanwhile (lib/model/scan.ts) (`checked()` waits for the result); with
   * `sample`, it receives the values at every `stride`-th index. Throws the first failed check of an
   * earlier weight, if one has come back already. A weight is checked once.
   */
  externalF32(name: string, sample?: { stride: number; take(values: Float32Array): void }): { folder: string; location: string; offset: number; length: number } | undefined {
    const at = this.located.get(name);
    const range = at?.file.rawF32Range(at.stored);
    if (!at || !range) return undefined;
    if (this.closed) throw new RomeError("ERR_DISPOSED", `cannot read weight '${name}': the model was disposed`);
    if (this.failed) throw this.failed;
    if (this.scanned.has(name) && !sample) return { folder: dirname(at.file.path), location: basename(at.file.path), ...range };
    this.scanned.add(name);
    const scan = weightScanner.scan(at.file.path, at.stored, range.offset, range.length, sample?.stride ?? range.length);
    this.scans.push(scan.then((values) => sample?.take(values), (e: Error) => {
      this.failed ??= e;
    }));
    return { folder: dirname(at.file.path), location: basename(at.file.path), ...range };
  }

  /** Waits for the checks `externalF32` started; rejects with the first that failed (ERR_NOT_FINITE) to come back. */
  async checked(): Promise<void> {
    await Promise.all(this.scans.splice(0));
    if (this.failed) throw this.failed;
  }

  keys(): IterableIterator<string> {
    return this.located.keys();
  }

  shapeOf(name: string): number[] | undefined {
    return this.located.get(name)?.shape;
  }

  /** Canonical name → name in the checkpoint. */
  storedNames(): Map<string, string> {
    return new Map([...this.located].map(([k, v]) => [k, v.stored]));
  }

  /** Closes the files (idempotent); later reads fail. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.files) f.close();
  }
}

/** checkFinite on raw little-endian f32 bytes at any alignment: a value is NaN or infinite exactly
 * when its 8 exponent bits are all ones. Aligned bytes on a little-endian host are read as 32-bit
 * words (4× fewer steps; this scan is a large part of a load); others byte by byte, where the
 * exponent is the low 7 bits of byte 3 and the top bit of byte 2. */
function checkFiniteRaw(path: string, name: string, bytes: Uint8Array, first = 0): void {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    for (let i = 0; i < words.length; i++) {
      if ((words[i]! & 0x7f800000) === 0x7f800000) notFinite(path, name, bytes, 4 * i + 3, first);
    }
    return;
  }
  for (let i = 3; i < bytes.length; i += 4) {
    if ((bytes[i]! & 0x7f) === 0x7f && (bytes[i - 1]! & 0x80) !== 0) notFinite(path, name, bytes, i, first);
  }
}

const LITTLE_ENDIAN = endianness() === "LE";

function notFinite(path: string, name: string, bytes: Uint8Array, i: number, first: number): never {
  const value = new DataView(bytes.buffer, bytes.byteOffset + i - 3, 4).getFloat32(0, true);
  throw new RomeError("ERR_NOT_FINITE", `${path}: tensor '${name}' holds ${value} at index ${first + (i - 3) / 4}; the checkpoint is corrupt (weights must be finite)`);
}
