// Writes files and directories so that readers see either the old content or the new, never half
// of it: write a temporary beside the target, fsync, rename it over the target. A process killed
// midway leaves only a temporary with a recognisable name (`.<target>.<pid>.<8 hex>.tmp`, or
// `.old` for a directory being replaced); the next write into that directory removes those whose
// process is gone, so temporaries of killed runs never pile up.
import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { RomeError } from "../errors.js";

const TEMPORARY = /^\..+\.(\d+)\.[0-9a-f]{8}\.(?:tmp|old)$/;

/** A fresh temporary name beside `target` for this process. */
function temporaryBeside(target: string, kind: "tmp" | "old"): string {
  return path.join(path.dirname(path.resolve(target)), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString("hex")}.${kind}`);
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temporaries that writes by processes no longer running left in `dir` (files or
 * directories named as this module names them). Returns how many were removed.
 */
export function removeStaleTemporaries(dir: string): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const m = TEMPORARY.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      removed++;
    } catch { /* another process removed it first */ }
  }
  return removed;
}

/**
 * Atomically replaces `file` with `data`: a string (written as UTF-8), bytes, or a list of byte
 * chunks written in order (large files are never concatenated in memory). Throws ERR_IO.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  removeStaleTemporaries(path.dirname(path.resolve(file)));
  const tmp = temporaryBeside(file, "tmp");
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
    throw new RomeError("ERR_IO", `Could not write ${file}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Creates or replaces the directory `dir` as a whole: `fill` writes its files into a sibling
 * temporary directory, which is then renamed to `dir`. An existing `dir` is replaced only when
 * `replaceable(dir)` says so (ERR_IO otherwise), so unrelated files are never deleted. A process
 * killed at any moment leaves `dir` whole (old or new) or absent, plus temporaries that the next
 * write into the parent directory removes.
 */
export function writeDirAtomic(dir: string, fill: (tmpDir: string) => void, replaceable: (existing: string) => boolean): void {
  const parent = path.dirname(path.resolve(dir));
  if (!fs.existsSync(parent)) throw new RomeError("ERR_IO", `Could not write ${dir}: its parent directory ${parent} does not exist`);
  removeStaleTemporaries(parent);
  const tmp = temporaryBeside(dir, "tmp");
  try {
    fs.mkdirSync(tmp);
    fill(tmp);
    for (let attempt = 0; ; attempt++) {
      let old: string | undefined;
      if (fs.existsSync(dir)) {
        if (!fs.statSync(dir).isDirectory() || !replaceable(dir)) {
          throw new RomeError("ERR_IO", `${dir} exists and is not an earlier export; remove it or choose another directory (nothing was written)`);
        }
        old = temporaryBeside(dir, "old");
        try {
          fs.renameSync(dir, old);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOENT" && attempt < 5) continue; // a concurrent writer moved it
          throw e;
        }
      }
      try {
        fs.renameSync(tmp, dir);
      } catch (e) {
        // A concurrent writer put its own directory there first: replace that one in turn.
        if (["ENOTEMPTY", "EEXIST"].includes((e as NodeJS.ErrnoException).code ?? "") && attempt < 5) {
          if (old) fs.rmSync(old, { recursive: true, force: true });
          continue;
        }
        throw e;
      }
      if (old) fs.rmSync(old, { recursive: true, force: true });
      return;
    }
  } catch (cause) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (cause instanceof RomeError) throw cause;
    throw new RomeError("ERR_IO", `Could not write ${dir}: ${(cause as Error).message}`, { cause });
  }
}
