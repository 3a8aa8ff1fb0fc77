// Persistence under --state-dir: finished jobs as jobs/<id>.json, and each model's edits as one
// factors file per edit (edits/<model>/<id>.safetensors, written by exportEdits) listed in order by
// edits/<model>/index.json. Every file is written atomically (temporary, fsync, rename), and the
// index is written only after the edit's file, so a killed server leaves each edit whole or absent.
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { RomeError } from "../errors.js";
import { exportEdits, loadEdits } from "../host/api.js";
import { writeFileAtomic } from "../io/atomic.js";
import { FINISHED, type JobRecord, type JobStore } from "./jobs.js";
import type { ModelPool, ServedModel } from "./models.js";

/** Ids the service gives edits (and keeps from imported files): safe as file names. */
export const EDIT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class StateStore implements JobStore {
  /** Per model, the writes in order (an index never overtakes the file it lists). */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(readonly dir: string) {
    mkdirSync(join(dir, "jobs"), { recursive: true });
    mkdirSync(join(dir, "edits"), { recursive: true });
  }

  saveJob(record: JobRecord): void {
    writeFileAtomic(join(this.dir, "jobs", `${record.id}.json`), JSON.stringify(record));
  }

  removeJob(id: string): void {
    rmSync(join(this.dir, "jobs", `${id}.json`), { force: true });
  }

  /**
   * The stored jobs, oldest first. A job the last server did not finish (it was killed) comes
   * back failed with ERR_INTERRUPTED, and is stored so.
   */
  loadJobs(): JobRecord[] {
    const records: JobRecord[] = [];
    for (const name of readdirSync(join(this.dir, "jobs"))) {
      if (!name.endsWith(".json") || name.startsWith(".")) continue;
      let r: JobRecord;
      try {
        r = JSON.parse(readFileSync(join(this.dir, "jobs", name), "utf8")) as JobRecord;
      } catch (e) {
        throw new RomeError("ERR_IO", `${join(this.dir, "jobs", name)} is not a job record (${(e as Error).message}); remove it`);
      }
      if (!FINISHED.includes(r.state)) {
        r = { ...r, state: "failed", finished: new Date().toISOString(), error: { code: "ERR_INTERRUPTED", message: "the server stopped before this job finished; submit it again" } };
        this.saveJob(r);
      }
      records.push(r);
    }
    return records.sort((a, b) => a.created.localeCompare(b.created));
  }

  /** Writes edit `id`'s factors, then the model's index. */
  saveEdit(model: ServedModel, id: string): Promise<void> {
    return this.enqueue(model, async () => {
      await exportEdits(model.primary, this.editFile(model, id), [id]);
      this.writeIndex(model);
    });
  }

  /** Writes the model's index without `id`, then removes its file. */
  removeEdit(model: ServedModel, id: string): Promise<void> {
    return this.enqueue(model, async () => {
      this.writeIndex(model);
      rmSync(this.editFile(model, id), { force: true });
    });
  }

  /** Applies every stored edit to its model, in the stored order; returns how many. */
  async restoreEdits(pool: ModelPool): Promise<number> {
    let n = 0;
    for (const model of pool.models.values()) {
      let ids: string[];
      try {
        ids = (JSON.parse(readFileSync(join(this.modelDir(model), "index.json"), "utf8")) as { ids: string[] }).ids;
      } catch {
        continue; // no edits stored for this model
      }
      for (const id of ids) {
        const [edit] = await loadEdits(this.editFile(model, id), model.primary);
        model.apply({ ...edit!, id });
        n++;
      }
    }
    return n;
  }

  /** Resolves when every write has finished. */
  async flush(): Promise<void> {
    await Promise.all(this.chains.values());
  }

  private modelDir(model: ServedModel): string {
    const d = join(this.dir, "edits", model.name);
    mkdirSync(d, { recursive: true });
    return d;
  }

  private editFile(model: ServedModel, id: string): string {
    if (!EDIT_ID.test(id)) throw new RomeError("ERR_ARGUMENT", `edit id ${JSON.stringify(id)} cannot name a file`);
    return join(this.modelDir(model), `${id}.safetensors`);
  }

  private writeIndex(model: ServedModel): void {
    const dir = this.modelDir(model);
    const stored = new Set(readdirSync(dir).filter((n) => n.endsWith(".safetensors")).map((n) => n.slice(0, -".safetensors".length)));
    const ids = model.list().map((e) => e.id).filter((id) => stored.has(id));
    writeFileAtomic(join(dir, "index.json"), JSON.stringify({ ids }));
  }

  private enqueue(model: ServedModel, fn: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(model.name) ?? Promise.resolve()).then(fn);
    this.chains.set(model.name, next.catch(() => undefined));
    return next;
  }
}
