// What a model creates for its own later use — gradient sessions, sampled context templates — kept
// under the model by key, built once (concurrent callers share the pending promise) and released
// by the model's dispose(), so nothing outlives the model in module-level maps.
import { RomeError } from "../errors.js";

interface Entry {
  value: Promise<unknown>;
  release?: (value: unknown) => Promise<void> | void;
}

export class ModelResources {
  private readonly entries = new Map<string, Entry>();
  private disposed = false;

  /** The resource under `key`, built by `create` on first use; `release` frees it at dispose(). */
  get<T>(key: string, create: () => Promise<T>, release?: (value: T) => Promise<void> | void): Promise<T> {
    if (this.disposed) throw new RomeError("ERR_DISPOSED", `the model was disposed; cannot create '${key}'`);
    let e = this.entries.get(key);
    if (!e) {
      const value = create();
      e = { value, release: release as Entry["release"] };
      this.entries.set(key, e);
      // A failed build is forgotten so a later call can retry it.
      value.catch(() => { if (this.entries.get(key) === e) this.entries.delete(key); });
    }
    return e.value as Promise<T>;
  }

  /** Number of resources held (tests). */
  get size(): number {
    return this.entries.size;
  }

  /** Releases every resource (those still being built once they are built); later gets throw. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const e of entries) {
      let value: unknown;
      try {
        value = await e.value;
      } catch {
        continue; // never built: nothing to free
      }
      await e.release?.(value);
    }
  }
}
