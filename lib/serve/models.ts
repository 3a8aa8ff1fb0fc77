// The models a service holds: each loaded on `workers` worker threads (HostedModel replicas), so
// that model work never runs on the HTTP thread. Calls go to the least busy replica; edits are
// applied to and undone on every replica with the same id, so any replica answers with the same
// edit set. Statistics for edits are computed once per layer and kept.
import { existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { RomeError } from "../errors.js";
import { computeStats } from "../host/api.js";
import { HostedModel } from "../host/hosted-model.js";
import type { Stats } from "../edit/stats.js";
import type { Tokenizer } from "../model/tokenizer.js";
import { Tokenizer as TokenizerClass } from "../model/tokenizer.js";
import { AbortError, type CallOptions } from "../runtime/call.js";
import type { Edit, EditSummary, NewEdit } from "../runtime/edits.js";

export interface ModelSpec {
  dir: string;
  /** Worker threads (replicas) for this model. Default 1. */
  workers?: number;
  /** onnxruntime threads per replica. Default 1. */
  threads?: number;
  /** Corpus for the statistics of edits. Default: `train.txt` in the model directory, when present. */
  corpus?: string;
  /** Cache of statistics (computeStats' cacheDir). */
  statsDir?: string;
  /** Tokens of the corpus the statistics read (computeStats' maxTokens). Default: all. */
  statsTokens?: number;
}

export class ServedModel {
  private readonly busy: number[];
  private readonly stats = new Map<number, Promise<Stats>>();

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly replicas: readonly HostedModel[],
    /** A tokenizer on the HTTP thread, for counting the tokens of long prompts. */
    readonly tokenizer: Tokenizer,
    private readonly spec: ModelSpec,
  ) {
    this.busy = replicas.map(() => 0);
  }

  static async load(name: string, spec: ModelSpec): Promise<ServedModel> {
    const dir = resolve(spec.dir);
    const n = spec.workers ?? 1;
    const replicas: HostedModel[] = [];
    try {
      for (let i = 0; i < n; i++) replicas.push(await HostedModel.load(dir, { threads: spec.threads ?? 1 }));
      return new ServedModel(name, dir, replicas, await TokenizerClass.load(dir), spec);
    } catch (e) {
      await Promise.all(replicas.map((r) => r.dispose()));
      throw e;
    }
  }

  /** The replica that answers reads of the edit mirror and runs exports. */
  get primary(): HostedModel {
    return this.replicas[0]!;
  }

  /** Calls in flight on all replicas. */
  get inFlight(): number {
    return this.busy.reduce((a, b) => a + b, 0);
  }

  /** Runs `fn` on the least busy replica. */
  async run<T>(fn: (m: HostedModel) => Promise<T>): Promise<T> {
    let i = 0;
    for (let j = 1; j < this.busy.length; j++) if (this.busy[j]! < this.busy[i]!) i = j;
    this.busy[i]!++;
    try {
      return await fn(this.replicas[i]!);
    } finally {
      this.busy[i]!--;
    }
  }

  /** Throws ERR_EDIT_UNKNOWN unless every id is an applied edit. */
  checkEdits(ids: readonly string[] | undefined): void {
    if (ids) this.primary.edits.view(ids);
  }

  /** Applies an edit (with its id) on every replica. */
  apply(edit: NewEdit & { id: string }): string {
    for (const r of this.replicas) r.edits.apply(edit);
    return edit.id;
  }

  /** Undoes an edit on every replica. */
  undo(id: string): Edit {
    const edit = this.primary.edits.undo(id);
    for (const r of this.replicas.slice(1)) r.edits.undo(id);
    return edit;
  }

  has(id: string): boolean {
    return this.primary.edits.get(id) !== undefined;
  }

  list(): EditSummary[] {
    return this.primary.edits.list();
  }

  /**
   * Statistics of `layer` for edits, computed (or read from the cache) once and shared by the jobs
   * that need them: `signal` stops this caller's wait, not the computation the others may share.
   * Progress goes to the caller that started the computation.
   */
  statsFor(layer: number, options: CallOptions): Promise<Stats> {
    const corpus = this.spec.corpus ?? (existsSync(join(this.dir, "train.txt")) ? join(this.dir, "train.txt") : undefined);
    if (!corpus) return Promise.reject(new RomeError("ERR_STATS", `no corpus for the statistics of ${this.name}: start the server with --corpus <file>`));
    let p = this.stats.get(layer);
    if (!p) {
      p = this.run((m) => computeStats(m, { layer, corpus, cacheDir: this.spec.statsDir, maxTokens: this.spec.statsTokens, onProgress: options.onProgress }));
      this.stats.set(layer, p);
      p.catch(() => this.stats.delete(layer)); // a failed computation is retried by the next edit
    }
    return untilAborted(p, options.signal);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.dispose()));
  }
}

/** The served models by name (the directory's base name, made unique); the first is the default. */
export class ModelPool {
  private constructor(readonly models: ReadonlyMap<string, ServedModel>) {}

  static async load(specs: readonly ModelSpec[]): Promise<ModelPool> {
    if (specs.length === 0) throw new RomeError("ERR_ARGUMENT", "serve needs at least one --model directory");
    const models = new Map<string, ServedModel>();
    try {
      for (const spec of specs) {
        let name = basename(resolve(spec.dir));
        for (let i = 2; models.has(name); i++) name = `${basename(resolve(spec.dir))}-${i}`;
        models.set(name, await ServedModel.load(name, spec));
      }
    } catch (e) {
      await Promise.all([...models.values()].map((m) => m.dispose()));
      throw e;
    }
    return new ModelPool(models);
  }

  /** The model a request names, or the default one. */
  get(name: string | undefined): ServedModel {
    if (name === undefined) return this.models.values().next().value!;
    const m = this.models.get(name);
    if (!m) throw new RomeError("ERR_NOT_FOUND", `no model named ${JSON.stringify(name)}; served: ${[...this.models.keys()].join(", ")}`);
    return m;
  }

  /** The model holding edit `id`. */
  holding(id: string): ServedModel {
    for (const m of this.models.values()) if (m.has(id)) return m;
    throw new RomeError("ERR_EDIT_UNKNOWN", `no applied edit has id ${JSON.stringify(id)}`);
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.models.values()].map((m) => m.dispose()));
  }
}

/** `p`, or an AbortError as soon as `signal` aborts. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new AbortError(signal.reason));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new AbortError(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
