// Checks that a checkpoint is what its config.json says, before and while its weights are read:
// special token ids inside the vocabulary, tensors that do not overlap in their file, every tensor
// the architecture needs present and none it does not use (a config with fewer layers than the
// checkpoint would otherwise run a truncated model), and every weight finite. Each failure names
// the tensors, layers or keys at fault.
import { RomeError } from "../errors.js";
import type { ArchDescription } from "../arch/types.js";
import type { ModelConfig } from "./config.js";
import type { TensorEntry } from "./safetensors.js";

/** Throws ERR_CONFIG when a dimension of the model is zero (a model with no layers, heads or vocabulary). */
export function checkDimensions(config: ModelConfig, path: string): void {
  for (const key of ["nLayer", "nEmbd", "nHead", "nInner", "vocabSize", "nPositions"] as const) {
    if (!(config[key] >= 1)) throw new RomeError("ERR_CONFIG", `${path}: ${key} is ${config[key]}; every dimension of the model must be at least 1`);
  }
}

const SPECIAL_TOKENS = ["eos_token_id", "bos_token_id", "pad_token_id"] as const;

/**
 * Throws ERR_CONFIG when a special token id of config.json (or the id the description defaulted
 * to) is not a token of the vocabulary: onnxruntime would otherwise fail late, in a Gather.
 */
export function checkSpecialTokens(raw: Record<string, unknown>, config: ModelConfig, path: string): void {
  const inVocab = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v < config.vocabSize;
  for (const key of SPECIAL_TOKENS) {
    const v = raw[key];
    if (v === undefined || v === null) continue;
    const ids = Array.isArray(v) ? v : [v];
    const bad = ids.find((id) => !inVocab(id));
    if (bad !== undefined || ids.length === 0) {
      throw new RomeError("ERR_CONFIG", `${path}: '${key}' is ${JSON.stringify(v)}, which is not a token id of the vocabulary (0 to ${config.vocabSize - 1}, vocab_size ${config.vocabSize})`);
    }
  }
  for (const [field, key] of [["eosTokenId", "eos_token_id"], ["bosTokenId", "bos_token_id"]] as const) {
    if (!inVocab(config[field])) {
      throw new RomeError("ERR_CONFIG", `${path}: the ${key} rome-node uses, ${config[field]} (the default when config.json names none), is outside the vocabulary of ${config.vocabSize} tokens; set '${key}' in config.json`);
    }
  }
}

/** Throws ERR_SAFETENSORS_OFFSETS when two tensors of one file share bytes (overlapping or aliased offsets). */
export function checkNoOverlap(path: string, entries: Iterable<TensorEntry>): void {
  const sorted = [...entries].filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.begin < prev.end) {
      throw new RomeError("ERR_SAFETENSORS_OFFSETS", `${path}: tensors '${prev.name}' [${prev.begin}, ${prev.end}) and '${cur.name}' [${cur.begin}, ${cur.end}) overlap; every tensor must have bytes of its own`);
    }
  }
}

/**
 * Matches the checkpoint's tensor names against the ones the architecture needs with this config.
 * `stored` maps every tensor name of the checkpoint to its file; `located` maps each canonical name
 * found to its stored name. Throws ERR_MISSING_TENSOR listing every missing tensor (by layer when
 * whole layers are missing), then ERR_UNUSED_TENSOR listing every tensor the model would not use.
 */
export function checkTensorNames(
  dir: string, arch: ArchDescription, config: ModelConfig,
  needed: readonly string[], located: ReadonlyMap<string, string>, stored: Iterable<string>,
): void {
  const names = [...stored];
  const once = new Set<string>();
  const twice = names.filter((n) => once.has(n) || !once.add(n));
  if (twice.length) {
    throw new RomeError("ERR_SHARD_INDEX", `${dir}: tensor(s) stored in more than one shard, so which one is meant is ambiguous: ${list([...new Set(twice)].map((n) => `'${n}'`))}`);
  }
  const missing = needed.filter((n) => !located.has(n));
  const layersInCheckpoint = layerCount(names);
  if (missing.length) {
    const layers = missingLayers(config.nLayer, needed, missing);
    throw new RomeError("ERR_MISSING_TENSOR",
      `${dir}: the checkpoint lacks ${missing.length} tensor(s) a ${arch.name} model with this config.json needs` +
      (layers.length ? `: every tensor of layer(s) ${ranges(layers)} (config.json has ${config.nLayer} layers, the checkpoint ${layersInCheckpoint})` : "") +
      `: ${list(missing.map((n) => `'${arch.prefixes[0]}${n}'`))}`);
  }
  const used = new Set(located.values());
  const unused = names.filter((n) => !used.has(n) && !arch.ignoredTensors?.(n, config));
  if (unused.length) {
    const more = layersInCheckpoint > config.nLayer ? ` The checkpoint has ${layersInCheckpoint} layers but config.json says ${config.nLayer}; fix n_layer.` : "";
    throw new RomeError("ERR_UNUSED_TENSOR",
      `${dir}: ${unused.length} tensor(s) of the checkpoint are not used by a ${arch.name} model with this config.json: ${list(unused.map((n) => `'${n}'`))}.${more}`);
  }
}

/** Throws ERR_NOT_FINITE naming the tensor and the first bad index when `data` holds NaN or ±Infinity. */
export function checkFinite(path: string, name: string, data: Float32Array): void {
  // x − x is 0 for finite x and NaN otherwise: one branch-free pass (four independent sums, so the
  // additions overlap), then a search only on failure.
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  const n4 = data.length - (data.length % 4);
  for (let i = 0; i < n4; i += 4) {
    a0 += data[i]! - data[i]!;
    a1 += data[i + 1]! - data[i + 1]!;
    a2 += data[i + 2]! - data[i + 2]!;
    a3 += data[i + 3]! - data[i + 3]!;
  }
  for (let i = n4; i < data.length; i++) a0 += data[i]! - data[i]!;
  if (a0 + a1 + a2 + a3 === 0) return;
  const at = data.findIndex((x) => !Number.isFinite(x));
  throw new RomeError("ERR_NOT_FINITE", `${path}: tensor '${name}' holds ${data[at]} at index ${at}; the checkpoint is corrupt (weights must be finite)`);
}

/** Number of transformer layers the names mention: one more than the largest ".<n>." index. */
function layerCount(names: readonly string[]): number {
  let max = -1;
  for (const n of names) {
    const m = /\.(\d+)\./.exec(n);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

/** The layers (of 0..nLayer-1) none of whose needed tensors is present. */
function missingLayers(nLayer: number, needed: readonly string[], missing: readonly string[]): number[] {
  const gone = new Set(missing);
  const out: number[] = [];
  for (let l = 0; l < nLayer; l++) {
    const tag = `.${l}.`;
    const inLayer = needed.filter((n) => `.${n}`.includes(tag));
    if (inLayer.length && inLayer.every((n) => gone.has(n))) out.push(l);
  }
  return out;
}

function ranges(xs: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length;) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j]! + 1) j++;
    out.push(i === j ? `${xs[i]}` : `${xs[i]}-${xs[j]}`);
    i = j + 1;
  }
  return out.join(", ");
}

function list(names: readonly string[]): string {
  return names.length <= 12 ? names.join(", ") : `${names.slice(0, 12).join(", ")} and ${names.length - 12} more`;
}
