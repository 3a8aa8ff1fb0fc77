// Edits as they travel in a job: the exportEdits files themselves (base64), read by the client and
// applied on the worker for one job only. loadEdits checks on the worker that each file was made for
// the model the worker holds, so a worker never runs a shard under edits made for another model.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RomeError } from "../errors.js";
import { loadEdits } from "../host/api.js";
import type { HostedModel } from "../host/hosted-model.js";

/** The client side: each edits file's bytes, base64, in the order given (the order they are applied). */
export function readEditFiles(files: readonly string[] = []): string[] {
  return files.map((f) => {
    if (!existsSync(f)) throw new RomeError("ERR_IO", `the edits file ${f} does not exist; write one with exportEdits or rome-node edit --export-edits`);
    return readFileSync(f).toString("base64");
  });
}

/**
 * The worker side: applies the edits of `files` (base64, as readEditFiles made them) to the model,
 * runs `fn`, and undoes them whatever happens, so they never reach the next job. Edit ids are
 * `base-<file index>-<id in the file>`, as the local commands name them.
 */
export async function withEditFiles<T>(model: HostedModel, files: readonly string[], fn: () => Promise<T>): Promise<T> {
  if (files.length === 0) return fn();
  const tmp = mkdtempSync(join(tmpdir(), "rome-edits-"));
  const applied: string[] = [];
  try {
    for (const [i, b64] of files.entries()) {
      const file = join(tmp, `edits-${i}.safetensors`);
      writeFileSync(file, Buffer.from(b64, "base64"));
      for (const e of await loadEdits(file, model)) applied.push(model.edits.apply({ ...e, id: `base-${i}-${e.id}` }));
    }
    return await fn();
  } finally {
    for (const id of applied.reverse()) model.edits.undo(id);
    rmSync(tmp, { recursive: true, force: true });
  }
}
