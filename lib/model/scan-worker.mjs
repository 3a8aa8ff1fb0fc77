// The finite check and fingerprint sample of f32 weights that onnxruntime reads from the checkpoint
// itself (external data), on a thread of their own: while Model.load's thread has onnxruntime build
// one segment, this one reads the next segment's bytes. Plain JavaScript (no imports of the
// library), so it runs the same from the TypeScript sources and from dist/.
// Message in: { id, path, offset, length, stride } (bytes of little-endian f32 values; stride ≥ 1).
// Message out: { id, sample } (Float32Array, the values at every stride-th index), or
// { id, bad: { index, value } } at the first NaN or infinity, or { id, error } (a read failed).
import { closeSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { parentPort } from "node:worker_threads";

const CHUNK = 1 << 24; // bytes read at a time at most (a multiple of 4: every chunk starts on a value)
const LE = endianness() === "LE";

function scan({ path, offset, length, stride }) {
  const fd = openSync(path, "r"); // per scan: the thread outlives the models it scans for, and holds no file
  try {
    return check(fd, path, offset, length, stride);
  } finally {
    closeSync(fd);
  }
}

// One read buffer, grown to the largest chunk asked for (at most CHUNK) and kept: a buffer per scan
// would leave garbage that this thread's heap collects only late, so the process's memory would
// wander from load to load.
let buffer = new Uint8Array(0);

function check(fd, path, offset, length, stride) {
  if (buffer.length < Math.min(CHUNK, length)) buffer = new Uint8Array(Math.min(CHUNK, length));
  const words = new Uint32Array(buffer.buffer); // (buffer.length / 4)
  const floats = new Float32Array(buffer.buffer);
  const view = new DataView(buffer.buffer);
  const n = length / 4;
  const sample = new Float32Array(Math.ceil(n / stride));
  for (let at = 0; at < length; at += buffer.length) {
    const bytes = Math.min(buffer.length, length - at);
    for (let done = 0; done < bytes;) {
      const got = readSync(fd, buffer, done, bytes - done, offset + at + done);
      if (got === 0) throw new Error(`${path}: unexpected end of file`);
      done += got;
    }
    const first = at / 4;
    const count = bytes / 4;
    // NaN or infinite exactly when the 8 exponent bits are all ones
    if (LE) {
      for (let i = 0; i < count; i++) if ((words[i] & 0x7f800000) === 0x7f800000) return { bad: { index: first + i, value: floats[i] } };
      for (let i = Math.ceil(first / stride) * stride; i < first + count; i += stride) sample[i / stride] = floats[i - first];
    } else {
      for (let i = 0; i < count; i++) if ((view.getUint32(4 * i, true) & 0x7f800000) === 0x7f800000) return { bad: { index: first + i, value: view.getFloat32(4 * i, true) } };
      for (let i = Math.ceil(first / stride) * stride; i < first + count; i += stride) sample[i / stride] = view.getFloat32(4 * (i - first), true);
    }
  }
  return { sample };
}

parentPort.on("message", (m) => {
  try {
    const r = scan(m);
    parentPort.postMessage({ id: m.id, ...r }, r.sample ? [r.sample.buffer] : []);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
