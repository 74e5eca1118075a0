import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { groupAdvantages, grpoLoss } from "../../lib/rlvr/grpo";

const close = (a: number, b: number, tol = 1e-5) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

describe("GRPO (chapter 11)", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("group advantages by hand: one right answer in four, a group all alike, no scaling", () => {
    // [1, 0, 0, 0]: mean 1/4, std √(3/16) = √3/4 → (1 − 1/4)/(√3/4) = √3, (0 − 1/4)/(√3/4) = −1/√3
    const a = groupAdvantages([1, 0, 0, 0, 1, 1, 1, 1], 4, { eps: 0 });
    [Math.sqrt(3), -1 / Math.sqrt(3), -1 / Math.sqrt(3), -1 / Math.sqrt(3)].forEach((v, i) => close(a[i], v, 1e-12));
    assert.deepEqual(a.slice(4).map((x) => (Number.isNaN(x) ? "NaN" : x)), ["NaN", "NaN", "NaN", "NaN"], "eps 0 on a constant group: 0/0");
    assert.deepEqual(groupAdvantages([1, 1, 1, 1], 4), [0, 0, 0, 0], "with the default eps a group all alike teaches nothing");
    assert.deepEqual(groupAdvantages([1, 0, 0.5, 0.5], 2, { scale: false }), [0.5, -0.5, 0, 0]);
    assert.throws(() => groupAdvantages([1, 0, 1], 2), /3 rewards are not whole groups of 2/);
    assert.throws(() => groupAdvantages([1], 1), /groupSize must be an integer >= 2/);
  });

  it("the loss by hand: clipping, per-answer means over masked tokens, the k3 KL", () => {
    const newLogp = tf.tensor2d([[0.1, 0], [0, 0]]), oldLogp = tf.zeros([2, 2]) as tf.Tensor2D;
    const mask = tf.tensor2d([[1, 1], [1, 0]]), adv = tf.tensor1d([2, -1]);
    // Answer 1: ρ = e^0.1 = 1.105 > 1.05 → min(2.210, 2.1) = 2.1 (clipped), then 2 → mean 2.05. Answer 2: −1.
    const r = grpoLoss(newLogp as tf.Tensor2D, oldLogp, adv, mask as tf.Tensor2D, { clipEps: 0.05 });
    close(r.loss.dataSync()[0], -(2.05 - 1) / 2);
    close(r.clipFraction.dataSync()[0], 1 / 3);
    close(r.kl.dataSync()[0], 0);
    // KL to ref [[0, 0], [0.5, 0]]: d = ref − new = [[−0.1, 0], [0.5, masked]]; k3 = e^d − d − 1
    const k3a = Math.exp(-0.1) + 0.1 - 1, k3b = Math.exp(0.5) - 0.5 - 1;
    const ref = tf.tensor2d([[0, 0], [0.5, 0]]);
    const withKl = grpoLoss(newLogp as tf.Tensor2D, oldLogp, adv, mask as tf.Tensor2D, { clipEps: 0.05, beta: 0.1, refLogp: ref as tf.Tensor2D });
    close(withKl.kl.dataSync()[0], (k3a / 2 + k3b) / 2);
    close(withKl.loss.dataSync()[0], -((2.05 - 0.1 * (k3a / 2)) + (-1 - 0.1 * k3b)) / 2);
  });

  it("its gradient matches finite differences, and repeated calls leave no tensor behind", () => {
    const oldLogp = tf.tensor2d([[-1, -2, -0.5], [-0.3, -1.5, -2]]);
    const ref = tf.tensor2d([[-1.2, -1.8, -0.4], [-0.2, -1.6, -2.2]]);
    const mask = tf.tensor2d([[1, 1, 1], [1, 1, 0]]), adv = tf.tensor1d([0.8, -1.3]);
    const base = [[-0.9, -2.1, -0.45], [-0.35, -1.2, -2]];
    const f = (x: tf.Tensor) => grpoLoss(x as tf.Tensor2D, oldLogp as tf.Tensor2D, adv, mask as tf.Tensor2D, { beta: 0.05, refLogp: ref as tf.Tensor2D }).loss;
    const g = tf.grad(f)(tf.tensor2d(base)).arraySync() as number[][];
    const e = 1e-3;
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) {
      const plus = base.map((r) => [...r]), minus = base.map((r) => [...r]);
      plus[i][j] += e;
      minus[i][j] -= e;
      const fd = (f(tf.tensor2d(plus)).dataSync()[0] - f(tf.tensor2d(minus)).dataSync()[0]) / (2 * e);
      assert.ok(Math.abs(fd - g[i][j]) < 2e-3, `[${i}][${j}]: ${g[i][j]} vs ${fd}`);
    }
    assert.equal(g[1][2], 0, "a masked token gets no gradient");
    const before = tf.memory().numTensors;
    for (let k = 0; k < 3; k++) tf.dispose(Object.values(grpoLoss(oldLogp as tf.Tensor2D, oldLogp as tf.Tensor2D, adv, mask as tf.Tensor2D, { refLogp: ref as tf.Tensor2D })));
    assert.equal(tf.memory().numTensors, before);
  });
});
