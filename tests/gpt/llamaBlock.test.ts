import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { setSimdKernels } from "../../lib/core/kernels/simd";
import { multiHeadAttention } from "../../lib/attention/attention";
import { applyRope, ropeAngles } from "../../lib/attention/positional";
import { createDecoder } from "../../lib/gpt/decoder";
import {
  countParameters, createKVCache, disposeKVCache, flopsPerToken, GPT_PRESETS, GPTConfig, gptConfig, gptForward, gptLoss,
  gptParameterCount, gptParameterShapes, initGPT, mlpHiddenSize, rmsNorm, swiglu, swigluHidden, validateConfig,
} from "../../lib/gpt/gpt";
import { disposeParams } from "../../lib/pretrain/pretrain";
import { loadCheckpoint, saveCheckpoint } from "../../lib/pretrain/checkpoint";
import { DataParallel } from "../../lib/pretrain/dataParallel";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { randomModel } from "./randomModel";

/** Every combination of chapter 10's four options (biases alternate), on a tiny model. */
function combinations(): Array<[string, GPTConfig]> {
  const out: Array<[string, GPTConfig]> = [];
  for (let i = 0; i < 16; i++) {
    const o: Partial<GPTConfig> = {
      norm: i & 1 ? "rmsnorm" : "layernorm",
      mlp: i & 2 ? "swiglu" : "gelu",
      positions: i & 4 ? "rope" : "learned",
      nKvHead: i & 8 ? 1 : 4,
      bias: i % 3 !== 0,
    };
    out.push([`${o.norm}, ${o.mlp}, ${o.positions}, ${o.nKvHead} kv head(s), bias ${o.bias}`, gptConfig("tiny", { vocabSize: 11, nHead: 4, nEmbd: 16, blockSize: 8, ...o })]);
  }
  return out;
}


const ids = [3, 1, 4, 1, 5, 9, 2, 6];

describe("chapter 10: RMSNorm, SwiGLU, RoPE, grouped-query attention as GPT options", function () {
  this.timeout(120_000);
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("RMSNorm against a hand-computed example, and its gradient against finite differences", () => {
    // x = [1, 2, 3, 4]: mean(x²) = 7.5, rms = √7.50001 = 2.738614; y = x / rms · w
    const x = tf.tensor2d([[1, 2, 3, 4]]);
    const w = tf.tensor1d([1, 1, 2, 2]);
    const y = rmsNorm(x, w).dataSync();
    const rms = Math.sqrt(7.5 + 1e-5);
    [1 / rms, 2 / rms, 6 / rms, 8 / rms].forEach((v, i) => assert.ok(Math.abs(y[i] - v) < 1e-6, `y[${i}] = ${y[i]}, expected ${v}`));
    assert.ok(Math.abs(y[0] - 0.365148) < 1e-6);
    // d/dx of Σ y·r against central differences (float32: loose tolerance)
    const r = tf.tensor2d([[0.3, -1.2, 0.7, 2.0]]);
    const f = (xx: tf.Tensor) => tf.sum(tf.mul(rmsNorm(xx, w), r)) as tf.Scalar;
    const g = tf.grad(f)(x).dataSync();
    const base = x.dataSync();
    for (let i = 0; i < 4; i++) {
      const e = 1e-2;
      const plus = Float32Array.from(base), minus = Float32Array.from(base);
      plus[i] += e;
      minus[i] -= e;
      const fd = (f(tf.tensor2d(plus, [1, 4])).dataSync()[0] - f(tf.tensor2d(minus, [1, 4])).dataSync()[0]) / (2 * e);
      assert.ok(Math.abs(fd - g[i]) < 2e-3, `dx[${i}]: ${g[i]} vs ${fd}`);
    }
  });

  it("SwiGLU: SiLU(a)·b by hand, and gradients against finite differences", () => {
    const a = tf.tensor2d([[-2, -0.5, 0, 1.5]]), b = tf.tensor2d([[0.5, 2, -1, 3]]);
    const y = swiglu(a, b).dataSync();
    const silu = (z: number) => z / (1 + Math.exp(-z));
    [-2, -0.5, 0, 1.5].forEach((z, i) => assert.ok(Math.abs(y[i] - silu(z) * [0.5, 2, -1, 3][i]) < 1e-6));
    const f = (aa: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(swiglu(aa, bb), tf.tensor2d([[1, -2, 0.5, 1]]))) as tf.Scalar;
    const [ga, gb] = tf.grads(f)([a, b]).map((t) => t.dataSync());
    const e = 1e-2;
    for (let i = 0; i < 4; i++) {
      for (const [which, grad] of [[0, ga], [1, gb]] as const) {
        const bump = (d: number) => {
          const v = [Float32Array.from(a.dataSync()), Float32Array.from(b.dataSync())];
          v[which][i] += d;
          return f(tf.tensor2d(v[0], [1, 4]), tf.tensor2d(v[1], [1, 4])).dataSync()[0];
        };
        const fd = (bump(e) - bump(-e)) / (2 * e);
        assert.ok(Math.abs(fd - grad[i]) < 3e-3, `${which ? "db" : "da"}[${i}]: ${grad[i]} vs ${fd}`);
      }
    }
  });

  it("SwiGLU's hidden size keeps the MLP's parameters those of GELU's 4C (within 1 %), counted", () => {
    assert.equal(swigluHidden(128), 344);
    assert.equal(swigluHidden(768), 2048);
    for (const c of [128, 768]) {
      const gelu = 8 * c * c, sw = 3 * c * swigluHidden(c);
      assert.ok(Math.abs(sw - gelu) / gelu < 0.01, `C=${c}: ${sw} vs ${gelu}`);
    }
    const config = gptConfig("nanogpt-cpu", { mlp: "swiglu" });
    assert.equal(mlpHiddenSize(config), 344);
    const shapes = Object.fromEntries(gptParameterShapes(config));
    assert.deepEqual([shapes["h.0.mlp.c_gate.weight"], shapes["h.0.mlp.c_fc.weight"], shapes["h.0.mlp.c_proj.weight"]], [[128, 344], [128, 344], [344, 128]]);
  });

  it("parameter counts: the formula equals the tensors for every combination; each option's own term", () => {
    for (const [name, config] of combinations()) {
      const params = initGPT(config, { seed: 1 });
      assert.equal(countParameters(params), gptParameterCount(config), name);
      disposeParams(params);
    }
    const base = gptConfig("nanogpt-cpu");
    const n = gptParameterCount(base);
    const C = 128, L = 4, T = 64;
    assert.equal(gptParameterCount({ ...base, positions: "rope" }), n - T * C, "RoPE drops wpe");
    assert.equal(gptParameterCount({ ...base, norm: "rmsnorm" }), n - (2 * L + 1) * C, "RMSNorm has no shift");
    assert.equal(gptParameterCount({ ...base, nKvHead: 2 }), n - L * (2 * 2 * 32 * (C + 1)), "2 of 4 key/value heads: half of k and v");
    assert.equal(gptParameterCount(GPT_PRESETS.llama), countParameters(initGPT(GPT_PRESETS.llama, { seed: 0 })));
    assert.equal(flopsPerToken({ ...base, positions: "rope" }), flopsPerToken(base), "a lookup table costs no FLOPs; RoPE's rotations are not counted either");
  });

  it("validateConfig names the bad option", () => {
    const c = gptConfig("tiny");
    assert.throws(() => validateConfig({ ...c, norm: "batchnorm" as never }), /^Error: GPTConfig: norm must be "layernorm" or "rmsnorm", got "batchnorm"$/);
    assert.throws(() => validateConfig({ ...c, nKvHead: 3 }), /nKvHead must be a positive integer dividing nHead 2, got 3/);
    assert.throws(() => validateConfig({ ...c, mlpHidden: 10 }), /mlpHidden is SwiGLU's hidden width; set mlp: "swiglu" too/);
    assert.throws(() => validateConfig({ ...c, positions: "rope", nHead: 16 }), /head size nEmbd \/ nHead = 1 must be even/);
  });

  it("grouped-query attention equals multi-head attention whose key/value heads are repeated", () => {
    const B = 2, T = 5, C = 16, H = 4, G = 2, D = C / H;
    const x = tf.randomNormal([B, T, C], 0, 1, "float32", 1) as tf.Tensor3D;
    const wq = tf.randomNormal([C, C], 0, 0.3, "float32", 2), wk = tf.randomNormal([C, G * D], 0, 0.3, "float32", 3), wv = tf.randomNormal([C, G * D], 0, 0.3, "float32", 4);
    const wproj = tf.randomNormal([C, C], 0, 0.3, "float32", 5) as tf.Tensor2D;
    // Query head h uses key/value head ⌊h / (H/G)⌋: repeat each of k's G heads H/G times.
    const repeat = (w: tf.Tensor) => tf.concat(Array.from({ length: H }, (_, h) => tf.slice(w, [0, Math.floor(h / (H / G)) * D], [C, D])), 1);
    const tables = ropeAngles(T, D);
    for (const rope of [undefined, { tables }]) {
      const gqa = multiHeadAttention({ wqkv: tf.concat([wq, wk, wv], 1) as tf.Tensor2D, wproj }, x, { heads: H, kvHeads: G, causal: true, rope });
      const mha = multiHeadAttention({ wqkv: tf.concat([wq, repeat(wk), repeat(wv)], 1) as tf.Tensor2D, wproj }, x, { heads: H, causal: true, rope });
      const d = tf.max(tf.abs(tf.sub(gqa, mha))).dataSync()[0];
      assert.ok(d < 1e-5, `differ by ${d}${rope ? " (with RoPE)" : ""}`);
    }
    // nKvHead = nHead is multi-head attention: the same parameters, the same logits as leaving it out.
    const config = gptConfig("tiny", { vocabSize: 11, nHead: 4, nEmbd: 16 });
    const params = randomModel(config, 2);
    const idx = tf.tensor2d([ids], [1, 8], "int32");
    const a = gptForward(params, config, idx), b = gptForward(params, { ...config, nKvHead: 4 }, idx);
    assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
    disposeParams(params);
  });

  it("RoPE on the model's own queries and keys: q·k depends only on the distance between their positions", () => {
    const config = gptConfig("tiny", { vocabSize: 11, nHead: 2, nEmbd: 16, blockSize: 16, positions: "rope" });
    const params = randomModel(config, 4);
    const D = 8;
    const tables = ropeAngles(16, D);
    // The first head's query and key of two tokens, from layer 0's own projection.
    const qk = tf.tidy(() => {
      const e = tf.gather(params["wte.weight"], [3, 7]); // [2, C]
      const proj = tf.matMul(e, params["h.0.attn.c_attn.weight"]); // [2, C + 2·G·D]
      // q of token 3, k of token 7, scaled to unit length (at init they are ~1e-3: any test would pass)
      return [tf.slice(proj, [0, 0], [1, D]), tf.slice(proj, [1, 16], [1, D])].map((v) => tf.div(v, tf.norm(v)));
    });
    const score = (m: number, n: number) => tf.tidy(() => {
      const q = applyRope(qk[0].reshape([1, 1, D]), tables, m), k = applyRope(qk[1].reshape([1, 1, D]), tables, n);
      return tf.sum(tf.mul(q, k)).dataSync()[0];
    });
    for (const [m, n] of [[5, 2], [9, 1], [3, 3]]) {
      const s0 = score(m, n);
      for (const shift of [1, 4, 6]) assert.ok(Math.abs(score(m + shift, n + shift) - s0) < 1e-5, `(${m}, ${n}) shifted by ${shift}`);
    }
    const pairs = [[5, 2], [9, 1], [7, 3], [12, 4]];
    assert.ok(Math.max(...pairs.map(([m, n]) => Math.abs(score(m, n) - score(m, n + 1)))) > 1e-2, "the distance matters");
    assert.ok(Math.max(...pairs.map(([m, n]) => Math.abs(score(m, n) - score(n, m)))) > 1e-2, "and its sign (it is not just |m − n|)");
    disposeParams(params);
  });

  for (const [name, config] of combinations()) {
    it(`${name}: causal, KV cache = no cache, decoder = forward, no tensor leak`, () => {
      const params = randomModel(config, 7);
      const T = ids.length;
      const idx = tf.tensor2d([ids], [1, T], "int32");
      const full = gptForward(params, config, idx).arraySync()[0];
      // Causality: changing the last token changes no earlier position's logits.
      const changed = gptForward(params, config, tf.tensor2d([[...ids.slice(0, T - 1), (ids[T - 1] + 1) % 11]], [1, T], "int32")).arraySync()[0];
      for (let t = 0; t < T - 1; t++) assert.deepEqual(changed[t], full[t], `position ${t} saw the future`);
      // KV cache, fed 3 then 1 then the rest: the cache-free logits.
      const cache = createKVCache(config);
      const parts = [ids.slice(0, 3), ids.slice(3, 4), ids.slice(4)];
      let pos = 0;
      for (const part of parts) {
        const out = gptForward(params, config, tf.tensor2d([part], [1, part.length], "int32"), { kvCache: cache }).arraySync()[0];
        for (let i = 0; i < part.length; i++, pos++) {
          const d = Math.max(...out[i].map((v, j) => Math.abs(v - full[pos][j])));
          assert.ok(d < 1e-5, `cache, position ${pos}: ${d}`);
        }
      }
      const G = config.nKvHead ?? config.nHead;
      assert.deepEqual(cache.layers[0]!.k.shape, [1, G, T, 16 / config.nHead], "the cache holds only the key/value heads");
      disposeKVCache(cache);
      const dec = createDecoder(params, config, { products: "js" });
      for (let t = 0; t < T; t++) {
        const got = dec.step(ids[t]);
        const d = Math.max(...full[t].map((v, j) => Math.abs(v - got[j])));
        assert.ok(d < 1e-4, `decoder, position ${t}: ${d}`);
      }
      // Training steps leave no tensor behind.
      const y = tf.tensor2d([[...ids.slice(1), 0]], [1, T], "int32");
      const step = () => {
        const { value, grads } = tf.variableGrads(() => gptLoss(params, config, idx, y));
        tf.dispose([value, ...Object.values(grads)]);
      };
      step();
      const before = tf.memory().numTensors;
      step();
      step();
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([idx, y]);
      disposeParams(params);
    });
  }

  it("the llama preset: gradients of the loss match finite differences, with the SIMD kernels and without", () => {
    const config = gptConfig("llama", { vocabSize: 11, blockSize: 8, nEmbd: 32, nLayer: 2 });
    const params = randomModel(config, 9);
    const idx = tf.tensor2d([ids], [1, 8], "int32"), y = tf.tensor2d([[...ids.slice(1), 0]], [1, 8], "int32");
    const loss = () => gptLoss(params, config, idx, y).dataSync()[0];
    for (const simd of [true, false]) {
      setSimdKernels(simd);
      try {
        const { value, grads } = tf.variableGrads(() => gptLoss(params, config, idx, y));
        for (const name of ["h.0.ln_1.weight", "h.1.mlp.c_gate.weight", "h.0.attn.c_attn.weight", "wte.weight"]) {
          const p = params[name];
          const g = grads[p.name].dataSync();
          for (const i of [0, 5, 17]) {
            const v = p.dataSync().slice();
            const e = 1e-2;
            const at = (d: number) => {
              const w = v.slice();
              w[i] += d;
              p.assign(tf.tensor(w, p.shape));
              return loss();
            };
            const fd = (at(e) - at(-e)) / (2 * e);
            p.assign(tf.tensor(v, p.shape));
            assert.ok(Math.abs(fd - g[i]) < 2e-3 + 0.03 * Math.abs(fd), `${name}[${i}] (SIMD ${simd}): ${g[i]} vs ${fd}`);
          }
        }
        tf.dispose([value, ...Object.values(grads)]);
      } finally {
        setSimdKernels(true);
      }
    }
    disposeParams(params);
  });

  it("checkpoints keep the options; data parallelism gives one pass's loss and gradients", async () => {
    const config = gptConfig("llama", { vocabSize: 11, blockSize: 8, nEmbd: 32, nLayer: 2 });
    const params = randomModel(config, 11);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "llama-ckpt-"));
    try {
      const { CharTokenizer } = await import("../../lib/tokens/charTokenizer");
      saveCheckpoint(dir, { params, config, tokenizer: CharTokenizer.fromText("abcdefghijk"), step: 3 });
      const ck = loadCheckpoint(dir);
      assert.deepEqual(ck.config, config);
      const idx = tf.tensor2d([ids], [1, 8], "int32");
      assert.deepEqual(Array.from(gptForward(ck.params as never, ck.config as GPTConfig, idx).dataSync()), Array.from(gptForward(params, config, idx).dataSync()));
      tf.dispose(Object.values(ck.params));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const dp = await DataParallel.start(params, { threads: 2, loss: { builtin: "gpt", options: { config } } });
    try {
      const x = tf.tensor2d([ids, [...ids].reverse(), ids.map((i) => (i + 2) % 11)], [3, 8], "int32");
      const y = tf.tensor2d([[...ids.slice(1), 0], ids, [...ids].reverse()], [3, 8], "int32");
      const ref = tf.variableGrads(() => gptLoss(params, config, x, y));
      const got = await dp.gradients({ x, y }, { step: 0, training: true, seed: 1 });
      assert.ok(Math.abs(got.loss - ref.value.dataSync()[0]) < 1e-5);
      for (const [n, v] of Object.entries(params)) {
        const d = tf.max(tf.abs(tf.sub(got.grads[n], ref.grads[v.name]))).dataSync()[0];
        assert.ok(d < 1e-5, `${n}: ${d}`);
      }
      tf.dispose([ref.value, ...Object.values(ref.grads), ...Object.values(got.grads)]);
    } finally {
      await dp.dispose();
      disposeParams(params);
    }
  });
});
