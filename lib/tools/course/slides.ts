/**
 * Presenter mode: each executed notebook as a reveal.js slide deck, slides/<name>.html in the site.
 *
 * A notebook explains in paragraphs; a slide shows. Each section (a `#`/`##` heading starts a new
 * column of slides, a `###` heading a new slide below it) becomes a slide of what can be seen at a
 * glance: its figures, charts and tables, its display formulas, its lists (objectives, key points,
 * recap), and as a lead the first sentence of its prose. The rest of the prose, the code and its
 * text outputs go to the slide's speaker notes (reveal's speaker view, S), so the notebook stays
 * the one place the lecture is written. A section whose visible part is too tall for one
 * 1280×720 slide continues on further slides below (cut between blocks, never inside one; the
 * estimate is in slide pixels), and a slide still taller than the screen is shrunk to fit
 * (assets/slides.js): no slide scrolls, nothing is cut off. Plots are drawn when their slide is
 * shown. Worked solutions stay collapsed, as on the pages.
 *
 * Keys are reveal's: → / space next, ← previous, Esc overview, S speaker view, F fullscreen.
 */
import type MarkdownIt from "markdown-it";
import type { Cell, Output } from "./notebook";
import { cellSource, isSolutionTitle, notebookPieces, type SolutionRef } from "./notebookStructure";
import { PLOTLY_MIME } from "../../show/plot";
import { WIDGET_MIME, type WidgetSpec } from "../../widgets/spec";
import { WIDGET_BUNDLE } from "./widgetAssets";
import { cellTags, escapeHtml, renderCell, renderCodeOutputs, renderMarkdownBlocks, renderMarkdownInline, renderMarkdownTokens, solutionDetails, type Chapter, type PageEnv, type SiteOptions } from "./render";

type Token = MarkdownIt.Token;

/** The slide canvas reveal scales to the screen, and the height a slide's content may fill. */
export const SLIDE_WIDTH = 1280;
export const SLIDE_HEIGHT = 720;
/** Content height budget per slide (the canvas minus the title, margins and the progress bar). */
export const SLIDE_BUDGET = 600;
/** Height of a slide title (h2 at the slide's type size, with its margin). */
export const TITLE_HEIGHT = 80;

export type SlideUnit =
  | { kind: "heading"; level: number; html: string }
  | { kind: "block"; html: string; height: number; /** a lead-in ("…you can:") that must not end a slide */ keepWithNext?: boolean }
  /**
   * Explanation for the speaker notes. `lead`, the first sentence of a paragraph, is shown on the
   * slide when the paragraph opens its section (before anything else of the section is shown).
   */
  | { kind: "notes"; html: string; lead?: { html: string; height: number } };

export interface Slide {
  /** The slide title as HTML (a continued slide repeats it), undefined before the first heading. */
  title?: string;
  level?: number;
  /** True for the 2nd, 3rd … slide of one section. */
  continued: boolean;
  blocks: string[];
  /** Speaker notes (HTML), in notebook order. */
  notes: string[];
}

/**
 * Cut a chapter (headings and blocks with estimated heights) into columns of slides:
 * a heading of level 1–2 starts a new column, level 3 a new slide in the column, and a block that
 * would take the slide past `budget` pixels starts a continuation slide (with the same title)
 * unless the slide has no block yet — a block taller than a whole slide gets a slide of its own.
 */
export function splitSlides(units: SlideUnit[], budget = SLIDE_BUDGET, titleHeight = TITLE_HEIGHT): Slide[][] {
  const columns: Slide[][] = [];
  let slide: Slide | undefined;
  let used = 0;
  let last: (SlideUnit & { kind: "block" }) | undefined; // the slide's last block
  let opening = false; // nothing of the section shown yet: a paragraph here gives the slide its lead
  const start = (s: Slide, newColumn: boolean) => {
    if (newColumn || columns.length === 0) columns.push([]);
    columns[columns.length - 1].push(s);
    slide = s;
    used = s.title !== undefined ? titleHeight : 0;
    last = undefined;
    opening = !s.continued;
  };
  for (const u of units) {
    if (u.kind === "heading") {
      start({ title: u.html, level: u.level, continued: false, blocks: [], notes: [] }, u.level <= 2);
      continue;
    }
    if (u.kind === "notes") {
      if (!slide) start({ continued: false, blocks: [], notes: [] }, true);
      if (opening && u.lead) {
        slide!.blocks.push(u.lead.html);
        used += u.lead.height;
        opening = false;
      }
      slide!.notes.push(u.html);
      continue;
    }
    opening = false;
    if (!slide) start({ continued: false, blocks: [], notes: [] }, true);
    else if (slide.blocks.length > 0 && used + u.height > budget) {
      // A lead-in paragraph moves on with what it introduces (unless it is alone on its slide).
      const carry = last?.keepWithNext && slide.blocks.length > 1 ? last : undefined;
      if (carry) slide.blocks.pop();
      start({ title: slide.title, level: slide.level, continued: true, blocks: [], notes: [] }, false);
      if (carry) {
        slide!.blocks.push(carry.html);
        used += carry.height;
      }
    }
    slide!.blocks.push(u.html);
    used += u.height;
    last = u;
  }
  return columns;
}

// ---------------------------------------------------------------------------------------
// Height estimates, in slide pixels at the sizes of assets/slides.css

const LINE = 40; // body text: 28px type, line-height 1.4
const CHARS_PER_LINE = 78;
const CODE_LINE = 27; // code: 19px, line-height 1.4
const OUTPUT_LINE = 25; // text outputs: 18px
const OUTPUT_MAX_LINES = 10; // taller text outputs scroll inside their box (slides.css)
const BLOCK_GAP = 20;
/** What a live widget is counted as: a whole slide (its controls and output grow as it is used). */
const WIDGET_SLIDE_HEIGHT = SLIDE_BUDGET - TITLE_HEIGHT;
const OUTPUT_HTML_MAX_HEIGHT = 400; // estimate cap: a taller table gets a slide of its own and shrinks to fit
/** Plots are drawn at most this tall on a slide (assets/figures.js). */
export const SLIDE_FIGURE_MAX_HEIGHT = SLIDE_BUDGET - TITLE_HEIGHT;

function inlineLength(t: Token | undefined): number {
  if (!t) return 0;
  return (t.children ?? []).reduce((n, c) => n + (c.type === "softbreak" || c.type === "hardbreak" ? 1 : c.content.length), 0) || t.content.length;
}

const textLines = (chars: number, perLine = CHARS_PER_LINE) => Math.max(1, Math.ceil(chars / perLine));

/** A markdown block that holds an image (markdown or an <img> tag): a figure. */
function hasImage(tokens: Token[]): boolean {
  return tokens.some((t) => (t.children ?? []).some((c) => c.type === "image") || (t.type === "html_block" && /<img\b/i.test(t.content)));
}

/** Estimated height of one top-level markdown block (its tokens from markdown-it). */
export function markdownBlockHeight(tokens: Token[]): number {
  const first = tokens[0];
  if (!first) return 0;
  if (hasImage(tokens)) return 340;
  switch (first.type) {
    case "heading_open":
      return 56;
    case "paragraph_open":
      return textLines(inlineLength(tokens[1])) * LINE + BLOCK_GAP;
    case "bullet_list_open":
    case "ordered_list_open": {
      let h = BLOCK_GAP;
      for (const t of tokens) if (t.type === "inline") h += textLines(inlineLength(t), CHARS_PER_LINE - 4) * LINE + 6;
      return h;
    }
    case "fence":
    case "code_block":
      return first.content.replace(/\n$/, "").split("\n").length * CODE_LINE + 2 * BLOCK_GAP;
    case "math_block":
      return 50 * first.content.split("\\\\").length + 30;
    case "table_open":
      return tokens.filter((t) => t.type === "tr_open").length * 46 + BLOCK_GAP;
    case "blockquote_open": {
      let h = BLOCK_GAP;
      for (const t of tokens) if (t.type === "inline") h += textLines(inlineLength(t)) * LINE;
      return h;
    }
    case "hr":
      return BLOCK_GAP;
    default:
      return textLines(first.content.replace(/<[^>]*>/g, "").length) * LINE;
  }
}

/**
 * A list too long for one slide, as one unit per item (each its own <ul>/<ol>, numbering kept),
 * so it can continue on the next slide; undefined if the block is not a list.
 */
export function listItemUnits(tokens: Token[], env?: PageEnv): SlideUnit[] | undefined {
  const open = tokens[0];
  const close = tokens[tokens.length - 1];
  if (!open || (open.type !== "bullet_list_open" && open.type !== "ordered_list_open")) return undefined;
  const start = Number(open.attrGet("start") ?? 1);
  const units: SlideUnit[] = [];
  let from = -1;
  tokens.forEach((t, i) => {
    if (t.type === "list_item_open" && t.level === open.level + 1) from = i;
    if (t.type === "list_item_close" && t.level === open.level + 1 && from >= 0) {
      const item = tokens.slice(from, i + 1);
      const n = units.length;
      const html = renderMarkdownTokens([open, ...item, close], env).replace(
        /^<(ul|ol)[^>]*>/,
        (_m, tag: string) => `<${tag} class="list-part"${tag === "ol" ? ` start="${start + n}"` : ""}>`,
      );
      units.push({ kind: "block", html, height: markdownBlockHeight([open, ...item, close]) - BLOCK_GAP + 4 });
      from = -1;
    }
  });
  return units;
}

function outputText(x: unknown): string {
  return typeof x === "string" ? x : Array.isArray(x) ? x.join("") : "";
}

function outputHeight(o: Output): number {
  const textBlock = (s: string) => Math.min(OUTPUT_MAX_LINES, s.replace(/\n$/, "").split("\n").length) * OUTPUT_LINE + BLOCK_GAP;
  switch (o.output_type) {
    case "stream":
      return outputText(o.text).trim() === "" ? 0 : textBlock(outputText(o.text));
    case "error":
      return textBlock(o.traceback?.join("\n") ?? "");
    case "display_data":
    case "execute_result": {
      const d = o.data ?? {};
      const meta = (o.metadata ?? {}) as Record<string, any>;
      if (meta.llm_course?.role === "plotly-loader" || Object.values(meta).some((m: any) => m?.llm_course?.role === "plotly-loader")) return 0;
      if (d[WIDGET_MIME] !== undefined) return WIDGET_SLIDE_HEIGHT; // a live widget gets a slide of its own
      const plotly = d[PLOTLY_MIME] as any;
      if (plotly) {
        const fig = typeof plotly === "string" ? safeJson(plotly) : plotly;
        const h = typeof fig?.layout?.height === "number" ? fig.layout.height : 450;
        return Math.min(h, SLIDE_FIGURE_MAX_HEIGHT) + BLOCK_GAP;
      }
      if (d["text/html"] !== undefined) {
        const html = outputText(d["text/html"]);
        const rows = (html.match(/<tr\b/gi) ?? []).length;
        return rows ? Math.min(rows * 33 + 70, OUTPUT_HTML_MAX_HEIGHT) + BLOCK_GAP : textLines(html.replace(/<[^>]*>/g, "").length, 80) * OUTPUT_LINE + BLOCK_GAP;
      }
      for (const mime of ["image/svg+xml", "image/png", "image/jpeg"]) {
        if (d[mime] !== undefined) {
          const h = meta[mime]?.height;
          return Math.min(typeof h === "number" ? h : 320, SLIDE_BUDGET) + BLOCK_GAP;
        }
      }
      if (d["text/latex"] !== undefined || d["text/markdown"] !== undefined) return 2 * LINE;
      return d["text/plain"] !== undefined ? textBlock(outputText(d["text/plain"])) : 0;
    }
    default:
      return 0;
  }
}

function safeJson(s: string): any {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** A collapsed solution on a slide: just its summary line. */
const COLLAPSED_HEIGHT = LINE + BLOCK_GAP;

// ---------------------------------------------------------------------------------------
// The deck

/** Relative URLs of the site's root, rewritten for a page one folder down (slides/). */
export function relocateUrls(html: string, prefix = "../"): string {
  return html.replace(/\b(src|href)=(["'])([^"']*)\2/gi, (all, attr: string, q: string, url: string) =>
    url === "" || url.startsWith("#") || url.startsWith("/") || /^[a-z][a-z0-9+.-]*:/i.test(url) ? all : `${attr}=${q}${prefix}${url}${q}`,
  );
}

/**
 * A cell as rendered for the pages is a <section>; inside a slide it must not be one (reveal
 * takes a <section> inside a slide's <section> for a slide of its own).
 */
export function cellAsDiv(html: string): string {
  return html.replace(/^<section class="cell/, '<div class="cell').replace(/<\/section>$/, "</div>");
}

/**
 * The first sentence of a paragraph's markdown, for a slide's lead: up to the first ".", "!", "?"
 * or ":" that ends a sentence outside code and math; undefined when it is longer than `max`
 * characters (a lead must fit in two lines or so) or would cut a bold or italic span in two.
 */
export function firstSentence(markdown: string, max = 200): string | undefined {
  const s = markdown.replace(/\s+/g, " ").trim();
  let code = false;
  let math = false;
  let end = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "`") code = !code;
    else if (c === "$" && !code) math = !math;
    else if (!code && !math && /[.!?:]/.test(c) && (i + 1 === s.length || s[i + 1] === " ")) {
      if (c === "." && /(\be\.g|\bi\.e|\bal|\bvs|\bcf|\bEq|\bFig|\d)$/.test(s.slice(0, i))) continue; // an abbreviation, not an end
      end = i + 1;
      break;
    }
  }
  const out = s.slice(0, end);
  if (out.length > max) return undefined;
  if ((out.match(/\*\*/g) ?? []).length % 2 === 1 || (out.replace(/\*\*/g, "").match(/(^|[^\\])\*/g) ?? []).length % 2 === 1) return undefined;
  return out;
}

/** A figure, chart or table: what an output shows on a slide (text outputs go to the notes). */
export function isSlideVisual(o: Output): boolean {
  if (o.output_type !== "display_data" && o.output_type !== "execute_result") return false;
  const d = (o.data ?? {}) as Record<string, unknown>;
  return [PLOTLY_MIME, "image/svg+xml", "image/png", "image/jpeg", "text/html"].some((m) => d[m] !== undefined);
}

/** A paragraph this short that introduces a list, figure or formula is shown with it. */
const LEAD_IN_CHARS = 160;

/** Lines of a fenced code block in the markdown that still read at a glance on a slide. */
const SLIDE_FENCE_LINES = 12;

/**
 * Whether a markdown block is shown on the slide (figures, formulas, lists, tables, short code)
 * rather than told in the notes (paragraphs, quotes, long code).
 */
function showsOnSlide(tokens: Token[]): boolean {
  const first = tokens[0];
  if (!first) return false;
  if (hasImage(tokens)) return true;
  switch (first.type) {
    case "math_block":
    case "bullet_list_open":
    case "ordered_list_open":
    case "table_open":
    case "heading_open":
      return true;
    case "fence":
    case "code_block":
      return first.content.replace(/\n$/, "").split("\n").length <= SLIDE_FENCE_LINES;
    default:
      return false;
  }
}

/**
 * The units of a chapter: headings; what each section shows (figures, formulas, lists, tables,
 * charts, collapsed solutions); and its explanation, code and text outputs as speaker notes.
 */
export function chapterUnits(ch: Chapter, figures: { count: number }, env: PageEnv, warnings: string[]): SlideUnit[] {
  const units: SlideUnit[] = [];
  let sol: { ref: SolutionRef; body: string[] } | undefined;
  const closeSolution = () => {
    if (sol && sol.body.length) units.push({ kind: "block", html: solutionDetails(sol.ref, sol.body), height: COLLAPSED_HEIGHT });
    sol = undefined;
  };
  const notes = (html: string, lead?: string) => {
    const leadUnit = lead === undefined ? undefined : { html: `<p class="lead">${renderMarkdownInline(lead)}</p>`, height: textLines(lead.length) * LINE + BLOCK_GAP };
    units.push(leadUnit ? { kind: "notes", html, lead: leadUnit } : { kind: "notes", html });
  };
  for (const p of notebookPieces(ch.notebook)) {
    const cell = ch.notebook.cells[p.cell];
    if (cellTags(cell).includes("remove-cell")) continue;
    if (p.solution?.id !== sol?.ref.id) closeSolution();
    if (p.solution) {
      sol ??= { ref: p.solution, body: [] };
      if (isSolutionTitle(p)) continue; // the collapsed block's summary says it
      const html = renderCell(p.type === "markdown" ? { ...cell, source: p.source } : cell, p.cell, ch, figures, env, warnings);
      if (html !== "") sol.body.push(cellAsDiv(html));
    } else if (p.type === "markdown") {
      try {
        if (p.heading) {
          units.push({ kind: "heading", level: p.heading.level, html: renderMarkdownInline(p.heading.text) });
          continue;
        }
        const lines = p.source.split("\n");
        const blocks = renderMarkdownBlocks(p.source, env);
        blocks.forEach((b, i) => {
          // A short lead-in ("Two kinds:", "By the end you can") stays with the list or figure it introduces.
          const introduces = b.tokens[0]?.type === "paragraph_open" && inlineLength(b.tokens[1]) <= LEAD_IN_CHARS && blocks[i + 1] !== undefined && showsOnSlide(blocks[i + 1].tokens);
          if (!introduces && !showsOnSlide(b.tokens)) {
            const map = b.tokens[0]?.map;
            const isParagraph = b.tokens[0]?.type === "paragraph_open";
            notes(b.html, isParagraph && map ? firstSentence(lines.slice(map[0], map[1]).join("\n")) : undefined);
            return;
          }
          const height = markdownBlockHeight(b.tokens);
          const isList = (x: typeof b | undefined) => x !== undefined && /^(bullet|ordered)_list_open$/.test(x.tokens[0]?.type ?? "");
          const keepWithNext = introduces || (b.tokens[0]?.type === "paragraph_open" && isList(blocks[i + 1]));
          units.push(...(height > SLIDE_BUDGET - TITLE_HEIGHT ? listItemUnits(b.tokens, env) : undefined) ?? [{ kind: "block", html: b.html, height, keepWithNext }]);
        });
      } catch (err) {
        throw new Error(`${ch.file}: cell ${p.cell + 1}: ${(err as Error).message}`);
      }
    } else if (cell.cell_type === "code") {
      // The code is told (notes); what it produced is shown when it is a figure, a chart or a table.
      const input = renderCell({ ...cell, outputs: [] }, p.cell, ch, figures, env, warnings);
      if (input !== "") notes(cellAsDiv(input));
      for (const { output, html } of renderCodeOutputs(cell, p.cell + 1, ch, figures, env, warnings)) {
        if (html === "") continue;
        if (isSlideVisual(output)) units.push({ kind: "block", html: `<div class="outputs">\n${html}\n</div>`, height: outputHeight(output) });
        else notes(`<div class="outputs">\n${html}\n</div>`);
      }
    }
  }
  closeSolution();
  return units;
}

export interface RenderedDeck {
  html: string;
  slides: number;
  figures: number;
  /** The deck's live widgets. */
  widgets: WidgetSpec[];
  warnings: string[];
}

function slideHtml(s: Slide, classes: string[]): string {
  const tag = s.level === 1 && !s.continued ? "h1" : s.level === 3 ? "h3" : "h2";
  const title =
    s.title === undefined ? "" : s.continued ? `<${tag} class="slide-title continued-title">${s.title} <span class="continued">(continued)</span></${tag}>\n` : `<${tag} class="slide-title">${s.title}</${tag}>\n`;
  const cls = ["slide", ...classes, s.level === 1 && !s.continued ? "title-slide" : ""].filter(Boolean).join(" ");
  // The body is what slides.js shrinks when it is still too tall; the notes are for the speaker view.
  const notes = s.notes.length ? `\n<aside class="notes">\n${s.notes.join("\n")}\n</aside>` : "";
  return `<section class="${cls}">\n${title}<div class="slide-body">\n${s.blocks.join("\n")}\n</div>${notes}\n</section>`;
}

/** The reveal.js deck of one chapter (written to slides/<name>.html, so URLs go up one folder). */
export function renderSlideDeck(ch: Chapter, opts: SiteOptions): RenderedDeck {
  const figures = { count: 0, widgets: [] as WidgetSpec[] };
  const env: PageEnv = { slugs: new Set() };
  const warnings: string[] = [];
  const columns = splitSlides(chapterUnits(ch, figures, env, warnings));
  if (columns.length === 0) columns.push([{ title: escapeHtml(ch.title), level: 1, continued: false, blocks: [], notes: [] }]);
  // The first slide says how to drive the deck and links back to the page.
  columns[0][0].blocks.push(
    `<p class="deck-help"><a href="${ch.name}.html">Read as a page</a> · <a href="index.html">Contents</a> · ` +
      `<kbd>→</kbd>/<kbd>space</kbd> next · <kbd>Esc</kbd> overview · <kbd>S</kbd> speaker view · <kbd>F</kbd> full screen</p>`,
  );
  const sections = columns.map((col) =>
    col.length === 1 ? slideHtml(col[0], []) : `<section class="stack">\n${col.map((s) => slideHtml(s, [])).join("\n")}\n</section>`,
  );
  const slides = columns.reduce((n, c) => n + c.length, 0);
  const scripts =
    (figures.count > 0 ? `<script src="../assets/plotly.min.js"></script>\n` : "") +
    `<script src="../assets/figures.js"></script>\n<script src="../assets/reveal/reveal.js"></script>\n<script src="../assets/reveal/notes.js"></script>\n<script src="../assets/slides.js"></script>\n` +
    (figures.widgets.length > 0 ? `<link rel="stylesheet" href="../assets/widgets.css">\n<script src="../${WIDGET_BUNDLE}"></script>\n` : "");
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(`${ch.title} — slides — ${opts.courseTitle}`)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="../assets/reveal/reveal.css">
<link rel="stylesheet" href="../assets/reveal/white.css">
<link rel="stylesheet" href="../assets/katex/katex.min.css">
<link rel="stylesheet" href="../assets/hljs.css">
<link rel="stylesheet" href="../assets/slides.css">
</head>
<body class="slides-page">
<div class="reveal">
<div class="slides">
${relocateUrls(sections.join("\n"))}
</div>
</div>
${scripts}</body>
</html>
`;
  return { html, slides, figures: figures.count, widgets: figures.widgets, warnings };
}
