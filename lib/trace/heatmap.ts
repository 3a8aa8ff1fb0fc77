// SVG heatmaps of causal traces as the paper draws them: tokens down, layers across, subject
// tokens starred, Purples/Greens/Reds from the corrupted score (white) up to the grid's maximum,
// a p(answer) colour bar; and the six-bucket plots of averaged indirect effects.

import { checkOptionNames, RomeError } from "../errors.js";
import { colorAt, colormapFor, COLORMAPS, type ColormapName } from "./colormap.js";
import type { TraceGrid, TraceKind } from "./grid.js";
import type { AveragedEffects } from "./average.js";

export { svgToPng } from "./png.js";

export interface HeatmapOptions {
  /** Title above the grid. Default: the reference's ("Impact of restoring state after corrupted input"). */
  title?: string;
  /** Label under the layer axis. Default: the reference's for the kind and window. */
  xLabel?: string;
  /** Model name in the residual x label. Default: `modelName` of the trace, else "GPT". */
  modelName?: string;
  /** Score drawn darkest. Default: the maximum score of the grid (matplotlib's pcolor). */
  vmax?: number;
  /** Score drawn white. Default: the trace's lowScore (the reference's vmin). */
  vmin?: number;
  /** Cell size in pixels, [width, height]. Default: width from the layer count (6–24), height 16. */
  cell?: [number, number];
}

/** Input of `heatmapSvg`: a trace result, or any grid with these fields. */
export type HeatmapInput = Pick<TraceGrid, "scores" | "tokens" | "subjectRange" | "lowScore" | "kind" | "window" | "answer"> &
  Partial<Pick<TraceGrid, "highScore" | "modelName">>;

const FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";
const FONT_SIZE = 11;
const CHAR_W = 6.6; // rough advance of an 11 px sans-serif character, for layout only

/** One trace as an SVG document: one `<rect class="cell">` per (token, layer). */
export function heatmapSvg(result: HeatmapInput, options: HeatmapOptions = {}): string {
  checkOptionNames("heatmapSvg", options, ["title", "xLabel", "modelName", "vmax", "vmin", "cell"]);
  const { scores, tokens } = result;
  const layers = checkGrid(scores, tokens.length, "scores");
  const [b, e] = result.subjectRange;
  const labels = tokens.map((tok, i) => visible(tok) + (i >= b && i < e ? "*" : ""));
  const kindName = result.kind === "mlp" ? "MLP" : result.kind === "attn" ? "Attn" : "";
  const title = options.title ?? (kindName ? `Impact of restoring ${kindName} after corrupted input` : "Impact of restoring state after corrupted input");
  const model = options.modelName ?? result.modelName ?? "GPT";
  const xLabel = options.xLabel ??
    (result.kind === "resid" ? `single restored layer within ${model}` : `center of interval of ${result.window} restored ${kindName} layers`);
  return drawGrid({
    scores, labels, layers, title, xLabel,
    vmin: options.vmin ?? result.lowScore,
    vmax: options.vmax ?? gridMax(scores),
    colormap: colormapFor(result.kind),
    barLabel: `p(${result.answer.token.trim()})`,
    cell: options.cell,
  });
}

export interface AveragedHeatmapOptions {
  title?: string;
  xLabel?: string;
  /** Model name in the residual x label. Default "GPT". */
  modelName?: string;
  /**
   * Value drawn darkest. Default: the maximum of `meanClipped`. The reference scales the MLP and
   * attention plots by the residual plot's maximum: pass it here to do the same.
   */
  vmax?: number;
  cell?: [number, number];
}

/** Averaged indirect effects (6 buckets × layers, clipped at 0 as the reference plots them) as SVG. */
export function averagedSvg(avg: AveragedEffects, options: AveragedHeatmapOptions = {}): string {
  checkOptionNames("averagedSvg", options, ["title", "xLabel", "modelName", "vmax", "cell"]);
  const layers = checkGrid(avg.meanClipped, avg.buckets.length, "meanClipped");
  const what = { resid: "Indirect Effect of h_i^(l)", mlp: "Indirect Effect of MLP", attn: "Indirect Effect of Attn" }[avg.kind];
  const kindName = avg.kind === "mlp" ? "MLP" : "Attn";
  return drawGrid({
    scores: avg.meanClipped,
    labels: avg.buckets,
    layers,
    title: options.title ?? `Avg ${what} over ${avg.n} prompts`,
    xLabel: options.xLabel ?? (avg.kind === "resid"
      ? `single patched layer within ${options.modelName ?? "GPT"}`
      : `center of interval of ${avg.window} patched ${kindName} layers`),
    vmin: 0,
    vmax: options.vmax ?? gridMax(avg.meanClipped),
    colormap: colormapFor(avg.kind),
    barLabel: "AIE",
    cell: options.cell,
  });
}

/** The colour a heatmap gives `score` for a kind and scale (for tests and legends). */
export function scoreColor(kind: TraceKind, score: number, vmin: number, vmax: number): string {
  return colorAt(colormapFor(kind), vmax > vmin ? (score - vmin) / (vmax - vmin) : 0);
}

interface GridSpec {
  scores: number[][]; // (rows, layers)
  labels: readonly string[]; // (rows,) y tick labels, not yet escaped
  layers: number;
  title: string;
  xLabel: string;
  vmin: number;
  vmax: number;
  colormap: ColormapName;
  barLabel: string;
  cell?: [number, number] | undefined;
}

function drawGrid(g: GridSpec): string {
  const rows = g.scores.length;
  const cellW = g.cell?.[0] ?? Math.max(6, Math.min(24, Math.floor(288 / Math.max(1, g.layers))));
  const cellH = g.cell?.[1] ?? 16;
  const labelW = Math.ceil(Math.max(0, ...g.labels.map((l) => l.length)) * CHAR_W);
  const x0 = 12 + labelW + 6;
  const y0 = 34;
  const gridW = cellW * g.layers;
  const gridH = cellH * rows;
  const barX = x0 + gridW + 18;
  const barW = 12;
  const ticks = niceTicks(g.vmin, g.vmax);
  const tickLabelW = Math.max(...ticks.map((t) => formatTick(t, ticks).length)) * CHAR_W;
  const titleW = textWidth(g.title) * (12 / FONT_SIZE);
  const titleX = Math.max(x0 + gridW / 2, titleW / 2 + 8);
  const width = Math.ceil(Math.max(
    barX + barW + 8 + tickLabelW + 8, // colour bar and its ticks
    barX + textWidth(g.barLabel) + 8, // colour bar label
    x0 + gridW / 2 + textWidth(g.xLabel) / 2 + 8,
    titleX + titleW / 2 + 8,
  ));
  const height = y0 + gridH + 44;
  const span = g.vmax > g.vmin ? g.vmax - g.vmin : 0;
  const frac = (v: number) => (span > 0 ? (v - g.vmin) / span : 0);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="${FONT}" font-size="${FONT_SIZE}">`,
    `<rect class="background" x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<defs><linearGradient id="bar" x1="0" y1="1" x2="0" y2="0">` +
      COLORMAPS[g.colormap].map((c, i, all) => `<stop offset="${(i / (all.length - 1)).toFixed(4)}" stop-color="${c}"/>`).join("") +
      `</linearGradient></defs>`,
    `<text class="title" x="${titleX.toFixed(1)}" y="18" text-anchor="middle" font-size="12">${escapeXml(g.title)}</text>`,
  );
  out.push(`<g class="cells" shape-rendering="crispEdges">`);
  for (let r = 0; r < rows; r++) {
    for (let l = 0; l < g.layers; l++) {
      const v = g.scores[r]![l]!;
      const fill = Number.isNaN(v) ? "#d0d0d0" : colorAt(g.colormap, frac(v));
      out.push(
        `<rect class="cell" data-row="${r}" data-layer="${l}" data-score="${v}" x="${x0 + l * cellW}" y="${y0 + r * cellH}" ` +
          `width="${cellW}" height="${cellH}" fill="${fill}"/>`,
      );
    }
  }
  out.push(`</g>`);
  out.push(`<rect class="frame" x="${x0}" y="${y0}" width="${gridW}" height="${gridH}" fill="none" stroke="#000000" stroke-width="0.8"/>`);
  // y ticks: one label per row (tokens keep their leading spaces)
  out.push(`<g class="ylabels" text-anchor="end">`);
  g.labels.forEach((label, r) => {
    const y = y0 + r * cellH + cellH / 2;
    out.push(`<line x1="${x0 - 3}" y1="${y}" x2="${x0}" y2="${y}" stroke="#000000" stroke-width="0.8"/>`);
    out.push(`<text class="ylabel" x="${x0 - 5}" y="${(y + FONT_SIZE * 0.35).toFixed(1)}" xml:space="preserve">${escapeXml(label)}</text>`);
  });
  out.push(`</g>`);
  // x ticks: every layer for small models, every 5th otherwise
  const step = g.layers <= 12 ? 1 : 5;
  out.push(`<g class="xlabels" text-anchor="middle">`);
  for (let l = 0; l < g.layers; l += step) {
    const x = x0 + l * cellW + cellW / 2;
    out.push(`<line x1="${x}" y1="${y0 + gridH}" x2="${x}" y2="${y0 + gridH + 3}" stroke="#000000" stroke-width="0.8"/>`);
    out.push(`<text x="${x}" y="${y0 + gridH + 15}">${l}</text>`);
  }
  out.push(`</g>`);
  out.push(`<text class="xlabel" x="${(x0 + gridW / 2).toFixed(1)}" y="${y0 + gridH + 33}" text-anchor="middle">${escapeXml(g.xLabel)}</text>`);
  // colour bar: gradient from vmin (bottom) to vmax (top), ticks on the right, label below
  out.push(`<g class="colorbar">`);
  out.push(`<rect class="bar" x="${barX}" y="${y0}" width="${barW}" height="${gridH}" fill="url(#bar)" stroke="#000000" stroke-width="0.8"/>`);
  for (const t of ticks) {
    const y = y0 + gridH - frac(t) * gridH;
    out.push(`<line x1="${barX + barW}" y1="${y.toFixed(1)}" x2="${barX + barW + 3}" y2="${y.toFixed(1)}" stroke="#000000" stroke-width="0.8"/>`);
    out.push(`<text class="tick" x="${barX + barW + 5}" y="${(y + FONT_SIZE * 0.35).toFixed(1)}">${formatTick(t, ticks)}</text>`);
  }
  out.push(`<text class="barlabel" x="${barX}" y="${y0 + gridH + 20}">${escapeXml(g.barLabel)}</text>`);
  out.push(`</g>`, `</svg>`);
  return out.join("\n") + "\n";
}

/** Escapes text for XML content and attributes; control characters become visible escapes. */
export function escapeXml(text: string): string {
  return visible(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** Control characters (not allowed in XML 1.0, invisible in a plot) as \n, \t or \xNN. */
function visible(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) =>
    c === "\n" ? "\\n" : c === "\t" ? "\\t" : c === "\r" ? "\\r" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

function textWidth(s: string): number {
  return s.length * CHAR_W;
}

/** Up to ~6 round values within [vmin, vmax] (both ends when the range is empty). */
export function niceTicks(vmin: number, vmax: number): number[] {
  if (!(vmax > vmin)) return [vmin];
  const raw = (vmax - vmin) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw * 0.999)!;
  const ticks: number[] = [];
  for (let k = Math.ceil(vmin / step - 1e-9); k * step <= vmax + step * 1e-9; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

function formatTick(t: number, all: readonly number[]): string {
  const decimals = Math.max(0, ...all.map((v) => (String(v).split(".")[1] ?? "").length));
  return t.toFixed(Math.min(decimals, 6));
}

function gridMax(scores: readonly number[][]): number {
  let m = -Infinity;
  for (const row of scores) for (const v of row) if (v > m) m = v;
  return m;
}

function checkGrid(scores: readonly number[][], rows: number, name: string): number {
  if (!Array.isArray(scores) || scores.length !== rows || rows === 0) {
    throw new RomeError("ERR_ARGUMENT", `Expected ${name} with one row per label (${rows}) but received ${Array.isArray(scores) ? scores.length : typeof scores}`);
  }
  const layers = scores[0]!.length;
  if (layers === 0 || scores.some((r) => r.length !== layers)) {
    throw new RomeError("ERR_ARGUMENT", `Expected every row of ${name} to have the same, non-zero number of layers`);
  }
  return layers;
}
