// The contract between an architecture description and the rest of rome-node. A description
// knows a model family's config keys, weight names and layouts, and emits the body of each segment
// with the graph builder; the segment compiler and the engine know only this contract, so GPT-J,
// GPT-NeoX or Llama are added as further descriptions without touching them.
import type { GraphBuilder } from "../graph/builder.js";
import type { ModelConfig } from "../model/config.js";

/** A weight as loaded: f32 data in row-major order with its shape. */
export interface Weight {
  shape: number[];
  data: Float32Array;
}

export type Weights = Map<string, Weight>;

/** Where a model's weights come from: a Map in memory, or a checkpoint read tensor by tensor on
 * demand (each `get` is then a fresh read that the caller owns). */
export interface WeightSource {
  get(name: string): Weight | undefined;
  keys(): Iterable<string>;
  /** The named weight's shape, without reading it. */
  shapeOf?(name: string): number[] | undefined;
  /**
   * The named weight's raw little-endian f32 bytes as a producer that writes them into a target
   * (a graph being serialised) without any intermediate copy; undefined when it is not stored as f32.
   */
  rawF32?(name: string): { byteLength: number; write(target: Uint8Array): void } | undefined;
  /**
   * Where the named weight's raw little-endian f32 bytes lie in a file onnxruntime can read itself
   * (ONNX external data: the file's folder, its name there, offset and length), after checking
   * them; undefined when it is not stored as f32 in a file.
   */
  externalF32?(name: string): { folder: string; location: string; offset: number; length: number } | undefined;
}

/** Names of the standard values every segment body reads or must produce. */
export interface EmbedIO {
  ids: string;        // (B, T) int64
  positions: string;  // (B, T) int64
}
export interface EmbedOut {
  tokEmbed: string;   // (B, T, D) token embeddings: the noise site of causal tracing
  posEmbed: string;   // (B, T, D) position embeddings (zeros for rotary models)
}
export interface AttnIO {
  resid: string;      // (B, T, D) residual stream entering the block
  pastKey: string;    // (B, Hkv, P, Dh) Hkv key/value heads (nKvHead)
  pastValue: string;  // (B, Hkv, P, Dh)
  bias: string;       // (B, 1, T, S) additive attention mask
  positions: string;  // (B, T) int64 absolute positions (for rotary models)
  /** The past keys and values are constants (a gradient graph): attend to them apart from the new
   * columns' (lib/graph/ops.ts cachedAttention). */
  splitPast?: boolean;
  /** (Q) int64: the only columns whose attention output is needed (attnOut is then (B, Q, D));
   * every column's keys and values are still computed. */
  queries?: string;
}
export interface AttnOut {
  attnOut: string;    // (B, T, D) attention output (what is added to the residual stream)
  presentKey: string; // (B, Hkv, S, Dh)
  presentValue: string;
}
export interface MlpIO {
  residMid: string;   // (B, T, D) residual stream after the attention half-block
  /** (B, T, D) the block's input (before attention): what a parallel block's MLP reads. Reading it
   * makes the MLP segment take it as an input. */
  resid: string;
}
export interface MlpOut {
  mlpKey: string;     // (B, T, F) input of the MLP output projection: the key ROME edits against
  mlpOut: string;     // (B, T, D) MLP output
}

/** What an emitter works with: the builder, the config, and `w(name)`, which makes the named
 * weight an initializer of the graph being built (once) and returns its value name. */
export interface EmitContext {
  b: GraphBuilder;
  cfg: ModelConfig;
  w(name: string): string;
}

/** How the edited MLP output projection is stored: ROME's u vᵀ is [F, D] in "in_out" layout. */
export interface EditTarget {
  weight: string;
  layout: "in_out" | "out_in";
}

export interface ArchDescription {
  /** The key stored in ModelConfig.arch. */
  name: string;
  /** True when this description runs the model of this raw config.json. */
  matches(raw: Record<string, unknown>): boolean;
  config(raw: Record<string, unknown>, path: string): ModelConfig;
  /**
   * Every weight the model needs, by canonical name, with its expected shape. Canonical names are
   * looked up in the checkpoint under each of `prefixes` in turn.
   */
  weightShapes(cfg: ModelConfig): Map<string, number[]>;
  prefixes: string[];
  /**
   * True for a tensor a checkpoint of this family may hold that the model does not read (a saved
   * buffer such as GPT-2's attention mask). Any other unused tensor fails the load.
   */
  ignoredTensors?(storedName: string, cfg: ModelConfig): boolean;
  /** Residual stream entering layer 0 is tokEmbed + posEmbed (the engine adds them, after the tokEmbed hook). */
  emitEmbed(ctx: EmitContext, io: EmbedIO): EmbedOut;
  emitAttention(ctx: EmitContext, layer: number, io: AttnIO): AttnOut;
  /** The MLP half-block: its output is added to residMid (sequential and parallel blocks alike). */
  emitMlp(ctx: EmitContext, layer: number, io: MlpIO): MlpOut;
  /** resid (N, D) → logits (N, V). */
  emitHead(ctx: EmitContext, resid: string): string;
  editTarget(layer: number): EditTarget;
}
