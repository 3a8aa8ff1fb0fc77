// Resumable JSON-lines output: one record per line, appended and flushed as each one finishes,
// so a long dataset run that is killed can restart where it stopped. A last line cut short by the
// kill is dropped (the file is truncated back to the last complete line) and done again.

import fs from "node:fs";
import path from "node:path";
import { RomeError } from "../errors.js";

export interface JsonlOptions<T> {
  /** The key that identifies a record (what "already done" means). Default: `String(record.key)`. */
  keyOf?: (record: T) => string;
  /** fsync after every append (survives power loss, not only a killed process). Default false. */
  fsync?: boolean;
}

export interface JsonlWriter<T> {
  /** Keys of the records already in the file when it was opened, plus those appended since. */
  readonly done: Set<string>;
  /** Records already in the file when it was opened, in file order. */
  readonly records: T[];
  /** Bytes of an incomplete last line that were cut off when opening (0 when the file was whole). */
  readonly truncatedBytes: number;
  /** Appends one record as one line and flushes it to the operating system. */
  append(record: T): void;
  close(): void;
}

/**
 * Opens (creating it and its folder if needed) a JSON-lines file for appending. Throws ERR_IO when
 * a complete line is not valid JSON: that is damage, not an interrupted write, and is not repaired.
 */
export function openJsonl<T = Record<string, unknown>>(file: string, options: JsonlOptions<T> = {}): JsonlWriter<T> {
  const keyOf = options.keyOf ?? ((r: T) => String((r as { key?: unknown }).key));
  const records: T[] = [];
  const done = new Set<string>();
  let truncatedBytes = 0;
  let fd: number;
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fd = fs.openSync(file, "a+");
    const data = fs.readFileSync(fd);
    const end = data.lastIndexOf(0x0a) + 1; // bytes up to and including the last newline
    if (end < data.length) {
      truncatedBytes = data.length - end;
      fs.ftruncateSync(fd, end);
    }
    const lines = data.subarray(0, end).toString("utf8").split("\n");
    lines.pop(); // after the final newline
    lines.forEach((line, i) => {
      if (line.trim() === "") return;
      let record: T;
      try {
        record = JSON.parse(line) as T;
      } catch (cause) {
        throw new RomeError("ERR_IO", `Line ${i + 1} of ${file} is not valid JSON: ${(cause as Error).message}`, { cause });
      }
      records.push(record);
      done.add(keyOf(record));
    });
  } catch (err) {
    if (err instanceof RomeError) throw err;
    throw new RomeError("ERR_IO", `Could not open ${file}: ${(err as Error).message}`, { cause: err });
  }
  let open = true;
  return {
    done,
    records,
    truncatedBytes,
    append(record: T): void {
      if (!open) throw new RomeError("ERR_IO", `${file} is closed`);
      const bytes = Buffer.from(JSON.stringify(record) + "\n", "utf8");
      try {
        for (let off = 0; off < bytes.length;) off += fs.writeSync(fd, bytes, off, bytes.length - off);
        if (options.fsync) fs.fsyncSync(fd);
      } catch (cause) {
        throw new RomeError("ERR_IO", `Could not append to ${file}: ${(cause as Error).message}`, { cause });
      }
      done.add(keyOf(record));
    },
    close(): void {
      if (!open) return;
      open = false;
      fs.closeSync(fd);
    },
  };
}

/** All records of a JSON-lines file, ignoring an incomplete last line (the file is not modified). */
export function readJsonl<T = Record<string, unknown>>(file: string): T[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (cause) {
    throw new RomeError("ERR_IO", `Could not read ${file}: ${(cause as Error).message}`, { cause });
  }
  const lines = text.slice(0, text.lastIndexOf("\n") + 1).split("\n");
  lines.pop();
  const out: T[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line) as T);
    } catch (cause) {
      throw new RomeError("ERR_IO", `Line ${i + 1} of ${file} is not valid JSON: ${(cause as Error).message}`, { cause });
    }
  });
  return out;
}
