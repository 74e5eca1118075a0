/**
 * Notebook content as HTML, shared by the site's pages (site.ts) and the slide decks (slides.ts):
 * markdown with KaTeX math, highlighted code, every output kind a notebook can hold, worked
 * solutions folded, and the chapter model both are built from.
 */
import * as path from "path";
import MarkdownIt from "markdown-it";
import katex from "katex";
import hljs from "highlight.js";
import { type Cell, type Notebook, type Output } from "./notebook";
import { PLOTLY_MIME } from "../../show/plot";
import { validateWidgetSpec, WIDGET_MIME, type WidgetSpec } from "../../widgets/spec";
import { isSolutionTitle, notebookPieces, type SolutionRef } from "./notebookStructure";

// ---------------------------------------------------------------------------------------
// Small text helpers

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/** Jupyter stores long strings as lists of lines; accept both. */
function text(x: unknown): string {
  if (typeof x === "string") return x;
  if (Array.isArray(x)) return x.join("");
  return "";
}

/**
 * Make terminal output readable as plain text: drop ANSI escape sequences (colours, cursor moves)
 * and apply carriage returns the way a terminal would, so a progress bar that redraws itself
 * with "\r" shows only its final state.
 */
export function cleanTerminalText(s: string): string {
  const noAnsi = s
    .replace(/\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g, "") // OSC sequences (titles, hyperlinks)
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, "") // CSI sequences (colours, cursor, erase line)
    .replace(/\x1b[@-_]/g, ""); // any other two-byte escape
  return noAnsi
    .replace(/\r\n/g, "\n")
    .split("\n")
    .map((line) => {
      const parts = line.split("\r");
      // "\r" moves to column 0: a later, shorter write only overwrites the start of the line.
      let shown = "";
      for (const p of parts) shown = p + shown.slice(p.length);
      return shown;
    })
    .join("\n");
}

// ---------------------------------------------------------------------------------------
// Links: notebooks live in notebooks/, the site in build/site/, images are copied to
// build/site/images/. A link written for Jupyter ("../images/x.svg", "02-gpt.ipynb#loss")
// is rewritten so it points at the same thing on the site.

export function rewriteUrl(url: string): string {
  if (url === "" || url.startsWith("#") || url.startsWith("/") || /^[a-z][a-z0-9+.-]*:/i.test(url)) return url;
  const cut = url.search(/[?#]/);
  const file = cut < 0 ? url : url.slice(0, cut);
  const rest = cut < 0 ? "" : url.slice(cut);
  const resolved = path.posix.normalize(path.posix.join("notebooks", file));
  if (resolved.startsWith("images/")) return resolved + rest;
  const m = /^notebooks\/([^/]+)\.ipynb$/.exec(resolved);
  if (m) return `${m[1]}.html${rest}`;
  return url;
}

/** Rewrite src/href attributes inside raw HTML written in markdown cells. */
function rewriteHtmlUrls(html: string): string {
  return html.replace(/\b(src|href)=(["'])([^"']*)\2/gi, (_all, attr: string, q: string, url: string) => `${attr}=${q}${rewriteUrl(url)}${q}`);
}

// ---------------------------------------------------------------------------------------
// Markdown with math

/** Render TeX with KaTeX; a bad formula is a build error naming the formula. */
function renderMath(tex: string, displayMode: boolean): string {
  try {
    return katex.renderToString(tex, { displayMode, throwOnError: true, strict: "ignore", output: "htmlAndMathml" });
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0];
    throw new Error(`${msg} in ${displayMode ? "$$" : "$"}${tex.trim()}${displayMode ? "$$" : "$"}`);
  }
}

const isSpace = (c: string | undefined) => c === undefined || /\s/.test(c);
const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";

type MarkdownItInstance = InstanceType<typeof MarkdownIt>;
type InlineRule = Parameters<MarkdownItInstance["inline"]["ruler"]["push"]>[1];
type BlockRule = Parameters<MarkdownItInstance["block"]["ruler"]["push"]>[1];
type Token = MarkdownIt.Token;

/**
 * Inline `$x$` and `$$x$$`. Like pandoc, `$` opens only before a non-space and closes only after
 * a non-space not followed by a digit, so "costs $5 and $10" stays plain text.
 */
const mathInline: InlineRule = (state, silent) => {
  const src = state.src;
  const start = state.pos;
  if (src[start] !== "$") return false;
  const display = src[start + 1] === "$";
  const delim = display ? 2 : 1;
  if (!display && isSpace(src[start + 1])) return false;
  let pos = start + delim;
  let found = -1;
  while (pos < state.posMax) {
    const c = src[pos];
    if (c === "\\") {
      pos += 2; // "\$" inside math is TeX's literal dollar
      continue;
    }
    if (c === "$") {
      if (display) {
        if (src[pos + 1] === "$") {
          found = pos;
          break;
        }
      } else if (!isSpace(src[pos - 1]) && !isDigit(src[pos + 1])) {
        found = pos;
        break;
      }
    }
    pos++;
  }
  if (found < 0 || found + delim > state.posMax) return false;
  const content = src.slice(start + delim, found);
  if (content.trim() === "") return false;
  if (!silent) {
    const token = state.push(display ? "math_display" : "math_inline", "math", 0);
    token.content = content;
    token.markup = display ? "$$" : "$";
  }
  state.pos = found + delim;
  return true;
};

/** A `$$ … $$` block on its own lines (may span several lines). */
const mathBlock: BlockRule = (state, startLine, endLine, silent) => {
  if (state.sCount[startLine] - state.blkIndent >= 4) return false; // an indented code block
  const lineText = (line: number) => state.src.slice(state.bMarks[line] + state.tShift[line], state.eMarks[line]);
  const first = lineText(startLine);
  if (!first.startsWith("$$")) return false;
  const lines: string[] = [];
  let last = -1;
  const opening = first.slice(2);
  if (opening.trimEnd().endsWith("$$") && opening.trim() !== "") {
    lines.push(opening.trimEnd().slice(0, -2));
    last = startLine;
  } else {
    lines.push(opening);
    for (let line = startLine + 1; line < endLine; line++) {
      const t = lineText(line);
      if (t.trimEnd().endsWith("$$")) {
        lines.push(t.trimEnd().slice(0, -2));
        last = line;
        break;
      }
      lines.push(t);
    }
  }
  if (last < 0) return false;
  if (silent) return true;
  const token = state.push("math_block", "math", 0);
  token.block = true;
  token.content = lines.join("\n");
  token.markup = "$$";
  token.map = [startLine, last + 1];
  state.line = last + 1;
  return true;
};

/** Plain text of an inline token (for page titles and heading anchors). */
function inlineText(token: Token | undefined): string {
  if (!token?.children) return token?.content ?? "";
  return token.children
    .map((c) => (c.type === "text" || c.type === "code_inline" || c.type === "math_inline" ? c.content : c.type === "softbreak" ? " " : ""))
    .join("")
    .trim();
}

export function slugify(s: string): string {
  return (
    s
      .toLowerCase()
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "") || "section"
  );
}

/** Per-page render state: heading anchors must be unique across all cells of a page. */
export interface PageEnv {
  slugs: Set<string>;
  [key: string | symbol]: unknown; // markdown-it's env type
}

function createMarkdown(): MarkdownItInstance {
  const md: MarkdownItInstance = new MarkdownIt({
    html: true, // the notebooks are ours; they may use <img width=…>, <details> and the like
    linkify: true,
    typographer: false,
    highlight: (code, lang) => {
      const language = lang && hljs.getLanguage(lang) ? lang : undefined;
      if (!language) return ""; // markdown-it escapes it
      return hljs.highlight(code, { language, ignoreIllegals: true }).value;
    },
  });
  md.inline.ruler.after("escape", "math_inline", mathInline);
  md.block.ruler.before("fence", "math_block", mathBlock, { alt: ["paragraph", "reference", "blockquote", "list"] });
  md.renderer.rules.math_inline = (tokens, i) => renderMath(tokens[i].content, false);
  md.renderer.rules.math_display = (tokens, i) => renderMath(tokens[i].content, true);
  md.renderer.rules.math_block = (tokens, i) => `<div class="math-block">${renderMath(tokens[i].content, true)}</div>\n`;

  // Fenced code gets the same look as code cells.
  const defaultFence = md.renderer.rules.fence!;
  md.renderer.rules.fence = (tokens, i, options, env, self) => defaultFence(tokens, i, options, env, self).replace(/^<pre>/, '<pre class="hljs">');

  // Rewrite links/images for the site's layout and give headings ids to link to.
  md.core.ruler.push("site_links", (state) => {
    const env = state.env as Partial<PageEnv>;
    const tokens = state.tokens;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (t.type === "html_block") t.content = rewriteHtmlUrls(t.content);
      if (t.type === "heading_open" && env.slugs) {
        let slug = slugify(inlineText(tokens[i + 1]));
        for (let n = 2; env.slugs.has(slug); n++) slug = `${slug.replace(/-\d+$/, "")}-${n}`;
        env.slugs.add(slug);
        t.attrSet("id", slug);
      }
      for (const c of t.children ?? []) {
        if (c.type === "link_open") c.attrSet("href", rewriteUrl(String(c.attrGet("href") ?? "")));
        if (c.type === "image") c.attrSet("src", rewriteUrl(String(c.attrGet("src") ?? "")));
        if (c.type === "html_inline") c.content = rewriteHtmlUrls(c.content);
      }
    }
  });
  return md;
}

let mdSingleton: MarkdownItInstance | undefined;
function markdown(): MarkdownItInstance {
  return (mdSingleton ??= createMarkdown());
}

/** Markdown → HTML with math rendered by KaTeX and links rewritten for the site. */
export function renderMarkdown(source: string, env: PageEnv = { slugs: new Set() }): string {
  return markdown().render(source, env);
}

/**
 * Markdown → its top-level blocks (paragraphs, lists, tables, code, math …) rendered one by one,
 * each with the parsed tokens (the slides estimate a block's height from them).
 */
export function renderMarkdownBlocks(source: string, env: PageEnv = { slugs: new Set() }): { html: string; tokens: Token[] }[] {
  const md = markdown();
  const tokens = md.parse(source, env);
  const blocks: { html: string; tokens: Token[] }[] = [];
  let start = 0;
  let depth = 0;
  tokens.forEach((t, i) => {
    depth += t.nesting;
    if (depth === 0) {
      const slice = tokens.slice(start, i + 1);
      blocks.push({ html: md.renderer.render(slice, md.options, env), tokens: slice });
      start = i + 1;
    }
  });
  return blocks;
}

/** Render tokens from renderMarkdownBlocks again (e.g. some items of a list). */
export function renderMarkdownTokens(tokens: Token[], env: PageEnv = { slugs: new Set() }): string {
  const md = markdown();
  return md.renderer.render(tokens, md.options, env);
}

/** One line of markdown → inline HTML (no surrounding <p>). */
export function renderMarkdownInline(source: string): string {
  return markdown().renderInline(source, {});
}

// ---------------------------------------------------------------------------------------
// Chapter facts: title and summary come from the notebook's own markdown

export interface Chapter {
  /** File name without extension, e.g. "01-tokens-and-embeddings"; the page is `<name>.html`. */
  name: string;
  /** Where the executed notebook was read from (named in error messages). */
  file: string;
  notebook: Notebook;
  /** Plain-text title (for <title>), from the first markdown heading; the name if none. */
  title: string;
  /** The same title as inline HTML (may contain code or math). */
  titleHtml: string;
  /** The first paragraph of text as inline HTML ("" if none). */
  summaryHtml: string;
}

function markdownCells(nb: Notebook): string[] {
  return nb.cells.filter((c) => c.cell_type === "markdown").map((c) => text(c.source));
}

/**
 * The first heading and the first paragraph with words in it (not just a banner image) of some
 * markdown documents read in order, as their markdown source and plain text.
 */
export function firstHeadingAndParagraph(sources: string[]): { title?: string; titleSource?: string; paragraphSource?: string } {
  let titleToken: Token | undefined;
  let paragraphToken: Token | undefined;
  for (const src of sources) {
    const tokens = markdown().parse(src, {});
    for (let i = 0; i < tokens.length - 1; i++) {
      const inline = tokens[i + 1];
      if (!titleToken && tokens[i].type === "heading_open") titleToken = inline;
      else if (!paragraphToken && tokens[i].type === "paragraph_open" && inlineText(inline) !== "") paragraphToken = inline;
    }
    if (titleToken && paragraphToken) break;
  }
  return { title: inlineText(titleToken) || undefined, titleSource: titleToken?.content, paragraphSource: paragraphToken?.content };
}

export function chapterFromNotebook(name: string, notebook: Notebook, file: string = `${name}.ipynb`): Chapter {
  if (!notebook || !Array.isArray(notebook.cells)) throw new Error(`${file}: not a notebook (no "cells" list)`);
  const first = firstHeadingAndParagraph(markdownCells(notebook));
  try {
    return {
      name,
      file,
      notebook,
      title: first.title ?? name,
      titleHtml: first.titleSource !== undefined ? renderMarkdownInline(first.titleSource) : escapeHtml(name),
      summaryHtml: first.paragraphSource !== undefined ? renderMarkdownInline(first.paragraphSource) : "",
    };
  } catch (err) {
    throw new Error(`${file}: title or first paragraph: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Outputs


/** The richest representation we can render, best first. */
export const MIME_PREFERENCE = [
  WIDGET_MIME,
  PLOTLY_MIME,
  "text/html",
  "image/svg+xml",
  "image/png",
  "image/jpeg",
  "text/markdown",
  "text/latex",
  "application/json",
  "text/plain",
] as const;

/**
 * The notebook's own plotly.js bootstrap (a display output tagged by the course's plot helper).
 * The site loads plotly.js from assets/ instead, so these are dropped.
 */
export function isPlotlyLoader(output: Output): boolean {
  if (output.output_type !== "display_data" && output.output_type !== "execute_result") return false;
  const meta = (output.metadata ?? {}) as Record<string, any>;
  const tagged = (m: any) => m?.llm_course?.role === "plotly-loader";
  return tagged(meta) || Object.values(meta).some(tagged);
}

export interface OutputContext {
  /** Names the output in error messages, e.g. "x.ipynb: cell 4, output 2". */
  where: string;
  /** Counter for unique figure ids on the page; the page's live widgets, when collected. */
  figures: { count: number; widgets?: WidgetSpec[] };
  env: PageEnv;
  warnings: string[];
}

/** JSON that can sit inside a <script> element: "<" is escaped so "</script>" can't end it. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

function renderPlotly(value: unknown, ctx: OutputContext): string {
  let fig: any = value;
  if (typeof fig === "string") {
    try {
      fig = JSON.parse(fig);
    } catch (err) {
      throw new Error(`${ctx.where}: ${PLOTLY_MIME} is not valid JSON (${(err as Error).message})`);
    }
  }
  if (typeof fig !== "object" || fig === null || !Array.isArray(fig.data)) {
    throw new Error(`${ctx.where}: ${PLOTLY_MIME} must be an object {data: [...], layout: {...}}`);
  }
  const id = `figure-${++ctx.figures.count}`;
  const figure = { data: fig.data, layout: fig.layout ?? {}, config: fig.config ?? {} };
  // The div is drawn by assets/figures.js, which reads the JSON from the script element after it.
  return (
    `<div class="output plotly-figure" id="${id}"></div>\n` +
    `<script type="application/json" class="plotly-data" data-target="${id}">${scriptJson(figure)}</script>`
  );
}

/**
 * A live widget (lib/widgets/spec.ts): its settings for assets/course-widgets.js and the
 * build-time view, which is what the page shows until the script takes over, or without scripts.
 */
function renderWidget(value: unknown, html: unknown, ctx: OutputContext): string {
  const spec = validateWidgetSpec(typeof value === "string" ? JSON.parse(value) : value, ctx.where);
  ctx.figures.widgets?.push(spec);
  return (
    `<div class="output course-widget" data-kind="${spec.kind}">` +
    `<script type="application/json" class="widget-spec">${scriptJson(spec)}</script>` +
    `<div class="widget-fallback output-html">${html === undefined ? "" : text(html)}</div></div>`
  );
}

function imageDataUri(mime: string, value: unknown): string {
  const b64 = text(value).replace(/\s+/g, "");
  return `data:${mime};base64,${b64}`;
}

function imageSizeAttrs(meta: unknown): string {
  const m = (meta ?? {}) as Record<string, unknown>;
  const attrs: string[] = [];
  if (typeof m.width === "number") attrs.push(`width="${m.width}"`);
  if (typeof m.height === "number") attrs.push(`height="${m.height}"`);
  return attrs.length ? " " + attrs.join(" ") : "";
}

function renderLatex(tex: string): string {
  const t = tex.trim();
  const m = /^\$\$([\s\S]*)\$\$$/.exec(t) ?? /^\$([\s\S]*)\$$/.exec(t) ?? /^\\\[([\s\S]*)\\\]$/.exec(t);
  return `<div class="output output-latex">${renderMath(m ? m[1] : t, true)}</div>`;
}

function renderMimeBundle(data: Record<string, unknown>, metadata: Record<string, unknown>, ctx: OutputContext): string {
  const mime = MIME_PREFERENCE.find((m) => data[m] !== undefined);
  if (!mime) {
    ctx.warnings.push(`${ctx.where}: no renderable MIME type among ${Object.keys(data).join(", ") || "(none)"}; skipped`);
    return "";
  }
  const value = data[mime];
  switch (mime) {
    case WIDGET_MIME:
      return renderWidget(value, data["text/html"], ctx);
    case PLOTLY_MIME:
      return renderPlotly(value, ctx);
    case "text/html":
      return `<div class="output output-html">${text(value)}</div>`;
    case "image/svg+xml":
      // As an <img> so the SVG's ids and styles can't clash with the page's.
      return `<div class="output output-image"><img alt="figure" src="data:image/svg+xml;base64,${Buffer.from(text(value), "utf8").toString("base64")}"${imageSizeAttrs(metadata[mime])}></div>`;
    case "image/png":
    case "image/jpeg":
      return `<div class="output output-image"><img alt="figure" src="${imageDataUri(mime, value)}"${imageSizeAttrs(metadata[mime])}></div>`;
    case "text/markdown":
      return `<div class="output output-markdown">${renderMarkdown(text(value), ctx.env)}</div>`;
    case "text/latex":
      return renderLatex(text(value));
    case "application/json":
      return `<pre class="output output-text">${escapeHtml(JSON.stringify(value, null, 2))}</pre>`;
    case "text/plain":
      return `<pre class="output output-text">${escapeHtml(cleanTerminalText(text(value)))}</pre>`;
  }
}

/** Jupyter shows consecutive writes to the same stream as one block; so do we. */
function mergeStreams(outputs: Output[]): Output[] {
  const merged: Output[] = [];
  for (const o of outputs) {
    const prev = merged[merged.length - 1];
    if (o.output_type === "stream" && prev?.output_type === "stream" && prev.name === o.name) {
      merged[merged.length - 1] = { ...prev, text: text(prev.text) + text(o.text) };
    } else merged.push(o);
  }
  return merged;
}

export function renderOutput(output: Output, ctx: OutputContext): string {
  const o = output as any;
  switch (o?.output_type) {
    case "stream": {
      const name = o.name === "stderr" ? "stderr" : "stdout";
      const body = cleanTerminalText(text(o.text));
      if (body.trim() === "") return "";
      return `<pre class="output stream ${name}">${escapeHtml(body.replace(/\n$/, ""))}</pre>`;
    }
    case "display_data":
    case "execute_result":
      if (isPlotlyLoader(output)) return "";
      if (typeof o.data !== "object" || o.data === null) throw new Error(`${ctx.where}: "data" must be an object of MIME type → value`);
      return renderMimeBundle(o.data, o.metadata ?? {}, ctx);
    case "error": {
      const tb = Array.isArray(o.traceback) && o.traceback.length ? o.traceback.join("\n") : `${o.ename}: ${o.evalue}`;
      return `<pre class="output stream stderr error">${escapeHtml(cleanTerminalText(tb))}</pre>`;
    }
    default:
      throw new Error(
        `${ctx.where}: unknown output_type ${JSON.stringify(o?.output_type)}; expected stream, display_data, execute_result or error`,
      );
  }
}

// ---------------------------------------------------------------------------------------
// Cells and pages

export function cellTags(cell: Cell): string[] {
  const tags = (cell.metadata as Record<string, unknown> | undefined)?.tags;
  return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === "string") : [];
}

/** A code cell's outputs as Jupyter shows them (consecutive stream writes merged), each with its HTML ("" when it shows nothing). */
export function renderCodeOutputs(
  cell: Cell & { cell_type: "code" }, cellNo: number, ch: Chapter, figures: { count: number }, env: PageEnv, warnings: string[],
): { output: Output; html: string }[] {
  return mergeStreams(Array.isArray(cell.outputs) ? cell.outputs : []).map((output, j) => ({
    output,
    html: renderOutput(output, { where: `${ch.file}: cell ${cellNo}, output ${j + 1}`, figures, env, warnings }),
  }));
}

export function renderCodeCell(cell: Cell & { cell_type: "code" }, cellNo: number, ch: Chapter, figures: { count: number }, env: PageEnv, warnings: string[]): string {
  const tags = cellTags(cell);
  const source = text(cell.source).replace(/\s+$/, "");
  const outputs = renderCodeOutputs(cell, cellNo, ch, figures, env, warnings).map((r) => r.html).filter((h) => h !== "");
  if (source === "" && outputs.length === 0) return "";
  const count = typeof cell.execution_count === "number" ? String(cell.execution_count) : " ";
  const input =
    source === "" || tags.includes("remove-input")
      ? ""
      : `<div class="input"><div class="prompt" title="execution count">[${count}]</div>` +
        `<pre class="source hljs"><code class="language-typescript">${hljs.highlight(source, { language: "typescript", ignoreIllegals: true }).value}</code></pre></div>`;
  const out = outputs.length ? `<div class="outputs">\n${outputs.join("\n")}\n</div>` : "";
  return `<section class="cell code-cell">${input}${out}</section>`;
}

export function renderCell(cell: Cell, i: number, ch: Chapter, figures: { count: number }, env: PageEnv, warnings: string[]): string {
  const cellNo = i + 1;
  if (cellTags(cell).includes("remove-cell")) return "";
  try {
    switch (cell.cell_type) {
      case "markdown":
        return `<section class="cell markdown-cell">\n${renderMarkdown(text(cell.source), env)}</section>`;
      case "code":
        return renderCodeCell(cell, cellNo, ch, figures, env, warnings);
      case "raw":
        return ""; // raw cells are for other converters (nbconvert); nothing to show
      default:
        throw new Error(`unknown cell_type ${JSON.stringify((cell as any).cell_type)}`);
    }
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(msg.startsWith(ch.file) ? msg : `${ch.file}: cell ${cellNo}: ${msg}`);
  }
}

export interface SiteOptions {
  courseTitle: string;
  /** Markdown shown on the index page above the chapter list. */
  intro: string;
  /** Optional one-line banner on every page, e.g. that this is a smoke build with tiny sizes. */
  notice?: string;
  /** Slide decks (slides/<name>.html) are linked from the pages unless this is false. */
  slides?: boolean;
}

export const DEFAULT_SITE_OPTIONS: SiteOptions = {
  courseTitle: "LLMs from scratch, in TypeScript",
  intro:
    "How large language models are designed and trained, built from scratch in TypeScript notebooks: " +
    "tokens, embeddings, attention, GPT, pretraining, fine-tuning, reward models, PPO and DPO.",
};

/** A worked solution, collapsed: <details class="solution"><summary>Solution 2</summary>…</details>. */
export function solutionDetails(ref: SolutionRef, bodyHtml: string[]): string {
  return `<details class="solution"><summary>${escapeHtml(ref.label)}</summary>\n<div class="solution-body">\n${bodyHtml.join("\n")}\n</div></details>`;
}

/**
 * Render a notebook piece by piece (see notebookStructure.ts), wrapping the pieces of each worked
 * solution in one collapsed <details>; cells tagged remove-cell and empty renders are dropped.
 */
export function renderPieces(ch: Chapter, render: (p: ReturnType<typeof notebookPieces>[number]) => string): string[] {
  const out: string[] = [];
  let open: SolutionRef | undefined;
  let body: string[] = [];
  const close = () => {
    if (open && body.length) out.push(solutionDetails(open, body));
    open = undefined;
    body = [];
  };
  for (const p of notebookPieces(ch.notebook)) {
    if (cellTags(ch.notebook.cells[p.cell]).includes("remove-cell")) continue;
    const html = isSolutionTitle(p) ? "" : render(p);
    if (html === "") continue;
    if (p.solution?.id !== open?.id) close();
    if (p.solution) {
      open = p.solution;
      body.push(html);
    } else out.push(html);
  }
  close();
  return out;
}
