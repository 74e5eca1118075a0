/**
 * Open every page of the built course site in headless Chromium and fail on anything a student
 * would notice: console errors, script errors, failed or external requests, plotly figures that
 * did not draw, fonts that did not load, links to pages that don't exist. Saves a full-page
 * screenshot of each page to look at. Worked solutions (<details>) are opened first, so the plots
 * inside them must draw too.
 *
 * The slide decks (slides/*.html, presenter mode) are opened at 1280×720: every slide is visited
 * through the Reveal API, its plots must draw at the width of the slide, nothing may stick out
 * sideways (it would be cut off), solutions must start collapsed and draw their plots when opened.
 * No slide may be taller than the screen once assets/slides.js has shrunk it to fit; slides shrunk
 * below SHRUNK_NOTE of their size are listed as a note (too much on one slide). Screenshots of a
 * few slides per deck go to <screenshots>/slides/.
 *
 *   node lib/dist/tools/course/checkSite.js [SITE_DIR] [--mode http|file|both] [--screenshots DIR]
 *
 * SITE_DIR defaults to build/site. Pages are opened from a tiny local static server (http) and
 * from file:// (both by default), because the site must work both ways. Chromium comes from the
 * system (CHROMIUM_PATH, default /usr/bin/chromium); without it the check is skipped (exit 0).
 */
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { pathToFileURL } from "url";
import type { BrowserContext, Page } from "playwright-core";
import { projectPath, repoRoot } from "../../core/paths";
import { type Command, commandMain, optionParser, type Parsed, runAsScript, UsageError } from "../cli/cli";
import { checkWidgets, fallbackProblems } from "./checkWidgets";

// Without the networking flags Chromium's background services fail loudly on a closed network.
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const FIGURE_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------------------
// A static file server, just enough for the site

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".ttf": "font/ttf",
  ".ipynb": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

export function contentType(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream";
}

/** Map a request path to a file under root, or undefined if it would escape root. */
export function resolveRequestPath(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath.split(/[?#]/)[0]);
  } catch {
    return undefined;
  }
  const file = path.resolve(root, "." + path.posix.normalize("/" + decoded));
  const rel = path.relative(root, file);
  if (rel.startsWith("..") || path.isAbsolute(rel)) return undefined;
  return decoded.endsWith("/") ? path.join(file, "index.html") : file;
}

export interface StaticServer {
  url: string;
  close(): Promise<void>;
}

/** Serve `root` on 127.0.0.1 (random free port). */
export function startStaticServer(root: string): Promise<StaticServer> {
  const absRoot = path.resolve(root);
  const server = http.createServer((req, res) => {
    const file = resolveRequestPath(absRoot, req.url ?? "/");
    if (!file || req.method !== "GET") {
      res.writeHead(file ? 405 : 403).end();
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found");
        return;
      }
      res.writeHead(200, { "content-type": contentType(file), "content-length": data.length }).end(data);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      resolve({
        url: `http://127.0.0.1:${port}/`,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

// ---------------------------------------------------------------------------------------
// Checking one page

export type Mode = "http" | "file";

export interface PageResult {
  page: string;
  mode: Mode;
  problems: string[];
  figures: number;
  ms: number;
  /** Slide decks: how many slides were stepped through. */
  slides?: number;
  /** Live widgets used and checked (lib/tools/course/checkWidgets.ts). */
  widgets?: number;
  /** Things worth knowing that are not failures (e.g. slides that scroll). */
  notes?: string[];
}

/** Every .html file of the site, index.html first, then by name. */
export function listPages(siteDir: string): string[] {
  const pages = fs.readdirSync(siteDir).filter((f) => f.endsWith(".html"));
  return pages.sort((a, b) => (a === "index.html" ? -1 : b === "index.html" ? 1 : a.localeCompare(b)));
}

/** The slide decks of the site (slides/*.html, see lib/tools/course/slides.ts), by name. */
export function listDecks(siteDir: string): string[] {
  const dir = path.join(siteDir, "slides");
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".html"))
    .sort()
    .map((f) => `slides/${f}`);
}

/** Relative links of a page that point at files missing from the site. */
export function missingLinkTargets(siteDir: string, page: string, hrefs: string[]): string[] {
  const missing: string[] = [];
  for (const href of hrefs) {
    if (href === "" || href.startsWith("#") || /^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith("//")) continue;
    const target = href.split(/[?#]/)[0];
    const file = path.resolve(siteDir, path.dirname(page), decodeURIComponent(target));
    if (!fs.existsSync(file)) missing.push(href);
  }
  return missing;
}

/** Is this a request the offline site may make? (anything else means it needs the network) */
function isLocal(url: string, base: string): boolean {
  return url.startsWith(base) || url.startsWith("data:") || url.startsWith("blob:") || url.startsWith("about:");
}

async function checkPage(context: BrowserContext, siteDir: string, page: string, mode: Mode, base: string, screenshot?: string): Promise<PageResult> {
  const t0 = Date.now();
  const problems: string[] = [];
  const tab: Page = await context.newPage();
  tab.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  tab.on("pageerror", (err) => problems.push(`page error: ${err.message.split("\n")[0]}`));
  tab.on("requestfailed", (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText ?? "?"})`));
  tab.on("request", (req) => {
    if (!isLocal(req.url(), base)) problems.push(`external request (the site must work offline): ${req.url()}`);
  });
  tab.on("response", (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  let figures = 0;
  let widgets = 0;
  const notes: string[] = [];
  try {
    await tab.goto(base + encodeURI(page), { waitUntil: "load" });
    figures = await tab.locator(".plotly-figure").count();
    // Worked solutions are collapsed (<details>); their plots are drawn when opened. Open them all.
    await tab.$$eval("details", (ds) => ds.forEach((d) => ((d as unknown as { open: boolean }).open = true)));
    if (figures > 0) problems.push(...(await figureProblems(tab, ".plotly-figure")));
    for (const w of await checkWidgets(tab, "main", siteDir, page)) {
      widgets++;
      problems.push(...w.problems.map((p) => `${w.kind} widget: ${p}`));
      notes.push(...w.notes);
    }
    // KaTeX fonts load lazily; a font that failed shows up here, not as a console error.
    const badFonts = await tab.evaluate(async () => {
      await document.fonts.ready;
      // (typed loosely: the project has no DOM lib, and FontFaceSet is iterable only there)
      const faces = Array.from(document.fonts as unknown as Iterable<{ status: string; family: string }>);
      return faces.filter((f) => f.status === "error").map((f) => f.family);
    });
    if (badFonts.length) problems.push(`fonts failed to load: ${badFonts.join(", ")}`);
    const hrefs = await tab.$$eval("a[href]", (as) => as.map((a) => a.getAttribute("href") ?? ""));
    for (const href of missingLinkTargets(siteDir, page, hrefs)) problems.push(`broken link: ${href}`);
    if (screenshot) {
      fs.mkdirSync(path.dirname(screenshot), { recursive: true });
      await tab.screenshot({ path: screenshot, fullPage: true });
    }
  } catch (err) {
    problems.push(`could not check the page: ${(err as Error).message.split("\n")[0]}`);
  } finally {
    await tab.close();
  }
  return { page, mode, problems, figures, widgets, ms: Date.now() - t0, notes };
}

/**
 * Wait until every figure matching `selector` has drawn, then check it was drawn at the width of
 * its container (a plot drawn while hidden gets plotly's default 700 px instead).
 */
async function figureProblems(tab: Page, selector: string): Promise<string[]> {
  try {
    await tab.waitForFunction((sel) => Array.from(document.querySelectorAll(sel)).every((d) => d.querySelector(".main-svg") !== null), selector, {
      timeout: FIGURE_TIMEOUT_MS,
    });
  } catch {
    const ids = await tab.$$eval(selector, (ds) => ds.filter((d) => !d.querySelector(".main-svg")).map((d) => d.id));
    return [`plotly figure(s) not drawn: ${ids.join(", ")}`];
  }
  // Drawn plots fill their box (plotly's resize is async: give it a moment).
  const misfit = async () =>
    tab.$$eval(selector, (ds) =>
      ds
        .map((d) => {
          const svg = d.querySelector(".main-svg") as unknown as { getBoundingClientRect(): { width: number; height: number } } | null;
          const box = (d as unknown as { getBoundingClientRect(): { width: number } }).getBoundingClientRect();
          const r = svg?.getBoundingClientRect();
          return { id: d.id, svg: r ? Math.round(r.width) : 0, h: r ? Math.round(r.height) : 0, box: Math.round(box.width) };
        })
        .filter((f) => f.svg < 50 || f.h < 50 || Math.abs(f.svg - f.box) > 3)
        .map((f) => `${f.id} (${f.svg}×${f.h} px in a ${f.box} px wide box)`),
    );
  let bad = await misfit();
  for (let i = 0; i < 10 && bad.length; i++) {
    await tab.waitForTimeout(200);
    bad = await misfit();
  }
  return bad.length ? [`plotly figure(s) drawn at the wrong size: ${bad.join(", ")}`] : [];
}

/** A slide shrunk below this zoom to fit is worth a note: it carries too much. */
const SHRUNK_NOTE = 0.75;

interface SlideInfo {
  h: number;
  v: number;
  figures: number;
  code: boolean;
  solutions: number;
  /** How much taller than the slide its content is once shrunk to fit (must be 0). */
  overflowY: number;
  /** The zoom assets/slides.js gave the slide's body to fit (1 = full size). */
  zoom: number;
  /** Content wider than the slide is clipped (overflow-x is hidden): must be 0. */
  overflowX: number;
  title: string;
}

/**
 * Open a reveal.js deck, step through every slide with the Reveal API, check each slide's plots
 * drew at full width and nothing sticks out sideways, open its collapsed solutions and check their
 * plots too. Screenshots of a few slides (the first, the first with a plot, the first with code,
 * the most shrunk) go to `screenshotDir/<deck>-<h>-<v>.png`.
 */
async function checkDeck(context: BrowserContext, siteDir: string, deck: string, mode: Mode, base: string, screenshotDir?: string): Promise<PageResult> {
  const t0 = Date.now();
  const problems: string[] = [];
  const notes: string[] = [];
  const tab: Page = await context.newPage();
  tab.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  tab.on("pageerror", (err) => problems.push(`page error: ${err.message.split("\n")[0]}`));
  tab.on("requestfailed", (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText ?? "?"})`));
  tab.on("request", (req) => {
    if (!isLocal(req.url(), base)) problems.push(`external request (the site must work offline): ${req.url()}`);
  });
  tab.on("response", (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  let figures = 0;
  let slides = 0;
  let widgets = 0;
  try {
    await tab.goto(base + encodeURI(deck), { waitUntil: "load" });
    await tab.waitForFunction(() => (globalThis as any).Reveal?.isReady?.() === true, undefined, { timeout: FIGURE_TIMEOUT_MS });
    figures = await tab.locator(".plotly-figure").count();
    const openAtLoad = await tab.locator("details.solution[open]").count();
    if (openAtLoad) problems.push(`${openAtLoad} solution(s) open at load; they must start collapsed`);
    const indices: { h: number; v: number }[] = await tab.evaluate(() => {
      const R = (globalThis as any).Reveal;
      return R.getSlides().map((s: unknown) => R.getIndices(s));
    });
    slides = indices.length;
    const infos: SlideInfo[] = [];
    for (const { h, v } of indices) {
      await tab.evaluate(([h, v]) => (globalThis as any).Reveal.slide(h, v), [h, v ?? 0] as const);
      const where = `slide ${h + 1}.${(v ?? 0) + 1}`;
      const current = ".reveal .slides section.slide.present";
      const visible = `${current} .plotly-figure:not(details:not([open]) .plotly-figure)`;
      // Plots first: they set the slide's height, which the fit then shrinks if it must.
      if (await tab.locator(visible).count()) for (const p of await figureProblems(tab, visible)) problems.push(`${where}: ${p}`);
      // Widgets are used before the slide is measured: what they show grows the slide.
      for (const w of await checkWidgets(tab, current, siteDir, deck)) {
        widgets++;
        problems.push(...w.problems.map((p) => `${where}: ${w.kind} widget: ${p}`));
      }
      const info: SlideInfo = await tab.$eval(current, (el: any) => {
        const zoom = (globalThis as any).courseSlides?.fit(el) ?? 1;
        return {
          h: 0,
          v: 0,
          figures: el.querySelectorAll(".plotly-figure").length,
          code: el.querySelector(".code-cell") !== null,
          solutions: el.querySelectorAll("details.solution").length,
          overflowY: Math.max(0, el.scrollHeight - el.clientHeight),
          overflowX: Math.max(0, el.scrollWidth - el.clientWidth),
          zoom,
          title: (el.querySelector(".slide-title")?.textContent ?? "").trim().slice(0, 60),
        };
      });
      info.h = h;
      info.v = v ?? 0;
      infos.push(info);
      if (info.overflowX > 1) problems.push(`${where} ("${info.title}"): content ${info.overflowX} px wider than the slide is cut off`);
      if (info.overflowY > 1) problems.push(`${where} ("${info.title}"): ${info.overflowY} px taller than the screen even shrunk to ${info.zoom.toFixed(2)}`);
      if (info.solutions) {
        // A solution opened on a slide draws its plots too; then it is closed again.
        await tab.$$eval(`${current} details.solution`, (ds) => ds.forEach((d: any) => (d.open = true)));
        for (const p of await figureProblems(tab, `${current} .plotly-figure`)) problems.push(`${where}, solution opened: ${p}`);
        await tab.$$eval(`${current} details.solution`, (ds) => ds.forEach((d: any) => (d.open = false)));
      }
    }
    const shrunk = infos.filter((i) => i.zoom < SHRUNK_NOTE);
    if (shrunk.length)
      notes.push(`${shrunk.length} slide(s) shrunk below ${SHRUNK_NOTE} to fit: ${shrunk.map((i) => `${i.h + 1}.${i.v + 1} (${i.zoom.toFixed(2)})`).join(", ")}`);
    const badFonts = await tab.evaluate(async () => {
      await document.fonts.ready;
      const faces = Array.from(document.fonts as unknown as Iterable<{ status: string; family: string }>);
      return faces.filter((f) => f.status === "error").map((f) => f.family);
    });
    if (badFonts.length) problems.push(`fonts failed to load: ${badFonts.join(", ")}`);
    const hrefs = await tab.$$eval("a[href]", (as) => as.map((a) => a.getAttribute("href") ?? ""));
    for (const href of missingLinkTargets(siteDir, deck, hrefs)) problems.push(`broken link: ${href}`);
    if (screenshotDir) {
      const picks = new Map<string, SlideInfo>();
      const add = (i: SlideInfo | undefined) => i && picks.set(`${i.h}-${i.v}`, i);
      add(infos[0]);
      add(infos.find((i) => i.figures > 0));
      add(infos.find((i) => i.code));
      add([...infos].sort((a, b) => a.zoom - b.zoom)[0]); // the most shrunk
      fs.mkdirSync(screenshotDir, { recursive: true });
      for (const i of picks.values()) {
        await tab.evaluate(([h, v]) => (globalThis as any).Reveal.slide(h, v), [i.h, i.v] as const);
        if (i.figures) await figureProblems(tab, ".reveal .slides section.slide.present .plotly-figure:not(details:not([open]) .plotly-figure)");
        await tab.screenshot({ path: path.join(screenshotDir, `${path.basename(deck, ".html")}-${i.h + 1}-${i.v + 1}.png`) });
      }
    }
  } catch (err) {
    problems.push(`could not check the deck: ${(err as Error).message.split("\n")[0]}`);
  } finally {
    await tab.close();
  }
  return { page: deck, mode, problems, figures, widgets, ms: Date.now() - t0, slides, notes };
}

// ---------------------------------------------------------------------------------------
// Command line

export interface CheckArgs {
  siteDir: string;
  modes: Mode[];
  screenshotsDir: string;
}

interface CheckOptions {
  mode: "http" | "file" | "both";
  screenshots?: string;
}

const CHECK_SITE: Command<CheckOptions> = {
  name: "check-site",
  summary: `Opens every page and slide deck (slides/*.html) of the site (default build/site) in headless Chromium (CHROMIUM_PATH, default
/usr/bin/chromium) and fails on console errors, page errors, failed or external requests, plotly figures that did not draw
(solutions are opened; every slide is stepped through), content cut off on a slide, fonts that failed and broken links.`,
  positionals: "[SITE_DIR]",
  options: {
    mode: { kind: "choice", choices: ["http", "file", "both"], value: "MODE", default: "both", help: "how the pages are opened: from a local server, as files, or both" },
    screenshots: { kind: "string", value: "DIR", defaultText: "build/screenshots for build/site, else SITE_DIR-screenshots", help: "where the screenshots go" },
  },
  validate: (a) => {
    const p = (a as CheckOptions & Parsed).positionals;
    if (p.length > 1) throw new UsageError(`expected one site folder, got ${p.length}: ${p.join(" ")}`);
  },
  run: (a) => checkSite(toCheckArgs(a as CheckOptions & Parsed)),
};

function toCheckArgs(a: CheckOptions & Parsed): CheckArgs {
  const siteDir = path.resolve(a.positionals[0] ?? path.join(repoRoot, "build", "site"));
  return { siteDir, modes: a.mode === "both" ? ["http", "file"] : [a.mode], screenshotsDir: path.resolve(a.screenshots ?? defaultScreenshotsDir(siteDir)) };
}

/** build/site → build/screenshots; anything/else → anything/else-screenshots. */
export function defaultScreenshotsDir(siteDir: string): string {
  const abs = path.resolve(siteDir);
  const base = path.basename(abs);
  return path.join(path.dirname(abs), base === "site" ? "screenshots" : `${base}-screenshots`);
}

export function parseCheckArgs(argv: string[]): CheckArgs | "help" {
  const a = optionParser<CheckOptions>(CHECK_SITE)(argv);
  if (a.help) return "help";
  CHECK_SITE.validate!(a);
  return toCheckArgs(a);
}

function formatResult(r: PageResult): string {
  const where = `${r.page} (${r.mode})`;
  if (r.problems.length === 0) {
    const slides = r.slides !== undefined ? `, ${r.slides} slides` : "";
    const figs = (r.figures ? `, ${r.figures} figure${r.figures === 1 ? "" : "s"}` : "") + (r.widgets ? `, ${r.widgets} live widget${r.widgets === 1 ? "" : "s"} used` : "");
    const notes = (r.notes ?? []).map((n) => `\n        note: ${n}`).join("");
    return `ok    ${where}${slides}${figs}, ${(r.ms / 1000).toFixed(1)} s${notes}`;
  }
  return `FAIL  ${where}\n${r.problems.map((p) => `        ${p}`).join("\n")}`;
}

export const main = commandMain(CHECK_SITE);

async function checkSite(args: CheckArgs): Promise<number> {
  const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!fs.existsSync(chromiumPath)) {
    process.stdout.write(`check-site: skipped: Chromium not found at ${chromiumPath} (install it, or set CHROMIUM_PATH)\n`);
    return 0;
  }
  if (!fs.existsSync(args.siteDir) || !fs.statSync(args.siteDir).isDirectory()) {
    throw new Error(`${projectPath(args.siteDir)}: no such folder (build the site first: npm start)`);
  }
  const pages = listPages(args.siteDir);
  if (pages.length === 0) {
    throw new Error(`${projectPath(args.siteDir)}: no .html pages`);
  }

  // Loaded here, not at the top: importing the site helpers must not need playwright.
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
  const server = args.modes.includes("http") ? await startStaticServer(args.siteDir) : undefined;
  let passed = 0;
  let failed = 0;
  try {
    for (const mode of args.modes) {
      const base = mode === "http" ? server!.url : pathToFileURL(args.siteDir + path.sep).href;
      // A projector-sized window; one context per mode (a fresh one per page only costs time).
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      for (const page of pages) {
        // One screenshot per page, from the first mode checked.
        const shot = mode === args.modes[0] ? path.join(args.screenshotsDir, page.replace(/\.html$/, ".png")) : undefined;
        const r = await checkPage(context, args.siteDir, page, mode, base, shot);
        if (r.problems.length === 0) passed++;
        else failed++;
        process.stdout.write(formatResult(r) + "\n");
      }
      // Presenter mode: the projector's 16:9 (reveal scales its 1280×720 canvas to the window).
      const slideContext = await browser.newContext({ viewport: { width: 1280, height: 720 } });
      for (const deck of listDecks(args.siteDir)) {
        const shots = mode === args.modes[0] ? path.join(args.screenshotsDir, "slides") : undefined;
        const r = await checkDeck(slideContext, args.siteDir, deck, mode, base, shots);
        if (r.problems.length === 0) passed++;
        else failed++;
        process.stdout.write(formatResult(r) + "\n");
      }
      await slideContext.close();
      await context.close();
    }
    // Scripts off (once, from the first mode's address): every widget still shows what the notebook computed.
    const noScripts = await browser.newContext({ javaScriptEnabled: false });
    const base = args.modes[0] === "http" ? server!.url : pathToFileURL(args.siteDir + path.sep).href;
    for (const page of pages.filter((p) => fs.readFileSync(path.join(args.siteDir, p), "utf8").includes('class="output course-widget"'))) {
      const t0 = Date.now();
      const tab = await noScripts.newPage();
      await tab.goto(base + encodeURI(page), { waitUntil: "load" });
      const problems = await fallbackProblems(tab);
      await tab.close();
      if (problems.length === 0) passed++;
      else failed++;
      process.stdout.write(formatResult({ page, mode: args.modes[0], problems, figures: 0, ms: Date.now() - t0, notes: ["scripts off: every widget shows its build-time view"] }) + "\n");
    }
    await noScripts.close();
  } finally {
    await browser.close();
    await server?.close();
  }
  process.stdout.write(`${passed} passed, ${failed} failed (screenshots: ${projectPath(args.screenshotsDir)})\n`);
  return failed === 0 ? 0 : 1;
}

if (require.main === module) runAsScript(main);
