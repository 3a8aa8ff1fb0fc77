// Exports of edits: the edit factors alone (a small safetensors file that applies to the base model
// later), or a whole checkpoint with the enabled edits merged into the weights, in the layout of the
// input (same tensor names, config and tokenizer files), ready for Model.load or other tools.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../model/safetensors.js";
import { applyUpdate } from "../native.js";
import type { Edit } from "../runtime/edits.js";
import type { Model } from "../runtime/model.js";

const FORMAT = "rome-node-edits/1";

/** Writes the enabled edits (or those in `ids`) as factors: `<i>.u` (F) and `<i>.v` (D) per edit. */
export function exportEdits(model: Model, path: string, ids?: readonly string[]): void {
  const edits = selected(model, ids);
  const tensors: Record<string, TensorToWrite> = {};
  edits.forEach((e, i) => {
    tensors[`${i}.u`] = { dtype: "F32", shape: [e.u.length], data: e.u };
    tensors[`${i}.v`] = { dtype: "F32", shape: [e.v.length], data: e.v };
  });
  writeSafetensors(path, tensors, {
    format: FORMAT,
    model: model.fingerprint,
    edits: JSON.stringify(edits.map((e) => ({ id: e.id, layer: e.layer, info: e.info ?? {} }))),
  });
}

/** Reads an edits file. With `model`, checks that the edits were made for it (unless `force`). */
export function loadEdits(path: string, model?: Model, options: { force?: boolean } = {}): Edit[] {
  const f = SafetensorsFile.open(path);
  try {
    if (f.metadata.format !== FORMAT) throw new RomeError("ERR_ARGUMENT", `${path} is not a rome-node edits file (format ${JSON.stringify(f.metadata.format)})`);
    if (model && !options.force && f.metadata.model !== model.fingerprint) {
      throw new RomeError("ERR_ARGUMENT", `${path} holds edits made for model ${f.metadata.model}, not this model (${model.fingerprint}); pass { force: true } to apply them anyway`);
    }
    const list = JSON.parse(f.metadata.edits ?? "[]") as { id: string; layer: number; info: Record<string, unknown> }[];
    return list.map((e, i) => ({ id: e.id, layer: e.layer, info: e.info, u: f.readFloat32(`${i}.u`), v: f.readFloat32(`${i}.v`) }));
  } finally {
    f.close();
  }
}

/**
 * Writes `dir`/model.safetensors with the enabled edits (or those in `ids`) merged into the base
 * weights (W += u vᵀ, summed in float64 by the addon), plus the source's config and tokenizer
 * files. The loaded model itself is not changed.
 */
export function exportCheckpoint(model: Model, dir: string, ids?: readonly string[]): void {
  if (!model.sourceDir) throw new RomeError("ERR_ARGUMENT", "exportCheckpoint needs a model loaded from a directory (its config and tokenizer files are copied)");
  const edits = selected(model, ids);
  mkdirSync(dir, { recursive: true });
  const byWeight = new Map<string, Edit[]>();
  for (const e of edits) {
    const target = model.arch.editTarget(e.layer).weight;
    byWeight.set(target, [...(byWeight.get(target) ?? []), e]);
  }
  // Tensors are read back from the model's source and written one at a time.
  const tensors: Record<string, TensorToWrite> = {};
  for (const name of model.weights.keys()) {
    const shape = model.weights.shapeOf?.(name) ?? model.weights.get(name)!.shape;
    tensors[model.storedNames.get(name) ?? name] = {
      dtype: "F32", shape, data: () => {
        const w = model.weights.get(name)!;
        const merging = byWeight.get(name);
        if (!merging) return w.data;
        const data = w.data.slice(); // a Map source's array is the caller's: never modified
        const [rows, cols] = w.shape as [number, number];
        for (const e of merging) {
          // in_out: W [F, D] += u vᵀ; out_in: W [D, F] += v uᵀ
          const [a, b] = model.arch.editTarget(e.layer).layout === "in_out" ? [e.u, e.v] : [e.v, e.u];
          applyUpdate({ dims: [rows, cols], type: "float32", data }, a, b);
        }
        return data;
      },
    };
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors, {
    format: "pt",
    rome_node_base: model.fingerprint,
    rome_node_edits: JSON.stringify(edits.map((e) => ({ id: e.id, layer: e.layer, info: e.info ?? {} }))),
  });
  for (const file of ["config.json", "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]) {
    const src = join(model.sourceDir, file);
    if (existsSync(src)) writeFileAtomic(join(dir, file), readFileSync(src));
  }
}

function selected(model: Model, ids?: readonly string[]): Edit[] {
  const enabled = new Set(model.edits.list().filter((e) => e.enabled).map((e) => e.id));
  if (ids) {
    for (const id of ids) if (!model.edits.get(id)) throw new RomeError("ERR_EDIT_UNKNOWN", `no applied edit has id ${JSON.stringify(id)}`);
    return ids.map((id) => model.edits.get(id)!);
  }
  return model.edits.all().filter((e) => enabled.has(e.id));
}
