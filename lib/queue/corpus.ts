// The corpus of the key statistics, as a job names it. A corpus inside the model folder (the default,
// train.txt) travels as its name there, and each worker reads its own copy; any other corpus travels
// as an absolute path that must exist on every worker. Either way the job carries the client's
// sha256 of the file, and a worker whose copy is missing or differs fails the shard with ERR_STATS
// naming the path and what to do, rather than editing with statistics of another text.
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { RomeError } from "../errors.js";

/** The corpus of a job: a file of the worker's model folder, or a path every worker can read; and its content hash. */
export type CorpusRef = ({ inModel: string } | { path: string }) & { sha256: string };

/** The client side: how a job names `corpus` (which must exist here) for the model folder `model`. */
export function corpusRef(corpus: string, model: string): CorpusRef {
  if (!existsSync(corpus)) throw new RomeError("ERR_IO", `the corpus ${corpus} does not exist`);
  const sha256 = fileSha256(corpus);
  const rel = relative(resolve(model), resolve(corpus));
  return rel && !rel.startsWith("..") && !rel.startsWith(sep) ? { inModel: rel, sha256 } : { path: resolve(corpus), sha256 };
}

/** The worker side: the corpus file on this machine, checked to be the client's; ERR_STATS otherwise. */
export function resolveCorpus(ref: CorpusRef, modelDir: string): string {
  const inModel = "inModel" in ref;
  const path = inModel ? join(modelDir, ref.inModel) : ref.path;
  const where = `worker ${hostname()} (pid ${process.pid})`;
  const todo = inModel
    ? `copy the client's ${ref.inModel} into this worker's model folder ${modelDir}`
    : "a corpus outside the model folder must exist at the same path on every worker: copy it there (or to a shared mount), or put it inside the model folder, where each worker reads its own copy";
  if (!existsSync(path)) throw new RomeError("ERR_STATS", `the statistics corpus ${path} does not exist on ${where}; ${todo}`);
  const sha = fileSha256(path);
  if (sha !== ref.sha256) {
    throw new RomeError("ERR_STATS", `the statistics corpus ${path} on ${where} differs from the client's (sha256 ${sha.slice(0, 12)}…, the client's ${ref.sha256.slice(0, 12)}…); ${todo}`);
  }
  return path;
}

/** sha256 of a file, read in 1 MiB pieces (corpora can be larger than memory should hold at once). */
export function fileSha256(path: string): string {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, "r");
  try {
    for (let n: number; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}
