import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { wordInContext } from "../../lib/gpt/contextualEmbeddings";
import { gptConfig, gptForward, initGPT } from "../../lib/gpt/gpt";
import { disposeParams } from "../../lib/pretrain/pretrain";

describe("wordInContext: static and contextual vectors of a word", () => {
  const tokenizer = CharTokenizer.fromText("a right whale, right hand. you are right!");
  const config = gptConfig("tiny", { vocabSize: tokenizer.vocabSize, blockSize: 24 });
  let params: ReturnType<typeof initGPT>;
  before(async () => {
    await initBackend({ quiet: true });
    params = initGPT(config, { seed: 5 });
  });
  after(() => disposeParams(params));
  const model = () => ({ params, config, tokenizer });

  it("static: the mean of the word's rows of wte, the same in every sentence", () => {
    const [a, b] = wordInContext(model(), ["a right whale", "you are right!"], "right");
    assert.deepEqual(a.span, [2, 7]);
    assert.deepEqual(b.span, [8, 13]);
    assert.deepEqual(a.static, b.static);
    const wte = params["wte.weight"].arraySync() as number[][];
    const ids = tokenizer.encode("right");
    const byHand = wte[0].map((_, c) => ids.reduce((s, id) => s + wte[id][c], 0) / ids.length);
    a.static.forEach((v, c) => assert.ok(Math.abs(v - byHand[c]) < 1e-6, `channel ${c}`));
  });

  it("contextual: the mean of the model's last hidden states over the word, different in another sentence", () => {
    const [a, b] = wordInContext(model(), ["a right whale", "you are right!"], "right");
    const ids = tokenizer.encode("a right whale");
    const hidden = tf.tidy(() => {
      const out = gptForward(params, config, tf.tensor2d([ids], [1, ids.length], "int32"), { returnHidden: true });
      return out.hidden.arraySync() as number[][][];
    });
    const byHand = hidden[0][0].map((_, c) => [2, 3, 4, 5, 6].reduce((s, t) => s + hidden[0][t][c], 0) / 5);
    a.contextual.forEach((v, c) => assert.ok(Math.abs(v - byHand[c]) < 1e-5, `channel ${c}`));
    assert.ok(a.contextual.some((v, c) => Math.abs(v - b.contextual[c]) > 1e-3), "another context, another vector");
  });

  it("is causal: text after the word does not change its contextual vector", () => {
    const [a, b] = wordInContext(model(), ["a right whale", "a right hand."], "right");
    a.contextual.forEach((v, c) => assert.ok(Math.abs(v - b.contextual[c]) < 1e-5, `channel ${c}`));
  });

  it("rejects a word that is not there and a sentence longer than the context, in one line; no tensor leak", () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) wordInContext(model(), ["a right whale", "you are right!"], "right");
    assert.equal(tf.memory().numTensors, before);
    assert.throws(() => wordInContext(model(), ["a whale"], "right"), { message: 'wordInContext: "right" does not occur in "a whale"' });
    assert.throws(() => wordInContext(model(), ["a right whale, a right whale, a right whale"], "right"), /is 43 tokens; the model reads at most 24/);
  });
});
