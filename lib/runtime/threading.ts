// onnxruntime's threading for every session rome-node creates. With more than one intra-op
// thread, onnxruntime's pool spins (busy-waits) between operators by default; on cores shared
// with other processes the spinning threads take the cores from the thread that has work, and a
// model with 2 threads ran 10× slower than with 1 (scripts/bench-threads.ts measures it). So the
// pool does not spin unless asked to, and inter-op parallelism stays off (execution is sequential).
import type ort from "onnxruntime-node";

export interface ThreadingOptions {
  /** onnxruntime intra-op threads. */
  threads: number;
  /**
   * Let the intra-op pool spin between operators (onnxruntime's own default). Default false:
   * safe when the cores are shared; true can gain a few percent on otherwise idle cores.
   */
  spinning?: boolean;
}

/** The session options that fix the threading: intra-op threads, no spinning, sequential execution. */
export function ortThreading(o: ThreadingOptions): Pick<ort.InferenceSession.SessionOptions, "intraOpNumThreads" | "interOpNumThreads" | "executionMode" | "extra"> {
  const spin = o.spinning === true ? "1" : "0";
  return {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
  };
}
