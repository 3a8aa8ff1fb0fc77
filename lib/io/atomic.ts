// Writes a file so that readers see either the old content or the new, never half of it:
// write a temporary file beside the target, fsync it, rename it over the target.

import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { RomeError } from "../errors.js";

/**
 * Atomically replaces `file` with `data`: a string (written as UTF-8), bytes, or byte chunks (a
 * list or a generator) written in order (large files are never concatenated in memory). Throws
 * ERR_IO; an error thrown by a generator while producing a chunk is rethrown as it is.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array | Iterable<Uint8Array>): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, "wx");
    const chunks = typeof data === "string" ? [Buffer.from(data, "utf8")] : data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.byteLength;) done += fs.writeSync(fd, chunk, done, chunk.byteLength - done);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (cause) {
    if (fd !== undefined) try { fs.closeSync(fd); } catch { /* already failing */ }
    try { fs.unlinkSync(tmp); } catch { /* not created or already renamed */ }
    if (cause instanceof RomeError) throw cause;
    throw new RomeError("ERR_IO", `Could not write ${file}: ${(cause as Error).message}`, { cause });
  }
}
