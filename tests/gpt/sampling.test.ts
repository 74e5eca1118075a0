import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { GPTConfig, initGPT } from "../../lib/gpt/gpt";
import { createRng } from "../../lib/core/random";
import { argmax, generate, sampleFromLogits, samplingDistribution, textGenerate } from "../../lib/gpt/sampling";

const TINY: GPTConfig = { vocabSize: 13, blockSize: 12, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0, bias: true };
const nonZero = (p: ArrayLike<number>) => Array.from(p).filter((x) => x > 0).length;

describe("sampling", function () {
  before(async () => {
    await initBackend({ quiet: true });
  });

  describe("sampleFromLogits (pure)", () => {
    const logits = [2, 0.5, 3, -1, 1, 3];

    it("temperature 0 is argmax (first on ties), and needs no randomness", () => {
      assert.equal(argmax(logits), 2);
      const rng = createRng(1);
      const before = rng.state();
      for (let i = 0; i < 5; i++) assert.equal(sampleFromLogits(logits, { temperature: 0 }, rng), 2);
      assert.deepEqual(rng.state(), before);
      assert.deepEqual(Array.from(samplingDistribution(logits, { temperature: 0 })), [0, 0, 1, 0, 0, 0]);
    });

    it("temperature scales the logits before the softmax", () => {
      const p = samplingDistribution([0, Math.log(3)], { temperature: 1 });
      assert.ok(Math.abs(p[1] - 0.75) < 1e-12);
      const q = samplingDistribution([0, Math.log(3)], { temperature: 0.5 }); // ratio 9:1
      assert.ok(Math.abs(q[1] - 0.9) < 1e-12);
      const r = samplingDistribution([0, Math.log(3)], { temperature: 100 });
      assert.ok(Math.abs(r[1] - 0.5) < 0.01);
    });

    it("top-k keeps exactly k tokens (ties broken by the lower id)", () => {
      for (let k = 1; k <= logits.length; k++) {
        const p = samplingDistribution(logits, { topK: k });
        assert.equal(nonZero(p), k);
        assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
      }
      const p1 = samplingDistribution(logits, { topK: 1 });
      assert.equal(p1[2], 1); // logits 2 and 5 tie at 3: id 2 wins
      const p2 = samplingDistribution(logits, { topK: 2 });
      assert.ok(Math.abs(p2[2] - 0.5) < 1e-12 && Math.abs(p2[5] - 0.5) < 1e-12);
      assert.equal(nonZero(samplingDistribution(logits, { topK: 100 })), 6);
    });

    it("top-p keeps the smallest set of most likely tokens with mass >= p", () => {
      const probs = [0.5, 0.25, 0.125, 0.0625, 0.0625];
      const z = probs.map(Math.log);
      const kept = (p: number) => nonZero(samplingDistribution(z, { topP: p }));
      assert.equal(kept(0.4), 1);
      assert.equal(kept(0.5), 1);
      assert.equal(kept(0.51), 2);
      assert.equal(kept(0.75), 2);
      assert.equal(kept(0.8), 3);
      assert.equal(kept(1), 5);
      const d = samplingDistribution(z, { topP: 0.8 });
      assert.ok(Math.abs(d[0] - 0.5 / 0.875) < 1e-12);
      // top-k first, then top-p of what is left (renormalised).
      assert.equal(nonZero(samplingDistribution(z, { topK: 2, topP: 0.6 })), 1);
    });

    it("draws follow the distribution and repeat with the seed", () => {
      const z = [0, Math.log(3)];
      const draws = (seed: number) => { const r = createRng(seed); return Array.from({ length: 2000 }, () => sampleFromLogits(z, {}, r)); };
      const a = draws(1);
      assert.deepEqual(draws(1), a);
      assert.notDeepEqual(draws(2), a);
      const ones = a.filter((x) => x === 1).length / a.length;
      assert.ok(Math.abs(ones - 0.75) < 0.04, `${ones}`);
      // never draws outside the top-k
      const r = createRng(3);
      for (let i = 0; i < 200; i++) assert.ok([2, 5].includes(sampleFromLogits(logits, { topK: 2 }, r)));
    });

    it("rejects bad options", () => {
      const r = createRng(0);
      assert.throws(() => sampleFromLogits(logits, { temperature: -1 }, r), /temperature must be >= 0/);
      assert.throws(() => sampleFromLogits(logits, { topK: 0 }, r), /topK must be a positive integer/);
      assert.throws(() => sampleFromLogits(logits, { topP: 0 }, r), /topP must be in \(0, 1\]/);
      assert.throws(() => sampleFromLogits(logits, { topP: 1.5 }, r), /topP/);
    });
  });

  describe("generate", () => {
    let p: Record<string, tf.Variable>;
    before(() => { p = initGPT(TINY, { seed: 11, std: 0.5 }); });
    after(() => tf.dispose(Object.values(p)));

    it("greedy with the KV cache equals greedy without, token for token, also past the context", () => {
      for (const prompt of [[1], [3, 1, 4, 1, 5], [2, 7, 1, 8, 2, 8, 1, 8, 2, 8, 4, 5, 9]]) {
        const a = generate(p, TINY, prompt, { maxNewTokens: 25, temperature: 0, useKvCache: true });
        const b = generate(p, TINY, prompt, { maxNewTokens: 25, temperature: 0, useKvCache: false });
        assert.equal(a.length, 25);
        assert.deepEqual(a, b);
        assert.ok(new Set(a).size > 1, "a degenerate model would make this test weak");
      }
    });

    it("seeded sampling is reproducible, and the cache does not change it", () => {
      const o = { maxNewTokens: 20, temperature: 1, topK: 8, seed: 4 };
      const a = generate(p, TINY, [1, 2], o);
      assert.deepEqual(generate(p, TINY, [1, 2], o), a);
      assert.deepEqual(generate(p, TINY, [1, 2], { ...o, useKvCache: false }), a);
      assert.notDeepEqual(generate(p, TINY, [1, 2], { ...o, seed: 5 }), a);
      // An rng continues its stream: two calls differ, a restored state repeats.
      const rng = createRng(9);
      const s = rng.state();
      const first = generate(p, TINY, [1], { ...o, rng });
      assert.deepEqual(generate(p, TINY, [1], { ...o, rng: createRng(9, s) }), first);
    });

    it("stops after a stop sequence (kept in the result) or when onToken returns false", () => {
      const free = generate(p, TINY, [1], { maxNewTokens: 10, temperature: 0 });
      const stop = [free[3], free[4]];
      const cut = generate(p, TINY, [1], { maxNewTokens: 10, temperature: 0, stop: [[12, 12, 12], stop] });
      const firstHit = free.findIndex((_, i) => i >= 1 && free[i - 1] === stop[0] && free[i] === stop[1]);
      assert.deepEqual(cut, free.slice(0, firstHit + 1));
      const seen: number[] = [];
      const three = generate(p, TINY, [1], { maxNewTokens: 10, temperature: 0, onToken: (id, i) => { seen.push(id); return i < 2; } });
      assert.deepEqual(three, free.slice(0, 3));
      assert.deepEqual(seen, three);
      assert.deepEqual(generate(p, TINY, [1], { maxNewTokens: 0 }), []);
    });

    it("checks the prompt", () => {
      assert.throws(() => generate(p, TINY, [], { maxNewTokens: 3 }), /at least one token/);
      assert.throws(() => generate(p, TINY, [13], { maxNewTokens: 3 }), /prompt token 0 is 13, outside the vocabulary 0..12/);
      assert.throws(() => generate(p, TINY, [1], { maxNewTokens: -1 }), /maxNewTokens/);
    });

    it("leaks no tensors: the same count after 10 and after 100 tokens, with and without cache", () => {
      for (const useKvCache of [true, false]) {
        generate(p, TINY, [1], { maxNewTokens: 2, useKvCache });
        const before = tf.memory().numTensors;
        generate(p, TINY, [1], { maxNewTokens: 10, useKvCache });
        assert.equal(tf.memory().numTensors, before);
        generate(p, TINY, [1, 2, 3], { maxNewTokens: 100, useKvCache, topP: 0.9 });
        assert.equal(tf.memory().numTensors, before);
      }
    });
  });

  describe("textGenerate", () => {
    const tok = CharTokenizer.fromText("abcdefgh ijkl");
    const cfg: GPTConfig = { ...TINY, vocabSize: tok.vocabSize };
    let p: Record<string, tf.Variable>;
    before(() => { p = initGPT(cfg, { seed: 2, std: 0.5 }); });
    after(() => tf.dispose(Object.values(p)));

    it("encodes the prompt, decodes the continuation, streams text, strips a stop string", () => {
      const ids = generate(p, cfg, tok.encode("abc"), { maxNewTokens: 8, temperature: 0 });
      const text = textGenerate(p, cfg, tok, "abc", { maxNewTokens: 8, temperature: 0 });
      assert.equal(text, tok.decode(ids));
      let streamed = "";
      textGenerate(p, cfg, tok, "abc", { maxNewTokens: 8, temperature: 0, onText: (t) => { streamed += t; } });
      assert.equal(streamed, text);
      const stopAt = text[2];
      const cut = textGenerate(p, cfg, tok, "abc", { maxNewTokens: 8, temperature: 0, stop: [stopAt] });
      assert.equal(cut, text.slice(0, text.indexOf(stopAt)));
    });

    it("reports a prompt character outside the vocabulary clearly", () => {
      assert.throws(() => textGenerate(p, cfg, tok, "abz", { maxNewTokens: 3 }), (e: Error) =>
        /textGenerate: cannot encode the prompt/.test(e.message) && /"z"|'z'|z/.test(e.message));
      assert.throws(() => textGenerate(p, cfg, tok, "", { maxNewTokens: 3 }), /prompt is empty/);
      const small = { ...cfg, vocabSize: 3 };
      assert.throws(() => textGenerate(p, small, tok, "a", { maxNewTokens: 3 }), /tokenizer has \d+ tokens but the model only 3/);
    });
  });
});
