/**
 * `npm start`: execute every notebook of the course in order, then render the static site.
 *
 *   node lib/dist/tools/course/buildCourse.js [--smoke] [--only 03[,04]] [--from 05] [--jobs N] [--skip-exec] [--slides] [--verbose]
 *
 * Each notebook runs in a fresh tslab kernel; the executed copies go to build/notebooks/<name>.ipynb
 * and the site to build/site/. Later chapters load what earlier ones saved in build/artifacts/,
 * so a notebook waits for the notebooks that make the artifacts its code names
 * (requireArtifact("sft") waits for 06; paths.ts ARTIFACT_MAKERS); up to --jobs notebooks
 * (default 2) run at once, the longest remaining chain first (by the minutes each notebook's
 * opening box states); a notebook that measures speed runs alone (runsAlone). Much of the later
 * chapters' work (sampling, evaluation, PPO) runs on one core, so the chapters that need nothing
 * from them fill the other one. A failing notebook
 * stops the run (nothing new starts; those running finish), the site is still rendered from the
 * notebooks that have an executed copy, and the exit code is 1.
 *
 * The site includes presenter mode: every chapter as a reveal.js slide deck, build/site/slides/<name>.html
 * (lib/tools/course/slides.ts). `--slides` (npm run slides) lists the decks to open at the end.
 *
 * Smoke mode (tiny sizes, minutes instead of hours) writes to build/notebooks-smoke/ and
 * build/site-smoke/ so it never overwrites a full build (its artifacts go to build/artifacts-smoke/).
 */
import * as fs from "fs";
import * as path from "path";
import { ARTIFACT_MAKERS, baseModelChoice, projectPath, repoRoot } from "../../core/paths";
import { type Command, commandMain, optionParser, runAsScript, UsageError } from "../cli/cli";
import { readNotebook, type Notebook } from "./notebook";
import { cellSource } from "./notebookStructure";
import { executeNotebook, failedPath, kernelEnv } from "./runNotebooks";
import { DEFAULT_SITE_OPTIONS, firstHeadingAndParagraph } from "./render";
import { buildSite } from "./site";

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

/**
 * The artifacts (build/artifacts/<name>) a notebook's code names, with requireArtifact("…") or
 * artifactPath("…"); requireBaseModel() names "pretrained" when the kernel's environment picks
 * the learner's own base model (COURSE_BASE_MODEL=own, the default in smoke mode).
 */
export function artifactsNamed(nb: Pick<Notebook, "cells">, kernelEnvironment: NodeJS.ProcessEnv): string[] {
  const names = new Set<string>();
  for (const c of nb.cells) {
    if (c.cell_type !== "code") continue;
    const src = cellSource(c);
    for (const m of src.matchAll(/\b(?:requireArtifact|artifactPath)\(\s*["'`]([^"'`]+)["'`]/g)) names.add(m[1]);
    if (/\brequireBaseModel\(/.test(src) && baseModelChoice(kernelEnvironment) === "own") names.add("pretrained");
  }
  return [...names];
}

/**
 * What each notebook waits for: the EARLIER notebooks among `names` (course order) that make an
 * artifact it names (a notebook never waits for itself or a later one). A maker that is not
 * being run is not waited for: its artifact is whatever an earlier build left.
 */
export function notebookDependencies(names: readonly string[], named: Readonly<Record<string, readonly string[]>>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  names.forEach((name, i) => {
    const deps = new Set<string>();
    for (const artifact of named[name] ?? []) {
      const maker = ARTIFACT_MAKERS[artifact];
      const nb = maker && names.slice(0, i).find((n) => n.startsWith(maker.notebook));
      if (nb) deps.add(nb);
    }
    out[name] = names.filter((n) => deps.has(n));
  });
  return out;
}

/**
 * The minutes from a notebook's start to the end of the longest chain of notebooks that wait
 * for it (its own stated minutes, then its slowest dependant's chain): the scheduler starts the
 * ready notebook with the longest chain first, so the build ends as early as the chains allow.
 */
export function chainMinutes(names: readonly string[], deps: Readonly<Record<string, readonly string[]>>, minutes: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of [...names].reverse()) {
    const dependants = names.filter((n) => deps[n]?.includes(name));
    out[name] = (minutes[name] ?? 0) + Math.max(0, ...dependants.map((d) => out[d]));
  }
  return out;
}

/**
 * Whether a notebook must run with nothing beside it: one that measures speed (the performance
 * appendix) says so in its metadata, `"llm_course": { "run_alone": true }`, since another
 * notebook on the same cores would skew what it measures.
 */
export function runsAlone(nb: Pick<Notebook, "metadata">): boolean {
  return (nb.metadata as { llm_course?: { run_alone?: unknown } } | undefined)?.llm_course?.run_alone === true;
}

/**
 * The next notebook to start: the ready one (everything it waits for done) with the longest
 * chain, course order breaking ties. Beside a notebook that runs alone nothing starts, and one
 * that runs alone starts only when nothing else is running.
 */
export function nextNotebook(
  pending: readonly string[], done: ReadonlySet<string>, deps: Readonly<Record<string, readonly string[]>>, chain: Readonly<Record<string, number>>,
  running: ReadonlySet<string> = new Set(), alone: ReadonlySet<string> = new Set(),
): string | undefined {
  if ([...running].some((n) => alone.has(n))) return undefined;
  let best: string | undefined;
  for (const name of pending) {
    if (!(deps[name] ?? []).every((d) => done.has(d))) continue;
    if (alone.has(name) && running.size > 0) continue;
    if (best === undefined || (chain[name] ?? 0) > (chain[best] ?? 0)) best = name;
  }
  return best;
}

export interface BuildArgs {
  smoke: boolean;
  /** Prefixes given with --only (run just these notebooks). */
  only: string[];
  /** Prefix given with --from (run this notebook and every later one). */
  from?: string;
  skipExec: boolean;
  /** Notebooks executed at once (--jobs; default 2). */
  jobs: number;
  /** List the slide decks to open at the end (they are always built with the site). */
  slides: boolean;
  verbose: boolean;
  /** Where the source notebooks are (default notebooks/). */
  notebooksDir: string;
  /** Where executed notebooks and the site go (default build/). */
  buildDir: string;
}

interface BuildOptions {
  smoke: boolean;
  only: string[];
  from?: string;
  jobs: number;
  skipExec: boolean;
  slides: boolean;
  verbose: boolean;
  notebooks: string;
  buildDir: string;
}

const BUILD: Command<BuildOptions> = {
  name: "build-course",
  summary: `Executes notebooks/*.ipynb (a notebook after those whose artifacts it reads), writes the executed copies to build/notebooks/
and renders the static site to build/site/ (open build/site/index.html) with a slide deck per chapter.`,
  options: {
    smoke: { kind: "boolean", help: "tiny sizes; writes build/notebooks-smoke/ and build/site-smoke/ instead" },
    only: { kind: "string", value: "PREFIX", multiple: true, help: "execute only the notebooks whose name starts with PREFIX (repeatable, or 03,04)" },
    from: { kind: "string", value: "PREFIX", help: "execute PREFIX and every notebook after it (earlier ones keep their executed copies)" },
    jobs: { kind: "integer", value: "N", min: 1, default: 2, expected: "a whole number >= 1", help: "notebooks executed at once (1 runs them one after the other in course order)" },
    "skip-exec": { kind: "boolean", help: "execute nothing, just re-render the site from the executed copies" },
    slides: { kind: "boolean", help: "list the chapters' slide decks to open (build/site/slides/<name>.html, presenter mode: → or space next, Esc overview, S speaker view; always built with the site)" },
    verbose: { kind: "boolean", help: "also print the notebooks' own output" },
    notebooks: { kind: "string", value: "DIR", default: path.join(repoRoot, "notebooks"), help: "source notebooks" },
    "build-dir": { kind: "string", value: "DIR", default: path.join(repoRoot, "build"), help: "output folder; artifacts still follow COURSE_ARTIFACTS" },
  },
  strayHint: "(notebooks are picked with --only or --from)",
  validate: (a) => {
    const only = onlyPrefixes(a.only);
    if (a.only.length && only.length === 0) throw new UsageError("--only needs a notebook name prefix, e.g. --only 03");
    if (only.length && a.from !== undefined) throw new UsageError("use --only or --from, not both");
    if (a.from !== undefined && a.from.trim() === "") throw new UsageError("--from needs a notebook name prefix, e.g. --from 05");
    if (a.skipExec && (only.length || a.from !== undefined)) throw new UsageError("--skip-exec executes nothing; it can't be combined with --only or --from");
  },
  run: (a, io) => build(toBuildArgs(a), io.err),
};

const onlyPrefixes = (only: readonly string[]) => only.flatMap((o) => o.split(",")).map((o) => o.trim()).filter((o) => o !== "");

function toBuildArgs(a: BuildOptions): BuildArgs {
  return {
    smoke: a.smoke, only: onlyPrefixes(a.only), from: a.from?.trim(), skipExec: a.skipExec, jobs: a.jobs, slides: a.slides, verbose: a.verbose,
    notebooksDir: path.resolve(a.notebooks), buildDir: path.resolve(a.buildDir),
  };
}

/** Parse the command line (the checks of `npm start`); throws a one-line UsageError for anything unexpected. */
export function parseBuildArgs(argv: string[]): BuildArgs | "help" {
  const a = optionParser<BuildOptions>(BUILD)(argv);
  if (a.help) return "help";
  BUILD.validate!(a);
  return toBuildArgs(a);
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
    env: kernelEnv({ smoke }),
  });
  if (res.widgetFiles.length > 0) {
    const mb = (n: number) => (n / 1e6).toFixed(1);
    progress.log(`live widgets: ${res.widgetFiles.map((f) => `${f.file.replace(/^assets\//, "")} ${mb(f.bytes)} MB`).join(", ")}`);
  }
  const old = `${siteDir}.old-${process.pid}`;
  if (fs.existsSync(siteDir)) fs.renameSync(siteDir, old);
  fs.renameSync(tmp, siteDir);
  fs.rmSync(old, { recursive: true, force: true });
  return { pages: res.pages.length, decks: res.decks, warnings: res.warnings };
}

export const main = commandMain(BUILD);

/** The build itself: execute, render, report on `err`; the exit code. */
async function build(args: BuildArgs, err: (line: string) => void): Promise<number> {
  const sourceDir = args.notebooksDir;
  const buildDir = args.buildDir;
  const notebookDir = path.join(buildDir, args.smoke ? "notebooks-smoke" : "notebooks");
  const siteDir = path.join(buildDir, args.smoke ? "site-smoke" : "site");
  const rel = projectPath;

  const all = listNotebooks(sourceDir);
  if (all.length === 0) throw new Error(`no notebooks in ${rel(sourceDir)}`);
  let selected: string[];
  try {
    selected = selectNotebooks(all, args);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }

  const progress = new Progress();
  const runs: NotebookRun[] = selected.map((name) => ({ name, status: "not run", ms: 0 }));
  const t0 = Date.now();
  const timeWarnings: string[] = [];
  let failure: string | undefined;
  let deps: Record<string, string[]>, stated: Record<string, number | undefined>, chain: Record<string, number>, alone: Set<string>;
  try {
    const sources = new Map(selected.map((n) => [n, readNotebook(path.join(sourceDir, `${n}.ipynb`))]));
    const env = kernelEnv({ smoke: args.smoke });
    deps = notebookDependencies(selected, Object.fromEntries(selected.map((n) => [n, artifactsNamed(sources.get(n)!, env)])));
    stated = Object.fromEntries(selected.map((n) => [n, statedMinutes(sources.get(n)!)]));
    chain = chainMinutes(selected, deps, Object.fromEntries(selected.map((n) => [n, stated[n] ?? 0.5])));
    alone = new Set(selected.filter((n) => runsAlone(sources.get(n)!)));
  } catch (e) {
    throw new Error((e as Error).message.split("\n")[0]);
  }
  const pending = [...selected];
  const done = new Set<string>();
  const running = new Map<string, { started: number; cell?: number; cells?: number }>();
  const numberOf = (name: string) => selected.indexOf(name) + 1;
  const render = () =>
    [...running].map(([name, st]) => progressLine({ i: numberOf(name), n: runs.length, name, cell: st.cell, cells: st.cells, elapsedMs: Date.now() - st.started })).join("  |  ");

  const runOne = async (run: NotebookRun): Promise<void> => {
    const started = Date.now();
    const state: { started: number; cell?: number; cells?: number } = { started };
    running.set(run.name, state);
    progress.show(render);
    const label = `notebook ${numberOf(run.name)} of ${runs.length}: ${run.name}`;
    try {
      const executedNb = await executeNotebook(path.join(sourceDir, `${run.name}.ipynb`), {
        smoke: args.smoke,
        outputPath: path.join(notebookDir, `${run.name}.ipynb`),
        onCell: ({ index, total }) => {
          state.cell = index + 1;
          state.cells = total;
          progress.show(render);
        },
        onWarning: (line) => {
          timeWarnings.push(line);
          progress.log(`warning: ${line}`);
        },
        onOutput: args.verbose ? (text) => progress.log((args.jobs > 1 ? `[${run.name}] ` : "") + text.replace(/\n$/, "")) : undefined,
      });
      run.status = "ok";
      run.ms = Date.now() - started;
      run.slowest = slowestCell(executedNb);
      done.add(run.name);
      const warning = args.smoke ? undefined : runTimeWarning(run.name, run.ms, stated[run.name]);
      if (warning) timeWarnings.push(warning);
      progress.log(`${label} — ok in ${formatDuration(run.ms)}`);
    } catch (err) {
      run.status = "FAILED";
      run.ms = Date.now() - started;
      // The runner's message: one line that says it all, then maybe the cell's stderr.
      const [first, ...rest] = (err as Error).message.split("\n");
      failure ??= first;
      progress.log(`${label} — FAILED after ${formatDuration(run.ms)}`);
      if (rest.join("").trim()) progress.log(rest.join("\n"));
      const partial = failedPath(path.join(notebookDir, `${run.name}.ipynb`));
      if (fs.existsSync(partial)) progress.log(`the partial run, with the outputs so far: ${rel(partial)}`);
    } finally {
      running.delete(run.name);
      if (running.size > 0) progress.show(render);
      else progress.stop();
    }
  };

  // Up to --jobs notebooks at once; after a failure nothing new starts (later chapters need its artifacts).
  await new Promise<void>((resolve) => {
    const startMore = (): void => {
      while (failure === undefined && running.size < args.jobs) {
        // One job: course order, as a reader runs them. More: the longest chain first.
        const name = args.jobs === 1 ? pending[0] : nextNotebook(pending, done, deps, chain, new Set(running.keys()), alone);
        if (name === undefined) break;
        pending.splice(pending.indexOf(name), 1);
        void runOne(runs.find((r) => r.name === name)!).then(startMore);
      }
      if (running.size === 0) resolve();
    };
    startMore();
  });
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
  lines.forEach((l) => err(l));
  return failure || siteError || !site ? 1 : 0;
}

if (require.main === module) runAsScript(main);
