// Helpers of the dataset readers: reading a JSON data file (ERR_IO when it cannot be read,
// ERR_DATASET when it is not JSON) and describing a bad field's value in an error message.
import { readFileSync } from "node:fs";
import { RomeError } from "../errors.js";

export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new RomeError("ERR_IO", `Could not read ${file}: ${(cause as Error).message}`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new RomeError("ERR_DATASET", `${file} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/** A short description of a value for an error message: "null", "an array", a quoted string… */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}
