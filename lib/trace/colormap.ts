// matplotlib's sequential colour maps used by the paper's figures (Purples for the residual
// stream, Greens for MLP, Reds for attention): ColorBrewer's 9 anchors, interpolated linearly in RGB.

import type { TraceKind } from "./grid.js";

/** 9 anchors from the lightest (value 0) to the darkest (value 1), as matplotlib's `_cm.py` has them. */
export const COLORMAPS = {
  Purples: ["#fcfbfd", "#efedf5", "#dadaeb", "#bcbddc", "#9e9ac8", "#807dba", "#6a51a3", "#54278f", "#3f007d"],
  Greens: ["#f7fcf5", "#e5f5e0", "#c7e9c0", "#a1d99b", "#74c476", "#41ab5d", "#238b45", "#006d2c", "#00441b"],
  Reds: ["#fff5f0", "#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d", "#a50f15", "#67000d"],
} as const;

export type ColormapName = keyof typeof COLORMAPS;

/** The paper's colour map for a kind of trace. */
export function colormapFor(kind: TraceKind): ColormapName {
  return kind === "mlp" ? "Greens" : kind === "attn" ? "Reds" : "Purples";
}

/** Colour of `fraction` in [0, 1] (clamped; NaN maps to 0) as "#rrggbb". */
export function colorAt(name: ColormapName, fraction: number): string {
  const anchors = COLORMAPS[name];
  const f = Number.isNaN(fraction) ? 0 : Math.min(1, Math.max(0, fraction));
  const pos = f * (anchors.length - 1);
  const i = Math.min(anchors.length - 2, Math.floor(pos));
  const w = pos - i;
  const a = parseHex(anchors[i]!);
  const b = parseHex(anchors[i + 1]!);
  return "#" + [0, 1, 2].map((c) => Math.round(a[c]! + (b[c]! - a[c]!) * w).toString(16).padStart(2, "0")).join("");
}

export function parseHex(hex: string): [number, number, number] {
  const v = Number.parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}
