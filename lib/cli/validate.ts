// Checks of command-line arguments that run before any long work (loading the model, tracing,
// statistics): output names, extensions and folders, input files, prompt templates. Each failure
// is an ERR_ARGUMENT RomeError that names the flag, so the command fails in milliseconds.
import { existsSync, statSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { RomeError } from "../errors.js";

/**
 * An output file `flag` may name: one of `extensions` (".svg", …), in a folder that exists.
 * Returns its extension.
 */
export function checkOutputFile(flag: string, file: string, extensions: readonly string[]): string {
  const ext = extname(file).toLowerCase();
  if (!extensions.includes(ext)) {
    throw new RomeError("ERR_ARGUMENT", `${flag} ${JSON.stringify(file)}: ` + (ext ? `unknown extension ${ext}` : "no extension") + `; use ${extensions.join(", ")}`);
  }
  checkParentDir(flag, file);
  if (existsSync(file) && statSync(file).isDirectory()) throw new RomeError("ERR_ARGUMENT", `${flag} ${JSON.stringify(file)} is a directory; give a file name`);
  return ext;
}

/** The folder `file` would be written in must exist (rome-node does not create parents of outputs). */
export function checkParentDir(flag: string, file: string): void {
  const parent = dirname(resolve(file));
  if (!existsSync(parent) || !statSync(parent).isDirectory()) {
    throw new RomeError("ERR_ARGUMENT", `${flag} ${JSON.stringify(file)}: the folder ${parent} does not exist`);
  }
}

/** A folder `flag` may write into: an existing folder, or a new one whose parent exists. */
export function checkOutputDir(flag: string, dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new RomeError("ERR_ARGUMENT", `${flag} ${JSON.stringify(dir)} exists and is not a folder`);
    return;
  }
  checkParentDir(flag, dir);
}

/** An input file `flag` names must exist and be a file. */
export function checkInputFile(flag: string, file: string): void {
  if (!existsSync(file)) throw new RomeError("ERR_ARGUMENT", `${flag} ${JSON.stringify(file)}: no such file`);
  if (!statSync(file).isFile()) throw new RomeError("ERR_ARGUMENT", `${flag} ${JSON.stringify(file)} is not a file`);
}

/** A prompt template: "{}" exactly once, where the subject goes. */
export function checkPromptTemplate(flag: string, template: string): void {
  if (template.split("{}").length !== 2) {
    throw new RomeError("ERR_ARGUMENT", `${flag} ${JSON.stringify(template)} must contain "{}" exactly once, where the subject goes (e.g. "{} is located in the city of")`);
  }
}

/** A non-empty text argument. */
export function checkText(flag: string, text: string): void {
  if (text.trim().length === 0) throw new RomeError("ERR_ARGUMENT", `${flag} is empty`);
}
