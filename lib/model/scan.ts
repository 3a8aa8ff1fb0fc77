// Scans of f32 weights (finite check, fingerprint sample) on a worker thread (./scan-worker.mjs),
// so that Model.load's thread builds onnxruntime sessions while the bytes of the next ones are read
// and checked. One thread serves the process (a thread per load would leave a few MB behind each
// time); it keeps the process alive only while a scan is pending.
import { Worker } from "node:worker_threads";
import { RomeError } from "../errors.js";

type Reply = { id: number; sample?: Float32Array; bad?: { index: number; value: number }; error?: string };

export class WeightScanner {
  private worker?: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { name: string; path: string; resolve: (s: Float32Array) => void; reject: (e: Error) => void }>();

  /**
   * Checks `length` bytes of little-endian f32 values at `offset` in `path` (tensor `name`) and
   * resolves with the values at every `stride`-th index; rejects with ERR_NOT_FINITE at the first
   * NaN or infinity. Scans run one after another in the order asked.
   */
  scan(path: string, name: string, offset: number, length: number, stride: number): Promise<Float32Array> {
    const worker = this.worker ??= this.start();
    const id = this.nextId++;
    worker.ref(); // while a scan is pending, the worker keeps the process alive
    return new Promise((resolve, reject) => {
      this.pending.set(id, { name, path, resolve, reject });
      worker.postMessage({ id, path, offset, length, stride });
    });
  }

  private start(): Worker {
    // ../../lib/model/ from both lib/model/ and dist/model/: the worker is plain JavaScript shipped in lib/
    // Started with no flags: it needs none (plain JavaScript, no loader), and some of the process's
    // are refused or misread in a worker (--expose-gc throws ERR_WORKER_INVALID_EXEC_ARGV;
    // --input-type, from a process started with `-e`, makes a worker started from a file fail).
    const worker = new Worker(new URL("../../lib/model/scan-worker.mjs", import.meta.url), { execArgv: [] });
    worker.on("message", (m: Reply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.sample) p.resolve(m.sample);
      else if (m.bad) p.reject(new RomeError("ERR_NOT_FINITE", `${p.path}: tensor '${p.name}' holds ${m.bad.value} at index ${m.bad.index}; the checkpoint is corrupt (weights must be finite)`));
      else p.reject(new RomeError("ERR_IO", `${p.path}: reading tensor '${p.name}' failed: ${m.error}`));
    });
    worker.on("error", (e: Error) => {
      this.worker = undefined; // the next scan starts another
      for (const p of this.pending.values()) p.reject(new RomeError("ERR_IO", `the weight scan thread failed: ${e.message}`, { cause: e }));
      this.pending.clear();
    });
    return worker;
  }
}

/** The process's scanner. */
export const weightScanner = new WeightScanner();
