// Scans of f32 weights (finite check, fingerprint sample) off the loading thread, so that
// Model.load's thread builds onnxruntime sessions while the bytes of the next ones are read and
// checked: by the native addon on libuv's pool (native/scan.cc, vectorised; as many at once as the
// pool has threads), or without the addon on a worker thread in JavaScript (./scan-worker.mjs; one
// at a time, in the order asked). The worker serves the process (a thread per load would leave a
// few MB behind each time); it keeps the process alive only while a scan is pending.
import { Worker } from "node:worker_threads";
import { RomeError } from "../errors.js";
import { nativeAddon } from "../native-load.js";

type Reply = { id: number; sample?: Float32Array; bad?: { index: number; value: number }; error?: string };

export class WeightScanner {
  private worker?: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { name: string; path: string; resolve: (s: Float32Array) => void; reject: (e: Error) => void }>();

  /**
   * Checks `length` bytes of little-endian f32 values at `offset` in `path` (tensor `name`) and
   * resolves with the values at every `stride`-th index; rejects with ERR_NOT_FINITE at the first
   * NaN or infinity.
   */
  scan(path: string, name: string, offset: number, length: number, stride: number): Promise<Float32Array> {
    const addon = native();
    if (addon) {
      // queued at once: chained here, each would wait for this thread to take up the last result
      return addon.scanF32(path, offset, length, stride).then(
        (r) => r.sample ?? Promise.reject(notFinite(path, name, r.bad!)),
        (e: Error) => Promise.reject(readFailed(path, name, e.message)));
    }
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
      else if (m.bad) p.reject(notFinite(p.path, p.name, m.bad));
      else p.reject(readFailed(p.path, p.name, m.error!));
    });
    worker.on("error", (e: Error) => {
      this.worker = undefined; // the next scan starts another
      for (const p of this.pending.values()) p.reject(new RomeError("ERR_IO", `the weight scan thread failed: ${e.message}`, { cause: e }));
      this.pending.clear();
    });
    return worker;
  }
}

function notFinite(path: string, name: string, bad: { index: number; value: number }): RomeError {
  return new RomeError("ERR_NOT_FINITE", `${path}: tensor '${name}' holds ${bad.value} at index ${bad.index}; the checkpoint is corrupt (weights must be finite)`);
}

function readFailed(path: string, name: string, why: string): RomeError {
  return new RomeError("ERR_IO", `${path}: reading tensor '${name}' failed: ${why}`);
}

/** The addon when it is there and has the scan (else the JavaScript worker scans). */
function native(): ReturnType<typeof nativeAddon> | undefined {
  try {
    const addon = nativeAddon();
    return typeof addon.scanF32 === "function" ? addon : undefined;
  } catch {
    return undefined;
  }
}

/** The process's scanner. */
export const weightScanner = new WeightScanner();
