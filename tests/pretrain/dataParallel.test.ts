import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { defaultThreads, shardSizes } from "../../lib/core/backend";
import { DataParallel, splitPrefix, withPrefix } from "../../lib/pretrain/dataParallel";
import { copyParams, gptConfig, gptLoss, initGPT } from "../../lib/gpt/gpt";
import { disposeParams } from "../../lib/pretrain/pretrain";
import { initRewardModel, pairBatchRows, pairBatchTensors, rewardLossSpec, rewardPairLoss } from "../../lib/rlhf/rewardModel";
import { DPO_REF_PREFIX, dpoLossSpec, dpoPairLoss } from "../../lib/rlhf/dpo";
import { createLoRA, disposeLoRA, loraWeights } from "../../lib/finetune/lora";
import { LORA_BASE_PREFIX, loraLossSpec, sftLoss } from "../../lib/finetune/sft";

const config = gptConfig("tiny", { vocabSize: 11, blockSize: 8 });

function batch(rows: number, seed: number, withMask = false): Record<string, tf.Tensor> {
  const x = tf.randomUniform([rows, 8], 0, 11, "int32", seed);
  const y = tf.randomUniform([rows, 8], 0, 11, "int32", seed + 1);
  if (!withMask) return { x, y };
  // Uneven masks: shards keep different numbers of positions, so the weighting matters.
  const m = new Int32Array(rows * 8);
  for (let r = 0; r < rows; r++) for (let t = 0; t < 8; t++) m[r * 8 + t] = t >= (r * 3) % 7 ? 1 : 0;
  return { x, y, mask: tf.tensor2d(m, [rows, 8], "int32") };
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** The threads' loss and gradients of `batch` equal `want` (one pass of the same loss) to 1e-5; both are disposed. */
async function expectOnePass(dp: DataParallel, batch: Record<string, tf.Tensor>, trained: Record<string, tf.Variable>, want: { value: tf.Scalar; grads: tf.NamedTensorMap }): Promise<void> {
  const got = await dp.gradients(batch, { step: 0, training: true, seed: 1 });
  try {
    assert.ok(Math.abs(got.loss - want.value.dataSync()[0]) < 1e-5, `loss ${got.loss} vs ${want.value.dataSync()[0]}`);
    for (const [n, v] of Object.entries(trained)) assert.ok(maxAbsDiff(got.grads[n], want.grads[v.name]) < 1e-5, `${n}: gradients differ`);
  } finally {
    tf.dispose([want.value, ...Object.values(want.grads), ...Object.values(got.grads)]);
  }
}

describe("dataParallel", function () {
  this.timeout(120_000);
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("shardSizes splits rows as evenly as possible, never an empty shard", () => {
    assert.deepEqual(shardSizes(12, 2), [6, 6]);
    assert.deepEqual(shardSizes(7, 3), [3, 2, 2]);
    assert.deepEqual(shardSizes(1, 2), [1]);
    assert.throws(() => shardSizes(0, 2), /at least one row/);
  });

  it("defaultThreads: 1 on the native backend, up to 2 elsewhere", () => {
    assert.equal(defaultThreads("tensorflow", 8), 1);
    assert.equal(defaultThreads("wasm", 8), 2);
    assert.equal(defaultThreads("wasm", 1), 1);
  });

  for (const withMask of [false, true]) {
    it(`2 threads give the loss and gradients of one pass over the whole batch${withMask ? " (masked, uneven shards)" : ""}`, async () => {
      const params = initGPT(config, { seed: 3 });
      const dp = await DataParallel.start(params, { threads: 2, loss: { builtin: "gpt", options: { config } } });
      try {
        const b = batch(5, 7, withMask); // 5 rows: shards of 3 and 2
        const names = Object.keys(params);
        const ref = tf.variableGrads(() => gptLoss(params, config, b.x, b.y, { mask: b.mask }), names.map((n) => params[n]));
        const got = await dp.gradients(b, { step: 0, training: true, seed: 1 });
        assert.ok(Math.abs(got.loss - ref.value.dataSync()[0]) < 1e-5, `loss ${got.loss} vs ${ref.value.dataSync()[0]}`);
        for (const n of names) {
          const d = maxAbsDiff(got.grads[n], ref.grads[params[n].name]);
          assert.ok(d < 1e-5, `${n}: gradients differ by ${d}`);
        }
        const evalLoss = await dp.loss(b, { step: 0, seed: 1 });
        assert.ok(Math.abs(evalLoss - ref.value.dataSync()[0]) < 1e-5);
        tf.dispose([ref.value, ...Object.values(ref.grads), ...Object.values(got.grads), ...Object.values(b)]);
      } finally {
        await dp.dispose();
        disposeParams(params);
      }
    });
  }

  // Pins the averaging rule: any faster reduction (plain arrays, overlapped with the backward pass) must keep these bits.
  it("the mean of the shards' gradients is bit for bit tfjs's own mul and add of them", async () => {
    const params = initGPT(config, { seed: 4 });
    const dp = await DataParallel.start(params, { threads: 2, loss: { builtin: "gpt", options: { config } } });
    try {
      const b = batch(5, 9, true); // masked, shards of 3 and 2 rows: unequal weights
      const names = Object.keys(params);
      const shard = (start: number, n: number) => {
        const part = Object.fromEntries(Object.entries(b).map(([k, t]) => [k, t.slice(start, n)]));
        const g = tf.variableGrads(() => gptLoss(params, config, part.x, part.y, { mask: part.mask }), names.map((k) => params[k]));
        const kept = tf.sum(tf.cast(part.mask, "float32")).dataSync()[0];
        tf.dispose([g.value, ...Object.values(part)]);
        return { grads: g.grads, kept };
      };
      const a = shard(0, 3), c = shard(3, 2);
      const total = a.kept + c.kept;
      const got = await dp.gradients(b, { step: 0, training: true, seed: 1 });
      for (const n of names) {
        const want = tf.tidy(() => tf.add(tf.mul(a.grads[params[n].name], a.kept / total), tf.mul(c.grads[params[n].name], c.kept / total)));
        assert.deepEqual(Array.from(got.grads[n].dataSync()), Array.from(want.dataSync()), `${n}: not bit for bit`);
        want.dispose();
      }
      tf.dispose([...Object.values(a.grads), ...Object.values(c.grads), ...Object.values(got.grads), ...Object.values(b)]);
    } finally {
      await dp.dispose();
      disposeParams(params);
    }
  });

  it("workers follow the main thread's weights after an update; no tensor leak across steps", async () => {
    const params = initGPT(config, { seed: 4 });
    const dp = await DataParallel.start(params, { threads: 2, loss: { builtin: "gpt", options: { config } } });
    try {
      const b = batch(4, 9);
      const names = Object.keys(params);
      const step = async (i: number) => {
        const { grads } = await dp.gradients(b, { step: i, training: true, seed: 1 });
        tf.tidy(() => names.forEach((n) => params[n].assign(tf.sub(params[n], tf.mul(grads[n], 0.5)))));
        tf.dispose(Object.values(grads));
      };
      await step(0);
      const before = tf.memory().numTensors;
      for (let i = 1; i < 4; i++) await step(i);
      assert.equal(tf.memory().numTensors, before);
      // After the updates, the two threads still agree with a single pass.
      const ref = tf.variableGrads(() => gptLoss(params, config, b.x, b.y), names.map((n) => params[n]));
      const got = await dp.gradients(b, { step: 9, training: true, seed: 1 });
      for (const n of names) assert.ok(maxAbsDiff(got.grads[n], ref.grads[params[n].name]) < 1e-5, n);
      tf.dispose([ref.value, ...Object.values(ref.grads), ...Object.values(got.grads), ...Object.values(b)]);
    } finally {
      await dp.dispose();
      disposeParams(params);
    }
  });

  it("a custom loss module runs in the workers; a bad one is a one-line error", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dp-"));
    const mod = path.join(dir, "loss.js");
    // Mean of squared weights times a batch statistic: gradients are easy to predict.
    fs.writeFileSync(mod, `const tf = require(${JSON.stringify(require.resolve("@tensorflow/tfjs"))});
exports.l2 = (params, batch, options) => tf.mul(tf.mean(tf.square(params.w)), tf.mul(tf.mean(tf.cast(batch.x, "float32")), options.k));
`);
    const params = { w: tf.variable(tf.tensor1d([1, 2, 3])) };
    const dp = await DataParallel.start(params, { threads: 2, loss: { module: mod, name: "l2", options: { k: 2 } } });
    try {
      const x = tf.tensor2d([[1], [1], [3], [3]], [4, 1], "int32"); // shards: mean 1 and mean 3
      const { loss, grads } = await dp.gradients({ x }, { step: 0, training: true, seed: 0 });
      // Each shard's loss is mean(w²)·mean(x)·2; averaged over equal shards: mean(w²)·2·2.
      assert.ok(Math.abs(loss - (14 / 3) * 4) < 1e-4, String(loss));
      assert.deepEqual(Array.from(grads.w.dataSync()).map((v) => Math.round(v * 1e4) / 1e4), [1, 2, 3].map((w) => Math.round(((2 * w) / 3) * 4 * 1e4) / 1e4));
      tf.dispose([x, grads.w]);
    } finally {
      await dp.dispose();
      params.w.dispose();
    }
    await assert.rejects(
      DataParallel.start({ w: tf.variable(tf.zeros([1])) }, { threads: 2, loss: { module: mod, name: "nope" } }),
      /exports no function "nope"/,
    );
    await assert.rejects(DataParallel.start({}, { threads: 2, loss: { module: "relative.js", name: "x" } }), /absolute path/);
  });
});

describe("dataParallel in the trainer", function () {
  this.timeout(120_000);
  it("pretrain with 2 threads: no tensor leak across steps and evaluations, summary says 2 threads", async () => {
    const { pretrain } = await import("../../lib/pretrain/pretrain");
    await initBackend({ quiet: true });
    const counts: Record<number, number> = {};
    const r = await pretrain({
      text: "abcdefghij ".repeat(300), preset: "tiny", maxIters: 30, evalInterval: 10, evalIters: 2, threads: 2, progress: "none", chart: false,
      onStep: (s) => {
        if (s.step === 10 || s.step === 29) counts[s.step] = tf.memory().numTensors;
      },
    });
    assert.equal(r.summary.threads, 2);
    assert.equal(counts[29], counts[10]);
    assert.ok(r.summary.valLoss < Math.log(r.config.vocabSize), `the model learned nothing: ${r.summary.valLoss}`);
    disposeParams(r.params);
  });
});

describe("dataParallel with frozen weights and the later chapters' losses (reward model, DPO, LoRA)", function () {
  this.timeout(120_000);
  before(async () => {
    await initBackend({ quiet: true });
  });
  // Five pairs of different lengths: shards of 3 and 2 pairs, each padded to its own longest row.
  const pairs = {
    prompts: [[1, 2, 3], [4], [5, 6], [7, 8, 9, 10], [2]],
    chosen: [[3, 4], [5, 6, 7], [1], [2, 2], [9, 8, 7]],
    rejected: [[6], [1, 1], [2, 3, 4, 5], [3], [4, 4]],
  };

  it("pairBatchTensors ↔ pairBatchRows: a round trip, also of a shard", () => {
    const t = pairBatchTensors(pairs);
    assert.deepEqual(t.prompts.shape, [5, 4]);
    assert.deepEqual(Array.from(t.chosenLength.dataSync()), [2, 3, 1, 2, 3]);
    assert.deepEqual(pairBatchRows(t), pairs);
    const shard = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, tf.slice(v, [3], [2])]));
    assert.deepEqual(pairBatchRows(shard), { prompts: pairs.prompts.slice(3), chosen: pairs.chosen.slice(3), rejected: pairs.rejected.slice(3) });
    assert.throws(() => pairBatchRows({ prompts: t.prompts }), /no "prompts" and "promptsLength" tensors/);
    tf.dispose([...Object.values(t), ...Object.values(shard)]);
  });

  it("withPrefix and splitPrefix: frozen weights renamed to go beside the trained ones, and back", () => {
    const both = { ...withPrefix("ref/", { a: 1, b: 2 }), a: 3 };
    assert.deepEqual(both, { "ref/a": 1, "ref/b": 2, a: 3 });
    assert.deepEqual(splitPrefix(both, "ref/"), { prefixed: { a: 1, b: 2 }, rest: { a: 3 } });
  });

  it("reward model: 2 threads give the Bradley–Terry loss and gradients of one pass", async () => {
    const gpt = initGPT(config, { seed: 5 });
    const params = initRewardModel(gpt, config, 5);
    const dp = await DataParallel.start(params, { threads: 2, loss: rewardLossSpec(config, 0) });
    const b = pairBatchTensors(pairs);
    try {
      const want = tf.variableGrads(() => rewardPairLoss(params, config, pairs.prompts, pairs.chosen, pairs.rejected, 0).loss, Object.values(params));
      await expectOnePass(dp, b, params, want);
    } finally {
      await dp.dispose();
      tf.dispose(Object.values(b));
      disposeParams(gpt);
      disposeParams(params);
    }
  });

  it("DPO: the frozen reference reaches the workers once; 2 threads give the loss and gradients of one pass", async () => {
    const policy = initGPT(config, { seed: 6 });
    const other = initGPT(config, { seed: 7 });
    const ref = copyParams(other, false);
    disposeParams(other);
    const dp = await DataParallel.start(policy, { threads: 2, loss: dpoLossSpec(config, 0.5, 0), frozen: withPrefix(DPO_REF_PREFIX, ref) });
    const b = pairBatchTensors(pairs);
    try {
      const want = tf.variableGrads(() => dpoPairLoss(policy, ref, config, pairs.prompts, pairs.chosen, pairs.rejected, 0.5, 0).loss, Object.values(policy));
      // Different policy and reference: a loss far from log 2, so a worker that ignored the reference would show.
      assert.ok(Math.abs(want.value.dataSync()[0] - Math.log(2)) > 1e-3);
      await expectOnePass(dp, b, policy, want);
    } finally {
      await dp.dispose();
      tf.dispose(Object.values(b));
    }
    await assert.rejects(
      DataParallel.start(policy, { threads: 2, loss: dpoLossSpec(config, 0.5, 0), frozen: ref }),
      /frozen weight "[^"]+" has the name of a trained one/,
    );
    disposeParams(policy);
    disposeParams(ref);
  });
  it("LoRA: the frozen model reaches the workers once; 2 threads give the masked loss and the adapters' gradients of one pass", async () => {
    const base = initGPT(config, { seed: 8 });
    const lora = createLoRA(base, config, { rank: 2, trainNewTokens: 2, seed: 8 });
    // B starts at zero (the adapters change nothing yet): move it so the gradients of A are not zero.
    tf.tidy(() => Object.entries(lora.params).forEach(([k, v]) => k.endsWith("lora_B") && v.assign(tf.randomNormal(v.shape, 0, 0.1, "float32", 9))));
    const dp = await DataParallel.start(lora.params, { threads: 2, loss: loraLossSpec(config, lora), frozen: withPrefix(LORA_BASE_PREFIX, base) });
    const b = batch(5, 11, true);
    try {
      const want = tf.variableGrads(() => sftLoss(loraWeights(base, lora), config, b as never), Object.values(lora.params));
      for (const [n, v] of Object.entries(lora.params)) {
        assert.ok(tf.tidy(() => tf.max(tf.abs(want.grads[v.name])).dataSync()[0]) > 0, `${n}: a zero gradient tests nothing`);
      }
      await expectOnePass(dp, b, lora.params, want);
    } finally {
      await dp.dispose();
      tf.dispose(Object.values(b));
      disposeLoRA(lora);
      disposeParams(base);
    }
  });
});
