/**
 * The .ipynb file format (nbformat 4.5, https://nbformat.readthedocs.io/en/latest/format_description.html):
 * the few types the course tooling needs, a validating reader and a writer that produces
 * the same layout Jupyter does (1-space indent, sorted keys, multi-line strings as lists of lines).
 *
 * In memory every multi-line string (cell source, stream text, text/* MIME values) is ONE
 * string; on disk Jupyter stores them as lists of lines. readNotebook joins, writeNotebook splits.
 */
import { randomBytes } from "crypto";
import * as fs from "fs";
import { writeFileAtomic } from "../../core/atomic";

/** MIME type → value: a string (text, or base64 for images) or JSON for `…+json` types. */
export type MimeBundle = Record<string, unknown>;

export interface StreamOutput {
  output_type: "stream";
  name: "stdout" | "stderr";
  text: string;
}
export interface DisplayDataOutput {
  output_type: "display_data";
  data: MimeBundle;
  metadata: Record<string, unknown>;
}
export interface ExecuteResultOutput {
  output_type: "execute_result";
  execution_count: number | null;
  data: MimeBundle;
  metadata: Record<string, unknown>;
}
export interface ErrorOutput {
  output_type: "error";
  ename: string;
  evalue: string;
  traceback: string[];
}
export type Output = StreamOutput | DisplayDataOutput | ExecuteResultOutput | ErrorOutput;

interface CellBase {
  id: string;
  source: string;
  metadata: Record<string, unknown>;
}
export interface CodeCell extends CellBase {
  cell_type: "code";
  execution_count: number | null;
  outputs: Output[];
}
export interface MarkdownCell extends CellBase {
  cell_type: "markdown";
  attachments?: Record<string, MimeBundle>;
}
export interface RawCell extends CellBase {
  cell_type: "raw";
  attachments?: Record<string, MimeBundle>;
}
export type Cell = CodeCell | MarkdownCell | RawCell;

export interface KernelSpec {
  name: string;
  display_name: string;
  language?: string;
}
export interface NotebookMetadata {
  kernelspec?: KernelSpec;
  language_info?: Record<string, unknown>;
  [key: string]: unknown;
}
export interface Notebook {
  nbformat: 4;
  nbformat_minor: number;
  metadata: NotebookMetadata;
  cells: Cell[];
}

// ---------------------------------------------------------------------------------------
// Reading and validation

/** A cell id: 1–64 letters, digits, '-' or '_' (nbformat 4.5). */
const CELL_ID = /^[a-zA-Z0-9_-]{1,64}$/;
const OUTPUT_TYPES = ["stream", "display_data", "execute_result", "error"];

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
/** How a bad value is shown in an error message: `"python3"`, `3`, `an array`, `missing`. */
function describe(x: unknown): string {
  if (x === undefined) return "missing";
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object") return "an object";
  return typeof x === "string" ? JSON.stringify(x) : String(x);
}

/** Jupyter's "multiline string": a string or a list of lines to concatenate. */
function joinMultiline(x: unknown, file: string, field: string): string {
  if (typeof x === "string") return x;
  if (Array.isArray(x) && x.every((s) => typeof s === "string")) return x.join("");
  throw new Error(`${file}: ${field} is ${describe(x)}; expected a string or a list of strings`);
}

function joinBundle(data: unknown, file: string, field: string): MimeBundle {
  if (!isObject(data)) throw new Error(`${file}: ${field} is ${describe(data)}; expected an object of MIME type → value`);
  const out: MimeBundle = {};
  for (const [mime, value] of Object.entries(data)) {
    // JSON MIME types hold JSON values; everything else is a (possibly split) string.
    out[mime] = isJsonMime(mime) ? value : joinMultiline(value, file, `${field}["${mime}"]`);
  }
  return out;
}

function isJsonMime(mime: string): boolean {
  return mime === "application/json" || mime.endsWith("+json");
}

function parseOutput(o: unknown, file: string, field: string): Output {
  if (!isObject(o)) throw new Error(`${file}: ${field} is ${describe(o)}; expected an output object`);
  const type = o.output_type;
  if (typeof type !== "string" || !OUTPUT_TYPES.includes(type)) {
    throw new Error(`${file}: ${field}.output_type is ${describe(type)}; expected one of ${OUTPUT_TYPES.join(", ")}`);
  }
  const metadata = (o.metadata ?? {}) as Record<string, unknown>;
  switch (type) {
    case "stream":
      if (o.name !== "stdout" && o.name !== "stderr") throw new Error(`${file}: ${field}.name is ${describe(o.name)}; expected "stdout" or "stderr"`);
      return { ...o, output_type: "stream", name: o.name, text: joinMultiline(o.text, file, `${field}.text`) };
    case "display_data":
      return { ...o, output_type: "display_data", data: joinBundle(o.data, file, `${field}.data`), metadata };
    case "execute_result":
      return {
        ...o,
        output_type: "execute_result",
        execution_count: typeof o.execution_count === "number" ? o.execution_count : null,
        data: joinBundle(o.data, file, `${field}.data`),
        metadata,
      };
    default:
      return o as unknown as ErrorOutput;
  }
}

function newCellId(taken: Set<string>): string {
  for (;;) {
    const id = randomBytes(4).toString("hex"); // what nbformat does: 8 hex characters
    if (!taken.has(id)) return id;
  }
}

function parseCell(c: unknown, file: string, i: number, ids: Set<string>): Cell {
  const field = `cells[${i}]`;
  if (!isObject(c)) throw new Error(`${file}: ${field} is ${describe(c)}; expected a cell object`);
  const type = c.cell_type;
  if (type !== "code" && type !== "markdown" && type !== "raw") {
    throw new Error(`${file}: ${field}.cell_type is ${describe(type)}; expected "code", "markdown" or "raw"`);
  }
  let id: string;
  if (c.id === undefined) {
    id = newCellId(ids); // notebooks older than 4.5 have none; nbformat adds them the same way
  } else if (typeof c.id !== "string" || !CELL_ID.test(c.id)) {
    throw new Error(`${file}: ${field}.id is ${describe(c.id)}; expected 1-64 letters, digits, "-" or "_"`);
  } else if (ids.has(c.id)) {
    throw new Error(`${file}: ${field}.id "${c.id}" is used by an earlier cell; cell ids must be unique`);
  } else {
    id = c.id;
  }
  ids.add(id);
  const source = joinMultiline(c.source ?? "", file, `${field}.source`);
  const metadata = c.metadata === undefined ? {} : c.metadata;
  if (!isObject(metadata)) throw new Error(`${file}: ${field}.metadata is ${describe(metadata)}; expected an object`);
  if (type !== "code") return { ...c, id, cell_type: type, source, metadata } as Cell;
  const outputs = c.outputs ?? [];
  if (!Array.isArray(outputs)) throw new Error(`${file}: ${field}.outputs is ${describe(outputs)}; expected a list`);
  return {
    ...c,
    id,
    cell_type: "code",
    source,
    metadata,
    execution_count: typeof c.execution_count === "number" ? c.execution_count : null,
    outputs: outputs.map((o, j) => parseOutput(o, file, `${field}.outputs[${j}]`)),
  };
}

/**
 * Parse and check notebook JSON text; `file` only names the notebook in error messages.
 * Throws a one-line Error naming the file and the offending field.
 */
export function parseNotebook(text: string, file: string): Notebook {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  if (!isObject(raw)) throw new Error(`${file}: the notebook is ${describe(raw)}; expected a JSON object`);
  if (raw.nbformat !== 4) {
    throw new Error(`${file}: nbformat is ${describe(raw.nbformat)}; expected 4 (open and re-save it in a current Jupyter to convert it)`);
  }
  const minor = raw.nbformat_minor;
  if (typeof minor !== "number" || !Number.isInteger(minor) || minor < 0) {
    throw new Error(`${file}: nbformat_minor is ${describe(minor)}; expected a non-negative integer`);
  }
  const metadata = raw.metadata ?? {};
  if (!isObject(metadata)) throw new Error(`${file}: metadata is ${describe(metadata)}; expected an object`);
  if (!Array.isArray(raw.cells)) throw new Error(`${file}: cells is ${describe(raw.cells)}; expected a list of cells`);
  const ids = new Set<string>();
  const cells = raw.cells.map((c, i) => parseCell(c, file, i, ids));
  // Cells now all have ids, which makes this a 4.5 notebook at least.
  return { ...raw, nbformat: 4, nbformat_minor: Math.max(5, minor), metadata, cells };
}

/** Read and validate an .ipynb file (one-line errors: missing file, bad JSON, wrong format). */
export function readNotebook(file: string): Notebook {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ENOENT" ? "no such file" : e.code === "EISDIR" ? "is a directory, expected an .ipynb file" : e.message;
    throw new Error(`${file}: ${why}`);
  }
  return parseNotebook(text, file);
}

// ---------------------------------------------------------------------------------------
// Writing

/** Split after each "\n" as Jupyter stores multi-line strings ("a\nb" → ["a\n", "b"]). */
export function splitLines(s: string): string[] {
  return s.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Jupyter splits text/* values and these two; other values (base64, JSON) stay whole. */
function splitBundle(data: MimeBundle): MimeBundle {
  const out: MimeBundle = {};
  for (const [mime, v] of Object.entries(data)) {
    const split = typeof v === "string" && (mime.startsWith("text/") || mime === "application/javascript" || mime === "image/svg+xml");
    out[mime] = split ? splitLines(v as string) : v;
  }
  return out;
}

function toDisk(nb: Notebook): unknown {
  return {
    ...nb,
    cells: nb.cells.map((cell) => {
      const c: Record<string, unknown> = { ...cell, source: splitLines(cell.source) };
      if (cell.cell_type === "code") {
        c.outputs = cell.outputs.map((o) => {
          if (o.output_type === "stream") return { ...o, text: splitLines(o.text) };
          if (o.output_type === "display_data" || o.output_type === "execute_result") return { ...o, data: splitBundle(o.data) };
          return o;
        });
      }
      return c;
    }),
  };
}

/** Same key order as Python's json.dumps(sort_keys=True), so re-running gives small diffs. */
function sortKeys(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(sortKeys);
  if (!isObject(x)) return x;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(x).sort()) if (x[k] !== undefined) out[k] = sortKeys(x[k]);
  return out;
}

/** The file text Jupyter would write for this notebook. */
export function serializeNotebook(nb: Notebook): string {
  return JSON.stringify(sortKeys(toDisk(nb)), null, 1) + "\n";
}

/** Write the notebook atomically (readers never see half a file). */
export function writeNotebook(file: string, nb: Notebook): void {
  writeFileAtomic(file, serializeNotebook(nb));
}

/** Remove every code cell's outputs and execution count. Changes `nb` in place and returns it. */
export function clearOutputs(nb: Notebook): Notebook {
  for (const cell of nb.cells) {
    if (cell.cell_type === "code") {
      cell.outputs = [];
      cell.execution_count = null;
      delete cell.metadata.execution; // a run's timing, like its outputs
    }
  }
  return nb;
}
