// The corruption of causal tracing: noise on the token embeddings of the subject (before position
// embeddings are added), drawn from a numpy-compatible RandomState so that a trace reproduces the
// reference implementation value for value, and the reference's "s3" level (3 × the std of subject
// token embeddings over a set of subjects).
import { RomeError } from "../errors.js";
import { padBatch } from "../runtime/batch.js";
import type { Model } from "../runtime/model.js";
import { NumpyRandomState } from "./rng.js";

export type NoiseType = "gauss" | "uniform" | "replace";

export interface NoiseSpec {
  /** gauss: += level·N(0,1) (default); uniform: += level·U(−1,1); replace: := level·N(0,1). */
  type: NoiseType;
  level: number;
}

/**
 * Adds (or writes) noise into token embeddings tok (N, T, D) at positions [b, e), all N rows.
 * `draw` k > 0 takes the (k + 1)-th draw of the same stream: the numbers a second (third …)
 * `prng(N, e - b, D)` call on one RandomState(seed) returns, as the reference's two-pass
 * `trace_with_repatch` does.
 */
export function corrupt(tok: Float32Array, N: number, T: number, D: number, [b, e]: [number, number], spec: NoiseSpec, seed: number, draw = 0): void {
  // One draw of shape (N, e − b, D) in C order, as `prng.randn(N, e - b, D)`.
  const rs = new NumpyRandomState(seed);
  const skip = draw * N * (e - b); // rows of D values drawn by the earlier calls
  const scratch = new Float32Array(skip > 0 ? D : 0); // (D,)
  for (let i = 0; i < skip; i++) {
    if (spec.type === "uniform") rs.addUniform(scratch, 1);
    else rs.addGauss(scratch, 1);
  }
  for (let n = 0; n < N; n++) {
    for (let t = b; t < e; t++) {
      const at = (n * T + t) * D;
      if (spec.type === "gauss") rs.addGauss(tok, spec.level, at, D);
      else if (spec.type === "uniform") rs.addUniform(tok, spec.level, at, D);
      else {
        tok.fill(0, at, at + D);
        rs.addGauss(tok, spec.level, at, D);
      }
    }
  }
}

/**
 * Standard deviation (unbiased, over every value) of the token embeddings of `subjects`, each
 * tokenized on its own (without a BOS) — the reference's collect_embedding_std. The "s3" level is 3 × this.
 */
export async function subjectEmbeddingStd(model: Model, subjects: readonly string[]): Promise<number> {
  if (subjects.length === 0) throw new RomeError("ERR_ARGUMENT", "subjectEmbeddingStd needs at least one subject");
  const D = model.config.nEmbd;
  const encs = await model.tokenizer.encodeBatch([...subjects], { bos: false });
  const batch = padBatch(encs.map((e) => e.ids));
  const { tok } = await model.engine.embed(batch); // (B, T, D), left-padded
  let n = 0;
  let mean = 0;
  let m2 = 0; // Welford, float64
  for (let b = 0; b < batch.B; b++) {
    for (let t = batch.pad[b]!; t < batch.T; t++) {
      for (let i = 0; i < D; i++) {
        const x = tok[(b * batch.T + t) * D + i]!;
        n++;
        const d = x - mean;
        mean += d / n;
        m2 += d * (x - mean);
      }
    }
  }
  if (n < 2) throw new RomeError("ERR_ARGUMENT", "the subjects tokenize to fewer than two values; give more subjects");
  return Math.sqrt(m2 / (n - 1));
}
