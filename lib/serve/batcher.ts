// Micro-batching of /predict: requests that arrive while a batch runs wait, and the next batch
// takes all of them (with the same edit set, up to `maxPrompts` prompts) as one predict call, so a
// busy service runs few large batches instead of many single prompts. The callers of a batch tend
// to come back together: when fewer requests wait than the last batch held, the next batch waits
// up to LINGER_MS for them, so that it does not start with the first one alone. A lone caller
// (last batch of one) never waits. Prompts of different lengths share a batch (left padding with
// masks computes exactly what each prompt alone would).
import { RomeError } from "../errors.js";
import type { Prediction } from "../runtime/model.js";
import type { ServedModel } from "./models.js";

/** Longest wait for the callers of the last batch to come back. */
const LINGER_MS = 2;

interface Waiting {
  prompts: readonly string[];
  topK: number;
  /** Edit ids for this request only; undefined: the model's enabled edits. */
  edits?: readonly string[];
  key: string;
  resolve(p: Prediction[][]): void;
  reject(e: unknown): void;
}

export class PredictBatcher {
  private readonly waiting: Waiting[] = [];
  private running = 0;
  /** Requests in the last batch: how many callers are likely to come back together. */
  private expected = 1;
  private linger?: NodeJS.Timeout;
  private lingered = false;

  /**
   * @param maxPrompts most prompts in one batch
   * @param parallel batches running at once (the model's replicas)
   */
  constructor(private readonly model: ServedModel, private readonly maxPrompts: number, private readonly parallel: number) {}

  /** The `topK` most likely next tokens after each prompt, batched with other requests. */
  predict(prompts: readonly string[], topK: number, edits?: readonly string[]): Promise<Prediction[][]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ prompts, topK, edits, key: edits ? JSON.stringify(edits) : "", resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.parallel && this.waiting.length > 0) {
      if (this.waiting.length < this.expected && !this.lingered) {
        this.linger ??= setTimeout(() => {
          this.linger = undefined;
          this.lingered = true;
          this.pump();
        }, LINGER_MS);
        return;
      }
      clearTimeout(this.linger);
      this.linger = undefined;
      this.lingered = false;
      const key = this.waiting[0]!.key;
      const batch: Waiting[] = [];
      let n = 0;
      for (let i = 0; i < this.waiting.length;) {
        const w = this.waiting[i]!;
        if (w.key === key && (batch.length === 0 || n + w.prompts.length <= this.maxPrompts)) {
          batch.push(w);
          n += w.prompts.length;
          this.waiting.splice(i, 1);
        } else {
          i++;
        }
      }
      this.expected = batch.length;
      this.running++;
      void this.runBatch(batch).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async runBatch(batch: Waiting[]): Promise<void> {
    const k = Math.max(...batch.map((w) => w.topK));
    const edits = batch[0]!.edits;
    try {
      const preds = await this.model.run((m) => m.predict(batch.flatMap((w) => w.prompts), { topK: k, ...(edits ? { edits } : {}) }));
      let at = 0;
      for (const w of batch) {
        w.resolve(preds.slice(at, at + w.prompts.length).map((p) => p.slice(0, w.topK)));
        at += w.prompts.length;
      }
    } catch (e) {
      // One request's bad input must not fail the others: a batch that fails on input runs each request alone.
      if (batch.length > 1 && e instanceof RomeError && e.code !== "ERR_WORKER") {
        await Promise.all(batch.map((w) => this.runBatch([w])));
      } else {
        for (const w of batch) w.reject(e);
      }
    }
  }
}
