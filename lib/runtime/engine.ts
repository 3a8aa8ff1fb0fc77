// The engine: runs a model segment by segment. Between segments every intermediate tensor is in
// JavaScript memory, where callers record it or patch it in place (hooks) before the next segment
// reads it. A run can start at any layer from given states, stop early, reuse and return KV
// caches, and evaluate the head at selected positions only. Counts the FLOPs it executes
// into the meter a caller passes.
import type { ArchDescription, WeightSource } from "../arch/types.js";
import type { ModelConfig } from "../model/config.js";
import { compileAttention, compileEmbed, compileHead, compileMlp, IO, type Segment } from "../arch/segments.js";
import { RomeError } from "../errors.js";
import { attentionBias, type Batch } from "./batch.js";
import { throwIfAborted, type CallOptions } from "./call.js";
import type { EditView } from "./edit-view.js";
import { attnFlops, headFlops, mlpFlops } from "./flops.js";
import { SegmentSession, type Scratch, type SessionOptions } from "./session.js";
import { beginHeapReservation, endHeapReservation } from "../native-heap.js";

/** Per-layer past keys and values, each (B, Hkv, P, Dh). */
export interface KVCache {
  past: number;
  key: Float32Array[];
  value: Float32Array[];
}

const EMPTY = new Float32Array(0);

/** Sites the engine can record, per layer (tok_embed and pos_embed once, at index 0). */
export type Site = "tok_embed" | "pos_embed" | "resid_pre" | "resid_mid" | "resid_post" | "attn_out" | "mlp_out" | "mlp_key";
export const SITES: readonly Site[] = ["tok_embed", "pos_embed", "resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "mlp_key"];

export interface AttnState {
  resid: Float32Array;      // (B, T, D) residual stream entering the attention half-block
  residMid: Float32Array;   // (B, T, D) — patch in place
  attnOut: Float32Array;    // (B, T, D)
}
export interface MlpState {
  residMid: Float32Array;   // (B, T, D) residual stream entering the MLP half-block
  residPost: Float32Array;  // (B, T, D) — patch in place
  mlpOut: Float32Array;     // (B, T, D)
  mlpKey?: Float32Array;    // (B, T, F) when `needKey`
}

export interface Hooks {
  /** Called with the token embeddings (B, T, D) before positions are added; may modify them. */
  tokEmbed?(tok: Float32Array): void;
  attn?(layer: number, state: AttnState): void;
  mlp?(layer: number, state: MlpState): void;
}

export interface RunOptions {
  /** The edits the MLP segments apply (EditView.NONE: the base model). A run reads nothing else that edits change. */
  edits: EditView;
  /** Start at `layer` with `resid` (B, T, D), the residual stream entering that layer. */
  from?: { layer: number; resid: Float32Array };
  /** Run layers < stopLayer only (default: all). The head runs only after the last layer. */
  stopLayer?: number;
  /** Past keys/values for batch.past positions. */
  cache?: KVCache;
  /** Return the present keys/values of the layers run. */
  keepCache?: boolean;
  record?: readonly Site[];
  /** (batch row, position) pairs at which to evaluate the head. */
  head?: readonly (readonly [number, number])[];
  hooks?: Hooks;
  /** Counts the FLOPs of this run. */
  meter?: FlopMeter;
  /** Fetch the MLP key for hooks at these layers (recording mlp_key implies all). */
  needKey?: (layer: number) => boolean;
}

export interface RunResult {
  /** (B, T, D) residual stream after the last layer run */
  resid: Float32Array;
  records: Partial<Record<Site, Float32Array[]>>;
  cache?: KVCache;
  /** (N, V) logits at the `head` positions */
  logits?: Float32Array;
}

/** Options of one half-block call (`attn`, `mlp`). */
export interface HalfBlockOptions {
  meter?: FlopMeter;
  /** Return the present keys/values (attention only). Default false. */
  keepCache?: boolean;
  /** Copy out the component (attention or MLP output). Default true. */
  component?: boolean;
  /** (B, T, D) array that receives the half-block's output (resid_mid or resid_post): no allocation. */
  into?: Float32Array;
}

/** Counts the FLOPs of the engine calls it is passed to (one per measured task, so concurrent
 * tasks on one engine are counted apart). */
export interface FlopMeter {
  flops: number;
}

export class Engine {
  private constructor(
    readonly config: ModelConfig,
    private readonly embedSeg: SegmentSession,
    private readonly attnSegs: SegmentSession[],
    private readonly mlpSegs: SegmentSession[],
    private readonly headSeg: SegmentSession,
  ) {}

  /**
   * Compiles and opens the segments one at a time: each reads its weights from `weights` (a
   * checkpoint-backed source reads them from the file just for it), hands them to onnxruntime and
   * lets go of them before the next, yielding to the event loop in between. Progress is reported as
   * phase "load" in segments; an abort releases the sessions already opened.
   */
  static async create(arch: ArchDescription, cfg: ModelConfig, weights: WeightSource, opts: SessionOptions, call: CallOptions = {}): Promise<Engine> {
    // The two segments holding the (V, D) unembedding come first, while little else is resident,
    // and the head's is not pre-packed (a packed copy would double it). The layers then start a
    // serialisation buffer of their own size: the large one used for the unembedding is let go.
    const compile: [() => Segment, SessionOptions][] = [[() => compileEmbed(arch, cfg, weights), opts], [() => compileHead(arch, cfg, weights), { ...opts, prepacking: false }]];
    for (let l = 0; l < cfg.nLayer; l++) compile.push([() => compileAttention(arch, cfg, weights, l), opts], [() => compileMlp(arch, cfg, weights, l), opts]);
    const sessions: SegmentSession[] = [];
    let scratch: Scratch = {}; // one serialisation buffer for a run of segments: no garbage model bytes
    const used = new Set<string>(); // weights of the segments opened so far
    let reserved = false;
    try {
      for (const [i, [segment, o]] of compile.entries()) {
        await new Promise((resolve) => setImmediate(resolve));
        throwIfAborted(call.signal);
        if (i === 2) {
          scratch = {};
          // onnxruntime pre-packs the layers' matrices into fresh memory, about their own size
          reserved = beginHeapReservation(layerMatrixBytes(weights, used));
        }
        const seg = segment();
        for (const init of seg.graph.initializers) used.add(init.name);
        sessions.push(await SegmentSession.create(seg, o, scratch));
        call.onProgress?.({ phase: "load", done: i + 1, total: compile.length });
      }
    } catch (e) {
      for (const s of sessions) await s.release();
      throw e;
    } finally {
      if (reserved) endHeapReservation();
    }
    const [embed, head, ...layers] = sessions;
    return new Engine(cfg, embed!, layers.filter((_, i) => i % 2 === 0), layers.filter((_, i) => i % 2 === 1), head!);
  }

  /** Token and position embeddings: tok, pos (B, T, D). */
  async embed(batch: Batch): Promise<{ tok: Float32Array; pos: Float32Array }> {
    const dims = [batch.B, batch.T];
    const out = await this.embedSeg.run(
      { [IO.ids]: { data: batch.ids, dims }, [IO.positions]: { data: batch.positions, dims } },
      [IO.tokEmbed, IO.posEmbed],
    );
    return { tok: out[IO.tokEmbed]!, pos: out[IO.posEmbed]! };
  }

  /**
   * Attention half-block of `layer`: resid (B, T, D), past (B, Hkv, P, Dh), bias (B, 1, T, S).
   * With `component` false the attention output is not copied out (attnOut is then empty); with
   * `into`, resid_mid is written there ((B, T, D), not `resid`) instead of a new array.
   */
  async attn(layer: number, batch: Batch, resid: Float32Array, bias: Float32Array, past?: { key: Float32Array; value: Float32Array }, opts: HalfBlockOptions = {}) {
    const { B, T } = batch;
    const cfg = this.config;
    const H = cfg.nKvHead;
    const Dh = cfg.headDim;
    const P = batch.past;
    const empty = new Float32Array(0);
    const seg = this.attnSegs[layer]!;
    const feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = {
      [IO.resid]: { data: resid, dims: [B, T, cfg.nEmbd] },
      [IO.pastKey]: { data: past?.key ?? empty, dims: [B, H, P, Dh] },
      [IO.pastValue]: { data: past?.value ?? empty, dims: [B, H, P, Dh] },
      [IO.attnBias]: { data: bias, dims: [B, 1, T, P + T] },
    };
    if (seg.inputNames.includes(IO.positions)) feeds[IO.positions] = { data: batch.positions, dims: [B, T] };
    // Present keys/values are copied out only when the caller keeps the cache.
    const fetch = [IO.residMid, ...(opts.component !== false ? [IO.attnOut] : []), ...(opts.keepCache ? [IO.presentKey, IO.presentValue] : [])];
    const out = await seg.run(feeds, fetch, opts.into ? { [IO.residMid]: { data: opts.into, dims: [B, T, cfg.nEmbd] } } : {});
    if (opts.meter) opts.meter.flops += attnFlops(cfg, B * T, P + T);
    return { residMid: out[IO.residMid]!, attnOut: out[IO.attnOut] ?? EMPTY, key: out[IO.presentKey], value: out[IO.presentValue] };
  }

  /** True when the MLP half-blocks read the block's input (parallel attention and MLP): pass it to `mlp`. */
  get mlpReadsBlockInput(): boolean {
    return this.mlpSegs[0]?.inputNames.includes(IO.resid) ?? false;
  }

  /**
   * MLP half-block of `layer` with the edits of `edits` at that layer: residMid (B, T, D); resid
   * (B, T, D), the block's input, when `mlpReadsBlockInput`. With `component` false the MLP output
   * is not copied out (mlpOut is then empty); with `into`, resid_post is written there ((B, T, D),
   * neither input) instead of a new array.
   */
  async mlp(layer: number, B: number, T: number, residMid: Float32Array, edits: EditView, opts: HalfBlockOptions & { needKey?: boolean; resid?: Float32Array } = {}): Promise<MlpState> {
    const fetch = [IO.residPost, ...(opts.component !== false ? [IO.mlpOut] : []), ...(opts.needKey ? [IO.mlpKey] : [])];
    const f = edits.factors(layer);
    const R = f?.rank ?? 0;
    const D = this.config.nEmbd;
    const seg = this.mlpSegs[layer]!;
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
      [IO.residMid]: { data: residMid, dims: [B, T, D] },
      [IO.editU]: { data: f?.u ?? EMPTY, dims: [this.config.nInner, R] },
      [IO.editV]: { data: f?.v ?? EMPTY, dims: [R, D] },
    };
    if (seg.inputNames.includes(IO.resid)) {
      if (!opts.resid) throw new RomeError("ERR_ARGUMENT", `the MLP of layer ${layer} reads the block's input (a parallel block): pass it`);
      feeds[IO.resid] = { data: opts.resid, dims: [B, T, D] };
    }
    const out = await seg.run(feeds, fetch, opts.into ? { [IO.residPost]: { data: opts.into, dims: [B, T, D] } } : {});
    if (opts.meter) opts.meter.flops += mlpFlops(this.config, B * T);
    return { residMid, residPost: out[IO.residPost]!, mlpOut: out[IO.mlpOut] ?? EMPTY, mlpKey: out[IO.mlpKey] };
  }

  /** Logits (N, V) at (row, position) pairs of resid (B, T, D). */
  async head(B: number, T: number, resid: Float32Array, select: readonly (readonly [number, number])[], meter?: FlopMeter): Promise<Float32Array> {
    const out = await this.headSeg.run({
      [IO.resid]: { data: resid, dims: [B, T, this.config.nEmbd] },
      [IO.select]: { data: selection(select, B, T), dims: [select.length, 2] },
      [IO.answer]: { data: new BigInt64Array(select.length), dims: [select.length, 1] }, // unused here
    }, [IO.logits]);
    if (meter) meter.flops += headFlops(this.config, select.length);
    return out[IO.logits]!;
  }

  /** log p(answer) (N) at (row, position) pairs of resid (B, T, D), one answer token for all. */
  async headLogprob(B: number, T: number, resid: Float32Array, select: readonly (readonly [number, number])[], answer: number, meter?: FlopMeter): Promise<Float32Array> {
    const out = await this.headSeg.run({
      [IO.resid]: { data: resid, dims: [B, T, this.config.nEmbd] },
      [IO.select]: { data: selection(select, B, T), dims: [select.length, 2] },
      [IO.answer]: { data: new BigInt64Array(select.length).fill(BigInt(answer)), dims: [select.length, 1] },
    }, [IO.answerLogprob]);
    if (meter) meter.flops += headFlops(this.config, select.length);
    return out[IO.answerLogprob]!;
  }

  /** Runs a batch through the layers as `opts` asks. */
  async run(batch: Batch, opts: RunOptions): Promise<RunResult> {
    const cfg = this.config;
    const { B, T } = batch;
    const D = cfg.nEmbd;
    const start = opts.from?.layer ?? 0;
    const stop = opts.stopLayer ?? cfg.nLayer;
    if (start < 0 || start > cfg.nLayer || stop < start || stop > cfg.nLayer) {
      throw new RomeError("ERR_ARGUMENT", `layers [${start}, ${stop}) are outside the model's ${cfg.nLayer} layers`);
    }
    if ((opts.cache?.past ?? 0) !== batch.past) {
      throw new RomeError("ERR_ARGUMENT", `the batch expects ${batch.past} cached positions but the cache holds ${opts.cache?.past ?? 0}`);
    }
    const want = new Set(opts.record ?? []);
    const records: Partial<Record<Site, Float32Array[]>> = {};
    const rec = (site: Site, layer: number, value: Float32Array) => {
      if (want.has(site)) (records[site] ??= [])[layer] = value;
    };

    let resid: Float32Array;
    if (opts.from) {
      if (opts.from.resid.length !== B * T * D) throw new RomeError("ERR_ARGUMENT", `from.resid has ${opts.from.resid.length} values, expected ${B}×${T}×${D}`);
      resid = opts.from.resid;
    } else {
      const { tok, pos } = await this.embed(batch);
      opts.hooks?.tokEmbed?.(tok);
      rec("tok_embed", 0, tok);
      rec("pos_embed", 0, pos);
      resid = new Float32Array(tok.length);
      for (let i = 0; i < resid.length; i++) resid[i] = tok[i]! + pos[i]!;
    }

    const bias = attentionBias(batch);
    // The components (attention and MLP outputs) are copied out only where a hook or a record reads them.
    const attnRead = opts.hooks?.attn !== undefined || want.has("attn_out");
    const mlpRead = opts.hooks?.mlp !== undefined || want.has("mlp_out");
    const cache: KVCache | undefined = opts.keepCache ? { past: batch.past + T, key: [], value: [] } : undefined;
    for (let l = start; l < stop; l++) {
      rec("resid_pre", l, resid);
      const past = opts.cache ? { key: opts.cache.key[l]!, value: opts.cache.value[l]! } : undefined;
      const a = await this.attn(l, batch, resid, bias, past, { meter: opts.meter, keepCache: cache !== undefined, component: attnRead });
      if (cache) {
        cache.key[l] = a.key!;
        cache.value[l] = a.value!;
      }
      opts.hooks?.attn?.(l, { resid, residMid: a.residMid, attnOut: a.attnOut });
      rec("resid_mid", l, a.residMid);
      rec("attn_out", l, a.attnOut);
      const m = await this.mlp(l, B, T, a.residMid, opts.edits, { needKey: want.has("mlp_key") || (opts.needKey?.(l) ?? false), meter: opts.meter, resid, component: mlpRead });
      opts.hooks?.mlp?.(l, m);
      rec("mlp_out", l, m.mlpOut);
      if (m.mlpKey) rec("mlp_key", l, m.mlpKey);
      rec("resid_post", l, m.residPost);
      resid = m.residPost;
    }
    const result: RunResult = { resid, records, cache };
    if (opts.head && opts.head.length > 0) {
      if (stop !== cfg.nLayer) throw new RomeError("ERR_ARGUMENT", "the head can only run after the last layer (stopLayer must be the layer count)");
      result.logits = await this.head(B, T, resid, opts.head, opts.meter);
    }
    return result;
  }

  async release(): Promise<void> {
    for (const s of [this.embedSeg, ...this.attnSegs, ...this.mlpSegs, this.headSeg]) await s.release();
  }
}

/** (N, 2) int64 (row, position) pairs, checked against the batch (B, T). */
function selection(select: readonly (readonly [number, number])[], B: number, T: number): BigInt64Array {
  const sel = new BigInt64Array(select.length * 2);
  select.forEach(([b, t], i) => {
    if (b < 0 || b >= B || t < 0 || t >= T) throw new RomeError("ERR_ARGUMENT", `head position (${b}, ${t}) is outside the batch (${B} × ${T})`);
    sel[2 * i] = BigInt(b);
    sel[2 * i + 1] = BigInt(t);
  });
  return sel;
}

/** Bytes of the f32 matrices (2 or more dimensions) of `weights` not in `used` (the embedding and
 * head segments'): what onnxruntime pre-packs for the layers. */
function layerMatrixBytes(weights: WeightSource, used: ReadonlySet<string>): number {
  let bytes = 0;
  for (const name of weights.keys()) {
    const shape = used.has(name) ? undefined : weights.shapeOf?.(name) ?? weights.get(name)?.shape;
    if (shape && shape.length >= 2) bytes += 4 * shape.reduce((a, d) => a * d, 1);
  }
  return bytes;
}
