/**
 * Execute course notebooks top to bottom against the tslab kernel, with nothing but Node:
 * no Jupyter server, no Python. Used by `npm run test:notebooks` and by the course builder.
 *
 *   node lib/dist/tools/course/runNotebooks.js [--smoke] [--out-dir DIR] [--cell-timeout S] [--timeout S] notebooks/*.ipynb
 *
 * What it does, per notebook (what nbclient does for Python kernels, adapted to tslab):
 *   1. read + validate the .ipynb, insist on the tslab kernel, clear old outputs;
 *   2. start a kernel in the notebook's folder (tslab's rootDir), COURSE_SMOKE=1 in smoke mode;
 *   3. run each code cell, turning iopub messages into nbformat outputs;
 *   4. stop at the first failing cell with ONE clear line naming notebook, cell and error;
 *   5. on success write the executed notebook atomically; on failure leave nothing at that path.
 */
import { randomUUID } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { repoRoot } from "../../core/paths";
import { isSmoke } from "../../core/smoke";
import { IOPUB_GRACE_MS, JupyterMessage, KernelDiedError, KernelTimeoutError, TslabKernel } from "./kernel";
import { clearOutputs, CodeCell, Notebook, Output, readNotebook, writeNotebook } from "./notebook";
import { type Command, commandMain, optionParser, type Parsed, runAsScript, UsageError } from "../cli/cli";

export interface RunOptions {
  /** COURSE_SMOKE=1 in the kernel (tiny sizes). Default: whatever COURSE_SMOKE already says. */
  smoke?: boolean;
  /**
   * Where to write the executed notebook (atomic, only on success). Any file there is removed
   * first; a failed run writes its partial notebook to x.failed.ipynb beside it instead.
   * May be the input itself (run in place): then a failure leaves the input untouched.
   */
  outputPath?: string;
  cellTimeoutMs?: number;
  notebookTimeoutMs?: number;
  /** Extra environment variables for the kernel. */
  env?: Record<string, string>;
  /** Called before each code cell; `index` is the 0-based position in `nb.cells`, `total` is `nb.cells.length`. */
  onCell?: (info: { index: number; total: number; source: string }) => void;
  /** Streamed stdout/stderr text of the cells, as it arrives. */
  onOutput?: (text: string) => void;
  /** A cell that finished with something to say (its output may be incomplete), one line. */
  onWarning?: (line: string) => void;
}

export const DEFAULT_CELL_TIMEOUT_MS = 15 * 60_000;
export const DEFAULT_NOTEBOOK_TIMEOUT_MS = 60 * 60_000;

/** A notebook that could not be run. The first line of `message` says it all. */
export class NotebookRunError extends Error {
  constructor(
    message: string,
    readonly notebook: string,
    /** 0-based index into the notebook's cells; the message says "cell <index + 1>". */
    readonly cellIndex?: number,
  ) {
    super(message);
    this.name = "NotebookRunError";
  }
}

// ---------------------------------------------------------------------------------------
// iopub messages → nbformat outputs

/** display_id → every output that showed it (in any cell), so updates land in all of them. */
export type DisplayMap = Map<string, Output[]>;

/**
 * Apply one iopub message to a cell's outputs (in place), as Jupyter front ends do:
 * consecutive chunks of the same stream are merged; display_data keeps every MIME type
 * of the bundle and its metadata; update_display_data rewrites earlier outputs with the
 * same transient display_id and adds nothing. Returns the stream text, if any.
 */
export function applyIopubMessage(outputs: Output[], msg: JupyterMessage, displays: DisplayMap): string | undefined {
  const c = msg.content ?? {};
  const displayId: string | undefined = c.transient?.display_id;
  switch (msg.header.msg_type) {
    case "stream": {
      const last = outputs[outputs.length - 1];
      if (last?.output_type === "stream" && last.name === c.name) last.text += c.text;
      else outputs.push({ output_type: "stream", name: c.name, text: c.text });
      return c.text;
    }
    case "display_data":
    case "execute_result": {
      const out: Output =
        msg.header.msg_type === "display_data"
          ? { output_type: "display_data", data: { ...c.data }, metadata: { ...(c.metadata ?? {}) } }
          : { output_type: "execute_result", execution_count: c.execution_count ?? null, data: { ...c.data }, metadata: { ...(c.metadata ?? {}) } };
      outputs.push(out);
      if (displayId) displays.set(displayId, [...(displays.get(displayId) ?? []), out]);
      return undefined;
    }
    case "update_display_data": {
      for (const out of displayId ? displays.get(displayId) ?? [] : []) {
        if (out.output_type === "display_data" || out.output_type === "execute_result") {
          out.data = { ...c.data };
          out.metadata = { ...(c.metadata ?? {}) };
        }
      }
      return undefined;
    }
    case "clear_output":
      // Rare (IPython's clear_output); tslab never sends it. Good enough: drop what we have.
      outputs.length = 0;
      return undefined;
    case "error":
      outputs.push({ output_type: "error", ename: c.ename, evalue: c.evalue, traceback: c.traceback ?? [] });
      return undefined;
    default:
      return undefined; // execute_input, comm_*, … carry no output
  }
}

// ---------------------------------------------------------------------------------------
// Error messages

/** How the notebook is named in messages: relative to the current folder when inside it. */
function displayName(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : file;
}

/** The first ~80 characters of a cell's source on one line, for error messages. */
export function sourceSnippet(source: string, max = 80): string {
  const flat = source.replace(/\s+/g, " ").trim();
  return flat.length > max ? flat.slice(0, max - 1) + "…" : flat;
}

/**
 * The line of the cell's stderr that names the error. tslab prints compile errors as
 * "3:5 - Type 'x' is not …" and runtime errors with console.error(err) in one write, which
 * may start with Node's "evalmachine.<anonymous>:2 / source / ^" excerpt; earlier stderr
 * (library warnings, e.g. tfjs's banner) is noise.
 */
export function errorSummary(stderrChunks: string[]): string {
  const lines = (s: string) => s.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const diagnostic = lines(stderrChunks.join("")).find((l) => /^(\S+ )?\d+:\d+ - /.test(l));
  if (diagnostic) return diagnostic;
  const last = lines(stderrChunks[stderrChunks.length - 1] ?? "");
  return last.find((l) => /^(Uncaught )?[\w$.]*(Error|Exception)\b/.test(l)) ?? last[0] ?? "the kernel reported an error (no error text on stderr)";
}

/**
 * tslab's own last-resort handlers print an error that no cell caught (thrown in a timer, or a
 * promise rejected with nobody awaiting it) as "UncaughtException: …" or
 * "UnhandledPromiseRejection: …" on the stderr of the cell that ran last. Returns the error's
 * first line, e.g. "Error: boom".
 */
export function escapedError(stderrText: string): string | undefined {
  const m = /^(?:UncaughtException|UnhandledPromiseRejection): *(.*)$/m.exec(stderrText);
  return m ? m[1].trim() || "(no message)" : undefined;
}

/**
 * After the last cell, how long the runner waits at most for the notebook's pending timers
 * (setTimeout callbacks that could still throw) before it ends the kernel.
 */
export const LATE_ERRORS_GRACE_MS = 2000;

/**
 * Runs in the kernel after the last cell: one turn of the event loop (unhandled rejections are
 * reported then), then until no timer keeps the loop alive (unref'd ones do not) or the grace is over. Declares
 * nothing in the notebook's scope. (tslab cannot `await` a parenthesised async function.)
 */
const SETTLE_CODE = `await new Promise<void>((done) => {
  const end = Date.now() + ${LATE_ERRORS_GRACE_MS};
  // From setImmediate, so that the timer that woke us is no longer counted as active.
  const timers = () => (process as any).getActiveResourcesInfo().includes("Timeout");
  const check = () => (Date.now() < end && timers() ? setTimeout(() => setImmediate(check), 20) : done());
  setTimeout(() => setImmediate(check), 20);
});`;

// ---------------------------------------------------------------------------------------
// Running one notebook

/** The kernel's environment: ours, plus the caller's extras, plus smoke-mode settings. */
export function kernelEnv(opts: Pick<RunOptions, "smoke" | "env">, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...opts.env };
  if (opts.smoke ?? isSmoke(env)) {
    env.COURSE_SMOKE = "1";
    // Smoke runs leave their tiny checkpoints apart, never over the real ones.
    env.COURSE_ARTIFACTS ??= path.join(repoRoot, "build", "artifacts-smoke");
  } else {
    delete env.COURSE_SMOKE; // explicitly full mode
  }
  return env;
}

/** Where a failed run leaves its partial notebook: x.ipynb → x.failed.ipynb. */
export function failedPath(outputPath: string): string {
  return outputPath.replace(/(\.ipynb)?$/, ".failed.ipynb");
}

function checkKernelspec(nb: Notebook, name: string): void {
  const spec = nb.metadata.kernelspec;
  if (spec?.name !== "tslab") {
    const got = spec === undefined ? "missing" : `${JSON.stringify(spec?.name)}`;
    throw new NotebookRunError(`${name}: metadata.kernelspec.name is ${got}; expected "tslab" (the TypeScript kernel)`, name);
  }
}

/**
 * Execute a notebook top to bottom in a fresh tslab kernel and return it with its outputs.
 * Throws NotebookRunError at the first failing cell, on timeout, or if the kernel dies.
 */
export async function executeNotebook(inputPath: string, opts: RunOptions = {}): Promise<Notebook> {
  const file = path.resolve(inputPath);
  const name = displayName(file);
  const out = opts.outputPath === undefined ? undefined : path.resolve(opts.outputPath);
  const cellTimeout = opts.cellTimeoutMs ?? DEFAULT_CELL_TIMEOUT_MS;
  const notebookTimeout = opts.notebookTimeoutMs ?? DEFAULT_NOTEBOOK_TIMEOUT_MS;

  // Whatever happens next, nothing from an earlier run may stay at the output paths
  // (unless we are asked to execute in place: never delete the source notebook).
  if (out !== undefined && out !== file) fs.rmSync(out, { force: true });
  if (out !== undefined) fs.rmSync(failedPath(out), { force: true });

  let nb: Notebook;
  try {
    nb = readNotebook(file);
  } catch (err) {
    throw new NotebookRunError((err as Error).message.replace(file, name), name);
  }
  checkKernelspec(nb, name);
  clearOutputs(nb);

  const fail = (message: string, cellIndex?: number): NotebookRunError => {
    // The partial run, for debugging; not when running in place, where it would sit among the
    // sources and be picked up by the next `notebooks/*.ipynb`.
    if (out !== undefined && out !== file) {
      try {
        writeNotebook(failedPath(out), nb);
      } catch (err) {
        message += `\n(could not write ${failedPath(out)}: ${(err as Error).message})`;
      }
    }
    return new NotebookRunError(message, name, cellIndex);
  };

  let kernel: TslabKernel;
  try {
    kernel = await TslabKernel.start({ cwd: path.dirname(file), env: kernelEnv(opts) });
  } catch (err) {
    const tail = err instanceof KernelDiedError && err.stderrTail.trim() ? "\n" + err.stderrTail : "";
    throw fail(`${name}: the tslab kernel did not start: ${(err as Error).message}${tail}`);
  }
  const started = Date.now(); // the notebook clock starts once the kernel is up

  try {
    // As nbclient does: the notebook records the language the kernel says it runs.
    if (kernel.info.language_info) nb.metadata.language_info = kernel.info.language_info as Record<string, unknown>;
    const displays: DisplayMap = new Map();
    // Which cell each execute request ran, and the first error that escaped a cell after it
    // returned: it fails the notebook (as a cell error does) before anything else runs.
    const cellOfRequest = new Map<string, number>();
    let lastRun = -1;
    let late: { index: number; error: string } | undefined;
    /** An output message of cell `index`: into its outputs, streamed, its stderr kept. Returns the stream text. */
    const record = (index: number, msg: JupyterMessage, stderr?: string[]): string | undefined => {
      const text = applyIopubMessage((nb.cells[index] as CodeCell).outputs, msg, displays);
      if (text === undefined) return undefined;
      if (msg.content.name === "stderr") stderr?.push(text);
      opts.onOutput?.(text);
      return text;
    };
    const lateFailure = (l: { index: number; error: string }) =>
      fail(`${name}: an error was thrown after cell ${l.index + 1} returned, in a timer or an unawaited promise (of that cell or an earlier one): ${l.error} | source: ${sourceSnippet(nb.cells[l.index].source)}`, l.index);
    kernel.onLateIopub = (msg) => {
      const index = cellOfRequest.get(msg.parent_header.msg_id!);
      if (index === undefined) return;
      // Where Jupyter shows it too: in the cell that ran last.
      const text = record(index, msg);
      if (text === undefined || msg.content.name !== "stderr") return;
      const error = escapedError(text);
      if (error === undefined || late) return;
      late = { index, error };
      // A later cell may be running already (a long one, perhaps): stop it, the verdict is in.
      if (index !== lastRun) kernel.kill();
    };
    for (let index = 0; index < nb.cells.length; index++) {
      const cell = nb.cells[index];
      if (cell.cell_type !== "code" || cell.source.trim() === "") continue; // as nbclient: empty cells are not run
      if (late) throw lateFailure(late);
      opts.onCell?.({ index, total: nb.cells.length, source: cell.source });
      const where = `${name}: cell ${index + 1}`;
      const snippet = ` | source: ${sourceSnippet(cell.source)}`;
      const stderr: string[] = [];

      const notebookLeft = notebookTimeout - (Date.now() - started);
      const notebookHit = `hit the notebook timeout of ${seconds(notebookTimeout)}`;
      if (notebookLeft <= 0) throw fail(`${where} ${notebookHit}${snippet}`, index);
      const timeoutMs = Math.min(cellTimeout, notebookLeft);
      let reply;
      const startedAt = new Date();
      const msgId = randomUUID();
      cellOfRequest.set(msgId, index);
      lastRun = index;
      try {
        reply = await kernel.execute(cell.source, {
          msgId,
          timeoutMs,
          onIopub: (msg) => record(index, msg, stderr),
        });
      } catch (err) {
        if (err instanceof KernelTimeoutError) {
          kernel.kill(); // a cell stuck in a loop cannot be interrupted politely
          const which = timeoutMs === cellTimeout ? `timed out after ${seconds(cellTimeout)} (cell timeout)` : notebookHit;
          throw fail(`${where} ${which}${snippet}`, index);
        }
        if (err instanceof KernelDiedError) {
          // An escaped error kills the kernel once the wasm backend is loaded (its runtime
          // rethrows from Node's uncaughtException hook): the error is the news, not the death.
          if (late) throw lateFailure(late);
          const escaped = escapedError(stderr.join(""));
          const why = escaped ? `an error escaped the cell, in a timer or an unawaited promise, and ${err.message}: ${escaped}` : `${err.message} while running the cell`;
          const tail = [stderr.join(""), err.stderrTail].filter((s) => s.trim()).join("\n");
          throw fail(`${where}: ${why}${snippet}${tail ? "\n" + tail : ""}`, index);
        }
        throw fail(`${where}: ${(err as Error).message}${snippet}`, index);
      }
      cell.execution_count = typeof reply.execution_count === "number" ? reply.execution_count : null;
      // Timing as nbclient records it (JupyterLab's execute-time display reads these); the build
      // reads them to say where a notebook spends its time.
      cell.metadata.execution = {
        "shell.execute_reply.started": startedAt.toISOString(),
        "shell.execute_reply": new Date().toISOString(),
      };
      if (reply.outputIncomplete) {
        opts.onWarning?.(`${where}: the kernel's output after the cell finished did not all arrive within ${seconds(IOPUB_GRACE_MS)}; the cell's outputs may be incomplete`);
      }
      if (reply.status !== "ok") {
        const why = reply.status === "abort" ? "was aborted by the kernel" : `failed: ${errorSummary(stderr)}`;
        throw fail(`${where} ${why}${snippet}${stderr.length ? "\n" + stderr.join("") : ""}`, index);
      }
      // The cell returned normally, but a timer or promise (its own or an earlier cell's) threw meanwhile.
      const escaped = escapedError(stderr.join(""));
      if (escaped !== undefined) throw fail(`${where}: an error escaped while the cell ran, thrown in a timer or an unawaited promise: ${escaped}${snippet}`, index);
    }
    if (late) throw lateFailure(late);
    if (lastRun >= 0) {
      // Give the notebook's pending timers and promises their chance to fail before the verdict.
      // What they print belongs to the last cell, as in Jupyter.
      const stderr: string[] = [];
      const onIopub = (msg: JupyterMessage) => record(lastRun, msg, stderr);
      const after = `after cell ${lastRun + 1}, the last, returned`;
      try {
        const reply = await kernel.execute(SETTLE_CODE, { silent: true, timeoutMs: LATE_ERRORS_GRACE_MS + 30_000, onIopub });
        if (reply.status !== "ok" && escapedError(stderr.join("")) === undefined) {
          throw new Error(`the runner's wait for pending timers failed: ${errorSummary(stderr)}`);
        }
      } catch (err) {
        if (late) throw lateFailure(late);
        if (escapedError(stderr.join("")) === undefined) {
          const tail = err instanceof KernelDiedError && err.stderrTail.trim() ? "\n" + err.stderrTail : "";
          throw fail(`${name}: ${(err as Error).message} ${after}${tail}`, lastRun);
        }
      }
      const error = escapedError(stderr.join(""));
      if (error !== undefined) late = { index: lastRun, error };
      if (late) throw lateFailure(late);
    }
  } finally {
    await kernel.shutdown();
  }

  if (out !== undefined) writeNotebook(out, nb);
  return nb;
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------
// Command line

export interface CliArgs {
  smoke: boolean;
  outDir?: string;
  cellTimeoutMs: number;
  notebookTimeoutMs: number;
  notebooks: string[];
}

interface NotebookCliOptions {
  smoke: boolean;
  outDir?: string;
  cellTimeout: number;
  timeout: number;
}

const secondsOption = (help: string, dflt: number) =>
  ({ kind: "number", value: "SECONDS", min: 0, minExclusive: true, default: dflt / 1000, expected: "a positive number of seconds", help }) as const;

const RUN_NOTEBOOKS: Command<NotebookCliOptions> = {
  name: "run-notebooks",
  summary: "Runs each notebook top to bottom in a fresh tslab kernel and stops at the first failure.",
  positionals: "NOTEBOOK.ipynb...",
  options: {
    smoke: { kind: "boolean", help: "COURSE_SMOKE=1: tiny sizes (artifacts go to build/artifacts-smoke)" },
    "out-dir": { kind: "string", value: "DIR", defaultText: "write nothing, only check", help: "write the executed notebooks to DIR" },
    "cell-timeout": secondsOption("per-cell limit", DEFAULT_CELL_TIMEOUT_MS),
    timeout: secondsOption("per-notebook limit", DEFAULT_NOTEBOOK_TIMEOUT_MS),
  },
  validate: (a) => {
    const notebooks = (a as NotebookCliOptions & Parsed).positionals;
    if (notebooks.length === 0) throw new UsageError("no notebooks given");
    const bad = notebooks.find((p) => !p.endsWith(".ipynb"));
    if (bad) throw new UsageError(`"${bad}" is not an .ipynb file`);
    if (a.outDir !== undefined) {
      // Two inputs with the same file name would overwrite each other in DIR.
      const seen = new Map<string, string>();
      for (const p of notebooks) {
        const base = path.basename(p);
        if (seen.has(base)) throw new UsageError(`--out-dir: "${seen.get(base)}" and "${p}" would both be written to ${path.join(a.outDir, base)}`);
        seen.set(base, p);
      }
    }
  },
  run: (a) => runNotebooks(toCliArgs(a as NotebookCliOptions & Parsed)),
};

function toCliArgs(a: NotebookCliOptions & Parsed): CliArgs {
  return { smoke: a.smoke, outDir: a.outDir, cellTimeoutMs: a.cellTimeout * 1000, notebookTimeoutMs: a.timeout * 1000, notebooks: a.positionals };
}

/** Parse the command line; throws a one-line UsageError for anything unexpected. */
export function parseCli(argv: string[]): CliArgs | "help" {
  const a = optionParser<NotebookCliOptions>(RUN_NOTEBOOKS)(argv);
  if (a.help) return "help";
  RUN_NOTEBOOKS.validate!(a);
  return toCliArgs(a);
}

/**
 * Where the CLI writes a notebook's result: --out-dir, else nowhere (a check only).
 * Never in place: notebooks are committed without outputs; executed copies are build products.
 */
export function cliOutputPath(args: CliArgs, notebook: string): string | undefined {
  return args.outDir !== undefined ? path.join(args.outDir, path.basename(notebook)) : undefined;
}

export const main = commandMain(RUN_NOTEBOOKS);

async function runNotebooks(args: CliArgs): Promise<number> {
  const tty = process.stdout.isTTY === true;
  const n = args.notebooks.length;
  for (const [i, notebook] of args.notebooks.entries()) {
    const label = `[${i + 1}/${n}] ${notebook} …`;
    const t0 = Date.now();
    const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    // On a terminal the line shows which cell is running; in logs it is written once.
    process.stdout.write(tty ? label : label + " ");
    try {
      await executeNotebook(notebook, {
        onWarning: (line) => process.stderr.write(`warning: ${line}\n`),
        smoke: args.smoke,
        outputPath: cliOutputPath(args, notebook),
        cellTimeoutMs: args.cellTimeoutMs,
        notebookTimeoutMs: args.notebookTimeoutMs,
        onCell: tty ? ({ index, total }) => process.stdout.write(`\r\x1b[K${label} cell ${index + 1}/${total}`) : undefined,
      });
      process.stdout.write(`${tty ? `\r\x1b[K${label} ` : ""}ok (${elapsed()})\n`);
    } catch (err) {
      process.stdout.write(`${tty ? `\r\x1b[K${label} ` : ""}FAILED (${elapsed()})\n`);
      process.stderr.write(`${(err as Error).message}\n`);
      return 1;
    }
  }
  return 0;
}

if (require.main === module) runAsScript(main);
