/**
 * Checkpoints: a trained model on disk, and everything needed to continue its training
 * exactly where it stopped.
 *
 * A checkpoint is a directory:
 *
 *   model.json      metadata, readable: format + version, step, model config, tokenizer,
 *                   RNG state, loss history, backend, and the manifest of the binary files
 *   weights.bin     the parameters: raw float32 (or int32) numbers, little-endian, one
 *                   tensor after the other, no padding
 *   optimizer.bin   (optional) AdamW's m and v, same layout
 *
 * The manifest in model.json lists, for each .bin file, its size, its SHA-256 and its tensors:
 *
 *   "weights": { "file": "weights.bin", "byteLength": 4096, "sha256": "…",
 *                "tensors": [ { "name": "wte.weight", "shape": [65, 128], "dtype": "float32",
 *                               "offset": 0, "byteLength": 33280 }, … ] }
 *
 * so any language can read it: seek to offset, read byteLength bytes, reshape.
 *
 * Saving is ATOMIC: a crash (or Ctrl-C, or a full disk) while saving never damages the last
 * good checkpoint. Files are written into a sibling directory `<dir>.tmp`, flushed to disk
 * (fsync), and only then swapped in: `<dir>` → `<dir>.old`, `<dir>.tmp` → `<dir>`, delete
 * `<dir>.old`. If the process dies between the two renames, `<dir>.old` is still complete:
 * loadCheckpoint and the next saveCheckpoint use it. A checkpoint directory belongs to
 * saveCheckpoint: other files put into it are lost at the next save.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import type { NamedTensors, OptimizerState, Params } from "../core/optim";
import type { RngState } from "../core/random";
import { isSmoke } from "../core/smoke";
import { Tokenizer, TokenizerJSON, describeJSONValue } from "../tokens/tokenizer";
import { tokenizerFromJSON } from "../tokens/tokenizerFiles";

export const CHECKPOINT_FORMAT = "llm-course-checkpoint";
export const CHECKPOINT_VERSION = 1;

/** Losses of a run so far, kept in the checkpoint so a resumed run continues its curves. */
export interface LossHistory {
  /** [step, loss] of each training batch. */
  train: [number, number][];
  /** [step, train loss, val loss] of each evaluation (averages over several batches). */
  eval: [number, number, number][];
}

/** What saveCheckpoint writes. */
export interface CheckpointData {
  /** Parameters by name (variables or plain tensors). */
  params: NamedTensors;
  /** AdamW's state (optimizer.optimizerState()), to resume training. */
  optimizer?: OptimizerState;
  /** The model's configuration, any JSON (e.g. a GPTConfig). */
  config?: unknown;
  /** The tokenizer the model was trained with (object or its JSON form). */
  tokenizer?: Tokenizer | TokenizerJSON;
  /** Number of updates done. */
  step: number;
  /** State of the training RNG (rng.state()), to draw the same next batches. */
  rng?: RngState;
  losses?: LossHistory;
  /** Anything else JSON-ready (training settings, notes…). */
  extra?: Record<string, unknown>;
}

/** What loadCheckpoint returns: the same fields (tensors are new: dispose them), plus facts of the save. */
export interface LoadedCheckpoint extends Omit<CheckpointData, "tokenizer"> {
  tokenizer?: Tokenizer;
  /** tfjs backend that computed the weights ("wasm", "cpu", "tensorflow"). */
  backend: string;
  /** ISO time of the save. */
  savedAt: string;
  /** The directory actually read (`<dir>.old` after a crash between the renames). */
  dir: string;
  /** Saved in smoke mode (COURSE_SMOKE=1): tiny sizes, not a model to build on in full mode. */
  smoke: boolean;
}

export interface SaveCheckpointOptions {
  /** Test hook, called after each file is written into the temporary directory; throwing simulates a crash. */
  afterWrite?: (file: string) => void;
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
  offset: number;
  byteLength: number;
}

interface FileManifest {
  file: string;
  byteLength: number;
  sha256: string;
  tensors: ManifestEntry[];
}

const MODEL_JSON = "model.json";
const WEIGHTS_BIN = "weights.bin";
const OPTIMIZER_BIN = "optimizer.bin";

// ---------------------------------------------------------------------------------------
// Saving

/** Write a checkpoint into `dir` atomically (see the top of this file). */
export function saveCheckpoint(dir: string, data: CheckpointData, options: SaveCheckpointOptions = {}): void {
  if (!Number.isInteger(data.step) || data.step < 0) throw new Error(`saveCheckpoint: step must be an integer >= 0, got ${data.step}`);
  const target = path.resolve(dir);
  const tmp = `${target}.tmp`;
  const old = `${target}.old`;
  recoverInterruptedSwap(target);
  if (fs.existsSync(target)) {
    const entries = fs.readdirSync(target);
    if (entries.length > 0 && !entries.includes(MODEL_JSON)) {
      // Never replace a directory that is not a checkpoint (a typo could point at anything).
      throw new Error(`${target}: not a checkpoint directory (no ${MODEL_JSON}) and not empty; refusing to replace it`);
    }
  }

  // Serialise first: tensor reads can fail, and nothing is on disk yet.
  const weights = packTensors(WEIGHTS_BIN, data.params);
  const optimizer = data.optimizer !== undefined ? packTensors(OPTIMIZER_BIN, data.optimizer.tensors) : undefined;
  const tokenizer =
    data.tokenizer === undefined ? undefined : typeof (data.tokenizer as Tokenizer).toJSON === "function" ? (data.tokenizer as Tokenizer).toJSON() : data.tokenizer;
  const meta = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    step: data.step,
    savedAt: new Date().toISOString(),
    backend: tf.getBackend(),
    tfjs: tf.version.tfjs,
    smoke: isSmoke(),
    config: data.config ?? null,
    tokenizer: tokenizer ?? null,
    rng: data.rng ?? null,
    losses: data.losses ?? null,
    extra: data.extra ?? null,
    weights: weights.manifest,
    optimizer:
      data.optimizer === undefined || optimizer === undefined
        ? null
        : { step: data.optimizer.step, hyper: data.optimizer.hyper ?? null, ...optimizer.manifest },
  };

  fs.rmSync(tmp, { recursive: true, force: true }); // leftover of an earlier crash
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const write = (name: string, chunks: Uint8Array[]) => {
      const file = path.join(tmp, name);
      writeAndSync(file, chunks);
      options.afterWrite?.(file);
    };
    write(WEIGHTS_BIN, weights.chunks);
    if (optimizer !== undefined) write(OPTIMIZER_BIN, optimizer.chunks);
    // model.json last: a directory with it is complete.
    write(MODEL_JSON, [Buffer.from(readableJSON(meta) + "\n", "utf8")]);
    fsyncDir(tmp);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  // The swap. Between these two renames only <dir>.old exists; recoverInterruptedSwap handles it.
  fs.rmSync(old, { recursive: true, force: true });
  if (fs.existsSync(target)) fs.renameSync(target, old);
  fs.renameSync(tmp, target);
  fsyncDir(path.dirname(target));
  fs.rmSync(old, { recursive: true, force: true });
}

/** A crash between the two renames left `<dir>.old` and no `<dir>`: put it back. */
function recoverInterruptedSwap(target: string): void {
  const old = `${target}.old`;
  if (!fs.existsSync(target) && fs.existsSync(path.join(old, MODEL_JSON))) fs.renameSync(old, target);
}

function packTensors(file: string, tensors: NamedTensors): { chunks: Uint8Array[]; manifest: FileManifest } {
  const entries: ManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== "float32" && t.dtype !== "int32") {
      throw new Error(`saveCheckpoint: tensor "${name}" has dtype ${t.dtype}; only float32 and int32 are stored`);
    }
    const values = t.dataSync() as Float32Array | Int32Array;
    const bytes = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    if (os.endianness() === "BE") swap32(bytes); // the file is little-endian everywhere
    entries.push({ name, shape: [...t.shape], dtype: t.dtype, offset, byteLength: bytes.byteLength });
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  // Hashed chunk by chunk and written the same way: no second copy of a big model in memory.
  const hash = crypto.createHash("sha256");
  for (const c of chunks) hash.update(c);
  return { chunks, manifest: { file, byteLength: offset, sha256: hash.digest("hex"), tensors: entries } };
}

/**
 * JSON for people: the top level and the manifests one field per line, one tensor per line;
 * long values (tokenizer, loss history) compact on one line.
 */
export function readableJSON(value: unknown, depth = 0): string {
  const pad = " ".repeat(depth + 1);
  const close = " ".repeat(depth);
  if (depth < 2 && value !== null && typeof value === "object" && !Array.isArray(value)) {
    const keys = ["weights", "optimizer"];
    const fields = Object.entries(value as Record<string, unknown>).map(([k, v]) => {
      const nested = depth === 0 ? keys.includes(k) : k === "tensors";
      return `${pad}${JSON.stringify(k)}: ${nested ? readableJSON(v, depth + 1) : JSON.stringify(v)}`;
    });
    return `{\n${fields.join(",\n")}\n${close}}`;
  }
  if (Array.isArray(value) && depth > 0 && value.length > 0) {
    return `[\n${value.map((v) => `${pad}${JSON.stringify(v)}`).join(",\n")}\n${close}]`;
  }
  return JSON.stringify(value);
}

function swap32(bytes: Uint8Array): void {
  for (let i = 0; i + 3 < bytes.length; i += 4) {
    const a = bytes[i];
    const b = bytes[i + 1];
    bytes[i] = bytes[i + 3];
    bytes[i + 1] = bytes[i + 2];
    bytes[i + 2] = b;
    bytes[i + 3] = a;
  }
}

function writeAndSync(file: string, chunks: Uint8Array[]): void {
  const fd = fs.openSync(file, "w");
  try {
    for (const bytes of chunks) {
      let done = 0;
      while (done < bytes.byteLength) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a directory so the names in it (new files, renames) survive a power cut. Not possible on Windows: skipped. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch {
    /* Windows cannot open directories; rename there is already durable enough */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------
// Loading

/** True when `dir` (or its `.old` copy after an interrupted save) holds a checkpoint. */
export function checkpointExists(dir: string): boolean {
  const target = path.resolve(dir);
  return fs.existsSync(path.join(target, MODEL_JSON)) || (!fs.existsSync(target) && fs.existsSync(path.join(`${target}.old`, MODEL_JSON)));
}

/** model.json of a checkpoint, checked: its format, version, step and manifests. */
function readCheckpointMeta(dir: string): { target: string; metaFile: string; meta: Record<string, unknown> } {
  let target = path.resolve(dir);
  if (!fs.existsSync(target)) {
    const old = `${target}.old`;
    if (fs.existsSync(path.join(old, MODEL_JSON))) target = old; // crash between the renames of a save
    else throw new Error(`${target}: no checkpoint here (directory does not exist)`);
  }
  if (!fs.statSync(target).isDirectory()) throw new Error(`${target}: not a checkpoint directory (it is a file)`);
  const metaFile = path.join(target, MODEL_JSON);
  let text: string;
  try {
    text = fs.readFileSync(metaFile, "utf8");
  } catch (err) {
    throw new Error(`${metaFile}: cannot read (${errCode(err)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${metaFile}: not valid JSON (${(err as Error).message.replace(/\r?\n/g, "\\n")})`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new Error(`${metaFile}: expected a JSON object, got ${describeJSONValue(raw)}`);
  const meta = raw as Record<string, unknown>;
  const field = (name: string, ok: boolean, expected: string, value: unknown = meta[name]) => {
    if (!ok) throw new Error(`${metaFile}: field "${name}" must be ${expected}, got ${describeJSONValue(value)}`);
  };
  field("format", meta.format === CHECKPOINT_FORMAT, JSON.stringify(CHECKPOINT_FORMAT));
  field("version", meta.version === CHECKPOINT_VERSION, `${CHECKPOINT_VERSION} (the only format this code reads)`);
  field("step", Number.isInteger(meta.step) && (meta.step as number) >= 0, "an integer >= 0");
  field("weights", isObject(meta.weights), "an object (the manifest of weights.bin)");
  const optMeta = meta.optimizer;
  field("optimizer", optMeta === null || optMeta === undefined || isObject(optMeta), "an object or null");

  return { target, metaFile, meta };
}

/** A checkpoint's weights as plain arrays, without TensorFlow.js (the site build's model export reads them). */
export interface CheckpointWeights {
  config?: unknown;
  tokenizer?: Tokenizer;
  step: number;
  savedAt: string;
  weights: Record<string, { shape: number[]; values: Float32Array | Int32Array }>;
}

/** The weights, config and tokenizer of a checkpoint, checked as loadCheckpoint checks them; the optimizer's state is not read. */
export function loadCheckpointWeights(dir: string): CheckpointWeights {
  const { target, metaFile, meta } = readCheckpointMeta(dir);
  const out: CheckpointWeights = {
    step: meta.step as number,
    savedAt: typeof meta.savedAt === "string" ? meta.savedAt : "",
    weights: readTensorValues(target, metaFile, "weights", meta.weights as Record<string, unknown>),
  };
  if (meta.config !== null && meta.config !== undefined) out.config = meta.config;
  if (meta.tokenizer !== null && meta.tokenizer !== undefined) out.tokenizer = tokenizerFromJSON(meta.tokenizer, `${metaFile}: field "tokenizer"`);
  return out;
}

/**
 * Read a checkpoint written by saveCheckpoint. Every problem (missing directory or file,
 * truncated or corrupted .bin, manifest fields of the wrong type or size) is a one-line
 * error naming the file and the field.
 */
export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const { target, metaFile, meta } = readCheckpointMeta(dir);
  const optMeta = meta.optimizer;
  const params = tensorsOf(readTensorValues(target, metaFile, "weights", meta.weights as Record<string, unknown>));
  let optimizer: OptimizerState | undefined;
  if (isObject(optMeta)) {
    const o = optMeta as Record<string, unknown>;
    if (!Number.isInteger(o.step) || (o.step as number) < 0) {
      tf.dispose(Object.values(params));
      throw new Error(`${metaFile}: field "optimizer.step" must be an integer >= 0, got ${describeJSONValue(o.step)}`);
    }
    let tensors: NamedTensors;
    try {
      tensors = tensorsOf(readTensorValues(target, metaFile, "optimizer", o));
    } catch (err) {
      tf.dispose(Object.values(params));
      throw err;
    }
    optimizer = { step: o.step as number, tensors };
    if (isObject(o.hyper)) optimizer.hyper = o.hyper as OptimizerState["hyper"];
  }

  let tokenizer: Tokenizer | undefined;
  if (meta.tokenizer !== null && meta.tokenizer !== undefined) {
    tokenizer = tokenizerFromJSON(meta.tokenizer, `${metaFile}: field "tokenizer"`);
  }
  const result: LoadedCheckpoint = {
    params,
    step: meta.step as number,
    backend: typeof meta.backend === "string" ? meta.backend : "unknown",
    savedAt: typeof meta.savedAt === "string" ? meta.savedAt : "",
    dir: target,
    smoke: meta.smoke === true,
  };
  if (optimizer !== undefined) result.optimizer = optimizer;
  if (meta.config !== null && meta.config !== undefined) result.config = meta.config;
  if (tokenizer !== undefined) result.tokenizer = tokenizer;
  if (meta.rng !== null && meta.rng !== undefined) result.rng = meta.rng as RngState;
  if (meta.losses !== null && meta.losses !== undefined) result.losses = meta.losses as LossHistory;
  if (meta.extra !== null && meta.extra !== undefined) result.extra = meta.extra as Record<string, unknown>;
  return result;
}

function tensorsOf(values: Record<string, { shape: number[]; values: Float32Array | Int32Array }>): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, v] of Object.entries(values)) out[name] = tf.tensor(v.values, v.shape, v.values instanceof Int32Array ? "int32" : "float32");
  return out;
}

function readTensorValues(dir: string, metaFile: string, key: string, m: Record<string, unknown>): Record<string, { shape: number[]; values: Float32Array | Int32Array }> {
  const f = (name: string) => `${key}.${name}`;
  const bad = (name: string, expected: string, value: unknown): never => {
    throw new Error(`${metaFile}: field "${f(name)}" must be ${expected}, got ${describeJSONValue(value)}`);
  };
  if (typeof m.file !== "string" || m.file === "" || m.file.includes("/") || m.file.includes("\\") || m.file.startsWith(".")) {
    bad("file", "a file name inside the checkpoint directory", m.file);
  }
  if (!isCount(m.byteLength)) bad("byteLength", "an integer >= 0", m.byteLength);
  if (!Array.isArray(m.tensors)) bad("tensors", "an array", m.tensors);
  const binFile = path.join(dir, m.file as string);
  const byteLength = m.byteLength as number;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(binFile);
  } catch (err) {
    throw new Error(`${binFile}: cannot read (${errCode(err)}); field "${f("file")}" of ${metaFile} names it`);
  }
  if (bytes.byteLength !== byteLength) {
    const what = bytes.byteLength < byteLength ? "truncated" : "too long";
    throw new Error(`${binFile}: ${what}: ${bytes.byteLength} bytes, but field "${f("byteLength")}" of ${metaFile} says ${byteLength}`);
  }
  if (typeof m.sha256 === "string") {
    const sha = crypto.createHash("sha256").update(bytes).digest("hex");
    if (sha !== m.sha256) throw new Error(`${binFile}: corrupted: its SHA-256 differs from field "${f("sha256")}" of ${metaFile}`);
  }
  const entries = m.tensors as unknown[];
  const out: Record<string, { shape: number[]; values: Float32Array | Int32Array }> = {};
  entries.forEach((e, i) => {
    const at = `tensors[${i}]`;
    if (!isObject(e)) bad(at, "an object {name, shape, dtype, offset, byteLength}", e);
    const t = e as Record<string, unknown>;
    if (typeof t.name !== "string" || t.name === "") bad(`${at}.name`, "a non-empty string", t.name);
    const name = t.name as string;
    if (name in out) bad(`${at}.name`, "unique", name);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) bad(`${at}.shape`, "an array of integers >= 0", t.shape);
    if (t.dtype !== "float32" && t.dtype !== "int32") bad(`${at}.dtype`, '"float32" or "int32"', t.dtype);
    if (!isCount(t.offset) || (t.offset as number) % 4 !== 0) bad(`${at}.offset`, "an integer >= 0, multiple of 4", t.offset);
    const shape = t.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    if (t.byteLength !== size * 4) {
      bad(`${at}.byteLength`, `${size * 4} (4 bytes × ${size} elements of shape [${shape}], tensor "${name}")`, t.byteLength);
    }
    const offset = t.offset as number;
    if (offset + size * 4 > byteLength) {
      bad(`${at}.offset`, `at most ${byteLength - size * 4} (tensor "${name}" would end past the end of ${m.file})`, offset);
    }
    const slice = new Uint8Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + size * 4));
    if (os.endianness() === "BE") swap32(slice);
    const values = t.dtype === "int32" ? new Int32Array(slice.buffer) : new Float32Array(slice.buffer);
    // A run that diverged saves NaN weights; loaded, they would sample nothing and say nothing.
    const nonFinite = t.dtype === "float32" ? values.findIndex((v) => !Number.isFinite(v)) : -1;
    if (nonFinite >= 0) throw new Error(`${binFile}: tensor "${name}" holds ${values[nonFinite]} at element ${nonFinite}: the run that saved it diverged; train again (a lower learning rate) or load an earlier checkpoint`);
    out[name] = { shape, values };
  });
  return out;
}

// ---------------------------------------------------------------------------------------
// Using a loaded checkpoint

/**
 * Copy loaded tensors into a model's variables. Names and shapes must match exactly; the
 * error names the first tensor that differs. Does not dispose `loaded`.
 */
export function assignParams(params: Params, loaded: NamedTensors, source = "checkpoint"): void {
  for (const [name, p] of Object.entries(params)) {
    const t = loaded[name];
    if (t === undefined) throw new Error(`${source}: parameter "${name}" is missing`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new Error(`${source}: parameter "${name}" has shape [${t.shape}], the model expects [${p.shape}]`);
    }
    if (t.dtype !== p.dtype) throw new Error(`${source}: parameter "${name}" has dtype ${t.dtype}, the model expects ${p.dtype}`);
  }
  for (const name of Object.keys(loaded)) {
    if (!(name in params)) throw new Error(`${source}: parameter "${name}" is not in the model`);
  }
  for (const [name, p] of Object.entries(params)) p.assign(loaded[name]);
}

/** Free the tensors of a loaded checkpoint. */
export function disposeCheckpoint(ckpt: Pick<LoadedCheckpoint, "params" | "optimizer">): void {
  tf.dispose(Object.values(ckpt.params));
  if (ckpt.optimizer !== undefined) tf.dispose(Object.values(ckpt.optimizer.tensors));
}

function isObject(v: unknown): boolean {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function isCount(v: unknown): boolean {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}

function errCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" ? "missing" : code === "EISDIR" ? "is a directory" : String(code ?? err);
}
