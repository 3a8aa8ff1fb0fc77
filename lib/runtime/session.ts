// One onnxruntime session per compiled graph (a segment, or a graph such as ROME's value gradient),
// created from the graph's bytes. The only place rome-node talks to onnxruntime: `run` takes typed
// arrays with dims and failures arrive as RomeError("ERR_ONNX") naming the graph.
import ort from "onnxruntime-node";
import { RomeError } from "../errors.js";
import type { GraphBuilder } from "../graph/builder.js";
import type { Segment } from "../arch/segments.js";
import { ortThreading, type ThreadingOptions } from "./threading.js";

export type Feed = { data: Float32Array | BigInt64Array; dims: number[] };

/** Threads (default 1: the machine's cores are shared with the addon) and spinning (default off). */
export interface SessionOptions extends ThreadingOptions {
  /**
   * Let onnxruntime pre-pack constant weights at creation (a packed copy that its matrix kernels
   * read faster). Default true. Off for the head: its unembedding is the largest weight, and
   * packing it costs a second copy while the session is created.
   */
  prepacking?: boolean;
  /** Keep onnxruntime's CPU memory arena and memory patterns (LoadOptions.memoryArena). Default false. */
  memoryArena?: boolean;
  /**
   * Memory patterns (one block per input shape, planned at the first runs of that shape; needs the
   * arena). Default: as memoryArena. Off, an arena reuses its chunks from run to run but does not
   * also allocate a pattern's block beside them at each new shape.
   */
  memoryPattern?: boolean;
}

/** A reusable serialisation buffer for creating sessions one after another. */
export interface Scratch {
  bytes?: Uint8Array;
}

export class SegmentSession {
  private constructor(readonly name: string, private readonly session: ort.InferenceSession) {}

  static create(segment: Segment, opts: SessionOptions, scratch?: Scratch): Promise<SegmentSession> {
    return SegmentSession.fromGraph(segment.graph, opts, scratch);
  }

  /**
   * A session of any built graph. With `scratch`, the graph is serialised into its buffer (grown
   * as needed), which is free for the next graph once this returns: onnxruntime keeps no reference.
   */
  static async fromGraph(graph: GraphBuilder, opts: SessionOptions, scratch?: Scratch): Promise<SegmentSession> {
    const name = graph.name;
    try {
      const bytes = graph.toBytes(undefined, undefined, scratch?.bytes);
      if (scratch && bytes.buffer !== scratch.bytes?.buffer) scratch.bytes = bytes;
      const threading = ortThreading(opts);
      const session = await ort.InferenceSession.create(bytes, {
        ...threading,
        extra: { session: {
          ...(threading.extra as { session: Record<string, unknown> }).session,
          ...(opts.prepacking === false ? { disable_prepacking: "1" } : {}),
          // external initializers (weights onnxruntime maps from the checkpoint itself) are named relative to this folder
          ...(graph.externalFolder !== undefined ? { model_external_initializers_file_folder_path: graph.externalFolder } : {}),
        } },
        graphOptimizationLevel: "all",
        // Without the arena, a run's intermediates are freed when it ends instead of staying
        // reserved in this session (one of ~100 in a GPT-2-XL model) at its largest batch's size.
        enableCpuMemArena: opts.memoryArena === true,
        enableMemPattern: opts.memoryPattern ?? opts.memoryArena === true,
        logSeverityLevel: 3,
      });
      return new SegmentSession(name, session);
    } catch (e) {
      throw new RomeError("ERR_ONNX", `onnxruntime rejected graph ${name}: ${(e as Error).message}`, { cause: e });
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /**
   * Runs the segment, computing only the outputs named in `fetch`. An output given in `into`
   * (float32, with the exact dims the segment produces) is written there by onnxruntime, which
   * then allocates nothing for it; the result names that same array.
   */
  async run(feeds: Record<string, Feed>, fetch: readonly string[], into: Record<string, Feed> = {}): Promise<Record<string, Float32Array>> {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [k, f] of Object.entries(feeds)) inputs[k] = tensor(f);
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const k of fetch) fetches[k] = into[k] ? tensor(into[k]) : null;
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run(inputs, fetches);
    } catch (e) {
      throw new RomeError("ERR_ONNX", `segment ${this.name} failed: ${(e as Error).message}`, { cause: e });
    }
    const result: Record<string, Float32Array> = {};
    for (const k of fetch) result[k] = (into[k]?.data ?? out[k]!.data) as Float32Array;
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function tensor(f: Feed): ort.Tensor {
  return f.data instanceof BigInt64Array ? new ort.Tensor("int64", f.data, f.dims) : new ort.Tensor("float32", f.data, f.dims);
}
