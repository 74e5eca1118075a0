/**
 * safetensors: the file format Hugging Face uses for model weights (model.safetensors).
 *
 * A file is three parts, nothing else:
 *
 *   [ N: 8 bytes, unsigned little-endian ]  length of the header
 *   [ header: N bytes of UTF-8 JSON ]        { "wte.weight": { "dtype": "F32", "shape": [50257, 768],
 *                                                              "data_offsets": [0, 154389504] },
 *                                               …,
 *                                               "__metadata__": { "format": "pt" } }
 *   [ byte buffer ]                          the tensors' raw numbers, little-endian, row-major
 *
 * data_offsets [begin, end) are byte positions relative to the start of the byte buffer; the
 * tensors cover the buffer exactly (no holes, no overlaps, nothing after the last one), and
 * end − begin = (product of shape) × (bytes per element of dtype). The header may end with
 * spaces; writers pad it so the buffer starts at a multiple of 8. "__metadata__" is an
 * optional string → string map (transformers wants { "format": "pt" }).
 *
 * Unlike pickle (pytorch_model.bin), reading such a file cannot run code, and any language
 * can read it: parse the JSON, seek, reshape.
 */
import * as fs from "fs";
import * as os from "os";
import { writeFileAtomic } from "./atomic";

/** Element types of the format, with their size in bytes and the typed array that holds them. */
export const SAFETENSORS_DTYPES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

/**
 * One tensor. Its data's typed array follows the dtype: F64 Float64Array, F32 Float32Array,
 * F16 and BF16 Uint16Array (the raw 16-bit patterns: JavaScript has no 16-bit float array),
 * I64 BigInt64Array, I32 Int32Array, I16 Int16Array, I8 Int8Array, U64 BigUint64Array,
 * U32 Uint32Array, U16 Uint16Array, U8 and BOOL Uint8Array.
 */
export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafeTensorData;
}

export type SafeTensorData =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | BigUint64Array
  | Uint32Array
  | Uint8Array;

export type SafeTensors = Record<string, SafeTensor>;

/** What decodeSafetensors returns. */
export interface DecodedSafetensors {
  tensors: SafeTensors;
  /** The "__metadata__" map ({} when the file has none). */
  metadata: Record<string, string>;
}

export interface DecodeSafetensorsOptions {
  /** Return F16 and BF16 tensors as F32 (Float32Array, exact: every 16-bit float is a float32). */
  float32?: boolean;
}

type ArrayCtor = { new (buffer: ArrayBuffer, byteOffset?: number, length?: number): SafeTensorData; name: string };

const ARRAY_TYPES: Record<SafetensorsDtype, ArrayCtor> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U64: BigUint64Array,
  U32: Uint32Array,
  U16: Uint16Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

const METADATA_KEY = "__metadata__";
/** transformers refuses larger headers (100 MB); a bigger N means a corrupt or hostile file. */
const MAX_HEADER_BYTES = 100_000_000;

function checkLittleEndianHost(): void {
  // Typed arrays use the host's byte order and the format is little-endian.
  if (os.endianness() !== "LE") throw new Error("safetensors: this library reads and writes only on little-endian machines");
}

const isDtype = (d: unknown): d is SafetensorsDtype => typeof d === "string" && Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPES, d);
const isShape = (s: unknown): s is number[] => Array.isArray(s) && s.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0);
const numel = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);

/** 16-bit IEEE half float (raw bits) → number. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** bfloat16 (raw bits: the top half of a float32) → number. */
export function bf16ToNumber(b: number): number {
  const u = new Uint32Array([(b & 0xffff) << 16]);
  return new Float32Array(u.buffer)[0];
}

/**
 * The bytes of a safetensors file holding `tensors` (and the optional metadata map).
 * Tensors are laid out by element size, largest first (so each starts at a multiple of its
 * element size), otherwise in the order of the record; the header lists them in that order,
 * after "__metadata__", and is padded with spaces to a multiple of 8 bytes.
 */
export function encodeSafetensors(tensors: SafeTensors, metadata?: Record<string, string>): Uint8Array {
  checkLittleEndianHost();
  const where = "encodeSafetensors";
  if (tensors === null || typeof tensors !== "object") throw new Error(`${where}: expected a record of tensors, got ${String(tensors)}`);
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      throw new Error(`${where}: metadata must be an object of strings, got ${String(metadata)}`);
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new Error(`${where}: metadata "${k}" must be a string, got ${typeof v}`);
    }
    header[METADATA_KEY] = { ...metadata };
  }
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === METADATA_KEY) throw new Error(`${where}: "${METADATA_KEY}" is reserved and cannot name a tensor`);
    if (t === null || typeof t !== "object") throw new Error(`${where}: tensor "${name}" must be {dtype, shape, data}, got ${String(t)}`);
    if (!isDtype(t.dtype)) {
      throw new Error(`${where}: tensor "${name}" has unknown dtype ${JSON.stringify(t.dtype)}; expected one of ${Object.keys(SAFETENSORS_DTYPES).join(", ")}`);
    }
    if (!isShape(t.shape)) throw new Error(`${where}: tensor "${name}" shape must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`);
    const Ctor = ARRAY_TYPES[t.dtype];
    if (!(t.data instanceof Ctor)) {
      throw new Error(`${where}: tensor "${name}" (${t.dtype}) data must be a ${Ctor.name}, got ${(t.data as object)?.constructor?.name ?? typeof t.data}`);
    }
    if (t.data.length !== numel(t.shape)) {
      throw new Error(`${where}: tensor "${name}" has ${t.data.length} values, shape [${t.shape}] needs ${numel(t.shape)}`);
    }
  }
  // Stable sort: largest element size first.
  const order = entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => SAFETENSORS_DTYPES[b.e[1].dtype] - SAFETENSORS_DTYPES[a.e[1].dtype] || a.i - b.i)
    .map(({ e }) => e);
  let offset = 0;
  for (const [name, t] of order) {
    const end = offset + t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let pos = 8 + n;
  for (const [, t] of order) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/**
 * Parse the bytes of a safetensors file; `source` (a path, a URL…) names it in errors.
 * Every tensor's data is a fresh, aligned copy. Throws a one-line error for a truncated file,
 * a header length beyond the file, a header that is not a JSON object, an unknown dtype, a
 * bad shape, offsets that disagree with shape × dtype, overlap, leave holes or run past the
 * end, and bytes after the last tensor.
 */
export function decodeSafetensors(bytes: Uint8Array, source: string, opts: DecodeSafetensorsOptions = {}): DecodedSafetensors {
  checkLittleEndianHost();
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (!(bytes instanceof Uint8Array)) fail(`expected the file's bytes (a Uint8Array), got ${typeof bytes}`);
  if (bytes.length < 8) fail(`truncated safetensors file: ${bytes.length} bytes, the 8-byte header length is missing`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8)) fail(`safetensors header length ${n64} runs past the end of the file (${bytes.length - 8} bytes after the length)`);
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) fail(`safetensors header length ${n} is more than ${MAX_HEADER_BYTES} bytes`);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + 8, n).toString("utf8");
  if (!text.startsWith("{")) fail(`safetensors header is not a JSON object (it starts with ${JSON.stringify(text.slice(0, 10))})`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    fail(`safetensors header is not valid JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) fail("safetensors header is not a JSON object");
  const bufferStart = 8 + n;
  const bufferLength = bytes.length - bufferStart;

  const metadata: Record<string, string> = {};
  const infos: Array<{ name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }> = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (info === null || typeof info !== "object" || Array.isArray(info)) fail(`"${METADATA_KEY}" must be an object of strings`);
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`"${METADATA_KEY}" field "${k}" must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (info === null || typeof info !== "object" || Array.isArray(info)) fail(`tensor "${name}": expected {dtype, shape, data_offsets}, got ${JSON.stringify(info)}`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (!isDtype(dtype)) fail(`tensor "${name}": unknown dtype ${JSON.stringify(dtype)}; expected one of ${Object.keys(SAFETENSORS_DTYPES).join(", ")}`);
    if (!isShape(shape)) fail(`tensor "${name}": shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    const okOffsets =
      Array.isArray(offsets) &&
      offsets.length === 2 &&
      offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0) &&
      (offsets[0] as number) <= (offsets[1] as number);
    if (!okOffsets) fail(`tensor "${name}": data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
    const [begin, end] = offsets as [number, number];
    const d = dtype as SafetensorsDtype;
    const s = shape as number[];
    const expected = numel(s) * SAFETENSORS_DTYPES[d];
    if (end - begin !== expected) {
      fail(`tensor "${name}": data_offsets [${begin}, ${end}] span ${end - begin} bytes, but shape [${s}] of ${d} needs ${expected}`);
    }
    if (end > bufferLength) fail(`tensor "${name}": data_offsets [${begin}, ${end}] run past the end of the data (${bufferLength} bytes): truncated file?`);
    infos.push({ name, dtype: d, shape: s, begin, end });
  }
  // The tensors must tile the buffer: sorted by offset, each begins where the previous ended.
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  let previous = "";
  for (const t of infos) {
    if (t.begin < expectedBegin) fail(`tensor "${t.name}": data_offsets [${t.begin}, ${t.end}] overlap tensor "${previous}" (which ends at ${expectedBegin})`);
    if (t.begin > expectedBegin) {
      fail(`tensor "${t.name}": data_offsets begin at ${t.begin}, leaving a hole of ${t.begin - expectedBegin} bytes after ${previous ? `tensor "${previous}"` : "the header"}`);
    }
    expectedBegin = t.end;
    if (t.end > t.begin) previous = t.name;
  }
  if (expectedBegin !== bufferLength) fail(`${bufferLength - expectedBegin} bytes after the last tensor's data: trailing garbage or a tensor missing from the header`);

  const tensors: SafeTensors = {};
  // Keep the header's order (the order of the JSON object).
  const byName = new Map(infos.map((t) => [t.name, t]));
  for (const name of Object.keys(header as object)) {
    const t = byName.get(name);
    if (t === undefined) continue;
    const copy = new Uint8Array(bytes.subarray(bufferStart + t.begin, bufferStart + t.end)); // a fresh, aligned copy
    const count = numel(t.shape);
    const raw = new ARRAY_TYPES[t.dtype](copy.buffer, 0, count);
    if (opts.float32 && (t.dtype === "F16" || t.dtype === "BF16")) {
      const f = new Float32Array(count);
      const conv = t.dtype === "F16" ? f16ToNumber : bf16ToNumber;
      for (let i = 0; i < count; i++) f[i] = conv((raw as Uint16Array)[i]);
      tensors[name] = { dtype: "F32", shape: t.shape, data: f };
    } else {
      tensors[name] = { dtype: t.dtype, shape: t.shape, data: raw };
    }
  }
  return { tensors, metadata };
}

/** Write a safetensors file atomically (readers never see half a file). */
export function saveSafetensors(file: string, tensors: SafeTensors, metadata?: Record<string, string>): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/** Read and check a safetensors file (errors name the file). */
export function loadSafetensors(file: string, opts: DecodeSafetensorsOptions = {}): DecodedSafetensors {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read safetensors file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return decodeSafetensors(bytes, file, opts);
}
