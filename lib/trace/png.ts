// Rasterises the heatmap SVGs to PNG with @resvg/resvg-js (Rust resvg; prebuilt binaries on npm,
// no network at install). Text needs a font: system fonts are loaded, plus any files given.

import { createRequire } from "node:module";
import fs from "node:fs";
import { RomeError } from "../errors.js";

export interface PngOptions {
  /** Output width in pixels; the height follows the SVG's aspect ratio. Default: 2× the SVG's width. */
  width?: number;
  /** Extra TTF/OTF font files. Default: none beyond the system's fonts. */
  fontFiles?: string[];
  /** Load the system's fonts (fontconfig directories). Default true. */
  loadSystemFonts?: boolean;
}

interface ResvgModule {
  Resvg: new (svg: string, opts: object) => { render(): { asPng(): Buffer; width: number; height: number } };
}

let resvg: ResvgModule | undefined;

/** Fonts tried when the system's default cannot be found, in order. */
const FALLBACK_FONT_FILES = [
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/TTF/DejaVuSans.ttf",
  "/usr/share/fonts/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/** PNG bytes of an SVG document. Throws ERR_IO when @resvg/resvg-js is not installed. */
export function svgToPng(svg: string, options: PngOptions = {}): Buffer {
  if (!resvg) {
    try {
      resvg = createRequire(import.meta.url)("@resvg/resvg-js") as ResvgModule;
    } catch (cause) {
      throw new RomeError("ERR_IO", "PNG output needs the npm package @resvg/resvg-js: npm install @resvg/resvg-js", { cause });
    }
  }
  const widthMatch = /<svg[^>]*\swidth="([\d.]+)"/.exec(svg);
  const width = options.width ?? (widthMatch ? Math.round(2 * Number(widthMatch[1])) : 800);
  const fontFiles = [...(options.fontFiles ?? []), ...FALLBACK_FONT_FILES.filter((f) => fs.existsSync(f)).slice(0, 1)];
  const r = new resvg.Resvg(svg, {
    fitTo: { mode: "width", value: width },
    background: "#ffffff",
    font: { loadSystemFonts: options.loadSystemFonts ?? true, fontFiles, defaultFontFamily: "DejaVu Sans", sansSerifFamily: "DejaVu Sans" },
  });
  return r.render().asPng();
}
