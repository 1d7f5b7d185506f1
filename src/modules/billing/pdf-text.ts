import { createRequire } from 'node:module';
import * as fontkit from 'fontkit';
import type PDFDocument from 'pdfkit';

const require = createRequire(import.meta.url);

/**
 * Noto Sans (OFL): Latin with its extensions, the rupee sign and Devanagari in one font, from
 * the registry's @expo-google-fonts/noto-sans. Embedded (subset) in every document, so names
 * render the same everywhere and no viewer substitutes a font.
 */
export const FONTS = {
  regular: require.resolve('@expo-google-fonts/noto-sans/400Regular/NotoSans_400Regular.ttf'),
  bold: require.resolve('@expo-google-fonts/noto-sans/700Bold/NotoSans_700Bold.ttf'),
};

const DEVANAGARI = /[\u0900-\u097F\u1CD0-\u1CFF\uA8E0-\uA8FF]/u;

type Font = fontkit.Font & {
  unitsPerEm: number;
  ascent: number;
  postscriptName: string;
  layout(text: string): { glyphs: Array<{ path: { translate(x: number, y: number): { toSVG(): string } } }>; positions: Array<{ xAdvance: number; xOffset: number; yOffset: number }> };
  glyphForCodePoint(cp: number): { id: number; advanceWidth: number };
};

const opened = new Map<string, Font>();
const open = (path: string): Font => {
  let font = opened.get(path);
  if (!font) opened.set(path, (font = fontkit.openSync(path) as unknown as Font));
  return font;
};

/**
 * fontkit shapes a whole layout() with the first script it meets, so "Billed to: भारत" is laid
 * out run by run; spaces and joiners stay in the run they are in.
 */
export function scriptRuns(text: string): Array<{ devanagari: boolean; text: string }> {
  const runs: Array<{ devanagari: boolean; text: string }> = [];
  for (const ch of text) {
    const last = runs.at(-1);
    const devanagari = last && /[\s\u200C\u200D]/u.test(ch) ? last.devanagari : DEVANAGARI.test(ch);
    if (last && last.devanagari === devanagari) last.text += ch;
    else runs.push({ devanagari, text: ch });
  }
  return runs;
}

/** The same font with shaping off: glyphs in logical order, one code point each (for the text layer). */
function logicalOrder(font: Font): Font {
  return Object.create(font, {
    postscriptName: { value: `${font.postscriptName}-Logical` },
    layout: {
      value(text: string) {
        const glyphs: Array<{ id: number; advanceWidth: number; codePoints: number[] }> = [];
        const positions: Array<{ xAdvance: number; yAdvance: number; xOffset: number; yOffset: number }> = [];
        for (const ch of text) {
          const cp = ch.codePointAt(0)!;
          const glyph = font.glyphForCodePoint(cp);
          glyphs.push({ id: glyph.id, advanceWidth: glyph.advanceWidth, codePoints: [cp] });
          positions.push({ xAdvance: glyph.advanceWidth, yAdvance: 0, xOffset: 0, yOffset: 0 });
        }
        // pdfkit scales positions in place and reads advanceWidth afterwards, as of fontkit's GlyphRun.
        return { glyphs, positions, get advanceWidth() { return positions.reduce((sum, p) => sum + p.xAdvance, 0); } };
      },
    },
  }) as Font;
}

export interface TextWriter {
  /** Sets the font ('regular' or 'bold') and size for text() and the lines written next. */
  use(weight: 'regular' | 'bold', size: number): void;
  /**
   * One line at (x, y), top-left as pdfkit's text() takes it. Latin goes through pdfkit's own
   * text; a line with Devanagari is drawn as shaped outlines with the same string on top as
   * invisible text in logical order, so it both looks right and extracts (copies, searches,
   * parses) as the string it is. Returns the width drawn.
   */
  line(text: string, x: number, y: number, opts?: { width?: number; align?: 'left' | 'right' }): number;
}

/** Registers the fonts on a document and gives the writer that draws with them. */
export function textWriter(doc: PDFKit.PDFDocument): TextWriter {
  const fonts = { regular: open(FONTS.regular), bold: open(FONTS.bold) };
  // The parsed fonts, not their paths: parsed once per process rather than once per document.
  doc.registerFont('regular', fonts.regular as never);
  doc.registerFont('bold', fonts.bold as never);
  doc.registerFont('regular-logical', logicalOrder(fonts.regular) as never);
  let weight: 'regular' | 'bold' = 'regular';
  let size = 10;

  return {
    use(w, s) {
      weight = w;
      size = s;
      doc.font(w).fontSize(s);
    },
    line(text, x, y, opts = {}) {
      if (!DEVANAGARI.test(text)) {
        doc.font(weight).fontSize(size);
        const width = doc.widthOfString(text);
        const at = opts.align === 'right' && opts.width !== undefined ? x + opts.width - width : x;
        doc.text(text, at, y, { lineBreak: false });
        return width;
      }
      const font = fonts.regular;
      const k = size / font.unitsPerEm;
      let pen = 0;
      const runs = scriptRuns(text).map(({ text: part }) => font.layout(part));
      for (const run of runs) for (const p of run.positions) pen += p.xAdvance;
      const shapedWidth = pen * k;
      const at = opts.align === 'right' && opts.width !== undefined ? x + opts.width - shapedWidth : x;
      doc.save().translate(at, y + font.ascent * k).scale(k, -k);
      pen = 0;
      for (const run of runs) {
        run.glyphs.forEach((glyph, i) => {
          const p = run.positions[i]!;
          const d = glyph.path.translate(pen + p.xOffset, p.yOffset).toSVG();
          if (d) doc.path(d).fill();
          pen += p.xAdvance;
        });
      }
      doc.restore();
      doc.font('regular-logical').fontSize(size);
      const logicalWidth = doc.widthOfString(text);
      doc.save();
      doc.addContent('3 Tr'); // invisible: pdfkit writes no text rendering mode for plain text, so this one holds
      doc.text(text, at, y, { lineBreak: false, horizontalScaling: (100 * shapedWidth) / logicalWidth } as PDFKit.Mixins.TextOptions);
      doc.restore();
      doc.font(weight).fontSize(size);
      return shapedWidth;
    },
  };
}

export type { PDFDocument };
