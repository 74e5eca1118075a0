import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { dpoLoss, dpoPairLoss, sequenceLogProbs } from "../../lib/rlhf/dpo";
import { copyParams, gptConfig, initGPT, tokenLogProbs } from "../../lib/gpt/gpt";
import { AdamW } from "../../lib/core/optim";

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

describe("dpo", function () {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("loss, implicit rewards, accuracy and margin match a hand computation", () => {
    // β = 0.1; summed log-probs per pair:
    //   pair 0: π_c −5 (ref −6), π_r −7 (ref −6): r_c = 0.1·1 = 0.1, r_r = 0.1·(−1) = −0.1, margin 0.2
    //           loss = −log σ(0.2) = log(1 + e^−0.2) = 0.5981389
    //   pair 1: π_c −3 (ref −3), π_r −2 (ref −3): r_c = 0, r_r = 0.1, margin −0.1
    //           loss = −log σ(−0.1) = log(1 + e^0.1) = 0.7443967
    //   mean loss 0.6712678, accuracy 1/2, mean margin 0.05
    const pc = tf.tensor1d([-5, -3]), pr = tf.tensor1d([-7, -2]), rc = tf.tensor1d([-6, -3]), rr = tf.tensor1d([-6, -3]);
    const out = dpoLoss(pc, pr, rc, rr, 0.1);
    close([out.loss.dataSync()[0]], [0.6712678], 1e-6);
    close([out.loss.dataSync()[0]], [(Math.log1p(Math.exp(-0.2)) + Math.log1p(Math.exp(0.1))) / 2], 1e-6);
    close(out.rewardsChosen.dataSync(), [0.1, 0], 1e-6);
    close(out.rewardsRejected.dataSync(), [-0.1, 0.1], 1e-6);
    close([out.accuracy.dataSync()[0]], [0.5]);
    close([out.margin.dataSync()[0]], [0.05], 1e-6);
    // gradient: ∂L/∂π_c = −β·σ(−margin)/N < 0 (descent raises the chosen log-prob), ∂L/∂π_r = −∂L/∂π_c
    const [gc, gr] = tf.grads((a: tf.Tensor, b: tf.Tensor) => dpoLoss(a as tf.Tensor1D, b as tf.Tensor1D, rc, rr, 0.1).loss)([pc, pr]);
    const want = [0.2, -0.1].map((m) => (-0.1 * sigmoid(-m)) / 2);
    close(gc.dataSync(), want, 1e-6);
    close(gr.dataSync(), want.map((x) => -x), 1e-6);
    assert.ok(gc.dataSync().every((x) => x < 0));
    assert.throws(() => dpoLoss(pc, tf.tensor1d([1]), rc, rr), /same shape/);
  });

  it("sequenceLogProbs sums the masked token log-probs", () => {
    const config = gptConfig("tiny");
    const params = initGPT(config, { seed: 1 });
    const idx = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 0]], [2, 4], "int32");
    const targets = tf.tensor2d([[2, 3, 4, 5], [6, 7, 8, 0]], [2, 4], "int32");
    const mask = tf.tensor2d([[0, 1, 1, 1], [0, 0, 1, 0]]);
    const lp = tokenLogProbs(params, config, idx, targets).arraySync();
    close(sequenceLogProbs(params, config, idx, targets, mask).dataSync(), [lp[0][1] + lp[0][2] + lp[0][3], lp[1][2]], 1e-5);
    tf.dispose(Object.values(params));
  });

  it("starts at log 2 (policy = reference) and its updates push the chosen answer up", () => {
    const config = gptConfig("tiny");
    const sft = initGPT(config, { seed: 2 });
    const policy = copyParams(sft, true), ref = copyParams(sft, false);
    const prompts = [[1, 2], [3]], chosen = [[9, 9], [9, 4]], rejected = [[5, 6], [7, 7, 7]];
    const first = dpoPairLoss(policy, ref, config, prompts, chosen, rejected, 0.1);
    close([first.loss.dataSync()[0]], [Math.LN2], 1e-6);
    close([first.margin.dataSync()[0]], [0], 1e-6);
    const names = Object.keys(policy);
    const opt = new AdamW(policy, { lr: 1e-2, weightDecay: 0 });
    const count = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) {
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => dpoPairLoss(policy, ref, config, prompts, chosen, rejected, 0.1).loss, names.map((n) => policy[n]));
        const named: Record<string, tf.Tensor> = {};
        for (const n of names) named[n] = grads[policy[n].name];
        opt.step(named);
      });
    }
    assert.equal(tf.memory().numTensors, count);
    const after = dpoPairLoss(policy, ref, config, prompts, chosen, rejected, 0.1);
    assert.ok(after.loss.dataSync()[0] < Math.LN2 - 0.05, `loss ${after.loss.dataSync()[0]}`);
    assert.ok(after.rewardsChosen.dataSync().every((x) => x > 0), "chosen log-probs went up relative to the reference");
    assert.equal(after.accuracy.dataSync()[0], 1);
  });
});
