/**
 * A trained model in one compact file for the course site's live widgets: config, tokenizer
 * and every weight in half precision (float16), about a quarter of a checkpoint (which also
 * keeps float32 copies and the optimiser's moments). Read and written here with plain typed
 * arrays, so the same code runs in Node (the site build writes it) and in the browser (the
 * widgets read it).
 *
 *   bytes 0..7    "LLMCW16\n" (magic)
 *   bytes 8..11   header length H, uint32 little-endian
 *   bytes 12..    header: UTF-8 JSON {format, version, config, tokenizer, tensors: [{name, shape}], meta}
 *   then          padding to an even offset, then each tensor's values as float16 LE, in header order
 *
 * Half precision keeps 11 significant bits (relative error ≤ 2⁻¹¹ ≈ 0.05 %): the sampled text
 * and scores of a browser model are those of a model a hair away from the checkpoint, not
 * bit-identical to it (tests/gpt/weightsFile.test.ts measures how far).
 */
import type { GPTConfig } from "./config";
import type { TokenizerJSON } from "../tokens/tokenizer";

export const WEIGHTS_FILE_MAGIC = "LLMCW16\n";
export const WEIGHTS_FILE_FORMAT = "llm-course-weights";

/** Most bytes a header may claim, checked before it is read (a real one is a few hundred kB at most). */
export const MAX_WEIGHTS_HEADER_BYTES = 16 * 1024 * 1024;

export interface WeightsFileHeader {
  format: typeof WEIGHTS_FILE_FORMAT;
  version: 1;
  config: GPTConfig;
  tokenizer: TokenizerJSON;
  tensors: { name: string; shape: number[] }[];
  /** Anything else worth carrying (which artifact, training step, …). */
  meta: Record<string, unknown>;
}

export interface WeightsFile {
  header: WeightsFileHeader;
  /** Float32 values by parameter name, in the checkpoint's layout. */
  weights: Record<string, Float32Array>;
}

// ---------------------------------------------------------------------------------------
// float32 ↔ float16

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bits nearest to x (round half to even; overflow → ±∞, NaN kept). */
export function toFloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // ∞ or NaN
  const e = exp - 127 + 15; // rebias
  if (e >= 0x1f) return sign | 0x7c00; // too large: ∞
  if (e <= 0) {
    // Subnormal float16 (or zero): shift the mantissa, with its implicit 1, into place.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m += 1;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  let out = sign | (e << 10) | m;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) out += 1; // may carry into the exponent: still correct
  return out;
}

/** The number float16 bits h stand for. */
export function fromFloat16Bits(h: number): number {
  return (float16Table ??= buildFloat16Table())[h & 0xffff];
}

let float16Table: Float32Array | undefined;

/** All 65 536 float16 values, decoded once: a model's millions of weights become table lookups. */
function buildFloat16Table(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = float16Value(h);
  return t;
}

function float16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// ---------------------------------------------------------------------------------------
// The file

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Encode a model: `weights` gives each tensor's values and shape; order is kept. */
export function encodeWeightsFile(
  parts: { config: GPTConfig; tokenizer: TokenizerJSON; meta?: Record<string, unknown> },
  weights: ReadonlyArray<{ name: string; shape: number[]; values: ArrayLike<number> }>,
): Uint8Array {
  for (const w of weights) {
    if (w.values.length !== count(w.shape)) throw new Error(`encodeWeightsFile: "${w.name}" has ${w.values.length} values for shape [${w.shape}]`);
  }
  const header: WeightsFileHeader = {
    format: WEIGHTS_FILE_FORMAT, version: 1, config: parts.config, tokenizer: parts.tokenizer,
    tensors: weights.map((w) => ({ name: w.name, shape: [...w.shape] })), meta: parts.meta ?? {},
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const dataStart = 12 + json.length + ((12 + json.length) % 2);
  const total = weights.reduce((n, w) => n + w.values.length, 0);
  const out = new Uint8Array(dataStart + 2 * total);
  out.set(new TextEncoder().encode(WEIGHTS_FILE_MAGIC), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  const view = new DataView(out.buffer);
  let at = dataStart;
  for (const w of weights) {
    for (let i = 0; i < w.values.length; i++, at += 2) view.setUint16(at, toFloat16Bits(w.values[i]), true);
  }
  return out;
}

/** Decode a weights file; every size is checked against the bytes there are before anything is allocated. */
export function decodeWeightsFile(bytes: Uint8Array, source = "weights file"): WeightsFile {
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (bytes.length < 12 || magic !== WEIGHTS_FILE_MAGIC) throw new Error(`${source}: not a course weights file (it does not start with ${JSON.stringify(WEIGHTS_FILE_MAGIC)})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getUint32(8, true);
  if (headerBytes > MAX_WEIGHTS_HEADER_BYTES || 12 + headerBytes > bytes.length) {
    throw new Error(`${source}: header length ${headerBytes} does not fit in the file's ${bytes.length} bytes`);
  }
  let header: WeightsFileHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerBytes)));
  } catch (err) {
    throw new Error(`${source}: header is not valid JSON (${(err as Error).message})`);
  }
  if (header?.format !== WEIGHTS_FILE_FORMAT || header.version !== 1) throw new Error(`${source}: field "format" must be "${WEIGHTS_FILE_FORMAT}" version 1`);
  if (!Array.isArray(header.tensors)) throw new Error(`${source}: field "tensors" must be a list of {name, shape}`);
  const dataStart = 12 + headerBytes + ((12 + headerBytes) % 2);
  let total = 0;
  header.tensors.forEach((t, i) => {
    if (typeof t?.name !== "string" || !Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`${source}: field "tensors[${i}]" must be {name: string, shape: non-negative integers}`);
    }
    total += count(t.shape);
  });
  if (dataStart + 2 * total !== bytes.length) {
    throw new Error(`${source}: the header's tensors need ${2 * total} bytes of float16 values after byte ${dataStart}, the file has ${bytes.length - dataStart}`);
  }
  const weights: Record<string, Float32Array> = {};
  let at = dataStart;
  for (const t of header.tensors) {
    const n = count(t.shape);
    const values = new Float32Array(n);
    const table = (float16Table ??= buildFloat16Table());
    for (let i = 0; i < n; i++, at += 2) values[i] = table[view.getUint16(at, true)];
    weights[t.name] = values;
  }
  return { header, weights };
}
