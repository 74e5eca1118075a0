import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { createDecoder } from "../../lib/gpt/decoder";
import { loadOnnxRuntime } from "../../lib/core/kernels/ortMatMul";
import { GPTConfig, gptConfig, gptForward } from "../../lib/gpt/gpt";
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
