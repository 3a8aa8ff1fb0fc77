// The rows of a chunk of MEMIT target optimisations, laid out once and fed to the batched gradient
// graph (memit-z-graph.ts) for any subset of its requests. A request's rewriting prompts that
// tokenize alike are one row counted with their multiplicity (the same terms of the same loss), and
// the layers up to the z layer and the columns before the earliest subject-last token run once here
// (in slices of rows: lib/runtime/engine-rows.ts).
// `feeds(active)` gathers the rows of the requests still optimising, so requests that stopped
// early cost nothing in later steps: rows are independent, so each request's loss and gradient
// are the same in any subset.
import { attentionBias, padBatch, sliceColumns, splitBatch } from "../runtime/batch.js";
import { throwIfAborted, type CallOptions } from "../runtime/call.js";
import type { EditView } from "../runtime/edit-view.js";
import { runRows } from "../runtime/engine-rows.js";
import type { KVCache } from "../runtime/engine.js";
import type { Model } from "../runtime/model.js";
import type { Feed } from "../runtime/session.js";
import type { Located } from "./lookup.js";
import type { TargetPrompts } from "./memit-z.js";
import { ZG, type ZSession } from "./memit-z-graph.js";
import { feedLayersAbove } from "./value-graph.js";

export interface ChunkLayout {
  /** (R, D) block output at each request's first rewriting prompt's subject-last token */
  zInit: Float32Array;
  /** Per request, the row of each of its rewriting prompts (prompts alike share a row). */
  promptRow: number[][];
  /** Per target token over all rows: its request, row and NLL weight (multiplicity / (target length · prompts)). */
  tokenRequest: number[];
  tokenRow: number[];
  weights: number[];
  /** The feeds of the requests `active` (indices into the chunk, ascending): rows, target tokens and KL rows of those only; tokens lists the target tokens fed, in order. */
  feeds(active: readonly number[]): { feeds: Record<string, Feed>; tokens: number[] };
}

export async function layoutChunk(model: Model, layer: number, requests: readonly TargetPrompts[], z: ZSession, call: CallOptions & { edits: EditView }): Promise<ChunkLayout> {
  const { edits } = call;
  const cfg = model.config;
  const D = cfg.nEmbd;
  const R = requests.length;
  // Rows: each request's distinct rewriting prompts, then its KL prompt.
  const rows: Located[] = [];
  const rowRequest: number[] = [];
  const count: number[] = []; // (rows) how many of the request's rewriting prompts the row stands for
  const promptRow: number[][] = [];
  const klRow: number[] = [];
  requests.forEach((q, r) => {
    const seen = new Map<string, number>();
    promptRow.push(q.rewriting.map((x) => {
      const key = `${x.index}:${x.ids.join(",")}`;
      let b = seen.get(key);
      if (b === undefined) {
        b = rows.length;
        seen.set(key, b);
        rows.push(x);
        rowRequest.push(r);
        count.push(0);
      }
      count[b]!++;
      return b;
    }));
    klRow.push(rows.length);
    rows.push(q.kl);
    rowRequest.push(r);
    count.push(0);
  });
  const batch = padBatch(rows.map((x) => x.ids));
  const { B, T } = batch;
  const lower = await runRows(model.engine, batch, { edits, stopLayer: layer + 1 });
  throwIfAborted(call.signal);
  const at = (b: number) => (b * T + batch.pad[b]! + rows[b]!.index) * D;
  const zInit = new Float32Array(R * D);
  for (let r = 0; r < R; r++) zInit.set(lower.resid.subarray(at(promptRow[r]![0]!), at(promptRow[r]![0]!) + D), r * D);

  // Columns before the earliest subject-last token are the same at every step (see value.ts).
  const P0 = Math.min(...rows.map((x, b) => batch.pad[b]! + x.index));
  const W = T - P0;
  const { head: prefix, tail: win } = splitBatch(batch, P0);
  const above = P0 > 0 ? (await runRows(model.engine, prefix, { edits, from: { layer: layer + 1, resid: sliceColumns(lower.resid, B, T, D, 0, P0) }, keepCache: true })).cache! : undefined;
  throwIfAborted(call.signal);
  const col = (b: number, pos: number) => batch.pad[b]! + pos - P0;

  const resid = sliceColumns(lower.resid, B, T, D, P0, T); // (B, W, D)
  const mask = new Float32Array(B * W);                   // (B, W)
  rows.forEach((x, b) => (mask[b * W + col(b, x.index)] = 1));
  const bias = attentionBias(win);                        // (B, 1, W, T)
  const tokenRequest: number[] = [];
  const tokenRow: number[] = [];
  const tokenCol: number[] = [];
  const targets: number[] = [];
  const weights: number[] = [];
  rows.forEach((x, b) => {
    if (count[b] === 0) return; // a KL row
    const q = requests[rowRequest[b]!]!;
    const nT = q.target.length;
    for (let k = 0; k < nT; k++) {
      tokenRequest.push(rowRequest[b]!);
      tokenRow.push(b);
      tokenCol.push(col(b, x.ids.length - nT + k));
      targets.push(q.target[k]!);
      weights.push(count[b]! / (nT * q.rewriting.length));
    }
  });
  const rowsOf: number[][] = requests.map(() => []);
  rowRequest.forEach((r, b) => rowsOf[r]!.push(b));
  const tokensOf: number[][] = requests.map(() => []);
  tokenRequest.forEach((r, i) => tokensOf[r]!.push(i));
  const H = cfg.nKvHead;
  const Dh = cfg.headDim;

  function feeds(active: readonly number[]): { feeds: Record<string, Feed>; tokens: number[] } {
    const sel = active.flatMap((r) => rowsOf[r]!); // subset row → chunk row
    const newRow = new Map(sel.map((b, i) => [b, i]));
    const tokens = active.flatMap((r) => tokensOf[r]!);
    const Bs = sel.length;
    const requestOf = new Map(active.map((r, i) => [r, i]));
    const read = [...tokens.map((i) => tokenCol[i]!), ...active.map((r) => col(klRow[r]!, rows[klRow[r]!]!.index))]; // (Nn + Ra) window columns the loss reads
    const queries = [...new Set(read)].sort((x, y) => x - y); // (Q) where the last layer's queries run
    const query = new Map(queries.map((c, j) => [c, j]));
    const f: Record<string, Feed> = {
      [ZG.resid]: { data: gatherRows(resid, W * D, sel), dims: [Bs, W, D] },
      [ZG.mask]: { data: gatherRows(mask, W, sel), dims: [Bs, W, 1] },
      [ZG.rowRequest]: { data: BigInt64Array.from(sel, (b) => BigInt(requestOf.get(rowRequest[b]!)!)), dims: [Bs] },
      [ZG.bias]: { data: gatherRows(bias, W * T, sel), dims: [Bs, 1, W, T] },
      [ZG.queries]: { data: BigInt64Array.from(queries, BigInt), dims: [queries.length] },
      [ZG.select]: {
        data: BigInt64Array.from([...tokens.map((i) => newRow.get(tokenRow[i]!)!), ...active.map((r) => newRow.get(klRow[r]!)!)].flatMap((b, j) => [b, query.get(read[j]!)!]), BigInt),
        dims: [read.length, 2],
      },
      [ZG.nllRows]: { data: BigInt64Array.from(tokens, (_, i) => BigInt(i)), dims: [tokens.length] },
      [ZG.klRows]: { data: BigInt64Array.from(active, (_, i) => BigInt(tokens.length + i)), dims: [active.length] },
      [ZG.targets]: { data: BigInt64Array.from(tokens, (i) => BigInt(targets[i]!)), dims: [tokens.length, 1] },
      [ZG.weights]: { data: Float32Array.from(tokens, (i) => weights[i]!), dims: [tokens.length] },
    };
    const past: KVCache | undefined = above && { past: above.past, key: above.key.map((k) => k && gatherRows(k, H * P0 * Dh, sel)), value: above.value.map((v) => v && gatherRows(v, H * P0 * Dh, sel)) };
    feedLayersAbove(model, layer, edits, past, Bs, P0, z.weightNames, f);
    if (z.session.inputNames.includes(ZG.positions)) f[ZG.positions] = { data: gatherRows(win.positions, W, sel), dims: [Bs, W] };
    return { feeds: f, tokens };
  }
  return { zInit, promptRow, tokenRequest, tokenRow, weights, feeds };
}

/** Rows `sel` of a row-major array of rows of `size` elements: `x` itself when `sel` is all its rows
 * in order (the first step's feeds: no copy into new memory, whose page faults are this VM's dearest
 * cost, docs/memit-experiments.md). */
export function gatherRows<A extends Float32Array | BigInt64Array>(x: A, size: number, sel: readonly number[]): A {
  if (sel.length * size === x.length && sel.every((b, i) => b === i)) return x;
  const out = new (x.constructor as { new(n: number): A })(sel.length * size);
  sel.forEach((b, i) => out.set(x.subarray(b * size, (b + 1) * size) as never, i * size));
  return out;
}
