// Exports of edits: the edit factors alone (a small safetensors file that applies to the base model
// later), or a whole checkpoint with the enabled edits merged into the weights, in the layout of the
// input (same tensor names, config and tokenizer files), ready for Model.load or other tools.
// Rank-one edits are stored as `<i>.u` (F), `<i>.v` (D); multi-layer edits as `<i>.<layer>.u`
// (F, r), `<i>.<layer>.v` (r, D), with their layers in the metadata.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { checkOptionNames, RomeError } from "../errors.js";
import { writeDirAtomic, writeFileAtomic } from "../io/atomic.js";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../model/safetensors.js";
import { checkFinite } from "../model/validate.js";
import { applyUpdate } from "../native.js";
import { throwIfAborted, type CallOptions } from "../runtime/call.js";
import { editLayers, type Edit, type LowRankEdit } from "../runtime/edits.js";
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

/**
 * Reads an edits file. With `model`, checks that the edits were made for it (unless `force`) and
 * that their layers and sizes fit it. A file that is not an edits file, or whose metadata or factors
 * are malformed, is ERR_EDITS_FILE.
 */
export function loadEdits(path: string, model?: Model, options: { force?: boolean } = {}): Edit[] {
  checkOptionNames("loadEdits", options, ["force"]);
  const f = SafetensorsFile.open(path);
  try {
    if (f.metadata.format !== FORMAT && f.metadata.format !== FORMAT_LOW_RANK) throw new RomeError("ERR_EDITS_FILE", `${path} is not a rome-node edits file (format ${JSON.stringify(f.metadata.format)})`);
    if (model && !options.force && f.metadata.model !== model.fingerprint) {
      throw new RomeError("ERR_ARGUMENT", `${path} holds edits made for model ${f.metadata.model}, not this model (${model.fingerprint}); pass { force: true } to apply them anyway`);
    }
    const bad = (what: string) => new RomeError("ERR_EDITS_FILE", `${path}: ${what}; the file is corrupt or was not written by exportEdits`);
    let list: unknown;
    try {
      list = JSON.parse(f.metadata.edits ?? "[]");
    } catch (e) {
      throw bad(`its 'edits' metadata is not JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(list)) throw bad("its 'edits' metadata is not an array");
    return list.map((raw: unknown, i) => {
      const e = raw as { id?: unknown; layer?: unknown; layers?: unknown; info?: unknown } | null;
      if (typeof e !== "object" || e === null) throw bad(`edit ${i} is not an object`);
      if (typeof e.id !== "string" || e.id === "") throw bad(`edit ${i} has no string id`);
      const checkLayer = (layer: unknown): number => {
        if (typeof layer !== "number" || !Number.isInteger(layer) || layer < 0 || (model && layer >= model.config.nLayer)) {
          throw bad(`edit ${i} has layer ${JSON.stringify(layer)}` + (model ? `, not one of this model's ${model.config.nLayer} layers` : ""));
        }
        return layer;
      };
      if (e.info !== undefined && (typeof e.info !== "object" || e.info === null || Array.isArray(e.info))) throw bad(`edit ${i} has an info that is not an object`);
      if (e.layers !== undefined) {
        if (!Array.isArray(e.layers) || e.layers.length === 0) throw bad(`edit ${i} has layers ${JSON.stringify(e.layers)}, not a non-empty array`);
        const matrix = (name: string, rows: number | undefined, cols: number | undefined): { data: Float32Array; shape: number[] } => {
          const t = f.entries.get(name);
          if (!t || t.shape.length !== 2 || (rows !== undefined && t.shape[0] !== rows) || (cols !== undefined && t.shape[1] !== cols)) {
            throw bad(`tensor '${name}' is missing or has shape [${t?.shape ?? ""}], expected [${rows ?? "rows"}, ${cols ?? "cols"}]`);
          }
          const data = f.readFloat32(name);
          checkFinite(path, name, data);
          return { data, shape: t.shape };
        };
        const layers = e.layers.map((raw) => {
          const layer = checkLayer(raw);
          const u = matrix(`${i}.${layer}.u`, model?.config.nInner, undefined); // (F, r)
          const v = matrix(`${i}.${layer}.v`, u.shape[1], model?.config.nEmbd); // (r, D)
          return { layer, u: u.data, v: v.data };
        });
        return { id: e.id, info: e.info as Record<string, unknown> | undefined, layers } satisfies LowRankEdit;
      }
      checkLayer(e.layer);
      const factor = (name: string, size: number | undefined): Float32Array => {
        const t = f.entries.get(name);
        if (!t || t.shape.length !== 1 || (size !== undefined && t.shape[0] !== size)) {
          throw bad(`tensor '${name}' is missing or has shape [${t?.shape ?? ""}]` + (size !== undefined ? `, expected [${size}]` : ""));
        }
        const data = f.readFloat32(name);
        checkFinite(path, name, data);
        return data;
      };
      return { id: e.id, layer: e.layer as number, info: e.info as Record<string, unknown> | undefined, u: factor(`${i}.u`, model?.config.nInner), v: factor(`${i}.v`, model?.config.nEmbd) };
    });
  } finally {
    f.close();
  }
}

/**
 * Writes `dir`/model.safetensors with the enabled edits (or those in `ids`) merged into the base
 * weights (W += U V, summed in float64 by the addon), plus the source's config and tokenizer
 * files. The loaded model itself is not changed. Abort is checked between merged layers and
 * before the write (then nothing was written); progress phase "layers" counts the merged layers.
 */
export async function exportCheckpoint(model: Model, dir: string, ids?: readonly string[], options: CallOptions = {}): Promise<void> {
  const sourceDir = model.sourceDir;
  if (!sourceDir) throw new RomeError("ERR_ARGUMENT", "exportCheckpoint needs a model loaded from a directory (its config and tokenizer files are copied)");
  const edits = selected(model, ids);
  checkCheckpointTarget(dir);
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
    const u = { dims: [F, r], type: "float32" as const, data: l.u };                   // (F, r)
    const vT = { dims: [D, r], type: "float32" as const, data: transpose(l.v, r, D) }; // (D, r)
    // in_out: W [F, D] += U V = U (Vᵀ)ᵀ; out_in: W [D, F] += Vᵀ Uᵀ
    const [a, b] = target.layout === "in_out" ? [u, vT] : [vT, u];
    applyUpdate({ dims: [rows, cols], type: "float32", data }, a, b);
    options.onProgress?.({ phase: "layers", done: i + 1, total: parts.length });
    await new Promise((resolve) => setImmediate(resolve)); // lets an abort arrive between layers
  }
  throwIfAborted(options.signal);
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, w] of model.weights) {
    tensors[model.storedNames.get(name) ?? name] = { dtype: "F32", shape: w.shape, data: merged.get(name) ?? w.data };
  }
  // The directory appears whole or not at all; only an empty directory or an earlier export is replaced.
  writeDirAtomic(dir, (tmp) => {
    writeSafetensors(join(tmp, "model.safetensors"), tensors, {
      format: "pt",
      [EXPORT_MARK]: model.fingerprint,
      rome_node_edits: JSON.stringify(edits.map(describe)),
    });
    for (const file of ["config.json", "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]) {
      const src = join(sourceDir, file);
      if (existsSync(src)) writeFileAtomic(join(tmp, file), readFileSync(src));
    }
  }, isEarlierExport);
}

const EXPORT_MARK = "rome_node_base";

/**
 * Throws ERR_IO unless exportCheckpoint can write `dir`: its parent folder exists and `dir` is
 * absent, empty or an earlier export. Callers run it before long work.
 */
export function checkCheckpointTarget(dir: string): void {
  const parent = dirname(resolve(dir));
  if (!existsSync(parent)) throw new RomeError("ERR_IO", `Could not write ${dir}: its parent directory ${parent} does not exist`);
  if (existsSync(dir) && (!statSync(dir).isDirectory() || !isEarlierExport(dir))) {
    throw new RomeError("ERR_IO", `${dir} exists and is not an earlier export; remove it or choose another directory (nothing was written)`);
  }
}

/** True for an empty directory or one exportCheckpoint wrote (its weights carry the export mark). */
function isEarlierExport(dir: string): boolean {
  if (readdirSync(dir).length === 0) return true;
  try {
    const f = SafetensorsFile.open(join(dir, "model.safetensors"));
    f.close();
    return typeof f.metadata[EXPORT_MARK] === "string";
  } catch {
    return false;
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
