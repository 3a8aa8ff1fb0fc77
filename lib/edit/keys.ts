// ROME's keys: the MLP key (input of the MLP output projection) and the MLP output at the
// subject's last token, for a batch of located prompts, running only the layers up to the edited
// one. k* is the mean key over the context templates.
import { padBatch } from "../runtime/batch.js";
import type { EditView } from "../runtime/edit-view.js";
import type { Model } from "../runtime/model.js";
import type { Located } from "./lookup.js";

export interface KeysAt {
  /** (n, F) keys at each prompt's subject-last token */
  keys: Float32Array;
  /** (n, D) MLP outputs there (W k + b, edits included) */
  outputs: Float32Array;
}

export async function keysAt(model: Model, layer: number, prompts: readonly Located[], edits: EditView = model.edits.view()): Promise<KeysAt> {
  const { nInner: F, nEmbd: D } = model.config;
  const batch = padBatch(prompts.map((p) => p.ids));
  let key: Float32Array | undefined; // (B, T, F)
  let out: Float32Array | undefined; // (B, T, D)
  await model.engine.run(batch, {
    edits,
    stopLayer: layer + 1,
    needKey: (l) => l === layer,
    hooks: { mlp: (l, s) => { if (l === layer) { key = s.mlpKey; out = s.mlpOut; } } },
  });
  const keys = new Float32Array(prompts.length * F);
  const outputs = new Float32Array(prompts.length * D);
  prompts.forEach((p, b) => {
    const pos = b * batch.T + batch.pad[b]! + p.index;
    keys.set(key!.subarray(pos * F, (pos + 1) * F), b * F);
    outputs.set(out!.subarray(pos * D, (pos + 1) * D), b * D);
  });
  return { keys, outputs };
}

/** Mean over rows of x (n, d), in float64. */
export function meanRows(x: Float32Array, n: number, d: number): Float64Array {
  const m = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) m[j] += x[i * d + j]!;
  for (let j = 0; j < d; j++) m[j] /= n;
  return m;
}
