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

import { AdamW } from "../../lib/core/optim";
import { createRng } from "../../lib/core/random";
import { copyParams, gptConfig, initGPT } from "../../lib/gpt/gpt";
import { disposeParams } from "../../lib/pretrain/pretrain";
import { chatCodec } from "../../lib/rlhf/chat";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { chatTokenizer } from "../../lib/finetune/sft";
import { DEFAULT_GRPO_HYPER, evaluateVerifiable, grpoIteration, passAtK, runGRPO } from "../../lib/rlvr/grpo";

describe("GRPO's loop and pass@k (chapter 11)", function () {
  this.timeout(60_000);
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("pass@k by hand: the chance that k of n samples include one of the c right ones", () => {
    close(passAtK(4, 1, 2), 1 - 3 / 6); // 1 − C(3,2)/C(4,2)
    close(passAtK(10, 5, 1), 0.5);
    assert.equal(passAtK(5, 0, 3), 0);
    assert.equal(passAtK(5, 3, 3), 1, "fewer wrong samples than k: a right one is always drawn");
    assert.throws(() => passAtK(4, 5, 1), /need integers 1 <= k <= n and 0 <= c <= n, got n=4, c=5, k=1/);
  });

  function tinyChat() {
    const tokenizer = chatTokenizer(CharTokenizer.fromText("abcdefgh ?."));
    const config = gptConfig("tiny", { vocabSize: tokenizer.vocabSize, blockSize: 32 });
    return { tokenizer, config, codec: chatCodec(tokenizer, 32), sft: initGPT(config, { seed: 4 }) };
  }

  it("an iteration: rewards from the checker, stats in range, reproducible, no tensor left behind", () => {
    const { config, codec, sft } = tinyChat();
    const prompts = [{ question: "ab?", check: (a: string) => a.length % 2 === 0 }, { question: "cd?", check: (a: string) => a.includes("a") }];
    const hyper = { ...DEFAULT_GRPO_HYPER, groupSize: 4, maxNewTokens: 6, beta: 0.04 };
    const run = () => {
      const policy = copyParams(sft);
      const opt = new AdamW(policy, { lr: 1e-2, weightDecay: 0 });
      const rng = createRng(7);
      const first = grpoIteration(policy, sft, opt, config, codec, prompts, hyper, rng);
      const before = tf.memory().numTensors;
      const second = grpoIteration(policy, sft, opt, config, codec, prompts, hyper, rng);
      assert.equal(tf.memory().numTensors, before, "no tensor leak across iterations");
      disposeParams(policy);
      opt.dispose?.();
      return [first, second];
    };
    const a = run(), b = run();
    assert.deepEqual(a, b, "same seed, same numbers");
    for (const r of a) {
      assert.equal(r.answers.length, 8);
      r.rewards.forEach((x, i) => assert.equal(x, prompts[Math.floor(i / 4)].check(r.answers[i]) ? 1 : 0, "the reward is the checker's verdict"));
    }
    for (const s of a.map((r) => r.stats)) {
      for (const k of ["reward", "solvedGroups", "mixedGroups", "clipFraction"] as const) assert.ok(s[k] >= 0 && s[k] <= 1, `${k} ${s[k]}`);
      assert.ok(s.kl >= 0 && s.length >= 1 && s.length <= 6);
    }
    disposeParams(sft);
  });

  it("a group whose answers all get the same reward teaches nothing: the weights do not move (no KL term)", () => {
    const { config, codec, sft } = tinyChat();
    const policy = copyParams(sft);
    const opt = new AdamW(policy, { lr: 1e-2, weightDecay: 0 });
    const s = grpoIteration(policy, undefined, opt, config, codec, [{ question: "ab?", check: () => true }], { ...DEFAULT_GRPO_HYPER, groupSize: 4, maxNewTokens: 4, beta: 0 }, createRng(1)).stats;
    assert.equal(s.reward, 1);
    assert.equal(s.mixedGroups, 0);
    for (const [n, p] of Object.entries(policy)) assert.deepEqual(Array.from(p.dataSync()), Array.from(sft[n].dataSync()), n);
    disposeParams(policy);
    disposeParams(sft);
  });

  it("evaluation: pass@1 with its interval over prompts, pass@k for every k, by hand", () => {
    const { config, codec, sft } = tinyChat();
    const even = (a: string) => a.length % 2 === 0;
    const prompts = [{ question: "ab?", check: () => true }, { question: "ab?", check: () => false }, { question: "ab?", check: even }];
    const ev = evaluateVerifiable(sft, config, codec, prompts, { samples: 4, maxNewTokens: 4, seed: 3 });
    const c2 = ev.answers[2].filter(even).length;
    assert.ok(c2 > 0 && c2 < 4, `a mixed prompt (${ev.answers[2]})`);
    assert.deepEqual(ev.correct, [4, 0, c2]);
    assert.deepEqual(evaluateVerifiable(sft, config, codec, prompts, { samples: 4, maxNewTokens: 4, seed: 3 }).answers, ev.answers, "same seed, same answers");
    const per = [1, 0, c2 / 4], mean = per.reduce((x, y) => x + y) / 3;
    const se = Math.sqrt(per.reduce((s, x) => s + (x - mean) ** 2, 0) / 2 / 3);
    close(ev.pass1.mean, mean, 1e-12);
    close(ev.pass1.hi - ev.pass1.mean, 1.96 * se, 1e-12);
    assert.equal(ev.pass1.n, 3);
    assert.equal(ev.passAt.length, 4);
    [1, 2, 3, 4].forEach((k) => close(ev.passAt[k - 1], (1 + 0 + passAtK(4, c2, k)) / 3, 1e-12));
    assert.throws(() => evaluateVerifiable(sft, config, codec, prompts, { samples: 0 }), /samples must be an integer >= 1, got 0/);
    assert.ok(Number.isNaN(ev.kl));
    close(evaluateVerifiable(sft, config, codec, prompts, { samples: 4, maxNewTokens: 4, seed: 3, reference: sft }).kl, 0, 1e-9);
    disposeParams(sft);
  });

  it("runGRPO: one row of stats per iteration, the SFT model untouched, reproducible, nothing left behind", async () => {
    const { config, codec, sft } = tinyChat();
    const snapshot = Object.fromEntries(Object.entries(sft).map(([n, p]) => [n, Array.from(p.dataSync())]));
    const prompts = ["ab?", "cd?", "ef?"].map((q) => ({ question: q, check: (a: string) => a.startsWith("a") }));
    const run = async () => {
      const before = tf.memory().numTensors;
      const lines: string[] = [];
      const r = await runGRPO({ sft, config, codec, prompts, iterations: 3, promptsPerIteration: 2, groupSize: 4, maxNewTokens: 5, lr: 1e-2, seed: 5, log: (l) => lines.push(l) });
      const weights = Object.values(r.policy).map((p) => Array.from(p.dataSync()));
      disposeParams(r.policy);
      assert.equal(tf.memory().numTensors, before, "the policy and the optimizer's moments disposed, nothing else left");
      assert.equal(lines.length, 3);
      assert.match(lines[0], /^iteration 1\/3: reward [0-9.]+, groups with a right answer/);
      return { history: r.history.map(({ seconds, ...s }) => s), weights };
    };
    const a = await run(), b = await run();
    assert.deepEqual(a.history.map((s) => s.iteration), [1, 2, 3]);
    assert.deepEqual(a, b, "same seed, same run");
    for (const [n, p] of Object.entries(sft)) assert.deepEqual(Array.from(p.dataSync()), snapshot[n], `${n}: the SFT model is not trained`);
    await assert.rejects(runGRPO({ sft, config, codec, prompts: [], iterations: 1 }), /runGRPO: no training prompts/);
    disposeParams(sft);
  });

  it("it learns: on a task the untrained model solves by chance, the reward rises (a sign error anywhere would make it fall)", async () => {
    const { config, codec, sft } = tinyChat();
    const prompts = ["ab?", "cd?", "ef?", "gh?"].map((q) => ({ question: q, check: (a: string) => a.startsWith("a") }));
    const r = await runGRPO({ sft, config, codec, prompts, iterations: 40, promptsPerIteration: 4, groupSize: 8, maxNewTokens: 3, lr: 1e-2, seed: 1 });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const early = mean(r.history.slice(0, 5).map((s) => s.reward)), late = mean(r.history.slice(-5).map((s) => s.reward));
    assert.ok(early < 0.3, `by chance at first: ${early}`);
    assert.ok(late > 0.8, `learned: ${early} → ${late}`);
    const ev = evaluateVerifiable(r.policy, config, codec, prompts, { samples: 8, maxNewTokens: 3, seed: 9, reference: sft });
    assert.ok(ev.pass1.mean > 0.8 && ev.kl > 0, `pass@1 ${ev.pass1.mean}, KL ${ev.kl}`);
    disposeParams(r.policy);
    disposeParams(sft);
  });
});

