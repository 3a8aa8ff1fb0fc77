// The edits applied to a loaded model, held as low-rank factors beside the base weights: the MLP
// segment of an edited layer computes key · W + (key · U) · V with U, V stacked from the enabled
// edits of that layer. Applying, undoing, stacking and switching subsets never copy or modify the
// base weights, so the model after any apply/undo sequence is bit-identical to one that never saw
// the undone edits. The set is never read by a running call: apply, undo and enableOnly build a
// new immutable EditView, and each call captures the view current when it starts (or takes one
// as its `edits` option), so nothing a call does not own changes under it.
import { AsyncLocalStorage } from "node:async_hooks";
import { RomeError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";
import { EditView, stackFactors, type LayerFactors } from "./edit-view.js";

/** A rank-one edit of layer `layer`'s MLP output projection (ROME): ΔW = u vᵀ ([F, D], in_out layout). */
export interface RankOneEdit {
  id: string;
  layer: number;
  u: Float32Array; // (F)
  v: Float32Array; // (D)
  /** What the edit was made for (the request, form, norms…); kept with the edit when exported. */
  info?: Record<string, unknown>;
}

/** An edit of several layers (MEMIT), each by rank-r factors: ΔW_l = U_l V_l with U_l (F, r), V_l (r, D). */
export interface LowRankEdit {
  id: string;
  /** At most one entry per layer. */
  layers: readonly LayerFactors[];
  info?: Record<string, unknown>;
}

export type Edit = RankOneEdit | LowRankEdit;
/** An edit to apply; without an id one is assigned. */
export type NewEdit = (Omit<RankOneEdit, "id"> | Omit<LowRankEdit, "id">) & { id?: string };

/**
 * The edit set a call runs with: the ids of applied edits (exactly those are enabled for that call,
 * whatever the model's own selection), or a view. Default: the model's enabled edits when the call
 * starts.
 */
export type EditSelection = readonly string[] | EditView;

export interface EditSummary {
  id: string;
  /** The first (lowest) layer the edit changes. */
  layer: number;
  /** Every layer the edit changes, ascending. */
  layers: number[];
  /** Σ of the ranks of its layers (1 for a ROME edit). */
  rank: number;
  enabled: boolean;
  /** ‖ΔW‖_F over all its layers. */
  norm: number;
  info?: Record<string, unknown>;
}

/** The layers of an edit as factor pairs (a rank-one edit is one pair of rank 1). */
export function editLayers(edit: Edit): readonly LayerFactors[] {
  return "layers" in edit ? edit.layers : [{ layer: edit.layer, u: edit.u, v: edit.v }];
}

interface Held {
  edit: Edit;
  layers: readonly LayerFactors[];
  norm: number;
}

export class EditSet {
  private held: Held[] = [];
  private disabled = new Set<string>();
  private current = EditView.NONE;
  private counter = 0;
  /** The view of a `withOnly` scope, for calls made inside it without an explicit selection. */
  private readonly scope = new AsyncLocalStorage<EditView>();

  constructor(private readonly config: ModelConfig) {}

  /** Applies an edit on top of those already applied; returns its id. The factors are copied. */
  apply(edit: NewEdit): string {
    const id = edit.id ? edit.id : `edit-${++this.counter}`;
    if (typeof id !== "string") throw new RomeError("ERR_ARGUMENT", "an edit id must be a string");
    if (this.held.some((h) => h.edit.id === id)) throw new RomeError("ERR_ARGUMENT", `an edit with id ${id} is already applied`);
    const layers = this.checkLayers(edit as Edit).map((l) => ({ layer: l.layer, u: l.u.slice(), v: l.v.slice() }));
    const stored: Edit = "layers" in edit ? { id, layers, info: edit.info } : { ...edit, id, u: layers[0]!.u, v: layers[0]!.v };
    this.held = [...this.held, { edit: stored, layers, norm: Math.sqrt(layers.reduce((a, l) => a + frobenius2(l, this.config), 0)) }];
    this.rebuild(layers.map((l) => l.layer));
    return id;
  }

  /** Removes an applied edit; the model computes exactly what it did before the edit. */
  undo(id: string): Edit {
    const h = this.find(id);
    this.held = this.held.filter((x) => x !== h);
    this.disabled = new Set([...this.disabled].filter((d) => d !== id));
    this.rebuild(h.layers.map((l) => l.layer));
    return h.edit;
  }

  /** Undoes every edit. */
  clear(): void {
    const layers = this.held.flatMap((h) => h.layers.map((l) => l.layer));
    this.held = [];
    this.disabled = new Set();
    this.rebuild(layers);
  }

  list(): EditSummary[] {
    return this.held.map(({ edit, layers, norm }) => {
      const ls = layers.map((l) => l.layer).sort((a, b) => a - b);
      const rank = layers.reduce((a, l) => a + l.v.length / this.config.nEmbd, 0);
      return { id: edit.id, layer: ls[0]!, layers: ls, rank, enabled: !this.disabled.has(edit.id), norm, info: edit.info };
    });
  }

  get(id: string): Edit | undefined {
    return this.held.find((h) => h.edit.id === id)?.edit;
  }

  /** Applied edits in order (enabled or not). */
  all(): readonly Edit[] {
    return this.held.map((h) => h.edit);
  }

  /** Enables exactly the edits in `ids` (all applied edits when undefined). Calls in flight keep their edits. */
  enableOnly(ids?: readonly string[]): void {
    for (const id of ids ?? []) this.find(id);
    this.disabled = new Set(ids ? this.held.map((h) => h.edit.id).filter((id) => !ids.includes(id)) : []);
    this.rebuild(this.held.flatMap((h) => h.layers.map((l) => l.layer)));
  }

  /**
   * The edit set of a call: the given view, exactly the applied edits in `ids`, or (undefined)
   * the enabled edits now — those of the enclosing `withOnly` scope when there is one.
   */
  view(selection?: EditSelection): EditView {
    if (selection === undefined) return this.scope.getStore() ?? this.current;
    if (selection instanceof EditView) return selection;
    if (!Array.isArray(selection) || selection.some((id) => typeof id !== "string")) {
      throw new RomeError("ERR_ARGUMENT", "edits must be an array of applied edit ids or an EditView");
    }
    const chosen = selection.map((id) => this.find(id));
    const ordered = this.held.filter((h) => chosen.includes(h)); // stacked in apply order, as the model's own set
    const byLayer = new Map<number, LayerFactors[]>();
    for (const h of ordered) for (const l of h.layers) (byLayer.get(l.layer) ?? byLayer.set(l.layer, []).get(l.layer)!).push(l);
    const stacked = new Map([...byLayer].map(([layer, parts]) => [layer, stackFactors(parts, this.config)!]));
    return new EditView(stacked, ordered.map((h) => h.edit.id));
  }

  /**
   * Runs `fn` with only the edits in `ids` enabled for the calls it makes (and passes it their
   * view). Nothing shared changes: other calls, before, during and after, see the model's own
   * selection, and concurrent `withOnly` scopes do not see each other's.
   */
  withOnly<T>(ids: readonly string[], fn: (edits: EditView) => Promise<T>): Promise<T> {
    const v = this.view(ids);
    return this.scope.run(v, () => fn(v));
  }

  /** The view of the enclosing `withOnly` scope, if any (a hosted model sends its ids with each call). */
  scoped(): EditView | undefined {
    return this.scope.getStore();
  }

  private find(id: string): Held {
    const h = this.held.find((x) => x.edit.id === id);
    if (!h) throw new RomeError("ERR_EDIT_UNKNOWN", `no applied edit has id ${JSON.stringify(id)}; applied: ${this.held.map((x) => x.edit.id).join(", ") || "none"}`);
    return h;
  }

  /** Checks an edit's layers and factor shapes against the model. */
  private checkLayers(edit: Edit): readonly LayerFactors[] {
    const { nInner: F, nEmbd: D, nLayer } = this.config;
    if ("layers" in edit && (!Array.isArray(edit.layers) || edit.layers.length === 0)) throw new RomeError("ERR_ARGUMENT", "a low-rank edit needs a non-empty array of { layer, u, v }");
    const layers = editLayers(edit);
    const seen = new Set<number>();
    for (const { layer, u, v } of layers) {
      if (!Number.isInteger(layer) || layer < 0 || layer >= nLayer) {
        throw new RomeError("ERR_ARGUMENT", `edit layer ${layer} is outside the model's layers 0–${nLayer - 1}`);
      }
      if (seen.has(layer)) throw new RomeError("ERR_ARGUMENT", `an edit lists layer ${layer} twice; stack its factors into one entry`);
      seen.add(layer);
      const r = v instanceof Float32Array ? v.length / D : NaN;
      if (!(u instanceof Float32Array) || !(v instanceof Float32Array) || !Number.isInteger(r) || r < 1 || u.length !== F * r) {
        throw new RomeError("ERR_ARGUMENT", `edit factors of layer ${layer} must be u: Float32Array(${F} × r) and v: Float32Array(r × ${D}) with r ≥ 1`);
      }
      if (!u.every(Number.isFinite) || !v.every(Number.isFinite)) {
        throw new RomeError("ERR_NOT_FINITE", `the edit's factors of layer ${layer} contain NaN or infinity; it was not applied`);
      }
    }
    return layers;
  }

  /** A new current view with the factors of `layers` restacked from the enabled edits. */
  private rebuild(layers: readonly number[]): void {
    const on = this.held.filter((h) => !this.disabled.has(h.edit.id));
    const ids = on.map((h) => h.edit.id);
    let view = new EditView(new Map(), ids);
    // Layers not in `layers` keep their (immutable) factors from the previous view.
    for (const l of this.current.layers) if (!layers.includes(l)) view = view.withLayer(l, this.current.factors(l), ids);
    for (const l of new Set(layers)) view = view.withLayer(l, stackFactors(on.flatMap((h) => h.layers.filter((x) => x.layer === l)), this.config), ids);
    this.current = view;
  }
}

/** ‖U V‖_F² = Σ_ij (UᵀU)_ij (V Vᵀ)_ij, in float64. */
function frobenius2({ u, v }: LayerFactors, config: ModelConfig): number {
  const F = config.nInner;
  const D = config.nEmbd;
  const r = v.length / D;
  let s = 0;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      let uu = 0;
      for (let f = 0; f < F; f++) uu += u[f * r + i]! * u[f * r + j]!;
      let vv = 0;
      for (let d = 0; d < D; d++) vv += v[i * D + d]! * v[j * D + d]!;
      s += uu * vv;
    }
  }
  return s;
}
