import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  SafeTensors,
  bf16ToNumber,
  decodeSafetensors,
  encodeSafetensors,
  f16ToNumber,
  loadSafetensors,
  saveSafetensors,
} from "../../lib/core/safetensors";

const ascii = (s: string) => Array.from(Buffer.from(s, "latin1"));

/** A file from a header given as text (padded to `pad` bytes with spaces) and raw data bytes. */
function rawFile(header: string, data: number[], opts: { n?: number; pad?: number } = {}): Uint8Array {
  const h = header + " ".repeat((opts.pad ?? header.length) - header.length);
  const n = opts.n ?? h.length;
  const len = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
  return Uint8Array.from([...len, ...ascii(h), ...data]);
}
const fileFor = (header: object, data: number[]) => rawFile(JSON.stringify(header), data);
const f32 = (shape: number[], begin: number, end: number) => ({ dtype: "F32", shape, data_offsets: [begin, end] });

describe("safetensors", () => {
  // The header of the tiny file below is 141 bytes of JSON, padded with 3 spaces to 144 = 0x90;
  // tensors by element size: w (F32, 8 bytes) at [0, 8), then x (I16, 6 bytes) at [8, 14).
  const TINY_HEADER =
    '{"__metadata__":{"format":"pt"},' +
    '"w":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},' +
    '"x":{"dtype":"I16","shape":[3],"data_offsets":[8,14]}}';
  const TINY_BYTES = Uint8Array.from([
    0x90, 0, 0, 0, 0, 0, 0, 0, // N = 144, u64 little-endian
    ...ascii(TINY_HEADER),
    0x20, 0x20, 0x20, // padding to 8-byte alignment
    0x00, 0x00, 0x80, 0x3f, // w[0] =  1.0f
    0x00, 0x00, 0x00, 0xc0, // w[1] = -2.0f
    0x01, 0x00, // x[0] = 1
    0xff, 0xff, // x[1] = -1
    0x00, 0x01, // x[2] = 256
  ]);
  const tinyTensors = (): SafeTensors => ({
    x: { dtype: "I16", shape: [3], data: Int16Array.from([1, -1, 256]) },
    w: { dtype: "F32", shape: [2, 1], data: Float32Array.from([1, -2]) },
  });

  it("encodes a tiny file byte for byte as the format says", () => {
    assert.equal(TINY_HEADER.length, 141);
    assert.equal(TINY_BYTES.length, 8 + 144 + 14);
    assert.deepEqual(encodeSafetensors(tinyTensors(), { format: "pt" }), TINY_BYTES);
  });

  it("decodes the tiny file", () => {
    const { tensors, metadata } = decodeSafetensors(TINY_BYTES, "tiny.safetensors");
    assert.deepEqual(metadata, { format: "pt" });
    assert.deepEqual(Object.keys(tensors), ["w", "x"]);
    assert.deepEqual(tensors.w, { dtype: "F32", shape: [2, 1], data: Float32Array.from([1, -2]) });
    assert.deepEqual(tensors.x, { dtype: "I16", shape: [3], data: Int16Array.from([1, -1, 256]) });
  });

  it("round-trips every dtype, scalars and empty tensors", () => {
    const tensors: SafeTensors = {
      f64: { dtype: "F64", shape: [2], data: Float64Array.from([Math.PI, -1e300]) },
      f32: { dtype: "F32", shape: [2, 2], data: Float32Array.from([0.1, -0, Infinity, NaN]) },
      f16: { dtype: "F16", shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) },
      bf16: { dtype: "BF16", shape: [1], data: Uint16Array.from([0x3f80]) },
      i64: { dtype: "I64", shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 62n + 1n]) },
      i32: { dtype: "I32", shape: [1], data: Int32Array.from([-(2 ** 31)]) },
      i16: { dtype: "I16", shape: [1], data: Int16Array.from([-32768]) },
      i8: { dtype: "I8", shape: [3], data: Int8Array.from([-128, 0, 127]) },
      u64: { dtype: "U64", shape: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
      u32: { dtype: "U32", shape: [1], data: Uint32Array.from([2 ** 32 - 1]) },
      u16: { dtype: "U16", shape: [1], data: Uint16Array.from([65535]) },
      u8: { dtype: "U8", shape: [2], data: Uint8Array.from([0, 255]) },
      bool: { dtype: "BOOL", shape: [2], data: Uint8Array.from([1, 0]) },
      scalar: { dtype: "F32", shape: [], data: Float32Array.from([7]) },
      empty: { dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
    };
    const bytes = encodeSafetensors(tensors);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + Number(Buffer.from(bytes).readBigUInt64LE(0)))).toString());
    assert.equal("__metadata__" in header, false);
    const { tensors: back, metadata } = decodeSafetensors(bytes, "all.safetensors");
    assert.deepEqual(metadata, {});
    assert.deepEqual(back, tensors);
    // Largest elements first, each tensor aligned to its element size.
    assert.deepEqual(Object.keys(back), ["f64", "i64", "u64", "f32", "i32", "u32", "scalar", "empty", "f16", "bf16", "i16", "u16", "i8", "u8", "bool"]);
    for (const [name, info] of Object.entries(header) as Array<[string, { data_offsets: number[]; dtype: string }]>) {
      const size = back[name].data.BYTES_PER_ELEMENT;
      assert.equal(info.data_offsets[0] % size, 0, name);
    }
  });

  it("decodes F16 and BF16 to Float32Array on request, exactly", () => {
    const bytes = encodeSafetensors({
      h: { dtype: "F16", shape: [7], data: Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x8000]) },
      b: { dtype: "BF16", shape: [3], data: Uint16Array.from([0x3f80, 0xc000, 0x4049]) },
      n: { dtype: "F16", shape: [1], data: Uint16Array.from([0x7e00]) },
    });
    const { tensors } = decodeSafetensors(bytes, "half.safetensors", { float32: true });
    assert.deepEqual(tensors.h, { dtype: "F32", shape: [7], data: Float32Array.from([1, -2, 65504, 2 ** -24, Infinity, -Infinity, -0]) });
    assert.deepEqual(tensors.b, { dtype: "F32", shape: [3], data: Float32Array.from([1, -2, 3.140625]) });
    assert.ok(Number.isNaN(tensors.n.data[0]));
    assert.equal(f16ToNumber(0x3555), 0.333251953125);
    assert.equal(bf16ToNumber(0xbf80), -1);
    // Without the option: the raw 16-bit patterns.
    assert.deepEqual(decodeSafetensors(bytes, "half.safetensors").tensors.b, { dtype: "BF16", shape: [3], data: Uint16Array.from([0x3f80, 0xc000, 0x4049]) });
  });

  it("reads an unpadded header, and bytes that are a view into a larger buffer", () => {
    // N = 54 is not a multiple of 8: the data starts unaligned; the decoder copies it.
    const file = fileFor({ a: { dtype: "I32", shape: [2], data_offsets: [0, 8] } }, [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]);
    assert.equal((file.length - 8 - 8) % 8 !== 0, true);
    const big = new Uint8Array(file.length + 3);
    big.set(file, 3);
    const { tensors } = decodeSafetensors(big.subarray(3), "view.safetensors");
    assert.deepEqual(tensors.a, { dtype: "I32", shape: [2], data: Int32Array.from([1, -2]) });
    big.fill(0); // the decoded data is a copy
    assert.deepEqual(Array.from(tensors.a.data as Int32Array), [1, -2]);
  });

  describe("rejects bad files with a one-line error naming the file and the tensor", () => {
    const bad = (bytes: Uint8Array, message: string) => {
      assert.throws(() => decodeSafetensors(bytes, "bad.safetensors"), (err: Error) => {
        assert.equal(err.message, message);
        return true;
      });
    };
    it("truncated before the header length", () => bad(Uint8Array.from([1, 0, 0]), "bad.safetensors: truncated safetensors file: 3 bytes, the 8-byte header length is missing"));
    it("header length beyond the file", () =>
      bad(rawFile("{}", [], { n: 1000 }), "bad.safetensors: safetensors header length 1000 runs past the end of the file (2 bytes after the length)"));
    it("header length of 2^64 - 1", () =>
      bad(Uint8Array.from([255, 255, 255, 255, 255, 255, 255, 255, 0x7b, 0x7d]), "bad.safetensors: safetensors header length 18446744073709551615 runs past the end of the file (2 bytes after the length)"));
    it("invalid JSON", () => assert.throws(() => decodeSafetensors(rawFile('{"a": ', []), "bad.safetensors"), /^Error: bad\.safetensors: safetensors header is not valid JSON: /));
    it("a header that is not an object", () => bad(rawFile("[1]", []), 'bad.safetensors: safetensors header is not a JSON object (it starts with "[1]")'));
    it("unknown dtype", () =>
      bad(
        fileFor({ a: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } }, [0]),
        'bad.safetensors: tensor "a": unknown dtype "F8_E4M3"; expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL',
      ));
    it("bad shape", () =>
      bad(fileFor({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), 'bad.safetensors: tensor "a": shape must be an array of non-negative integers, got [-1]'));
    it("bad data_offsets", () =>
      bad(fileFor({ a: f32([1], 4, 0) }, [0, 0, 0, 0]), 'bad.safetensors: tensor "a": data_offsets must be [begin, end] with 0 <= begin <= end, got [4,0]'));
    it("shape × dtype size different from the offsets' span", () =>
      bad(fileFor({ a: f32([3], 0, 8) }, [0, 0, 0, 0, 0, 0, 0, 0]), 'bad.safetensors: tensor "a": data_offsets [0, 8] span 8 bytes, but shape [3] of F32 needs 12'));
    it("offsets past the end of the data (truncated data)", () =>
      bad(fileFor({ a: f32([2], 0, 8) }, [0, 0, 0, 0]), 'bad.safetensors: tensor "a": data_offsets [0, 8] run past the end of the data (4 bytes): truncated file?'));
    it("overlapping tensors", () =>
      bad(fileFor({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, new Array(12).fill(0)), 'bad.safetensors: tensor "b": data_offsets [4, 12] overlap tensor "a" (which ends at 8)'));
    it("a hole between tensors", () =>
      bad(fileFor({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, new Array(12).fill(0)), 'bad.safetensors: tensor "b": data_offsets begin at 8, leaving a hole of 4 bytes after tensor "a"'));
    it("a hole before the first tensor", () =>
      bad(fileFor({ a: f32([1], 4, 8) }, new Array(8).fill(0)), 'bad.safetensors: tensor "a": data_offsets begin at 4, leaving a hole of 4 bytes after the header'));
    it("trailing garbage", () =>
      bad(fileFor({ a: f32([1], 0, 4) }, [0, 0, 0, 0, 9, 9]), "bad.safetensors: 2 bytes after the last tensor's data: trailing garbage or a tensor missing from the header"));
    it("non-string metadata", () =>
      bad(fileFor({ __metadata__: { format: 1 } }, []), 'bad.safetensors: "__metadata__" field "format" must be a string, got 1'));
    it("a tensor entry that is not an object", () => bad(fileFor({ a: [1] }, []), 'bad.safetensors: tensor "a": expected {dtype, shape, data_offsets}, got [1]'));
  });

  describe("encode checks its input", () => {
    const bad = (tensors: unknown, message: string, metadata?: unknown) =>
      assert.throws(
        () => encodeSafetensors(tensors as SafeTensors, metadata as Record<string, string>),
        (err: Error) => (assert.equal(err.message, message), true),
      );
    it("typed array of the wrong kind", () =>
      bad({ a: { dtype: "F16", shape: [1], data: new Float32Array(1) } }, 'encodeSafetensors: tensor "a" (F16) data must be a Uint16Array, got Float32Array'));
    it("length different from the shape", () =>
      bad({ a: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } }, 'encodeSafetensors: tensor "a" has 3 values, shape [2,2] needs 4'));
    it("unknown dtype", () =>
      bad({ a: { dtype: "float32", shape: [1], data: new Float32Array(1) } }, 'encodeSafetensors: tensor "a" has unknown dtype "float32"; expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL'));
    it("bad shape", () => bad({ a: { dtype: "F32", shape: [1.5], data: new Float32Array(1) } }, 'encodeSafetensors: tensor "a" shape must be an array of non-negative integers, got [1.5]'));
    it("the reserved name", () => bad({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }, 'encodeSafetensors: "__metadata__" is reserved and cannot name a tensor'));
    it("non-string metadata", () => bad({}, 'encodeSafetensors: metadata "step" must be a string, got number', { step: 3 }));
  });

  describe("files", () => {
    let root: string;
    before(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), "safetensors-test-"))));
    after(() => fs.rmSync(root, { recursive: true, force: true }));

    it("saves atomically and loads back", () => {
      const file = path.join(root, "sub", "tiny.safetensors");
      saveSafetensors(file, tinyTensors(), { format: "pt" });
      assert.deepEqual(new Uint8Array(fs.readFileSync(file)), TINY_BYTES);
      assert.deepEqual(fs.readdirSync(path.dirname(file)), ["tiny.safetensors"]); // no temporary file left
      const { tensors, metadata } = loadSafetensors(file);
      assert.deepEqual(metadata, { format: "pt" });
      assert.deepEqual(tensors, { w: tinyTensors().w, x: tinyTensors().x });
    });

    it("errors name the file", () => {
      const missing = path.join(root, "nope.safetensors");
      assert.throws(() => loadSafetensors(missing), { message: `${missing}: cannot read safetensors file: ENOENT` });
      const broken = path.join(root, "broken.safetensors");
      fs.writeFileSync(broken, TINY_BYTES.subarray(0, TINY_BYTES.length - 2));
      assert.throws(() => loadSafetensors(broken), { message: `${broken}: tensor "x": data_offsets [8, 14] run past the end of the data (12 bytes): truncated file?` });
    });
  });
});
