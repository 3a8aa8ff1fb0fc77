// A checkpoint's weights read on demand: the safetensors files stay open and every `get` reads the
// tensor afresh (widened to f32), so the process holds no resident JavaScript copy of the model —
// onnxruntime's sessions hold the copy that computes, and the base weights needed again (edit norms,
// patching, exports) come back from the file.
import { RomeError } from "../errors.js";
import type { Weight, WeightSource } from "./arch/types.js";
import type { SafetensorsFile } from "./safetensors.js";

export class CheckpointWeights implements WeightSource {
  private closed = false;

  /** `located`: canonical name → the file holding it, its stored name and its checked shape. */
  constructor(private readonly files: readonly SafetensorsFile[], private readonly located: Map<string, { file: SafetensorsFile; stored: string; shape: number[] }>) {}

  get(name: string): Weight | undefined {
    const at = this.located.get(name);
    if (!at) return undefined;
    if (this.closed) throw new RomeError("ERR_DISPOSED", `cannot read weight '${name}': the model was disposed`);
    return { shape: at.shape, data: at.file.readFloat32(at.stored) };
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
      },
    };
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
