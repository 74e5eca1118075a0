import assert from "node:assert/strict";
import { gptConfig } from "../../lib/gpt/gpt";
import { decodeWeightsFile, encodeWeightsFile, fromFloat16Bits, toFloat16Bits } from "../../lib/gpt/weightsFile";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";

describe("weights file (float16, for the site's widgets)", () => {
  it("converts to and from float16 as IEEE 754 says, rounding half to even", () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [0.1, 0x2e66],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // half of it: a tie, rounds to even (0)
      [3 * 2 ** -25, 0x0002], // 1.5 subnormal steps: a tie, rounds to even (2)
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next float16: to even
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between the 1st and 2nd step above 1: to even
      [65520, 0x7c00], // rounds past the largest: ∞
      [Infinity, 0x7c00], [-Infinity, 0xfc00],
    ];
    for (const [x, bits] of cases) assert.equal(toFloat16Bits(x), bits, `${x}`);
    const exact: Array<[number, number]> = [[0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x2e66, 0.0999755859375], [0x0400, 2 ** -14], [0x0001, 2 ** -24], [0x3c02, 1 + 2 ** -9]];
    for (const [bits, x] of exact) assert.equal(fromFloat16Bits(bits), x, `bits ${bits.toString(16)}`);
    assert.ok(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN))));
    assert.equal(fromFloat16Bits(0x7c00), Infinity);
    // Every finite float16 survives the round trip.
    for (let h = 0; h < 0x10000; h++) if ((h & 0x7c00) !== 0x7c00) assert.equal(toFloat16Bits(fromFloat16Bits(h)), h === 0x8000 ? 0x8000 : h);
  });

  const config = gptConfig("tiny", { vocabSize: 5, blockSize: 4 });
  const tokenizer = CharTokenizer.fromText("abcde").toJSON();
  const weights = [
    { name: "a", shape: [2, 3], values: Float32Array.from([0.1, -0.25, 3, 1e-3, 100.7, -7]) },
    { name: "b", shape: [1], values: Float32Array.from([42]) },
  ];

  it("round-trips a model: config, tokenizer, names, shapes, and values within float16's precision", () => {
    const bytes = encodeWeightsFile({ config, tokenizer, meta: { name: "test" } }, weights);
    assert.equal(bytes.length % 2, 0);
    const { header, weights: got } = decodeWeightsFile(bytes, "test.js");
    assert.deepEqual(header.config, config);
    assert.deepEqual(header.tokenizer, tokenizer);
    assert.deepEqual(header.tensors, [{ name: "a", shape: [2, 3] }, { name: "b", shape: [1] }]);
    assert.deepEqual(header.meta, { name: "test" });
    weights.forEach((w) => w.values.forEach((v, i) => assert.ok(Math.abs(got[w.name][i] - v) <= Math.abs(v) * 2 ** -11, `${w.name}[${i}]: ${got[w.name][i]} vs ${v}`)));
    assert.equal(got.b[0], 42);
  });

  it("refuses a file that is not one, or whose sizes do not add up, with one line naming it", () => {
    const bytes = encodeWeightsFile({ config, tokenizer }, weights);
    assert.throws(() => decodeWeightsFile(new TextEncoder().encode("hello world!!"), "x.js"), /^Error: x\.js: not a course weights file/);
    assert.throws(() => decodeWeightsFile(bytes.slice(0, bytes.length - 2), "x.js"), /x\.js: the header's tensors need 14 bytes of float16 values after byte \d+, the file has 12/);
    const huge = bytes.slice();
    new DataView(huge.buffer).setUint32(8, 2 ** 31, true);
    assert.throws(() => decodeWeightsFile(huge, "x.js"), /x\.js: header length 2147483648 does not fit in the file's \d+ bytes/);
    assert.throws(() => encodeWeightsFile({ config, tokenizer }, [{ name: "c", shape: [2], values: [1] }]), /"c" has 1 values for shape \[2\]/);
  });
});
