// Which queue a job goes to: one queue per model, named by the model's fingerprint, so a worker only
// ever takes jobs for the model it holds and a job for another model waits for a worker that has it.
// The client computes the fingerprint from the checkpoint without building the model.
import { Fingerprint, openCheckpoint } from "../model/checkpoint.js";

/** The queue of a model: "rome-model-" and the first 16 hex digits of its fingerprint (jobs carry the whole one). */
export function queueName(fingerprint: string): string {
  return `rome-model-${fingerprint.slice(0, 16)}`;
}

/** The fingerprint `Model.load(dir)` computes, read tensor by tensor (no sessions, one tensor in memory at a time). */
export function checkpointFingerprint(dir: string): string {
  const ckpt = openCheckpoint(dir);
  try {
    const fp = new Fingerprint(ckpt.config);
    for (const name of ckpt.weights.keys()) fp.add(name, ckpt.weights.get(name)!);
    return fp.digest();
  } finally {
    ckpt.weights.close();
  }
}

/** The Redis channel on which clients announce cancelled runs to the workers of a queue. */
export function cancelChannel(prefix: string, queue: string): string {
  return `${prefix}:${queue}:cancel`;
}

/** The key that marks a run cancelled (for jobs that start after the announcement). */
export function cancelKey(prefix: string, queue: string, run: string): string {
  return `${prefix}:${queue}:cancelled:${run}`;
}
