// What the routes share: the models, the job registry, the store, the limits, and one predict
// batcher per model.
import { PredictBatcher } from "./batcher.js";
import type { JobRegistry } from "./jobs.js";
import type { Limits } from "./limits.js";
import type { ModelPool, ServedModel } from "./models.js";
import type { StateStore } from "./state.js";

export class ServiceContext {
  private readonly batchers = new Map<string, PredictBatcher>();

  constructor(readonly pool: ModelPool, readonly registry: JobRegistry, readonly limits: Limits, readonly store?: StateStore) {
    for (const m of pool.models.values()) this.batchers.set(m.name, new PredictBatcher(m, limits.prompts, m.replicas.length));
  }

  batcher(model: ServedModel): PredictBatcher {
    return this.batchers.get(model.name)!;
  }
}
