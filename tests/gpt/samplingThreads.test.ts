import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { gptConfig, initGPT } from "../../lib/gpt/gpt";
import { disposeParams } from "../../lib/pretrain/pretrain";
import { createRng } from "../../lib/core/random";
import { generateBatch } from "../../lib/gpt/rollout";

const config = gptConfig("tiny", { vocabSize: 13, blockSize: 16 });
// Rows of different lengths, one longer than the context allows (cropped from the left).
const prompts = [[1, 2, 3], [4], [5, 6, 7, 8], [9, 10], [11, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3]];

describe("samplingThreads: a batch of prompts sampled on two threads", function () {
  this.timeout(120_000);
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("greedy answers are the same on two threads as on one; cropped prompts come back in order", () => {
    const params = initGPT(config, { seed: 1 });
    try {
      const one = generateBatch(params, config, prompts, { maxNewTokens: 6, temperature: 0, threads: 1 });
      const two = generateBatch(params, config, prompts, { maxNewTokens: 6, temperature: 0, threads: 2 });
      assert.deepEqual(two, one);
      assert.deepEqual(two.prompts[4], prompts[4].slice(prompts[4].length - 15));
    } finally {
      disposeParams(params);
    }
  });

  it("sampled with a stream per row: the same answers on one thread and on two, a row's answer independent of the rows after it", () => {
    const params = initGPT(config, { seed: 2 });
    try {
      const opts = { maxNewTokens: 8, temperature: 1, stopId: 0, streams: "row" as const };
      const two = generateBatch(params, config, prompts, { ...opts, threads: 2, seed: 5 });
      assert.deepEqual(generateBatch(params, config, prompts, { ...opts, threads: 1, seed: 5 }), two);
      assert.deepEqual(generateBatch(params, config, prompts, { ...opts, threads: 2, rng: createRng(5) }), two); // a seeded call repeats exactly
      // Row seeds are drawn in row order: the first three rows get the same streams alone.
      assert.deepEqual(generateBatch(params, config, prompts.slice(0, 3), { ...opts, seed: 5 }).responses, two.responses.slice(0, 3));
      assert.ok(two.responses.some((r) => r.length > 1), "nothing was sampled");
    } finally {
      disposeParams(params);
    }
  });

  it("rows with their own streams, or greedy ones, sampled a few at a time give the same answers as all at once", () => {
    const params = initGPT(config, { seed: 2 });
    try {
      for (const opts of [{ maxNewTokens: 8, temperature: 1, stopId: 0, streams: "row" as const, seed: 5 }, { maxNewTokens: 6, temperature: 0 }]) {
        for (const threads of [1, 2]) {
          const all = generateBatch(params, config, prompts, { ...opts, threads });
          assert.deepEqual(generateBatch(params, config, prompts, { ...opts, threads, maxRowsAtOnce: 2 }), all, `${opts.temperature}, ${threads} threads`);
        }
      }
      assert.throws(() => generateBatch(params, config, prompts, { maxNewTokens: 2, temperature: 0, threads: 1, maxRowsAtOnce: 0 }), /maxRowsAtOnce must be an integer >= 1, got 0/);
    } finally {
      disposeParams(params);
    }
  });

  it("one stream for the batch (the default) is one thread's: asking for more is an error", () => {
    const params = initGPT(config, { seed: 2 });
    try {
      const opts = { maxNewTokens: 4, temperature: 1, seed: 3 };
      assert.deepEqual(generateBatch(params, config, prompts, opts), generateBatch(params, config, prompts, { ...opts, threads: 1 }));
      assert.throws(() => generateBatch(params, config, prompts, { ...opts, threads: 2 }), /sampling on 2 threads needs streams: "row" \(one random stream per row\) or temperature 0/);
    } finally {
      disposeParams(params);
    }
  });

  it("the workers sample with the caller's current weights (after an update, after a model of another shape); no tensor leak", () => {
    const params = initGPT(config, { seed: 3 });
    const other = gptConfig("tiny", { vocabSize: 13, blockSize: 16, nLayer: 1 });
    const small = initGPT(other, { seed: 4 });
    try {
      const greedy = (p: typeof params, c = config, threads = 2) => generateBatch(p, c, prompts, { maxNewTokens: 5, temperature: 0, threads }).responses;
      greedy(params);
      const before = tf.memory().numTensors;
      tf.tidy(() => Object.values(params).forEach((v) => v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.5, "float32", 7)))));
      assert.deepEqual(greedy(params), greedy(params, config, 1));
      assert.deepEqual(greedy(small, other), greedy(small, other, 1));
      greedy(params);
      assert.equal(tf.memory().numTensors, before);
    } finally {
      disposeParams(params);
      disposeParams(small);
    }
  });

  it("bad input is one line naming the row, whichever thread would have sampled it", () => {
    const params = initGPT(config, { seed: 1 });
    try {
      assert.throws(() => generateBatch(params, config, [[1], [2], []], { maxNewTokens: 2, threads: 2 }), /^Error: generateBatch: prompt 2 is empty/);
      assert.throws(() => generateBatch(params, config, [[1]], { maxNewTokens: 2, threads: 0 }), /threads must be an integer >= 1, got 0/);
    } finally {
      disposeParams(params);
    }
  });
});
