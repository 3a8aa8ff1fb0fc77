// Reads a JSON data file for a dataset reader: ERR_IO when it cannot be read, ERR_DATASET when it
// is not JSON, so the reader only has to validate records.
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
