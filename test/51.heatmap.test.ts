// Heatmap SVGs (structure, stars, escaping, colour scale, labels), the averaged plot, PNG output
// through @resvg/resvg-js, and atomic file writes.
import test from "ava";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { heatmapSvg, averagedSvg, svgToPng, scoreColor, niceTicks, escapeXml, type HeatmapInput } from "../lib/trace/heatmap.js";
import { COLORMAPS } from "../lib/trace/colormap.js";
import { averageEffects } from "../lib/trace/average.js";
import { writeFileAtomic } from "../lib/io/atomic.js";
import { RomeError } from "../lib/errors.js";

// 5 tokens × 4 layers; the subject is tokens [1, 3); one token needs escaping.
const TRACE: HeatmapInput = {
  scores: [
    [0.05, 0.05, 0.05, 0.05],
    [0.3, 0.5, 0.2, 0.1],
    [0.6, 0.9, 0.4, 0.1],
    [0.1, 0.1, 0.2, 0.05],
    [0.1, 0.2, 0.4, 0.8],
  ],
  tokens: ["The", " <b>&\"", " Tower", " is\n", " in"],
  subjectRange: [1, 3],
  lowScore: 0.05,
  highScore: 0.95,
  kind: "resid",
  window: 1,
  answer: { token: " Paris" },
};

function cells(svg: string): { row: number; layer: number; fill: string }[] {
  return [...svg.matchAll(/<rect class="cell" data-row="(\d+)" data-layer="(\d+)"[^>]* fill="(#[0-9a-f]{6})"/g)]
    .map((m) => ({ row: Number(m[1]), layer: Number(m[2]), fill: m[3]! }));
}

function ylabels(svg: string): string[] {
  return [...svg.matchAll(/<text class="ylabel"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}

function brightness(hex: string): number {
  const v = Number.parseInt(hex.slice(1), 16);
  return Math.min((v >> 16) & 255, (v >> 8) & 255, v & 255);
}

test("one cell per (token, layer), subject tokens starred, text escaped", (t) => {
  const svg = heatmapSvg(TRACE);
  const c = cells(svg);
  t.is(c.length, 5 * 4);
  t.deepEqual(new Set(c.map((x) => `${x.row},${x.layer}`)).size, 20);
  t.deepEqual(ylabels(svg), ["The", " &lt;b&gt;&amp;&quot;*", " Tower*", " is\\n", " in"]);
  t.false(svg.includes("<b>"));
  t.regex(svg, /single restored layer within GPT/);
  t.regex(svg, /Impact of restoring state after corrupted input/);
  t.regex(svg, /<text class="barlabel"[^>]*>p\(Paris\)<\/text>/);
  t.is(escapeXml(`a<'&'>`), "a&lt;&apos;&amp;&apos;&gt;");
});

test("low score is white, the grid maximum is the kind's darkest colour", (t) => {
  for (const [kind, map] of [["resid", "Purples"], ["mlp", "Greens"], ["attn", "Reds"]] as const) {
    const svg = heatmapSvg({ ...TRACE, kind, window: kind === "resid" ? 1 : 10 });
    const c = cells(svg);
    const at = (row: number, layer: number) => c.find((x) => x.row === row && x.layer === layer)!.fill;
    t.is(at(0, 0), COLORMAPS[map][0], `${kind} low`);
    t.true(brightness(at(0, 0)) >= 240, `${kind} low score should be white-ish`);
    t.is(at(2, 1), COLORMAPS[map][8], `${kind} max`); // 0.9 is the maximum
    t.true(brightness(at(2, 1)) < 130);
    // a middle score is strictly between, and brighter for smaller scores
    t.true(brightness(at(1, 0)) > brightness(at(2, 0)));
    t.is(at(1, 0), scoreColor(kind, 0.3, 0.05, 0.9));
  }
});

test("window kinds say so in the x label; ticks are round values on the colour bar", (t) => {
  const svg = heatmapSvg({ ...TRACE, kind: "mlp", window: 10 }, { modelName: "TinyFacts" });
  t.regex(svg, /center of interval of 10 restored MLP layers/);
  t.regex(svg, /Impact of restoring MLP after corrupted input/);
  t.regex(heatmapSvg({ ...TRACE, kind: "attn", window: 3 }), /center of interval of 3 restored Attn layers/);
  t.regex(heatmapSvg(TRACE, { modelName: "TinyFacts" }), /single restored layer within TinyFacts/);
  const ticks = [...svg.matchAll(/<text class="tick"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  t.deepEqual(ticks, ["0.2", "0.4", "0.6", "0.8"]);
  t.deepEqual(niceTicks(0, 0.087), [0, 0.02, 0.04, 0.06, 0.08]);
  t.deepEqual(niceTicks(0.5, 0.5), [0.5]);
});

test("averaged plot: 6 bucket rows, clipped values from 0 (white) to vmax", (t) => {
  const grid = { ...TRACE, highScore: 0.95, kind: "mlp" as const, window: 10 };
  const avg = averageEffects([grid, { ...grid, lowScore: 0.15 }]);
  const svg = averagedSvg(avg);
  const c = cells(svg);
  t.is(c.length, 6 * 4);
  t.deepEqual(ylabels(svg), avg.buckets);
  t.regex(svg, /Avg Indirect Effect of MLP over 2 prompts/);
  t.regex(svg, /center of interval of 10 patched MLP layers/);
  const at = (cs: typeof c, row: number, layer: number) => cs.find((x) => x.row === row && x.layer === layer)!.fill;
  // mean low score 0.1. First subject token (row 1), layer 3: 0.1 − 0.1 = 0 → white;
  // last subject token (row 2), layer 1: 0.9 − 0.1 = 0.8 is the maximum → darkest
  t.is(at(c, 0, 3), COLORMAPS.Greens[0]);
  t.is(at(c, 2, 1), COLORMAPS.Greens[8]);
  // a two-token subject has no middle tokens: that row is drawn grey
  t.true(c.filter((x) => x.row === 1).every((x) => x.fill === "#d0d0d0"));
  // a shared scale (the reference scales MLP/attn by the residual plot's maximum)
  const scaled = cells(averagedSvg(avg, { vmax: 1.6 }));
  t.is(at(scaled, 2, 1), scoreColor("mlp", 0.8, 0, 1.6));
  t.not(at(scaled, 2, 1), COLORMAPS.Greens[8]);
});

test("PNG has the signature and the SVG's size at 2×, and text is rendered", (t) => {
  const svg = heatmapSvg(TRACE);
  const [, w, h] = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg)!.map(Number);
  const png = svgToPng(svg);
  t.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  t.is(png.toString("ascii", 12, 16), "IHDR");
  t.is(png.readUInt32BE(16), 2 * w!);
  t.is(png.readUInt32BE(20), 2 * h!);
  // the same picture without its text is a smaller file: glyphs were drawn
  const noText = svgToPng(svg.replace(/<text[^>]*>[^<]*<\/text>/g, ""));
  t.true(png.length > noText.length * 1.2, `with text ${png.length} bytes, without ${noText.length}`);
  t.is(svgToPng(svg, { width: 300 }).readUInt32BE(16), 300);
});

test("bad grids are RomeError ERR_ARGUMENT", (t) => {
  t.is(t.throws(() => heatmapSvg({ ...TRACE, tokens: TRACE.tokens.slice(1) }), { instanceOf: RomeError })?.code, "ERR_ARGUMENT");
  t.is(t.throws(() => heatmapSvg({ ...TRACE, scores: [[1], [1, 2], [1], [1], [1]] }), { instanceOf: RomeError })?.code, "ERR_ARGUMENT");
});

test("writeFileAtomic replaces the file whole and leaves no temporary file", (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rome-atomic-"));
  const file = path.join(dir, "trace.svg");
  fs.writeFileSync(file, "old");
  writeFileAtomic(file, heatmapSvg(TRACE));
  t.true(fs.readFileSync(file, "utf8").startsWith("<svg"));
  writeFileAtomic(path.join(dir, "trace.png"), svgToPng(heatmapSvg(TRACE)));
  t.deepEqual(fs.readdirSync(dir).sort(), ["trace.png", "trace.svg"]);
  const err = t.throws(() => writeFileAtomic(path.join(dir, "missing", "x.svg"), "x"), { instanceOf: RomeError });
  t.is(err?.code, "ERR_IO");
  fs.rmSync(dir, { recursive: true });
});
