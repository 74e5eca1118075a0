/**
 * `npm start`: execute every notebook of the course in order, then render the static site.
 *
 *   node lib/dist/tools/build-course.js [--smoke] [--only 03[,04]] [--from 05] [--skip-exec] [--slides] [--verbose]
 *
 * Notebooks run one after the other in full mode (later chapters load what earlier ones saved
 * in build/artifacts/), each in a fresh tslab kernel; the executed copies go to
 * build/notebooks/<name>.ipynb and the site to build/site/. A failing notebook stops the run
 * (later chapters depend on it), the site is still rendered from the notebooks that have an
 * executed copy, and the exit code is 1.
 *
 * The site includes presenter mode: every chapter as a reveal.js slide deck, build/site/slides/<name>.html
 * (lib/tools/slides.ts). `--slides` (npm run slides) lists the decks to open at the end.
 *
 * Smoke mode (tiny sizes, minutes instead of hours) writes to build/notebooks-smoke/ and
 * build/site-smoke/ so it never overwrites a full build (its artifacts go to build/artifacts-smoke/).
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { repoRoot } from "../paths";
import type { Notebook } from "./notebook";
import { cellSource } from "./notebook-structure";
import { executeNotebook, failedPath } from "./run-notebooks";
import { buildSite, DEFAULT_SITE_OPTIONS, firstHeadingAndParagraph } from "./site";

// ---------------------------------------------------------------------------------------
// Pure helpers (unit-tested)

/** 75 s → "1m15s", 3725 s → "1h02m", 4.2 s → "4s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * The full-mode running time a notebook promises its reader, in minutes: its opening box says
 * "Runs in about N minutes in full mode" (chapters 05–09). undefined when it says nothing.
 */
export function statedMinutes(nb: Pick<Notebook, "cells">): number | undefined {
  const first = nb.cells.find((c) => c.cell_type === "markdown");
  const m = first && /Runs in about (\d+(?:\.\d+)?) minutes? in full mode/i.exec(cellSource(first).replace(/^ {0,3}>[ ]?/gm, "").replace(/\s+/g, " "));
  return m ? Number(m[1]) : undefined;
}

/**
 * A warning when a full run took less than half or more than twice the time the notebook states
 * (machines differ, and by up to 2x between sittings: only a gross mismatch is worth a line).
 */
export function runTimeWarning(name: string, ms: number, stated: number | undefined): string | undefined {
  if (stated === undefined) return undefined;
  const minutes = ms / 60000;
  if (minutes >= stated / 2 && minutes <= stated * 2) return undefined;
  return `${name} ran for ${formatDuration(ms)} but its opening box says "about ${stated} minute${stated === 1 ? "" : "s"}": update the box if this machine is typical`;
}

/** The cell that took longest in an executed notebook (its metadata.execution), for the summary. */
export function slowestCell(nb: Pick<Notebook, "cells">): { index: number; ms: number } | undefined {
  let best: { index: number; ms: number } | undefined;
  nb.cells.forEach((c, index) => {
    const t = (c.metadata as { execution?: Record<string, string> } | undefined)?.execution;
    if (!t) return;
    const ms = Date.parse(t["shell.execute_reply"]) - Date.parse(t["shell.execute_reply.started"]);
    if (Number.isFinite(ms) && (!best || ms > best.ms)) best = { index, ms };
  });
  return best;
}

export interface BuildArgs {
  smoke: boolean;
  /** Prefixes given with --only (run just these notebooks). */
  only: string[];
  /** Prefix given with --from (run this notebook and every later one). */
  from?: string;
  skipExec: boolean;
  /** List the slide decks to open at the end (they are always built with the site). */
  slides: boolean;
  verbose: boolean;
  /** Where the source notebooks are (default notebooks/). */
  notebooksDir: string;
  /** Where executed notebooks and the site go (default build/). */
  buildDir: string;
}

const USAGE = `usage: node lib/dist/tools/build-course.js [--smoke] [--only PREFIX[,PREFIX]] [--from PREFIX] [--skip-exec] [--slides] [--verbose]

Executes notebooks/*.ipynb in order, writes the executed copies to build/notebooks/ and renders
the static site to build/site/ (open build/site/index.html).
  --smoke        tiny sizes; writes build/notebooks-smoke/ and build/site-smoke/ instead
  --only 03      execute only the notebooks whose name starts with 03 (repeatable, or 03,04)
  --from 05      execute 05 and every notebook after it (earlier ones keep their executed copies)
  --skip-exec    execute nothing, just re-render the site from the executed copies
  --slides       list the chapters' slide decks to open (build/site/slides/<name>.html, presenter
                 mode: → or space next, Esc overview, S speaker view; always built with the site)
  --verbose      also print the notebooks' own output
  --notebooks DIR  source notebooks (default notebooks/)
  --build-dir DIR  output folder (default build/); artifacts still follow COURSE_ARTIFACTS`;

/** Parse the command line; throws a one-line Error for anything unexpected. */
export function parseBuildArgs(argv: string[]): BuildArgs | "help" {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      smoke: { type: "boolean" },
      only: { type: "string", multiple: true },
      from: { type: "string" },
      "skip-exec": { type: "boolean" },
      slides: { type: "boolean" },
      verbose: { type: "boolean", short: "v" },
      notebooks: { type: "string" },
      "build-dir": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return "help";
  if (positionals.length) throw new Error(`unexpected argument "${positionals[0]}" (notebooks are picked with --only or --from)`);
  const only = (values.only ?? []).flatMap((o) => o.split(",")).map((o) => o.trim()).filter((o) => o !== "");
  if (values.only && only.length === 0) throw new Error("--only needs a notebook name prefix, e.g. --only 03");
  if (only.length && values.from !== undefined) throw new Error("use --only or --from, not both");
  if (values.from !== undefined && values.from.trim() === "") throw new Error("--from needs a notebook name prefix, e.g. --from 05");
  if (values["skip-exec"] && (only.length || values.from !== undefined)) throw new Error("--skip-exec executes nothing; it can't be combined with --only or --from");
  return {
    smoke: values.smoke ?? false,
    only,
    from: values.from?.trim(),
    skipExec: values["skip-exec"] ?? false,
    slides: values.slides ?? false,
    verbose: values.verbose ?? false,
    notebooksDir: path.resolve(values.notebooks ?? path.join(repoRoot, "notebooks")),
    buildDir: path.resolve(values["build-dir"] ?? path.join(repoRoot, "build")),
  };
}

/** Notebook names (no extension) to execute, in course order. Throws if a prefix matches nothing. */
export function selectNotebooks(all: string[], args: Pick<BuildArgs, "only" | "from" | "skipExec">): string[] {
  if (args.skipExec) return [];
  const known = () => `(notebooks: ${all.join(", ") || "none"})`;
  if (args.only.length) {
    for (const p of args.only) if (!all.some((n) => n.startsWith(p))) throw new Error(`--only ${p} matches no notebook ${known()}`);
    return all.filter((n) => args.only.some((p) => n.startsWith(p)));
  }
  if (args.from !== undefined) {
    const start = all.findIndex((n) => n.startsWith(args.from!));
    if (start < 0) throw new Error(`--from ${args.from} matches no notebook ${known()}`);
    return all.slice(start);
  }
  return all;
}

/** The progress line: "notebook 2 of 10: 01-tokens — cell 5/23 — elapsed 1m12s". */
export function progressLine(p: { i: number; n: number; name: string; cell?: number; cells?: number; elapsedMs: number }): string {
  const cell = p.cell !== undefined && p.cells !== undefined ? ` — cell ${p.cell}/${p.cells}` : " — starting kernel";
  return `notebook ${p.i} of ${p.n}: ${p.name}${cell} — elapsed ${formatDuration(p.elapsedMs)}`;
}

/** Course notebooks in order: notebooks/*.ipynb sorted by name (the NN- prefix sets the order). */
export function listNotebooks(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".ipynb") && !f.startsWith("."))
    .map((f) => f.slice(0, -".ipynb".length))
    .sort();
}

// ---------------------------------------------------------------------------------------
// Progress display: one updating line on a terminal, plain lines in logs

class Progress {
  private line = "";
  private timer?: NodeJS.Timeout;
  private readonly tty = process.stderr.isTTY === true;

  /** `render` is called again every second on a terminal so the elapsed time ticks during long cells. */
  show(render: () => string): void {
    this.line = render();
    if (!this.tty) {
      process.stderr.write(this.line + "\n");
      return;
    }
    this.draw();
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      this.line = render();
      this.draw();
    }, 1000);
    this.timer.unref();
  }

  /** Print a permanent line (above the updating one on a terminal). */
  log(text: string): void {
    if (this.tty) process.stderr.write("\r\x1b[K");
    process.stderr.write(text.endsWith("\n") ? text : text + "\n");
    if (this.tty && this.timer) this.draw();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty) process.stderr.write("\r\x1b[K");
  }

  private draw(): void {
    // Longer than the terminal, the line would wrap and "\r" would no longer overwrite it.
    const width = process.stderr.columns || 120; // 0 when the terminal size is unknown
    const shown = this.line.length >= width ? this.line.slice(0, width - 2) + "…" : this.line;
    process.stderr.write("\r\x1b[K" + shown);
  }
}

// ---------------------------------------------------------------------------------------
// The build

interface NotebookRun {
  name: string;
  status: "ok" | "FAILED" | "not run";
  ms: number;
  /** Where the time went: the slowest cell of a run that completed. */
  slowest?: { index: number; ms: number };
}

function summaryLines(runs: NotebookRun[]): string[] {
  const width = Math.max(...runs.map((r) => r.name.length));
  return runs.map((r) => {
    const time = r.status === "not run" ? "" : formatDuration(r.ms).padStart(6);
    const slow = r.slowest && r.slowest.ms >= 10000 ? `  (slowest: cell ${r.slowest.index + 1}, ${formatDuration(r.slowest.ms)})` : "";
    return `  ${r.name.padEnd(width)}  ${r.status.padEnd(7)}  ${time}${slow}`.trimEnd();
  });
}

/**
 * The course title and intro for the index page: the README's first heading and paragraph
 * if there is a README, else the package description, else the site's defaults.
 */
function courseInfo(): { courseTitle: string; intro: string } {
  const info = { ...DEFAULT_SITE_OPTIONS };
  try {
    info.intro = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")).description ?? info.intro;
  } catch {
    /* keep the default */
  }
  const readme = path.join(repoRoot, "README.md");
  if (fs.existsSync(readme)) {
    const first = firstHeadingAndParagraph([fs.readFileSync(readme, "utf8")]);
    info.courseTitle = first.title ?? info.courseTitle;
    info.intro = first.paragraphSource ?? info.intro;
  }
  return info;
}

/** Render the site into a fresh folder, then swap it in: no stale pages of removed notebooks. */
function renderSite(notebookDir: string, siteDir: string, names: string[], smoke: boolean, progress: Progress): { pages: number; decks: string[]; warnings: string[] } {
  const files = names.map((n) => path.join(notebookDir, `${n}.ipynb`));
  const tmp = `${siteDir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  progress.log(`rendering the site from ${files.length} executed notebook${files.length === 1 ? "" : "s"} …`);
  const res = buildSite({
    notebooks: files,
    outDir: tmp,
    ...courseInfo(),
    notice: smoke ? "Smoke build: every notebook ran with tiny sizes, so numbers and plots are not meaningful." : undefined,
  });
  const old = `${siteDir}.old-${process.pid}`;
  if (fs.existsSync(siteDir)) fs.renameSync(siteDir, old);
  fs.renameSync(tmp, siteDir);
  fs.rmSync(old, { recursive: true, force: true });
  return { pages: res.pages.length, decks: res.decks, warnings: res.warnings };
}

export async function main(argv: string[]): Promise<number> {
  let args: BuildArgs | "help";
  try {
    args = parseBuildArgs(argv);
  } catch (err) {
    process.stderr.write(`build-course: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args === "help") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  const sourceDir = args.notebooksDir;
  const buildDir = args.buildDir;
  const notebookDir = path.join(buildDir, args.smoke ? "notebooks-smoke" : "notebooks");
  const siteDir = path.join(buildDir, args.smoke ? "site-smoke" : "site");
  const rel = (p: string) => path.relative(process.cwd(), p) || ".";

  const all = listNotebooks(sourceDir);
  if (all.length === 0) {
    process.stderr.write(`build-course: no notebooks in ${rel(sourceDir)}\n`);
    return 1;
  }
  let selected: string[];
  try {
    selected = selectNotebooks(all, args);
  } catch (err) {
    process.stderr.write(`build-course: ${(err as Error).message}\n`);
    return 2;
  }

  const progress = new Progress();
  const runs: NotebookRun[] = selected.map((name) => ({ name, status: "not run", ms: 0 }));
  const t0 = Date.now();
  const timeWarnings: string[] = [];
  let failure: string | undefined;
  for (const [i, run] of runs.entries()) {
    const started = Date.now();
    const state: { cell?: number; cells?: number } = {};
    const render = () => progressLine({ i: i + 1, n: runs.length, name: run.name, ...state, elapsedMs: Date.now() - started });
    progress.show(render);
    try {
      const executedNb = await executeNotebook(path.join(sourceDir, `${run.name}.ipynb`), {
        smoke: args.smoke,
        outputPath: path.join(notebookDir, `${run.name}.ipynb`),
        onCell: ({ index, total }) => {
          state.cell = index + 1;
          state.cells = total;
          progress.show(render);
        },
        onOutput: args.verbose ? (text) => progress.log(text.replace(/\n$/, "")) : undefined,
      });
      run.status = "ok";
      run.ms = Date.now() - started;
      run.slowest = slowestCell(executedNb);
      const warning = args.smoke ? undefined : runTimeWarning(run.name, run.ms, statedMinutes(executedNb));
      if (warning) timeWarnings.push(warning);
      progress.stop();
      progress.log(`notebook ${i + 1} of ${runs.length}: ${run.name} — ok in ${formatDuration(run.ms)}`);
    } catch (err) {
      run.status = "FAILED";
      run.ms = Date.now() - started;
      progress.stop();
      // The runner's message: one line that says it all, then maybe the cell's stderr.
      const [first, ...rest] = (err as Error).message.split("\n");
      failure = first;
      progress.log(`notebook ${i + 1} of ${runs.length}: ${run.name} — FAILED after ${formatDuration(run.ms)}`);
      if (rest.join("").trim()) progress.log(rest.join("\n"));
      const partial = failedPath(path.join(notebookDir, `${run.name}.ipynb`));
      if (fs.existsSync(partial)) progress.log(`the partial run, with the outputs so far: ${rel(partial)}`);
      break; // later chapters need this one's artifacts
    }
  }
  progress.stop();

  // The site shows every notebook that has an executed copy (the runner leaves none for a failed one).
  const executed = all.filter((n) => fs.existsSync(path.join(notebookDir, `${n}.ipynb`)));
  const missing = all.filter((n) => !executed.includes(n));
  let siteError: string | undefined;
  let site: { pages: number; decks: string[]; warnings: string[] } | undefined;
  if (executed.length) {
    try {
      site = renderSite(notebookDir, siteDir, executed, args.smoke, progress);
    } catch (err) {
      siteError = (err as Error).message.split("\n")[0];
    }
  }

  const lines: string[] = [];
  if (runs.length) lines.push(`executed ${runs.filter((r) => r.status === "ok").length} of ${runs.length} notebooks in ${formatDuration(Date.now() - t0)}:`, ...summaryLines(runs));
  for (const w of [...timeWarnings, ...(site?.warnings ?? [])]) lines.push(`warning: ${w}`);
  if (missing.length) lines.push(`not on the site (no executed copy in ${rel(notebookDir)}): ${missing.join(", ")}`);
  if (site) lines.push(`site: ${rel(path.join(siteDir, "index.html"))} (${site.pages} pages)`);
  if (site && args.slides) {
    lines.push(`slides (presenter mode: → or space next, ↓ scrolls a tall slide, Esc overview, S speaker view, F full screen):`);
    for (const d of site.decks) lines.push(`  ${rel(path.join(siteDir, d))}`);
  } else if (site?.decks.length) lines.push(`slides: ${rel(path.join(siteDir, "slides"))}/ (${site.decks.length} decks; npm run slides lists them)`);
  else if (!siteError) lines.push("site: not rendered (no executed notebooks)");
  if (siteError) lines.push(`build-course: site: ${siteError}`);
  if (failure) lines.push(`build-course: ${failure}`);
  process.stderr.write(lines.join("\n") + "\n");
  return failure || siteError || !site ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`build-course: ${(err as Error).stack ?? err}\n`);
      process.exitCode = 1;
    },
  );
}
