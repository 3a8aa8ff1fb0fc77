// The edits applied to a loaded model, held as rank-one factors beside the base weights: the MLP
// segment of an edited layer computes key · W + (key · U) · V with U, V stacked from the enabled
// edits of that layer. Applying, undoing, stacking and switching subsets never copy or modify the
// base weights, so the model after any apply/undo sequence is bit-identical to one that never saw
// the undone edits. Merging into the weights is explicit and reversible bit for bit.
import { RomeError } from "../errors.js";
import type { Engine } from "./engine.js";
import type { ModelConfig } from "../model/config.js";

/** A rank-one edit of layer `layer`'s MLP output projection: ΔW = u vᵀ ([F, D], in_out layout). */
export interface Edit {
  id: string;
  layer: number;
  u: Float32Array; // (F)
  v: Float32Array; // (D)
  /** What the edit was made for (the request, form, norms…); kept with the edit when exported. */
  info?: Record<string, unknown>;
}

export interface EditSummary {
  id: string;
  layer: number;
  enabled: boolean;
  /** ‖u vᵀ‖_F */
  norm: number;
  info?: Record<string, unknown>;
}

export class EditSet {
  private readonly edits: Edit[] = [];
  private readonly disabled = new Set<string>();
  private counter = 0;

  /** `engine` receives the stacked factors of each layer whose edits change. */
  constructor(private readonly engine: Pick<Engine, "setEditFactors">, private readonly config: ModelConfig) {}

  /** Applies an edit on top of those already applied; returns its id. */
  apply(edit: Edit | Omit<Edit, "id">): string {
    const { nInner: F, nEmbd: D, nLayer } = this.config;
    if (!Number.isInteger(edit.layer) || edit.layer < 0 || edit.layer >= nLayer) {
      throw new RomeError("ERR_ARGUMENT", `edit layer ${edit.layer} is outside the model's layers 0–${nLayer - 1}`);
    }
    if (!(edit.u instanceof Float32Array) || edit.u.length !== F || !(edit.v instanceof Float32Array) || edit.v.length !== D) {
      throw new RomeError("ERR_ARGUMENT", `an edit needs u: Float32Array(${F}) and v: Float32Array(${D})`);
    }
    if (!edit.u.every(Number.isFinite) || !edit.v.every(Number.isFinite)) {
      throw new RomeError("ERR_NOT_FINITE", "the edit's factors contain NaN or infinity; it was not applied");
    }
    const id = "id" in edit && edit.id ? edit.id : `edit-${++this.counter}`;
    if (this.edits.some((e) => e.id === id)) throw new RomeError("ERR_ARGUMENT", `an edit with id ${id} is already applied`);
    this.edits.push({ ...edit, id });
    this.refresh(edit.layer);
    return id;
  }

  /** Removes an applied edit; the model computes exactly what it did before the edit. */
  undo(id: string): Edit {
    const i = this.edits.findIndex((e) => e.id === id);
    if (i < 0) throw new RomeError("ERR_EDIT_UNKNOWN", `no applied edit has id ${JSON.stringify(id)}; applied: ${this.edits.map((e) => e.id).join(", ") || "none"}`);
    const [edit] = this.edits.splice(i, 1);
    this.disabled.delete(id);
    this.refresh(edit!.layer);
    return edit!;
  }

  /** Undoes every edit. */
  clear(): void {
    const layers = new Set(this.edits.map((e) => e.layer));
    this.edits.length = 0;
    this.disabled.clear();
    for (const l of layers) this.refresh(l);
  }

  list(): EditSummary[] {
    return this.edits.map((e) => ({ id: e.id, layer: e.layer, enabled: !this.disabled.has(e.id), norm: norm(e.u) * norm(e.v), info: e.info }));
  }

  get(id: string): Edit | undefined {
    return this.edits.find((e) => e.id === id);
  }

  /** Applied edits in order (enabled or not). */
  all(): readonly Edit[] {
    return this.edits;
  }

  /** Enables exactly the edits in `ids` (all applied edits when undefined). */
  enableOnly(ids?: readonly string[]): void {
    for (const id of ids ?? []) if (!this.get(id)) throw new RomeError("ERR_EDIT_UNKNOWN", `no applied edit has id ${JSON.stringify(id)}`);
    this.disabled.clear();
    if (ids) for (const e of this.edits) if (!ids.includes(e.id)) this.disabled.add(e.id);
    for (const l of new Set(this.edits.map((e) => e.layer))) this.refresh(l);
  }

  /** Runs `fn` with only the edits in `ids` enabled, then restores the previous selection. */
  async withOnly<T>(ids: readonly string[], fn: () => Promise<T>): Promise<T> {
    const before = this.edits.filter((e) => !this.disabled.has(e.id)).map((e) => e.id);
    this.enableOnly(ids);
    try {
      return await fn();
    } finally {
      this.enableOnly(before);
    }
  }

  /** Stacks the enabled edits of `layer` into the engine's factors U (F, r), V (r, D). */
  private refresh(layer: number): void {
    const F = this.config.nInner;
    const D = this.config.nEmbd;
    const on = this.edits.filter((e) => e.layer === layer && !this.disabled.has(e.id));
    const r = on.length;
    const u = new Float32Array(F * r);
    const v = new Float32Array(r * D);
    on.forEach((e, j) => {
      for (let f = 0; f < F; f++) u[f * r + j] = e.u[f]!;
      v.set(e.v, j * D);
    });
    this.engine.setEditFactors(layer, r ? { rank: r, u, v } : undefined);
  }
}

function norm(x: Float32Array): number {
  let s = 0;
  for (const a of x) s += a * a;
  return Math.sqrt(s);
}
