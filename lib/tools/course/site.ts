/**
 * The course as an offline static website: one HTML page per executed notebook plus an index.
 *
 * Everything is rendered at build time (markdown, KaTeX math, highlighted code) so a page needs
 * no network and no JavaScript except plotly.js for interactive figures. Pages use relative
 * links only, so the folder works from file:// as well as from any static server.
 *
 * (The HTML of a notebook's content is render.ts's, shared with the slide decks.)
 *
 * Layout of the output folder:
 *   index.html, <notebook>.html, images/ (copied from the repo), assets/ (CSS, KaTeX, plotly.js)
 */
import * as fs from "fs";
import * as path from "path";
import { writeFileAtomic } from "../../core/atomic";
import { repoRoot } from "../../core/paths";
import { readNotebook } from "./notebook";
import {
  chapterFromNotebook, DEFAULT_SITE_OPTIONS, escapeHtml, renderCell, renderMarkdown, renderMarkdownInline, renderPieces,
  type Chapter, type PageEnv, type SiteOptions,
} from "./render";
import { renderSlideDeck } from "./slides";
import { WIDGET_BUNDLE, writeWidgetAssets } from "./widgetAssets";
import { widgetModels, type WidgetSpec } from "../../widgets/spec";

/** The chapter number from the file name ("03-attention" → "03"), unless the title already starts with it. */
function chapterLabel(ch: Chapter): string {
  const m = /^(\d+)/.exec(ch.name);
  if (!m || new RegExp(`^(chapter\\s+)?${m[1]}\\b`, "i").test(ch.title)) return "";
  return m[1];
}

function noticeBanner(opts: SiteOptions): string {
  return opts.notice ? `<div class="notice" role="note">${renderMarkdownInline(opts.notice)}</div>\n` : "";
}

function pageHead(title: string, extraHead = ""): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/katex/katex.min.css">
<link rel="stylesheet" href="assets/hljs.css">
<link rel="stylesheet" href="assets/site.css">
${extraHead}</head>`;
}

function navLink(ch: Chapter | undefined, rel: "prev" | "next"): string {
  if (!ch) return `<span class="nav-${rel} nav-empty"></span>`;
  const label = chapterLabel(ch);
  const arrowL = rel === "prev" ? "← " : "";
  const arrowR = rel === "next" ? " →" : "";
  return `<a class="nav-${rel}" rel="${rel}" href="${ch.name}.html">${arrowL}${label ? `<span class="nav-num">${label}</span> ` : ""}${ch.titleHtml}${arrowR}</a>`;
}

function pager(prev: Chapter | undefined, next: Chapter | undefined, where: "top" | "bottom"): string {
  return `<nav class="pager pager-${where}" aria-label="chapters">${navLink(prev, "prev")}<a class="nav-index" href="index.html">Contents</a>${navLink(next, "next")}</nav>`;
}

export interface RenderedPage {
  html: string;
  /** Number of plotly figures on the page (0 means plotly.js is not loaded). */
  figures: number;
  /** The page's live widgets (lib/widgets/spec.ts). */
  widgets: WidgetSpec[];
  /** Non-fatal problems, e.g. an output with no MIME type we can show. */
  warnings: string[];
}

/** The HTML page of one executed notebook. */
export function renderNotebookPage(
  ch: Chapter,
  nav: { prev?: Chapter; next?: Chapter; index: number; total: number },
  opts: SiteOptions = DEFAULT_SITE_OPTIONS,
): RenderedPage {
  const figures = { count: 0, widgets: [] as WidgetSpec[] };
  const env: PageEnv = { slugs: new Set() };
  const warnings: string[] = [];
  const cells = renderPieces(ch, (p) => {
    const cell = ch.notebook.cells[p.cell];
    // A markdown cell may be cut into pieces (at headings and solution markers): each renders alone.
    return renderCell(p.type === "markdown" ? { ...cell, source: p.source } : cell, p.cell, ch, figures, env, warnings);
  });
  // plotly.js is 4.8 MB: only pages with figures load it.
  const scripts = (figures.count > 0 ? `<script src="assets/plotly.min.js"></script>\n<script src="assets/figures.js"></script>\n` : "") +
    (figures.widgets.length > 0 ? `<link rel="stylesheet" href="assets/widgets.css">\n<script src="${WIDGET_BUNDLE}"></script>\n` : "");
  const html = `${pageHead(`${ch.title} — ${opts.courseTitle}`)}
<body>
<header class="site-header">
<a class="course-title" href="index.html">${escapeHtml(opts.courseTitle)}</a>
<span class="header-right">${opts.slides === false ? "" : `<a class="present-link" href="slides/${ch.name}.html" title="this chapter as slides, for a projector">Present ▶</a> `}<span class="chapter-count">Chapter ${nav.index + 1} of ${nav.total}</span></span>
</header>
${noticeBanner(opts)}${pager(nav.prev, nav.next, "top")}
<main class="notebook">
${cells.join("\n")}
</main>
${pager(nav.prev, nav.next, "bottom")}
${scripts}</body>
</html>
`;
  return { html, figures: figures.count, widgets: figures.widgets, warnings };
}

/** The index page: title, intro and the chapter list in order. */
export function renderIndexPage(chapters: Chapter[], opts: SiteOptions = DEFAULT_SITE_OPTIONS): string {
  const items = chapters
    .map((ch) => {
      const label = chapterLabel(ch);
      const summary = ch.summaryHtml ? `<p class="chapter-summary">${ch.summaryHtml}</p>` : "";
      const present = opts.slides === false ? "" : ` <a class="present-link" href="slides/${ch.name}.html" title="this chapter as slides, for a projector">Present ▶</a>`;
      return `<li class="chapter"><a href="${ch.name}.html">${label ? `<span class="chapter-num">${label}</span>` : ""}<span class="chapter-title">${ch.titleHtml}</span></a>${summary}${present}</li>`;
    })
    .join("\n");
  return `${pageHead(opts.courseTitle)}
<body class="index">
${noticeBanner(opts)}<main>
<h1>${escapeHtml(opts.courseTitle)}</h1>
<div class="intro">${renderMarkdown(opts.intro)}</div>
<h2>Chapters</h2>
<ol class="chapters">
${items}
</ol>
</main>
</body>
</html>
`;
}

// ---------------------------------------------------------------------------------------
// Writing the site

/** Source files the site needs, resolved from the installed packages and the repo. */
export function assetSources(): { from: string; to: string }[] {
  const katexDist = path.dirname(require.resolve("katex")); // …/katex/dist/katex.js
  const fontsDir = path.join(katexDist, "fonts");
  const fonts = fs.readdirSync(fontsDir).filter((f) => f.endsWith(".woff2") || f.endsWith(".woff") || f.endsWith(".ttf"));
  const own = path.join(repoRoot, "lib", "tools", "course", "siteAssets");
  return [
    { from: path.join(own, "site.css"), to: "assets/site.css" },
    { from: path.join(own, "figures.js"), to: "assets/figures.js" },
    { from: path.join(own, "widgets.css"), to: "assets/widgets.css" },
    { from: require.resolve("highlight.js/styles/github.min.css"), to: "assets/hljs.css" },
    { from: path.join(katexDist, "katex.min.css"), to: "assets/katex/katex.min.css" },
    ...fonts.map((f) => ({ from: path.join(fontsDir, f), to: `assets/katex/fonts/${f}` })),
    // Read as a file, never require()d: the bundle expects a browser.
    { from: require.resolve("plotly.js-dist-min"), to: "assets/plotly.min.js" },
    // Presenter mode: reveal.js (its UMD build defines window.Reveal) and our slide styles.
    { from: path.join(own, "slides.css"), to: "assets/slides.css" },
    { from: path.join(own, "slides.js"), to: "assets/slides.js" },
    { from: require.resolve("reveal.js"), to: "assets/reveal/reveal.js" },
    { from: require.resolve("reveal.js/reveal.css"), to: "assets/reveal/reveal.css" },
    { from: require.resolve("reveal.js/theme/white.css"), to: "assets/reveal/white.css" },
    { from: require.resolve("reveal.js/plugin/notes"), to: "assets/reveal/notes.js" },
  ];
}

function copyFile(from: string, to: string): void {
  let data: Buffer;
  try {
    data = fs.readFileSync(from);
  } catch (err) {
    throw new Error(`site asset ${from}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  writeFileAtomic(to, data);
}

function copyTree(fromDir: string, toDir: string, keep: (name: string) => boolean = () => true): number {
  let n = 0;
  for (const entry of fs.readdirSync(fromDir, { withFileTypes: true })) {
    const from = path.join(fromDir, entry.name);
    const to = path.join(toDir, entry.name);
    if (entry.isDirectory()) n += copyTree(from, to, keep);
    else if (entry.isFile() && keep(entry.name)) {
      copyFile(from, to);
      n++;
    }
  }
  return n;
}

export interface BuildSiteOptions extends Partial<Omit<SiteOptions, "slides">> {
  /** Executed notebooks in chapter order; `name` defaults to the file name without .ipynb. */
  notebooks: (string | { file: string; name?: string })[];
  /** The folder to write (created if needed; existing files are overwritten, others left alone). */
  outDir: string;
  /** Folder copied to <outDir>/images; defaults to the repo's images/ (skipped if absent). */
  imagesDir?: string;
  /** Also write slides/<name>.html per notebook (default true); "only": just the slides and assets. */
  slides?: boolean | "only";
  /** Environment that says where the widgets' models are (COURSE_ARTIFACTS, COURSE_SMOKE…); default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface BuildSiteResult {
  pages: string[];
  /** Slide decks written, e.g. "slides/03-attention.html". */
  decks: string[];
  chapters: Chapter[];
  figures: number;
  /** The widgets' bundle and models written (relative paths, bytes). */
  widgetFiles: { file: string; bytes: number }[];
  warnings: string[];
}

/** Render every notebook, the index, and copy the assets and images into `outDir`. */
export function buildSite(options: BuildSiteOptions): BuildSiteResult {
  const opts: SiteOptions = {
    courseTitle: options.courseTitle ?? DEFAULT_SITE_OPTIONS.courseTitle,
    intro: options.intro ?? DEFAULT_SITE_OPTIONS.intro,
    notice: options.notice,
    slides: options.slides !== false,
  };
  const chapters = options.notebooks.map((nb) => {
    const file = typeof nb === "string" ? nb : nb.file;
    const name = (typeof nb === "string" ? undefined : nb.name) ?? path.basename(file, ".ipynb");
    return chapterFromNotebook(name, readNotebook(file), file);
  });
  const names = new Set<string>();
  for (const ch of chapters) {
    if (ch.name === "index") throw new Error(`${ch.file}: a notebook can't be called "index" (the site's contents page)`);
    if (names.has(ch.name)) throw new Error(`${ch.file}: two notebooks are both named "${ch.name}"`);
    names.add(ch.name);
  }

  const outDir = path.resolve(options.outDir);
  const pages: string[] = [];
  const warnings: string[] = [];
  let figures = 0;
  const decks: string[] = [];
  const widgets: WidgetSpec[] = [];
  if (options.slides !== false) {
    for (const ch of chapters) {
      const deck = renderSlideDeck(ch, opts);
      widgets.push(...deck.widgets);
      writeFileAtomic(path.join(outDir, "slides", `${ch.name}.html`), deck.html);
      decks.push(`slides/${ch.name}.html`);
      warnings.push(...deck.warnings);
    }
  }
  if (options.slides !== "only") chapters.forEach((ch, i) => {
    const page = renderNotebookPage(ch, { prev: chapters[i - 1], next: chapters[i + 1], index: i, total: chapters.length }, opts);
    writeFileAtomic(path.join(outDir, `${ch.name}.html`), page.html);
    pages.push(`${ch.name}.html`);
    warnings.push(...page.warnings);
    widgets.push(...page.widgets);
    figures += page.figures;
  });
  if (options.slides !== "only") {
    writeFileAtomic(path.join(outDir, "index.html"), renderIndexPage(chapters, opts));
    pages.unshift("index.html");
  }

  for (const a of assetSources()) copyFile(a.from, path.join(outDir, a.to));
  const widgetFiles = widgets.length === 0 ? [] : writeWidgetAssets(outDir, {
    models: new Set(widgets.flatMap(widgetModels)),
    gpt2: widgets.some((w) => w.kind === "tokenizers" && w.tokenizers.some((t) => t.json.type === "gpt2")),
  }, options.env).files;
  const imagesDir = options.imagesDir ?? path.join(repoRoot, "images");
  // Pictures only: images/ also holds the figures' generator and its README.
  const isPicture = (name: string) => /\.(svg|png|jpe?g|gif|webp)$/i.test(name);
  if (fs.existsSync(imagesDir)) copyTree(imagesDir, path.join(outDir, "images"), isPicture);
  return { pages, decks, chapters, figures, widgetFiles, warnings };
}
