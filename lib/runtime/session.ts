// One onnxruntime session per segment, created from the compiled graph's bytes. Wraps `run` so
// feeds are typed arrays with dims and failures arrive as RomeError("ERR_ONNX") naming the segment.
import ort from "onnxruntime-node";
import { RomeError } from "../errors.js";
import type { Segment } from "../arch/segments.js";
import { ortThreading, type ThreadingOptions } from "./threading.js";

export type Feed = { data: Float32Array | BigInt64Array; dims: number[] };

/** Threads (default 1: the machine's cores are shared with the addon) and spinning (default off). */
export type SessionOptions = ThreadingOptions;

export class SegmentSession {
  private constructor(readonly name: string, private readonly session: ort.InferenceSession) {}

  static async create(segment: Segment, opts: SessionOptions): Promise<SegmentSession> {
    const name = segment.graph.name;
    try {
      const session = await ort.InferenceSession.create(segment.graph.toBytes(), {
        ...ortThreading(opts),
        graphOptimizationLevel: "all",
        logSeverityLevel: 3,
      });
      return new SegmentSession(name, session);
    } catch (e) {
      throw new RomeError("ERR_ONNX", `onnxruntime rejected segment ${name}: ${(e as Error).message}`, { cause: e });
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Runs the segment, computing only the outputs named in `fetch`. */
  async run(feeds: Record<string, Feed>, fetch: readonly string[]): Promise<Record<string, Float32Array>> {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [k, f] of Object.entries(feeds)) {
      inputs[k] = f.data instanceof BigInt64Array ? new ort.Tensor("int64", f.data, f.dims) : new ort.Tensor("float32", f.data, f.dims);
    }
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await this.session.run(inputs, fetch as string[]);
    } catch (e) {
      throw new RomeError("ERR_ONNX", `segment ${this.name} failed: ${(e as Error).message}`, { cause: e });
    }
    const result: Record<string, Float32Array> = {};
    for (const k of fetch) result[k] = out[k]!.data as Float32Array;
    return result;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
