/**
 * Open every page of the built course site in headless Chromium and fail on anything a student
 * would notice: console errors, script errors, failed or external requests, plotly figures that
 * did not draw, fonts that did not load, links to pages that don't exist. Saves a full-page
 * screenshot of each page to look at.
 *
 *   node lib/dist/tools/check-site.js [SITE_DIR] [--mode http|file|both] [--screenshots DIR]
 *
 * SITE_DIR defaults to build/site. Pages are opened from a tiny local static server (http) and
 * from file:// (both by default), because the site must work both ways. Chromium comes from the
 * system (CHROMIUM_PATH, default /usr/bin/chromium); without it the check is skipped (exit 0).
 */
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { pathToFileURL } from "url";
import { parseArgs } from "util";
import type { BrowserContext, Page } from "playwright-core";
import { repoRoot } from "../paths";

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
}

/** Every .html file of the site, index.html first, then by name. */
export function listPages(siteDir: string): string[] {
  const pages = fs.readdirSync(siteDir).filter((f) => f.endsWith(".html"));
  return pages.sort((a, b) => (a === "index.html" ? -1 : b === "index.html" ? 1 : a.localeCompare(b)));
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
  try {
    await tab.goto(base + encodeURI(page), { waitUntil: "load" });
    figures = await tab.locator(".plotly-figure").count();
    if (figures > 0) {
      try {
        await tab.waitForFunction(
          () => Array.from(document.querySelectorAll(".plotly-figure")).every((d) => d.querySelector(".main-svg") !== null),
          undefined,
          { timeout: FIGURE_TIMEOUT_MS },
        );
      } catch {
        const ids = await tab.$$eval(".plotly-figure", (ds) => ds.filter((d) => !d.querySelector(".main-svg")).map((d) => d.id));
        problems.push(`plotly figure(s) not drawn: ${ids.join(", ")}`);
      }
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
  return { page, mode, problems, figures, ms: Date.now() - t0 };
}

// ---------------------------------------------------------------------------------------
// Command line

export interface CheckArgs {
  siteDir: string;
  modes: Mode[];
  screenshotsDir: string;
}

const USAGE = `usage: node lib/dist/tools/check-site.js [SITE_DIR] [--mode http|file|both] [--screenshots DIR]

Opens every page of the site (default build/site) in headless Chromium (CHROMIUM_PATH, default
/usr/bin/chromium) and fails on console errors, page errors, failed or external requests, plotly
figures that did not draw, fonts that failed and broken links. Screenshots go to
build/screenshots/ (for build/site) or DIR.`;

/** build/site → build/screenshots; anything/else → anything/else-screenshots. */
export function defaultScreenshotsDir(siteDir: string): string {
  const abs = path.resolve(siteDir);
  const base = path.basename(abs);
  return path.join(path.dirname(abs), base === "site" ? "screenshots" : `${base}-screenshots`);
}

export function parseCheckArgs(argv: string[]): CheckArgs | "help" {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { mode: { type: "string" }, screenshots: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return "help";
  if (positionals.length > 1) throw new Error(`expected one site folder, got ${positionals.length}: ${positionals.join(" ")}`);
  const mode = values.mode ?? "both";
  if (mode !== "http" && mode !== "file" && mode !== "both") throw new Error(`--mode is "${mode}"; expected http, file or both`);
  const siteDir = path.resolve(positionals[0] ?? path.join(repoRoot, "build", "site"));
  return {
    siteDir,
    modes: mode === "both" ? ["http", "file"] : [mode],
    screenshotsDir: path.resolve(values.screenshots ?? defaultScreenshotsDir(siteDir)),
  };
}

function formatResult(r: PageResult): string {
  const where = `${r.page} (${r.mode})`;
  if (r.problems.length === 0) {
    const figs = r.figures ? `, ${r.figures} figure${r.figures === 1 ? "" : "s"}` : "";
    return `ok    ${where}${figs}, ${(r.ms / 1000).toFixed(1)} s`;
  }
  return `FAIL  ${where}\n${r.problems.map((p) => `        ${p}`).join("\n")}`;
}

export async function main(argv: string[]): Promise<number> {
  let args: CheckArgs | "help";
  try {
    args = parseCheckArgs(argv);
  } catch (err) {
    process.stderr.write(`check-site: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args === "help") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!fs.existsSync(chromiumPath)) {
    process.stdout.write(`check-site: skipped: Chromium not found at ${chromiumPath} (install it, or set CHROMIUM_PATH)\n`);
    return 0;
  }
  if (!fs.existsSync(args.siteDir) || !fs.statSync(args.siteDir).isDirectory()) {
    process.stderr.write(`check-site: ${args.siteDir}: no such folder (build the site first: npm start)\n`);
    return 1;
  }
  const pages = listPages(args.siteDir);
  if (pages.length === 0) {
    process.stderr.write(`check-site: ${args.siteDir}: no .html pages\n`);
    return 1;
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
      await context.close();
    }
  } finally {
    await browser.close();
    await server?.close();
  }
  process.stdout.write(`${passed} passed, ${failed} failed (screenshots: ${path.relative(process.cwd(), args.screenshotsDir) || "."})\n`);
  return failed === 0 ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`check-site: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
