// Exports of edits: the edit factors alone (a small safetensors file that applies to the base model
// later), or a whole checkpoint with the enabled edits merged into the weights, in the layout of the
// input (same tensor names, config and tokenizer files), ready for Model.load or other tools.
// Rank-one edits are stored as `<i>.u` (F), `<i>.v` (D); multi-layer edits as `<i>.<layer>.u`
// (F, r), `<i>.<layer>.v` (r, D), with their layers in the metadata.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../model/safetensors.js";
import { applyUpdate } from "../native.js";
import { throwIfAborted, type CallOptions } from "../runtime/call.js";
import { editLayers, type Edit } from "../runtime/edits.js";
import type { Model } from "../runtime/model.js";

/** Files of rank-one edits only keep the first format (readable by earlier versions). */
const FORMAT = "rome-node-edits/1";
const FORMAT_LOW_RANK = "rome-node-edits/2";

/** Writes the enabled edits (or those in `ids`) as factors. */
export function exportEdits(model: Model, path: string, ids?: readonly string[]): void {
  const edits = selected(model, ids);
  const D = model.config.nEmbd;
  const tensors: Record<string, TensorToWrite> = {};
  edits.forEach((e, i) => {
    if ("layers" in e) {
      for (const l of e.layers) {
        const r = l.v.length / D;
        tensors[`${i}.${l.layer}.u`] = { dtype: "F32", shape: [l.u.length / r, r], data: l.u };
        tensors[`${i}.${l.layer}.v`] = { dtype: "F32", shape: [r, D], data: l.v };
      }
    } else {
      tensors[`${i}.u`] = { dtype: "F32", shape: [e.u.length], data: e.u };
      tensors[`${i}.v`] = { dtype: "F32", shape: [e.v.length], data: e.v };
    }
  });
  writeSafetensors(path, tensors, {
    format: edits.some((e) => "layers" in e) ? FORMAT_LOW_RANK : FORMAT,
    model: model.fingerprint,
    edits: JSON.stringify(edits.map(describe)),
  });
}

/** Reads an edits file. With `model`, checks that the edits were made for it (unless `force`). */
export function loadEdits(path: string, model?: Model, options: { force?: boolean } = {}): Edit[] {
  const f = SafetensorsFile.open(path);
  try {
    if (f.metadata.format !== FORMAT && f.metadata.format !== FORMAT_LOW_RANK) throw new RomeError("ERR_ARGUMENT", `${path} is not a rome-node edits file (format ${JSON.stringify(f.metadata.format)})`);
    if (model && !options.force && f.metadata.model !== model.fingerprint) {
      throw new RomeError("ERR_ARGUMENT", `${path} holds edits made for model ${f.metadata.model}, not this model (${model.fingerprint}); pass { force: true } to apply them anyway`);
    }
    const list = JSON.parse(f.metadata.edits ?? "[]") as { id: string; layer?: number; layers?: number[]; info: Record<string, unknown> }[];
    return list.map((e, i): Edit => e.layers
      ? { id: e.id, info: e.info, layers: e.layers.map((layer) => ({ layer, u: f.readFloat32(`${i}.${layer}.u`), v: f.readFloat32(`${i}.${layer}.v`) })) }
      : { id: e.id, layer: e.layer!, info: e.info, u: f.readFloat32(`${i}.u`), v: f.readFloat32(`${i}.v`) });
  } finally {
    f.close();
  }
}

/**
 * Writes `dir`/model.safetensors with the enabled edits (or those in `ids`) merged into the base
 * weights (W += U V, summed in float64 by the addon), plus the source's config and tokenizer
 * files. The loaded model itself is not changed. Abort (checked between merged layers and before
 * anything is written) leaves no file; progress phase "layers" counts the merged layers.
 */
export async function exportCheckpoint(model: Model, dir: string, ids?: readonly string[], options: CallOptions = {}): Promise<void> {
  if (!model.sourceDir) throw new RomeError("ERR_ARGUMENT", "exportCheckpoint needs a model loaded from a directory (its config and tokenizer files are copied)");
  const edits = selected(model, ids);
  const F = model.config.nInner;
  const D = model.config.nEmbd;
  const parts = edits.flatMap(editLayers);
  const merged = new Map<string, Float32Array>();
  for (const [i, l] of parts.entries()) {
    throwIfAborted(options.signal);
    const target = model.arch.editTarget(l.layer);
    const w = model.weights.get(target.weight)!;
    let data = merged.get(target.weight);
    if (!data) merged.set(target.weight, (data = w.data.slice()));
    const [rows, cols] = w.shape as [number, number];
    const r = l.v.length / D;
    const u = { dims: [F, r], type: "float32" as const, data: l.u };            // (F, r)
    const vT = { dims: [D, r], type: "float32" as const, data: transpose(l.v, r, D) }; // (D, r)
    // in_out: W [F, D] += U V = U (Vᵀ)ᵀ; out_in: W [D, F] += Vᵀ Uᵀ
    const [a, b] = target.layout === "in_out" ? [u, vT] : [vT, u];
    applyUpdate({ dims: [rows, cols], type: "float32", data }, a, b);
    options.onProgress?.({ phase: "layers", done: i + 1, total: parts.length });
    await new Promise((resolve) => setImmediate(resolve)); // let an abort arrive between layers
  }
  throwIfAborted(options.signal);
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, w] of model.weights) {
    tensors[model.storedNames.get(name) ?? name] = { dtype: "F32", shape: w.shape, data: merged.get(name) ?? w.data };
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors, {
    format: "pt",
    rome_node_base: model.fingerprint,
    rome_node_edits: JSON.stringify(edits.map(describe)),
  });
  for (const file of ["config.json", "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]) {
    const src = join(model.sourceDir, file);
    if (existsSync(src)) writeFileAtomic(join(dir, file), readFileSync(src));
  }
}

/** An edit's metadata entry: its id, its layer (rank one) or layers, and its info. */
function describe(e: Edit): Record<string, unknown> {
  return "layers" in e ? { id: e.id, layers: e.layers.map((l) => l.layer), info: e.info ?? {} } : { id: e.id, layer: e.layer, info: e.info ?? {} };
}

/** x (r, D) → xᵀ (D, r). */
function transpose(x: Float32Array, r: number, D: number): Float32Array {
  const out = new Float32Array(D * r);
  for (let k = 0; k < r; k++) for (let d = 0; d < D; d++) out[d * r + k] = x[k * D + d]!;
  return out;
}

function selected(model: Model, ids?: readonly string[]): Edit[] {
  const enabled = new Set(model.edits.list().filter((e) => e.enabled).map((e) => e.id));
  if (ids) {
    for (const id of ids) if (!model.edits.get(id)) throw new RomeError("ERR_EDIT_UNKNOWN", `no applied edit has id ${JSON.stringify(id)}`);
    return ids.map((id) => model.edits.get(id)!);
  }
  return model.edits.all().filter((e) => enabled.has(e.id));
}
