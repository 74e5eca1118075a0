import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import {
  checkGPTParams, checkTrainingStepFits, trainingStepBytes, countParameters, createKVCache, disposeKVCache, flopsPerToken, gelu, GPT_PRESETS, GPTConfig,
  gptConfig, gptForward, gptLastLogits, gptLoss, gptParameterCount, gptParameterShapes, initGPT, isDecayed,
  layerNorm, targetLogProbs, tokenLogProbs, validateConfig, attentionMaps,
} from "../../lib/gpt/gpt";
import { multiHeadAttention } from "../../lib/attention/attention";
import { createRng } from "../../lib/core/random";

const vals = (t: tf.Tensor): number[] => Array.from(t.dataSync());
const maxAbsDiff = (a: number[], b: number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const dispose = (p: Record<string, tf.Tensor>) => tf.dispose(Object.values(p));

const TINY: GPTConfig = { vocabSize: 11, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8, dropout: 0, bias: true };

describe("gpt", function () {
  before(async () => {
    await initBackend({ quiet: true });
  });

  describe("config", () => {
    it("presets are valid and have the documented sizes", () => {
      for (const c of Object.values(GPT_PRESETS)) validateConfig(c);
      const g = GPT_PRESETS.gpt2;
      assert.deepEqual([g.vocabSize, g.blockSize, g.nLayer, g.nHead, g.nEmbd], [50257, 1024, 12, 12, 768]);
      const n = gptConfig("nanogpt-cpu", { vocabSize: 65 });
      assert.deepEqual([n.vocabSize, n.blockSize, n.nLayer, n.nHead, n.nEmbd, n.dropout], [65, 64, 4, 4, 128, 0]);
      assert.equal(n.tiedHead, true);
    });

    it("rejects bad configs with a one-line message naming the field", () => {
      const bad: Array<[Partial<GPTConfig>, RegExp]> = [
        [{ nEmbd: 10, nHead: 4 }, /nEmbd 10 is not divisible by nHead 4/],
        [{ nLayer: 0 }, /nLayer must be a positive integer, got 0/],
        [{ vocabSize: -3 }, /vocabSize must be a positive integer, got -3/],
        [{ blockSize: 2.5 }, /blockSize must be a positive integer, got 2.5/],
        [{ nHead: NaN }, /nHead must be a positive integer/],
        [{ dropout: 1 }, /dropout must be in \[0, 1\), got 1/],
        [{ dropout: -0.1 }, /dropout must be in \[0, 1\)/],
      ];
      for (const [o, re] of bad) {
        assert.throws(() => validateConfig({ ...TINY, ...o }), (e: Error) => re.test(e.message) && !e.message.includes("\n"));
      }
      assert.throws(() => gptConfig("nope" as never), /unknown preset "nope"/);
      assert.throws(() => gptConfig("tiny", { nHead: 3 }), /not divisible/);
    });
  });

  describe("parameters", () => {
    it("GPT-2 small has 124,439,808 parameters by the formula (tied head, positions included)", () => {
      assert.equal(gptParameterCount(GPT_PRESETS.gpt2), 124_439_808);
      const shapes = gptParameterShapes(GPT_PRESETS.gpt2);
      assert.equal(shapes.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0), 124_439_808);
      assert.equal(shapes.length, 2 + 12 * 12 + 2); // wte, wpe, 12 tensors per block, ln_f
    });

    it("formula = allocated variables, with HF GPT2LMHeadModel names and Conv1D shapes", () => {
      for (const cfg of [TINY, { ...TINY, bias: false }, { ...TINY, tiedHead: false }]) {
        const before = tf.memory().numTensors;
        const p = initGPT(cfg, { seed: 3 });
        assert.equal(countParameters(p), gptParameterCount(cfg));
        checkGPTParams(p, cfg);
        dispose(p);
        assert.equal(tf.memory().numTensors, before);
      }
      const p = initGPT(TINY);
      const C = TINY.nEmbd;
      assert.deepEqual(p["wte.weight"].shape, [11, C]);
      assert.deepEqual(p["wpe.weight"].shape, [8, C]);
      assert.deepEqual(p["h.1.attn.c_attn.weight"].shape, [C, 3 * C]);
      assert.deepEqual(p["h.1.attn.c_proj.weight"].shape, [C, C]);
      assert.deepEqual(p["h.0.mlp.c_fc.weight"].shape, [C, 4 * C]);
      assert.deepEqual(p["h.0.mlp.c_proj.weight"].shape, [4 * C, C]);
      assert.deepEqual(p["ln_f.bias"].shape, [C]);
      assert.equal(p["lm_head.weight"], undefined);
      assert.ok(Object.keys(p).every((k) => !k.startsWith("transformer.")));
      dispose(p);
    });

    it("untied head and bias-free variants run forward and backward", () => {
      const idx = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
      const tg = tf.tensor2d([[2, 3, 4]], [1, 3], "int32");
      for (const cfg of [{ ...TINY, tiedHead: false }, { ...TINY, bias: false }]) {
        const p = initGPT(cfg, { seed: 1 });
        const { value, grads } = tf.variableGrads(() => gptLoss(p, cfg, idx, tg), Object.values(p));
        assert.ok(Math.abs(value.dataSync()[0] - Math.log(11)) < 0.1);
        assert.equal(Object.keys(grads).length, Object.keys(p).length);
        for (const [name, g] of Object.entries(grads)) assert.ok(vals(g).every(Number.isFinite), name);
        if (cfg.tiedHead === false) assert.ok(vals(grads[p["lm_head.weight"].name]).some((x) => x !== 0));
        tf.dispose([value, ...Object.values(grads)]);
        dispose(p);
      }
      tf.dispose([idx, tg]);
    });

    it("GPT-2 initialisation: std 0.02, residual projections 0.02/sqrt(2L), biases 0, LayerNorm 1/0", () => {
      const cfg = { ...TINY, nEmbd: 64, nHead: 4, nLayer: 8 };
      const p = initGPT(cfg, { seed: 1 });
      const std = (t: tf.Tensor) => Math.sqrt(tf.tidy(() => tf.moments(t).variance.dataSync()[0]));
      assert.ok(Math.abs(std(p["h.0.attn.c_attn.weight"]) - 0.02) < 0.001);
      assert.ok(Math.abs(std(p["wte.weight"]) - 0.02) < 0.003);
      assert.ok(Math.abs(std(p["h.3.mlp.c_proj.weight"]) - 0.02 / 4) < 0.0003);
      assert.ok(Math.abs(std(p["h.3.attn.c_proj.weight"]) - 0.02 / 4) < 0.0005);
      assert.ok(vals(p["h.2.ln_1.weight"]).every((x) => x === 1));
      assert.ok(vals(p["h.2.ln_2.bias"]).every((x) => x === 0));
      assert.ok(vals(p["h.2.mlp.c_fc.bias"]).every((x) => x === 0));
      // Same seed, same parameters; another seed, others.
      const q = initGPT(cfg, { seed: 1 });
      const r = initGPT(cfg, { seed: 2 });
      assert.deepEqual(vals(q["h.1.mlp.c_fc.weight"]), vals(p["h.1.mlp.c_fc.weight"]));
      assert.notDeepEqual(vals(r["h.1.mlp.c_fc.weight"]), vals(p["h.1.mlp.c_fc.weight"]));
      [p, q, r].forEach(dispose);
    });

    it("isDecayed: matmul weights yes; biases, LayerNorm, embeddings no", () => {
      assert.equal(isDecayed("h.0.attn.c_attn.weight", [8, 24]), true);
      assert.equal(isDecayed("h.0.mlp.c_proj.weight", [32, 8]), true);
      assert.equal(isDecayed("lm_head.weight", [11, 8]), true);
      assert.equal(isDecayed("wte.weight", [11, 8]), false);
      assert.equal(isDecayed("wpe.weight", [8, 8]), false);
      assert.equal(isDecayed("h.0.attn.c_attn.bias", [24]), false);
      assert.equal(isDecayed("h.0.ln_1.weight", [8]), false);
      assert.equal(isDecayed("ln_f.bias", [8]), false);
    });

    it("flopsPerToken: 6N (without wpe) + 12·L·C·T", () => {
      const g = GPT_PRESETS.gpt2;
      assert.equal(flopsPerToken(g), 6 * (124_439_808 - 1024 * 768) + 12 * 12 * 768 * 1024);
      assert.equal(flopsPerToken(g, 1), 6 * (124_439_808 - 1024 * 768) + 12 * 12 * 768);
    });
  });

  describe("building blocks", () => {
    it("layerNorm matches a hand computation, with the autograd gradient of the plain formula", () => {
      const x = tf.tensor2d([[1, 2, 3, 4], [2, -2, 0, 0]]);
      const w = tf.tensor1d([1, 2, 0.5, -1]);
      const b = tf.tensor1d([0, 1, 0, 0.5]);
      const y = layerNorm(x, w, b);
      // row 1: mean 2.5, var 1.25; row 2: mean 0, var 2
      const r1 = [1, 2, 3, 4].map((v) => (v - 2.5) / Math.sqrt(1.25 + 1e-5));
      const r2 = [2, -2, 0, 0].map((v) => v / Math.sqrt(2 + 1e-5));
      const expect = [...r1, ...r2].map((v, i) => v * [1, 2, 0.5, -1][i % 4] + [0, 1, 0, 0.5][i % 4]);
      assert.ok(maxAbsDiff(vals(y), expect) < 1e-5);
      const plain = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
        const { mean, variance } = tf.moments(xx, -1, true);
        return tf.add(tf.mul(tf.div(tf.sub(xx, mean), tf.sqrt(tf.add(variance, 1e-5))), ww), bb);
      };
      const g = tf.tensor2d([[0.3, -1, 2, 0.1], [1, 1, -0.5, 2]]);
      const ours = tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(layerNorm(a, c as tf.Tensor1D, d as tf.Tensor1D), g)))([x, w, b]);
      const ref = tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(plain(a, c, d), g)))([x, w, b]);
      ours.forEach((o, i) => assert.ok(maxAbsDiff(vals(o), vals(ref[i])) < 1e-4, `gradient ${i}`));
      // Leading axes are flattened: [B, T, C] works too; no bias.
      const x3 = tf.randomNormal([2, 3, 4], 0, 1, "float32", 1);
      assert.deepEqual(layerNorm(x3, w).shape, [2, 3, 4]);
      tf.dispose([x, w, b, y, g, x3, ...ours, ...ref]);
    });

    it("gelu is GPT-2's tanh GELU, with the right gradient", () => {
      const xs = [-4, -1.5, -0.3, 0, 0.2, 1, 2.5, 6];
      const ref = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      const x = tf.tensor1d(xs);
      assert.ok(maxAbsDiff(vals(gelu(x)), xs.map(ref)) < 1e-5);
      const g = vals(tf.grad((t: tf.Tensor) => tf.sum(gelu(t)))(x));
      const h = 1e-3;
      assert.ok(maxAbsDiff(g, xs.map((v) => (ref(v + h) - ref(v - h)) / (2 * h))) < 1e-4);
      x.dispose();
    });

    it("targetLogProbs = log_softmax picked at the targets, gradient onehot − softmax", () => {
      const z = tf.tensor2d([[1, 2, 3], [0, 0, 10], [-1, 5, 2]]);
      const t = tf.tensor1d([2, 0, 1], "int32");
      const ref = tf.tidy(() => tf.sum(tf.mul(tf.logSoftmax(z), tf.oneHot(t, 3)), -1));
      assert.ok(maxAbsDiff(vals(targetLogProbs(z, t)), vals(ref)) < 1e-5);
      const gw = tf.tensor1d([1, -2, 0.5]);
      const ours = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(targetLogProbs(a as tf.Tensor2D, t), gw)))(z);
      const theirs = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.sum(tf.mul(tf.logSoftmax(a), tf.oneHot(t, 3)), -1), gw)))(z);
      assert.ok(maxAbsDiff(vals(ours), vals(theirs)) < 1e-5);
      tf.dispose([z, t, ref, gw, ours, theirs]);
    });
  });

  describe("forward", () => {
    let p: Record<string, tf.Variable>;
    before(() => { p = initGPT(TINY, { seed: 7, std: 0.3 }); });
    after(() => dispose(p));

    it("shapes: logits [B, T, V], hidden [B, T, C]; idx checked", () => {
      const idx = tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32");
      const logits = gptForward(p, TINY, idx);
      assert.deepEqual(logits.shape, [2, 3, 11]);
      const { logits: l2, hidden } = gptForward(p, TINY, idx, { returnHidden: true });
      assert.deepEqual(hidden.shape, [2, 3, 8]);
      assert.deepEqual(vals(l2), vals(logits));
      const last = gptLastLogits(p, TINY, idx);
      assert.deepEqual(last.shape, [2, 11]);
      assert.ok(maxAbsDiff(vals(last), vals(tf.tidy(() => logits.slice([0, 2, 0], [2, 1, 11])))) < 1e-5);
      assert.throws(() => gptForward(p, TINY, tf.zeros([1, 9], "int32")), /sequence length 9 exceeds the context \(blockSize 8\)/);
      assert.throws(() => gptForward(p, TINY, tf.zeros([9], "int32")), /idx must be \[B, T\]/);
      assert.throws(() => gptForward(p, TINY, tf.tensor2d([[1, 11]], [1, 2], "int32")), /token id 11 at \[0, 1\] is outside the vocabulary 0..10/);
      tf.dispose([idx, logits, l2, hidden, last]);
    });

    it("is causal: changing token t+1 leaves the logits of positions <= t unchanged", () => {
      const a = [3, 1, 4, 1, 5, 9, 2, 6];
      for (const t of [0, 3, 6]) {
        const b = [...a];
        b[t + 1] = (b[t + 1] + 5) % 11;
        const la = tf.tidy(() => gptForward(p, TINY, tf.tensor2d([a], [1, 8], "int32")).arraySync()[0]);
        const lb = tf.tidy(() => gptForward(p, TINY, tf.tensor2d([b], [1, 8], "int32")).arraySync()[0]);
        for (let s = 0; s <= t; s++) assert.ok(maxAbsDiff(la[s], lb[s]) < 1e-5, `position ${s} changed`);
        assert.ok(maxAbsDiff(la[t + 1], lb[t + 1]) > 1e-3, `position ${t + 1} should change`);
      }
    });

    it("batch elements are independent", () => {
      const one = tf.tidy(() => gptForward(p, TINY, tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32")).arraySync()[0]);
      const two = tf.tidy(() => gptForward(p, TINY, tf.tensor2d([[7, 7, 0, 1], [1, 2, 3, 4]], [2, 4], "int32")).arraySync()[1]);
      one.forEach((row, i) => assert.ok(maxAbsDiff(row, two[i]) < 1e-5));
    });

    it("tokenLogProbs and gptLoss agree with log_softmax of the logits; mask selects positions", () => {
      const idx = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 8]], [2, 4], "int32");
      const tg = tf.tensor2d([[2, 3, 4, 5], [6, 7, 8, 9]], [2, 4], "int32");
      const lp = tokenLogProbs(p, TINY, idx, tg);
      const ref = tf.tidy(() => tf.sum(tf.mul(tf.logSoftmax(gptForward(p, TINY, idx)), tf.oneHot(tg, 11)), -1));
      assert.deepEqual(lp.shape, [2, 4]);
      assert.ok(maxAbsDiff(vals(lp), vals(ref)) < 1e-5);
      const lpv = vals(lp);
      const loss = gptLoss(p, TINY, idx, tg).dataSync()[0];
      assert.ok(Math.abs(loss + lpv.reduce((a, b) => a + b, 0) / 8) < 1e-5);
      const mask = tf.tensor2d([[0, 0, 1, 1], [0, 1, 0, 0]]);
      const masked = gptLoss(p, TINY, idx, tg, { mask }).dataSync()[0];
      assert.ok(Math.abs(masked + (lpv[2] + lpv[3] + lpv[5]) / 3) < 1e-5);
      assert.throws(() => gptLoss(p, TINY, idx, tf.zeros([2, 3], "int32")), /targets \[2,3\] must have the shape of idx \[2,4\]/);
      tf.dispose([idx, tg, lp, ref, mask]);
    });

    it("loss at initialisation is about ln(V) (nanogpt-cpu, V = 65)", () => {
      const cfg = gptConfig("nanogpt-cpu", { vocabSize: 65 });
      const q = initGPT(cfg, { seed: 0 });
      const idx = tf.randomUniform([4, 64], 0, 65, "int32", 1);
      const tg = tf.randomUniform([4, 64], 0, 65, "int32", 2);
      const loss = gptLoss(q, cfg, idx, tg).dataSync()[0];
      assert.ok(Math.abs(loss - Math.log(65)) < 0.1, `loss ${loss} vs ln 65 = ${Math.log(65)}`);
      tf.dispose([idx, tg]);
      dispose(q);
    });

    it("gradients of gptLoss match central finite differences", () => {
      const idx = tf.tensor2d([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]], [2, 5], "int32");
      const tg = tf.tensor2d([[2, 3, 4, 5, 6], [7, 8, 9, 10, 0]], [2, 5], "int32");
      const mask = tf.tensor2d([[1, 1, 0, 1, 1], [0, 1, 1, 1, 1]]);
      const names = ["wte.weight", "wpe.weight", "h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.attn.c_attn.weight",
        "h.1.attn.c_proj.bias", "h.1.mlp.c_fc.weight", "h.1.mlp.c_proj.weight", "ln_f.weight", "ln_f.bias"];
      const { grads } = tf.variableGrads(() => gptLoss(p, TINY, idx, tg, { mask }), names.map((n) => p[n]));
      const eps = 1e-2;
      const rng = createRng(5);
      for (const n of names) {
        const v = p[n];
        const g = vals(grads[v.name]);
        const orig = vals(v);
        for (let trial = 0; trial < 3; trial++) {
          // wte/wpe: entries of rows that are used; elsewhere random entries
          const i = n === "wte.weight" ? 3 * 8 + rng.int(8) : n === "wpe.weight" ? 2 * 8 + rng.int(8) : rng.int(orig.length);
          const at = (d: number) => {
            const w = [...orig];
            w[i] += d;
            v.assign(tf.tensor(w, v.shape));
            return tf.tidy(() => gptLoss(p, TINY, idx, tg, { mask }).dataSync()[0]);
          };
          const fd = (at(eps) - at(-eps)) / (2 * eps);
          v.assign(tf.tensor(orig, v.shape));
          assert.ok(Math.abs(fd - g[i]) < 2e-3 + 0.03 * Math.abs(fd), `${n}[${i}]: autograd ${g[i]} vs finite difference ${fd}`);
        }
      }
      tf.dispose([idx, tg, mask, ...Object.values(grads)]);
    });

    it("dropout: off unless training; seeded masks reproduce; dropout 0 is deterministic", () => {
      const cfg = { ...TINY, dropout: 0.3 };
      const idx = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32");
      const ev = vals(gptForward(p, cfg, idx));
      assert.ok(maxAbsDiff(ev, vals(gptForward(p, TINY, idx))) < 1e-6);
      const a = vals(gptForward(p, cfg, idx, { training: true, rng: createRng(1) }));
      const b = vals(gptForward(p, cfg, idx, { training: true, rng: createRng(1) }));
      const c = vals(gptForward(p, cfg, idx, { training: true, rng: createRng(2) }));
      assert.deepEqual(a, b);
      assert.ok(maxAbsDiff(a, c) > 1e-3);
      assert.ok(maxAbsDiff(a, ev) > 1e-3);
      assert.deepEqual(vals(gptForward(p, TINY, idx, { training: true })), vals(gptForward(p, TINY, idx)));
      idx.dispose();
    });

    it("KV cache: feeding tokens in pieces gives the same logits as the whole sequence", () => {
      const seq = [3, 1, 4, 1, 5, 9, 2, 6];
      const full = tf.tidy(() => gptForward(p, TINY, tf.tensor2d([seq], [1, 8], "int32")).arraySync()[0]);
      const cache = createKVCache(TINY);
      const pieces = [[0, 3], [3, 4], [4, 7], [7, 8]];
      for (const [s, e] of pieces) {
        const part = tf.tidy(() => gptForward(p, TINY, tf.tensor2d([seq.slice(s, e)], [1, e - s], "int32"), { kvCache: cache }).arraySync()[0]);
        part.forEach((row, i) => assert.ok(maxAbsDiff(row, full[s + i]) < 1e-4, `position ${s + i}`));
      }
      assert.equal(cache.length, 8);
      assert.throws(() => gptForward(p, TINY, tf.tensor2d([[1]], [1, 1], "int32"), { kvCache: cache }), /positions 8..8 exceed the context/);
      assert.throws(() => gptForward(p, TINY, tf.tensor2d([[1]], [1, 1], "int32"), { kvCache: cache, training: true }), /KV cache/);
      disposeKVCache(cache);
    });

    it("leaves no tensors behind across repeated forward/backward", () => {
      const idx = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32");
      const tg = tf.tensor2d([[2, 3, 4, 5]], [1, 4], "int32");
      const step = () => {
        const { value, grads } = tf.variableGrads(() => gptLoss(p, TINY, idx, tg));
        tf.dispose([value, ...Object.values(grads)]);
        tf.tidy(() => { gptForward(p, TINY, idx, { returnHidden: true }); });
      };
      step();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) step();
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([idx, tg]);
    });
  });

  it("a tiny model overfits a tiny repeated sequence (loss < 0.1 within ~100 Adam steps)", function () {
    const cfg: GPTConfig = { vocabSize: 8, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 32, dropout: 0, bias: true };
    const p = initGPT(cfg, { seed: 0 });
    const pattern = [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0];
    const idx = tf.tensor2d([pattern.slice(0, 16)], [1, 16], "int32");
    const tg = tf.tensor2d([pattern.slice(1, 17)], [1, 16], "int32");
    const opt = tf.train.adam(1e-2);
    let loss = Infinity;
    let steps = 0;
    for (; steps < 150 && loss >= 0.1; steps++) {
      const l = opt.minimize(() => gptLoss(p, cfg, idx, tg), true)!;
      loss = l.dataSync()[0];
      l.dispose();
    }
    assert.ok(loss < 0.1, `loss ${loss} after ${steps} steps`);
    opt.dispose();
    tf.dispose([idx, tg]);
    dispose(p);
  });
});

describe("training-step memory: refused before it is allocated", () => {
  // L=2, C=8, H=2, V=10, T=4: per token 4·(2·(48·8 + 6·2·4) + 6·10) = 4·(2·432 + 60) = 3696 bytes.
  const config: GPTConfig = { vocabSize: 10, blockSize: 4, nLayer: 2, nHead: 2, nEmbd: 8, dropout: 0, bias: true, tiedHead: true };
  const fixed = 16 * gptParameterCount(config);

  it("trainingStepBytes: 16 bytes per parameter plus the hand-computed activations per token", () => {
    assert.equal(trainingStepBytes(config, 0), fixed);
    assert.equal(trainingStepBytes(config, 3), fixed + 3 * 4 * 3696);
    assert.equal(trainingStepBytes(config, 1, 2), fixed + 2 * 4 * (2 * (48 * 8 + 6 * 2 * 2) + 60));
  });

  it("checkTrainingStepFits: a batch that fits passes at the limit; one row more per thread is refused, naming what fits", () => {
    const limit = fixed + 5 * 4 * 3696; // exactly 5 rows per thread
    assert.doesNotThrow(() => checkTrainingStepFits(config, 10, 2, "pretrain", "batch size 10", limit));
    assert.throws(
      () => checkTrainingStepFits(config, 11, 2, "pretrain", "batch size 11", limit),
      (e: Error) => e.message === `pretrain: batch size 11: 6 sequences of 4 tokens per thread need about ${((fixed + 6 * 4 * 3696) / 2 ** 30).toPrecision(3)} GiB for a training step, more than the ${(limit / 2 ** 30).toPrecision(3)} GiB a thread has; expected at most 5 per thread (10 sequences over 2 threads)`,
    );
    assert.throws(() => checkTrainingStepFits(config, 1, 1, "sft", "batch size 1", fixed + 10), /^Error: sft: block size 4: even one sequence needs about .* expected a smaller block size or model$/);
  });
});

describe("attentionMaps: what every head of every layer looks at", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("gives [layer][head][query][key], causal rows that sum to 1; layer 0 equals attention on ln_1 of the embeddings, by hand", () => {
    const p = initGPT(TINY, { seed: 7 });
    const ids = [3, 1, 4, 1, 5, 9];
    const before = tf.memory().numTensors;
    const maps = attentionMaps(p, TINY, ids);
    assert.equal(tf.memory().numTensors, before, "no tensor leak");
    assert.deepEqual([maps.length, maps[0].length, maps[0][0].length, maps[0][0][0].length], [TINY.nLayer, TINY.nHead, ids.length, ids.length]);
    for (const layer of maps) for (const head of layer) head.forEach((row, q) => {
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5, "a distribution over keys");
      row.forEach((w, k) => k > q && assert.equal(w, 0, "no look ahead"));
    });
    const byHand = tf.tidy(() => {
      const e = tf.add(tf.gather(p["wte.weight"], ids), tf.slice(p["wpe.weight"], [0, 0], [ids.length, -1]));
      const a = layerNorm(e, p["h.0.ln_1.weight"] as tf.Tensor1D, p["h.0.ln_1.bias"] as tf.Tensor1D);
      const r = multiHeadAttention(
        { wqkv: p["h.0.attn.c_attn.weight"] as tf.Tensor2D, bqkv: p["h.0.attn.c_attn.bias"] as tf.Tensor1D, wproj: p["h.0.attn.c_proj.weight"] as tf.Tensor2D, bproj: p["h.0.attn.c_proj.bias"] as tf.Tensor1D },
        a.expandDims(0) as tf.Tensor3D, { heads: TINY.nHead, causal: true, returnWeights: true },
      );
      return (r.weights.arraySync() as number[][][][])[0];
    });
    assert.ok(maxAbsDiff(maps[0].flat(2), byHand.flat(2)) < 1e-5);
    assert.throws(() => attentionMaps(p, TINY, Array(TINY.blockSize + 1).fill(0)), /attentionMaps/);
    dispose(p);
  });
});
