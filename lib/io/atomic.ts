// Writes a file so that readers see either the old content or the new, never half of it:
// write a temporary file beside the target, fsync it, rename it over the target.

import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { RomeError } from "../errors.js";

/** Atomically replaces `file` with `data` (a string is written as UTF-8). Throws ERR_IO. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, "wx");
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (cause) {
    if (fd !== undefined) try { fs.closeSync(fd); } catch { /* already failing */ }
    try { fs.unlinkSync(tmp); } catch { /* not created or already renamed */ }
    throw new RomeError("ERR_IO", `Could not write ${file}: ${(cause as Error).message}`, { cause });
  }
}
