import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { gptConfig, gptForward, initGPT } from "../../lib/gpt/gpt";
import { createLoRA, disposeLoRA, loraLinear, loraParameterCount, loraTargets, loraWeights, mergeLoRA } from "../../lib/finetune/lora";
import { encodeSFTData, finetune, prepareChatModel, sftBatch, sftLoss, SFTExample } from "../../lib/finetune/sft";
import { createRng } from "../../lib/core/random";

const base = CharTokenizer.fromText("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .?!");

function model(seed = 0) {
  const config = gptConfig("tiny", { vocabSize: base.vocabSize, blockSize: 24, nEmbd: 32, nHead: 2, nLayer: 2 });
  return prepareChatModel({ params: initGPT(config, { seed }), config, tokenizer: base });
}

/** Adapters with random (non-zero) B, as after some training. */
function randomize(l: ReturnType<typeof createLoRA>, seed: number) {
  const rng = createRng(seed);
  for (const [name, v] of Object.entries(l.params)) {
    if (name.endsWith("lora_B")) v.assign(tf.randomNormal(v.shape, 0, 0.05, "float32", rng.int(1e9)));
  }
}

describe("LoRA", function () {
  this.timeout(60000);
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("a fresh adapter (B = 0) leaves the model unchanged; shapes and counts", () => {
    const m = model(1);
    const l = createLoRA(m.params, m.config, { rank: 4 });
    assert.deepEqual(l.targets, loraTargets(m.config));
    assert.equal(l.targets.length, 4 * m.config.nLayer);
    const C = m.config.nEmbd;
    assert.deepEqual(l.params["h.0.attn.c_attn.weight.lora_A"].shape, [C, 4]);
    assert.deepEqual(l.params["h.0.attn.c_attn.weight.lora_B"].shape, [4, 3 * C]);
    // r·(in + out) per matrix: c_attn C→3C, c_proj C→C, c_fc C→4C, mlp.c_proj 4C→C.
    assert.equal(loraParameterCount(l), m.config.nLayer * 4 * (4 * C + 2 * C + 5 * C + 5 * C));
    assert.equal(l.scale, 2);
    const idx = tf.tensor2d([[1, 2, 3, 4, 5]], undefined, "int32");
    const a = gptForward(m.params, m.config, idx);
    const w = tf.tidy(() => loraWeights(m.params, l));
    const b = gptForward(w as never, m.config, idx);
    assert.deepEqual(a.dataSync(), b.dataSync());
    tf.dispose([idx, a, b, ...Object.values(w).filter((t) => !Object.values(m.params).includes(t as tf.Variable))]);
    disposeLoRA(l);
    tf.dispose(Object.values(m.params));
  });

  it("unmerged x·W + b + s·(x·A)·B equals the merged x·(W + s·A·B) + b (tolerance 1e-5)", () => {
    const m = model(2);
    const l = createLoRA(m.params, m.config, { rank: 3, alpha: 6 });
    randomize(l, 5);
    const merged = mergeLoRA(m.params, l);
    for (const name of l.targets) {
      const w = m.params[name] as tf.Tensor2D;
      const x = tf.randomNormal([7, w.shape[0]], 0, 1, "float32", 3) as tf.Tensor2D;
      const bias = m.params[name.replace(/weight$/, "bias")] as tf.Tensor1D;
      const un = loraLinear(x, w, l.params[`${name}.lora_A`] as tf.Tensor2D, l.params[`${name}.lora_B`] as tf.Tensor2D, l.scale, bias);
      const me = tf.tidy(() => tf.add(tf.matMul(x, merged[name]), bias));
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(un, me))).dataSync()[0]);
      assert.ok(diff < 1e-5, `${name}: ${diff}`);
      const change = tf.tidy(() => tf.max(tf.abs(tf.sub(me, tf.add(tf.matMul(x, w), bias)))).dataSync()[0]);
      assert.ok(change > 1e-3, `${name}: the adapter does change the layer`);
      tf.dispose([x, un, me]);
    }
    // Whole model: forward with the unmerged weights (computed on the fly) = forward of the merged model.
    const idx = tf.tensor2d([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]], undefined, "int32");
    const a = tf.tidy(() => gptForward(loraWeights(m.params, l) as never, m.config, idx));
    const b = gptForward(merged, m.config, idx);
    assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]) < 1e-5);
    tf.dispose([idx, a, b]);
    tf.dispose(Object.values(merged));
    disposeLoRA(l);
    tf.dispose(Object.values(m.params));
  });

  it("only the adapters train: the base weights stay bit-identical; the loss falls", async () => {
    const m = model(3);
    const before = Object.fromEntries(Object.entries(m.params).map(([k, v]) => [k, v.dataSync().slice()]));
    const data: SFTExample[] = [["Hi?", "Yo."], ["Who?", "Ahab."]].map(([q, a], i) => ({ id: `x${i}`, kind: "chat", messages: [{ role: "user", content: q }, { role: "assistant", content: a }] }));
    const r = await finetune({ model: m, train: data, val: data, lora: 4, maxIters: 120, batchSize: 4, lr: 2e-2, evalIters: 1, evalInterval: 30, chart: false, progress: "none" });
    for (const [k, v] of Object.entries(m.params)) assert.deepEqual(v.dataSync(), before[k], `${k} unchanged`);
    assert.equal(r.summary.mode, "lora");
    assert.ok(r.summary.trainableParams < r.summary.totalParams / 3, `${r.summary.trainableParams} of ${r.summary.totalParams}`);
    const last = r.history.train.slice(-5).reduce((t, [, v]) => t + v, 0) / 5;
    assert.ok(last < r.history.train[0][1] * 0.8, `loss ${r.history.train[0][1]} → ${last}`);
    // The merged model gives the same loss as adapters-in-the-loop would have at the end.
    const set = encodeSFTData(r.tokenizer, data, r.config.blockSize);
    const batch = sftBatch(set.items, 0);
    const loss = tf.tidy(() => sftLoss(r.params, r.config, batch).dataSync()[0]);
    assert.ok(loss < r.history.train[0][1] * 0.8);
    tf.dispose([batch.x, batch.y, batch.mask]);
    tf.dispose(Object.values(r.params));
    tf.dispose(Object.values(m.params));
  });

  it("bad options: one-line errors", () => {
    const m = model(4);
    assert.throws(() => createLoRA(m.params, m.config, { rank: 0 }), /rank must be a positive integer, got 0/);
    assert.throws(() => createLoRA(m.params, m.config, { rank: 2, targets: ["nope.weight"] }), /no parameter "nope\.weight"/);
    assert.throws(() => createLoRA(m.params, m.config, { rank: 2, targets: ["ln_f.weight"] }), /only matrices can be adapted/);
    tf.dispose(Object.values(m.params));
  });
});
