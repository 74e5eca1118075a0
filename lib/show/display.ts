/**
 * Rich display for notebooks: one output carrying several MIME types at once.
 *
 * tslab's public `display.html(...)` etc. send one MIME type per output, but a good output
 * offers several representations and lets each frontend pick: JupyterLab/VS Code take the
 * richest they understand, text viewers and our CLI runner take `text/plain`. tslab's kernel
 * module `tslab/dist/jupyter` keeps `lastWriteDisplayData(displayData, update)`, the function
 * that sends a `display_data` (or, with update=true, an `update_display_data`) message for the
 * cell being executed; it accepts a whole MIME bundle. It is internal and undocumented, so it
 * is reached only through `kernelSink()` below, with a plain-text fallback when it is missing.
 *
 * Outside a kernel (CLIs, tests) every `show…` prints its `text/plain` part to stdout, or
 * nothing with `{ fallback: "none" }`.
 */
import { randomBytes } from "crypto";

/** A MIME bundle as sent to Jupyter: `{ "text/html": "...", "text/plain": "..." }`. */
export type MimeBundle = Record<string, unknown>;

/** The content of a `display_data` / `update_display_data` message. */
export interface DisplayMessage {
  data: MimeBundle;
  metadata: Record<string, unknown>;
  /** Not saved in the notebook: the id that later updates refer to. */
  transient: { display_id?: string };
}

/** Sends one display message; `update` = replace the output with the same display_id. */
export type DisplaySink = (message: DisplayMessage, update: boolean) => void;

export interface DisplayOptions {
  metadata?: Record<string, unknown>;
  /** Give the output an id so it can be replaced later (see `newDisplay`). */
  displayId?: string;
  /** Replace the output that has `displayId` instead of adding a new one. */
  update?: boolean;
  /** Outside a kernel: print the `text/plain` part (default) or nothing. */
  fallback?: "text" | "none";
}

// ---------------------------------------------------------------------------------------
// Finding the kernel

interface TslabJupyterModule {
  lastWriteDisplayData: ((data: unknown, update: boolean) => void) | null;
  ZmqServer?: { prototype: Record<string | symbol, unknown> };
}

const JUPYTER_MODULE = /[\\/]tslab[\\/]dist[\\/]jupyter\.js$/;

let sinkOverride: DisplaySink | null | undefined;
let sessionOverride: string | undefined;
let tslabModule: TslabJupyterModule | null | undefined;
let sessionBox: { session?: string } | undefined;

/**
 * The tslab kernel module that is running this process, if any.
 *
 * We never load tslab ourselves: outside a kernel that would pull in ZeroMQ and a TypeScript
 * compiler just to learn there is no kernel. Inside one, the kernel's `jupyter.js` is already in
 * Node's module cache, because the kernel's `main.js` loaded it before running any cell. We
 * look first at the copy our own `require` resolves to (the project's tslab, which is also the
 * one the kernel switches to when started inside the project), then at any loaded copy, in case
 * the kernel runs from another install. The answer cannot change during a process, so it is
 * computed once.
 */
function findTslab(): TslabJupyterModule | null {
  if (tslabModule !== undefined) return tslabModule;
  tslabModule = null;
  const candidates: string[] = [];
  try {
    candidates.push(require.resolve("tslab/dist/jupyter"));
  } catch {
    /* tslab not installed next to the library: only a loaded copy can help */
  }
  candidates.push(...Object.keys(require.cache).filter((p) => JUPYTER_MODULE.test(p)));
  for (const p of candidates) {
    const mod = require.cache[p]?.exports as Partial<TslabJupyterModule> | undefined;
    if (mod && "lastWriteDisplayData" in mod) {
      tslabModule = mod as TslabJupyterModule;
      // Prefer the copy that has seen a cell; keep looking otherwise.
      if (mod.lastWriteDisplayData) break;
    }
  }
  if (tslabModule) {
    watchSessions(tslabModule);
    serializeKernelSends();
  }
  return tslabModule;
}

const SEND_HOOK = Symbol.for("llm-course.display.serialized-sends");

/**
 * Let each kernel socket send one message at a time, in order.
 *
 * Why: tslab 1.0.22 calls zeromq's `socket.send` without waiting for it. zeromq.js 6 completes
 * a send at once while the socket's queue has room, but when a busy frontend falls behind (a
 * long training run drawing a live chart on a loaded machine) a send has to wait, and the next
 * call then THROWS "Socket is busy writing" — inside tslab's status message, which kills the
 * kernel (seen once in a 15-minute notebook run). Chaining every send on the previous one
 * keeps the order and never throws; a failed send is dropped (tslab ignored it anyway).
 * Installed once per process, on the zeromq copy the kernel already loaded.
 */
export function serializeKernelSends(): void {
  const file = Object.keys(require.cache).find((p) => /[\\/]node_modules[\\/]zeromq[\\/]lib[\\/]index\.js$/.test(p));
  const zmq = file === undefined ? undefined : (require.cache[file]?.exports as { Publisher?: { prototype: object } } | undefined);
  if (zmq?.Publisher) serializeSends(Object.getPrototypeOf(zmq.Publisher.prototype) as SocketPrototype);
}

type SocketPrototype = Record<string | symbol, unknown>;

/** Wrap `proto.send` so that each socket's sends run one after the other (see above). Idempotent. */
export function serializeSends(proto: SocketPrototype): void {
  if (proto[SEND_HOOK] || typeof proto.send !== "function") return;
  const send = proto.send as (this: object, msg: unknown) => Promise<void>;
  const queues = new WeakMap<object, Promise<void>>();
  const serialized = function (this: object, msg: unknown): Promise<void> {
    const next = (queues.get(this) ?? Promise.resolve()).then(() => send.call(this, msg));
    const settled = next.catch(() => undefined);
    queues.set(this, settled);
    return settled;
  };
  // zeromq's native prototype has send read-only but configurable: redefine, don't assign.
  const d = Object.getOwnPropertyDescriptor(proto, "send");
  if (d && !d.writable && !d.configurable) return;
  Object.defineProperty(proto, "send", { value: serialized, writable: d?.writable ?? true, enumerable: d?.enumerable ?? false, configurable: true });
  Object.defineProperty(proto, SEND_HOOK, { value: true });
}

const SESSION_HOOK = Symbol.for("llm-course.display.session-hook");

/**
 * Record the frontend session of each execute request the kernel receives.
 *
 * Why: a browser page that reloads while the kernel keeps running has lost every script an
 * earlier page ran (plotly.js among them), but the kernel cannot tell, and tslab does not pass
 * the request to cells. Jupyter frontends put their session id in every request header and a
 * new page gets a new one, so the plot module sends the plotly.js loader once per session. This
 * wraps tslab 1.0.22's `ZmqServer.prototype.handleExecute(sock, msg)`, looked up per message;
 * if that method is missing or different, sessions stay unknown and the loader goes out once
 * per process. The hook is installed once even if this library is loaded twice.
 */
function watchSessions(mod: TslabJupyterModule): void {
  const proto = mod.ZmqServer?.prototype;
  if (!proto) return;
  // The latest session lives on the prototype, shared by every copy of this library.
  const existing = proto[SESSION_HOOK] as { session?: string } | undefined;
  if (existing) {
    sessionBox = existing;
    return;
  }
  const original = proto.handleExecute;
  if (typeof original !== "function" || original.length !== 2) return;
  const box: { session?: string } = {};
  proto[SESSION_HOOK] = box;
  sessionBox = box;
  proto.handleExecute = function (this: unknown, sock: unknown, msg: { header?: { session?: unknown } }) {
    const session = msg?.header?.session;
    if (typeof session === "string") box.session = session;
    return original.call(this, sock, msg);
  };
}

/**
 * The frontend session (browser page, nbclient run…) that sent the latest execute request,
 * if known. Requests that reached the kernel before this library was loaded are not seen.
 */
export function frontendSession(): string | undefined {
  if (sinkOverride !== undefined) return sessionOverride;
  findTslab();
  return sessionBox?.session;
}

/**
 * Where display messages go right now: the test sink if one is set, else tslab's sender for
 * the current cell, else null (not in a kernel, or the kernel has not run a cell yet).
 */
export function kernelSink(): DisplaySink | null {
  if (sinkOverride !== undefined) return sinkOverride;
  const send = findTslab()?.lastWriteDisplayData;
  // Read at call time: tslab replaces the function at every cell execution.
  return send ? (message, update) => send(message, update) : null;
}

/** True when display messages reach a notebook (or the test sink). */
export function inKernel(): boolean {
  return kernelSink() !== null;
}

/**
 * Test hook: route display messages to `sink` (null: behave as outside a kernel) and report
 * `session` as the frontend session. `undefined` restores the real lookup.
 */
export function setDisplaySink(sink: DisplaySink | null | undefined, session?: string): void {
  sinkOverride = sink;
  sessionOverride = session;
}

// ---------------------------------------------------------------------------------------
// Sending

/** A fresh id for an output that will be updated in place. */
export function newDisplayId(): string {
  return randomBytes(8).toString("hex");
}

/**
 * Show one output carrying every MIME type in `data`.
 * Outside a kernel, prints `data["text/plain"]` (unless `fallback: "none"`); an update of an
 * existing output is never printed, since a terminal cannot replace what it printed.
 *
 * Returns nothing on purpose, like every `show…`: tslab prints the value of a cell's last
 * expression, and a returned flag or id would appear under every chart.
 */
export function displayBundle(data: MimeBundle, opts: DisplayOptions = {}): void {
  const sink = kernelSink();
  if (sink) {
    const message: DisplayMessage = { data, metadata: opts.metadata ?? {}, transient: {} };
    if (opts.displayId !== undefined) message.transient.display_id = opts.displayId;
    sink(message, Boolean(opts.update && opts.displayId !== undefined));
    return;
  }
  const text = data["text/plain"];
  if ((opts.fallback ?? "text") === "text" && !opts.update && typeof text === "string") {
    process.stdout.write(text.endsWith("\n") ? text : text + "\n");
  }
}

/** An output that can be replaced in place: the first `show` creates it, later ones update it. */
export interface DisplayHandle {
  readonly id: string;
  show(data: MimeBundle, opts?: Omit<DisplayOptions, "displayId" | "update">): void;
}

export function newDisplay(id: string = newDisplayId()): DisplayHandle {
  let shown = false;
  return {
    id,
    show(data, opts = {}) {
      displayBundle(data, { ...opts, displayId: id, update: shown });
      shown = true;
    },
  };
}

// ---------------------------------------------------------------------------------------
// HTML, Markdown, tables

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** A rough plain-text rendering of HTML, for `text/plain`: tags dropped, common entities decoded. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, "")
    .replace(/<br\s*\/?>|<\/(p|div|tr|li|h[1-6])>/gi, "\n")
    .replace(/<[^>]*>/g, "")
    .replace(/&(lt|gt|quot|#39|amp);/g, (_, e: string) => ({ lt: "<", gt: ">", quot: '"', "#39": "'", amp: "&" })[e]!)
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

export function showHtml(html: string, opts: DisplayOptions = {}): void {
  displayBundle({ "text/html": html, "text/plain": htmlToText(html) }, opts);
}

export function showMarkdown(markdown: string, opts: DisplayOptions = {}): void {
  displayBundle({ "text/markdown": markdown, "text/plain": markdown }, opts);
}

export type Align = "left" | "right" | "center";
/** One table row; a missing, undefined or null cell is shown empty. */
export type TableRow = Record<string, string | number | null | undefined>;

export interface TableOptions {
  caption?: string;
  /** One alignment for all columns or per column name. Default: numbers right, text left. */
  align?: Align | Record<string, Align>;
  /** Significant digits for non-integer numbers (default 5). */
  digits?: number;
}

/** A table rendered three ways, so every frontend shows something sensible. */
export interface TableBundle {
  "text/html": string;
  "text/markdown": string;
  "text/plain": string;
}

function formatNumber(v: number, digits: number): string {
  if (Number.isInteger(v) || !Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  // Plain notation in the range people read comfortably, exponent outside it.
  if (a >= 1e-4 && a < 10 ** digits) return String(Number(v.toPrecision(digits)));
  return v.toExponential(Math.max(0, digits - 1)).replace(/\.?0+e/, "e");
}

/**
 * Render rows as an HTML table, a Markdown table and an aligned text table. Columns are the
 * union of the rows' keys in first-seen order; a missing cell is empty.
 */
export function formatTable(rows: TableRow[], opts: TableOptions = {}): TableBundle {
  const digits = opts.digits ?? 5;
  const columns: string[] = [];
  for (const row of rows) for (const k of Object.keys(row)) if (!columns.includes(k)) columns.push(k);
  const cell = (row: TableRow, c: string): string => {
    const v = row[c];
    return v == null ? "" : typeof v === "number" ? formatNumber(v, digits) : String(v);
  };
  const align = (c: string): Align => {
    if (typeof opts.align === "string") return opts.align;
    const chosen = opts.align?.[c];
    if (chosen) return chosen;
    const numeric = rows.some((r) => typeof r[c] === "number") && rows.every((r) => r[c] == null || typeof r[c] === "number");
    return numeric ? "right" : "left";
  };
  const cells = rows.map((r) => columns.map((c) => cell(r, c)));

  const style = (c: string) => ` style="text-align:${align(c)}"`;
  const html = [
    "<table>",
    opts.caption !== undefined ? `<caption>${escapeHtml(opts.caption)}</caption>` : "",
    "<thead><tr>" + columns.map((c) => `<th${style(c)}>${escapeHtml(c)}</th>`).join("") + "</tr></thead>",
    "<tbody>",
    ...cells.map((r) => "<tr>" + r.map((v, i) => `<td${style(columns[i])}>${escapeHtml(v)}</td>`).join("") + "</tr>"),
    "</tbody>",
    "</table>",
  ]
    .filter((s) => s !== "")
    .join("\n");

  const md = (s: string) => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
  const rule = (c: string) => ({ left: ":--", right: "--:", center: ":-:" })[align(c)];
  const markdown = [
    opts.caption !== undefined ? `**${md(opts.caption)}**\n` : "",
    "| " + columns.map(md).join(" | ") + " |",
    "| " + columns.map(rule).join(" | ") + " |",
    ...cells.map((r) => "| " + r.map(md).join(" | ") + " |"),
  ]
    .filter((s) => s !== "")
    .join("\n");

  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const pad = (s: string, i: number) => {
    const room = widths[i] - s.length;
    switch (align(columns[i])) {
      case "right":
        return " ".repeat(room) + s;
      case "center":
        return " ".repeat(Math.floor(room / 2)) + s + " ".repeat(Math.ceil(room / 2));
      default:
        return s + " ".repeat(room);
    }
  };
  const line = (r: string[]) => r.map(pad).join("  ").trimEnd();
  const text = [
    ...(opts.caption !== undefined ? [opts.caption] : []),
    line(columns),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...cells.map(line),
  ].join("\n");

  return { "text/html": html, "text/markdown": markdown, "text/plain": text };
}

export function showTable(rows: TableRow[], opts: TableOptions & DisplayOptions = {}): void {
  displayBundle({ ...formatTable(rows, opts) }, opts);
}
