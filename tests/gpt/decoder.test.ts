import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { createDecoder, createDecoderFromWeights } from "../../lib/gpt/decoder";
import { loadOnnxRuntime } from "../../lib/core/kernels/ortMatMul";
import { attentionMaps, GPTConfig, gptConfig, gptForward } from "../../lib/gpt/gpt";
import { disposeParams } from "../../lib/pretrain/pretrain";
import { generate } from "../../lib/gpt/sampling";
import { randomModel } from "./randomModel";


describe("decoder (the JavaScript inference engine)", function () {
  this.timeout(60000);
  before(async () => {
    await initBackend({ quiet: true });
  });

  const variants: Array<[string, GPTConfig]> = [
    ["tiny", gptConfig("tiny", { vocabSize: 13 })],
    ["nanogpt-cpu", gptConfig("nanogpt-cpu", { vocabSize: 65 })],
    ["no bias, untied head", gptConfig("tiny", { vocabSize: 11, bias: false, tiedHead: false })],
  ];
  for (const [name, config] of variants) for (const products of ["js", "onnxruntime"] as const) {
    it(`gives gptForward's logits at every position (${name}, products in ${products})`, function () {
      if (products === "onnxruntime" && loadOnnxRuntime() !== undefined) this.skip(); // optional package absent
      const params = randomModel(config, 3);
      const T = config.blockSize;
      const ids = Array.from({ length: T }, (_, i) => (i * 7 + 3) % config.vocabSize);
      const ref = tf.tidy(() => gptForward(params, config, tf.tensor2d([ids], [1, T], "int32")).arraySync()[0]);
      const dec = createDecoder(params, config, { products });
      for (let t = 0; t < T; t++) {
        const got = dec.step(ids[t]);
        const err = Math.max(...ref[t].map((v, j) => Math.abs(v - got[j])));
        assert.ok(err < 1e-4, `position ${t}: logits differ by ${err}`);
      }
      assert.throws(() => dec.step(0), /exceeds the context/);
      dec.reset();
      assert.equal(dec.length, 0);
      assert.throws(() => dec.step(config.vocabSize), /outside the vocabulary/);
      disposeParams(params);
    });
  }

  it("records gpt.ts's attention maps and hidden states, position by position, and reads plain arrays", () => {
    const config = gptConfig("tiny", { vocabSize: 13, blockSize: 8 });
    const params = randomModel(config, 4);
    const ids = [3, 1, 4, 1, 5, 9];
    const maps = attentionMaps(params, config, ids); // [L][H][T][T]
    const hidden = tf.tidy(() => gptForward(params, config, tf.tensor2d([ids], [1, ids.length], "int32"), { returnHidden: true }).hidden.arraySync()[0]);
    const weights = Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.dataSync() as Float32Array]));
    const dec = createDecoderFromWeights(weights, config, { recordAttention: true, products: "js" });
    const { nLayer: L, nHead: H, blockSize: T } = config;
    for (let t = 0; t < ids.length; t++) {
      dec.step(ids[t]);
      for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) {
        const row = dec.attention!.subarray((l * H + h) * T, (l * H + h + 1) * T);
        for (let s = 0; s < T; s++) {
          const want = s <= t ? maps[l][h][t][s] : 0;
          assert.ok(Math.abs(row[s] - want) < 1e-5, `layer ${l} head ${h} query ${t} key ${s}: ${row[s]} vs ${want}`);
        }
      }
      const err = Math.max(...hidden[t].map((v, c) => Math.abs(v - dec.hidden[c])));
      assert.ok(err < 1e-4, `hidden state at ${t} differs by ${err}`);
    }
    // A shorter sequence after reset leaves no weights of the longer one behind.
    dec.reset();
    dec.step(ids[0]);
    assert.deepEqual(Array.from(dec.attention!.subarray(0, T)), [1, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(createDecoder(params, config).attention, null);
    assert.throws(() => createDecoderFromWeights({ ...weights, "wte.weight": new Float32Array(5) }, config), /"wte.weight" has 5 values, expected 208 for this config/);
    disposeParams(params);
  });

  it("generate: the js engine samples exactly what the tfjs KV cache samples (greedy and seeded), past the context too", () => {
    const config = gptConfig("tiny", { vocabSize: 13, blockSize: 16 });
    const params = randomModel(config, 5);
    for (const opts of [{ temperature: 0 }, { temperature: 1, topK: 5, seed: 9 }]) {
      const js = generate(params, config, [1, 2, 3], { ...opts, maxNewTokens: 30, engine: "js" });
      const tfjs = generate(params, config, [1, 2, 3], { ...opts, maxNewTokens: 30, engine: "tfjs" });
      assert.deepEqual(js, tfjs);
      assert.equal(js.length, 30);
    }
    const before = tf.memory().numTensors;
    generate(params, config, [1], { maxNewTokens: 10, engine: "js" });
    assert.equal(tf.memory().numTensors, before);
    assert.throws(() => generate(params, config, [1], { maxNewTokens: 1, engine: "gpu" as never }), /engine must be/);
    assert.throws(() => createDecoder(params, config, { products: "gpu" as never }), /products must be "auto", "js" or "onnxruntime"/);
    disposeParams(params);
  });
});
