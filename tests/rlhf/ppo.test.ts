import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { copyParams, gptConfig, initGPT } from "../../lib/gpt/gpt";
import {
  AdaptiveKLController, createPPO, initPolicy, rollout, disposePPO, entropy, FixedKLController, gae, gaeBatch, klPerToken, policyOutputs,
  leaveOneOut, ppoPolicyLoss, ppoRewards, ppoStep, ppoUpdate, ppoValueLoss, stopGradient, whiten, type PtxSource,
} from "../../lib/rlhf/ppo";
import { gptLoss } from "../../lib/gpt/gpt";
import { createRng } from "../../lib/core/random";
import { generateBatch, responseBatch } from "../../lib/gpt/rollout";
import { generate } from "../../lib/gpt/sampling";

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  assert.equal(a.length, b.length, `lengths ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `[${i}] ${a[i]} vs ${b[i]} (all: ${Array.from(a)} vs ${Array.from(b)})`);
};
const num = (t: tf.Tensor) => t.dataSync()[0];

describe("ppo", function () {
  before(async () => {
    await initBackend({ quiet: true });
  });

  describe("GAE", () => {
    it("matches a hand-computed example", () => {
      // rewards [1, 0, 2], values [0.5, 0.4, 0.3], γ = 0.9, λ = 0.8 (γλ = 0.72), V after the end = 0:
      //   δ2 = 2 + 0.9·0   − 0.3 = 1.7            A2 = 1.7
      //   δ1 = 0 + 0.9·0.3 − 0.4 = −0.13          A1 = −0.13 + 0.72·1.7   = 1.094
      //   δ0 = 1 + 0.9·0.4 − 0.5 = 0.86           A0 = 0.86  + 0.72·1.094 = 1.64768
      //   returns = A + V = [2.14768, 1.494, 2.0]
      const { advantages, returns } = gae([1, 0, 2], [0.5, 0.4, 0.3], 0.9, 0.8);
      close(advantages, [1.64768, 1.094, 1.7], 1e-12);
      close(returns, [2.14768, 1.494, 2.0], 1e-12);
    });

    it("skips masked positions (prompt before, padding after) and has the Monte-Carlo limit", () => {
      const { advantages, returns } = gae([9, 1, 0, 2, 9], [9, 0.5, 0.4, 0.3, 9], 0.9, 0.8, [0, 1, 1, 1, 0]);
      close(advantages, [0, 1.64768, 1.094, 1.7, 0], 1e-12);
      close(returns, [0, 2.14768, 1.494, 2.0, 0], 1e-12);
      // γ = λ = 1: A_t = (sum of rewards from t) − V_t
      close(gae([1, 0, 2], [0.5, 0.4, 0.3], 1, 1).advantages, [3 - 0.5, 2 - 0.4, 2 - 0.3], 1e-12);
      // λ = 0: one-step TD error
      close(gae([1, 0, 2], [0.5, 0.4, 0.3], 0.9, 0).advantages, [0.86, -0.13, 1.7], 1e-12);
      const b = gaeBatch([[1, 0, 2]], [[0.5, 0.4, 0.3]], [[1, 1, 1]], 0.9, 0.8);
      close(b.advantages[0], [1.64768, 1.094, 1.7], 1e-12);
    });
  });

  describe("KL and rewards", () => {
    it("estimators k1, k2, k3 (Schulman's note)", () => {
      const logp = [-1, -2], ref = [-1.5, -1]; // log r = ref − logp = [−0.5, 1]
      close(klPerToken(logp, ref, "k1"), [0.5, -1], 1e-12);
      close(klPerToken(logp, ref, "k2"), [0.125, 0.5], 1e-12);
      close(klPerToken(logp, ref, "k3"), [Math.exp(-0.5) - 1 + 0.5, Math.E - 1 - 1], 1e-12); // (r − 1) − log r ≥ 0
      close(klPerToken([-3], [-3], "k3"), [0]);
    });

    it("per-token reward: −β·KL on response tokens, the score on the last one", () => {
      const r = ppoRewards([2], [[0, -1, -2, 0]], [[0, -1.5, -1, 0]], [[0, 1, 1, 0]], 0.1);
      close(r.rewards[0], [0, -0.05, 0.1 + 2, 0], 1e-12);
      close(r.kl, [-0.5], 1e-12);
      close(r.klReward, [0.05], 1e-12);
    });

    it("adaptive KL controller (Ziegler et al.) and the fixed one", () => {
      const c = new AdaptiveKLController(0.1, 6, 10000);
      c.update(9, 256); // KL/target − 1 = 0.5, clipped to 0.2
      close([c.value], [0.1 * (1 + (0.2 * 256) / 10000)], 1e-15);
      const before = c.value;
      c.update(5.4, 100); // −0.1
      close([c.value], [before * (1 - (0.1 * 100) / 10000)], 1e-15);
      const f = new FixedKLController(0.05);
      f.update();
      assert.equal(f.value, 0.05);
    });

    it("whitens over the masked entries only", () => {
      close(whiten([[1, 2, 3, 100]], [[1, 1, 1, 0]])[0], [-1, 0, 1, 0], 1e-6);
    });
  });

  describe("losses", () => {
    it("clipped policy objective: value, clip fraction, approx KL and gradient", () => {
      // ratios ρ and advantages A per token (ε = 0.2), the last token masked out:
      //   ρ 1.5, A  1: max(−1.5, −1.2) = −1.2  clipped (gradient 0)
      //   ρ 0.5, A  1: max(−0.5, −0.8) = −0.5  unclipped
      //   ρ 0.5, A −2: max( 1.0,  1.6) =  1.6  clipped (gradient 0)
      //   ρ 1.1, A −1: max( 1.1,  1.1) =  1.1  unclipped (inside the range)
      //   loss = (−1.2 − 0.5 + 1.6 + 1.1)/4 = 0.25, clip fraction 2/4
      const ratios = [1.5, 0.5, 0.5, 1.1, 3];
      const oldLogp = tf.tensor2d([[-1, -1, -1, -1, -1]]);
      const newLogp = tf.tensor2d([ratios.map((r) => -1 + Math.log(r))]);
      const adv = tf.tensor2d([[1, 1, -2, -1, 100]]);
      const mask = tf.tensor2d([[1, 1, 1, 1, 0]]);
      const r = ppoPolicyLoss(newLogp, oldLogp, adv, mask, 0.2);
      close([num(r.loss)], [0.25], 1e-6);
      close([num(r.clipFraction)], [0.5], 1e-7);
      const d = ratios.slice(0, 4).map(Math.log);
      close([num(r.approxKL)], [(0.5 * d.reduce((s, x) => s + x * x, 0)) / 4], 1e-6);
      // ∂loss/∂logp = −A·ρ/4 where unclipped, 0 where clipped or masked
      const g = tf.grad((x: tf.Tensor) => ppoPolicyLoss(x, oldLogp, adv, mask, 0.2).loss)(newLogp);
      close(g.dataSync(), [0, -0.5 / 4, 0, 1.1 / 4, 0], 1e-6);
      tf.dispose([oldLogp, newLogp, adv, mask, r.loss, r.clipFraction, r.approxKL, g]);
    });

    it("clipped value loss", () => {
      //   V 1.0 (old 0.5 → clipped 0.7), R 1: max(0, 0.09) = 0.09   clipped term active
      //   V 0.0 (clipped 0.3),           R 1: max(1, 0.49) = 1
      //   V 0.5 (clipped 0.5),           R 0: 0.25
      //   loss = ½·(0.09 + 1 + 0.25)/3 = 0.22333…
      const t = (xs: number[]) => tf.tensor2d([xs]);
      const r = ppoValueLoss(t([1, 0, 0.5]), t([0.5, 0.5, 0.5]), t([1, 1, 0]), t([1, 1, 1]), 0.2);
      close([num(r.loss)], [(0.5 * 1.34) / 3], 1e-6);
      close([num(r.clipFraction)], [1 / 3], 1e-6);
    });

    it("entropy of uniform logits is ln V", () => {
      close(entropy(tf.zeros([2, 3, 4])).dataSync(), new Array(6).fill(Math.log(4)), 1e-6);
      close(entropy(tf.tensor2d([[0, -1e9]])).dataSync(), [0], 1e-6);
    });
  });

  describe("rollout", () => {
    const config = gptConfig("tiny");

    it("lays out prompt + response for teacher forcing", () => {
      const rb = responseBatch([[1, 2], [3]], [[4, 5], [6]], 8, 0);
      assert.deepEqual(rb.inputs, [[1, 2, 4], [3, 6, 0]]);
      assert.deepEqual(rb.targets, [[2, 4, 5], [6, 0, 0]]);
      assert.deepEqual(rb.mask, [[0, 1, 1], [1, 0, 0]]);
      assert.deepEqual(rb.lengths, [4, 2]);
      // too long for blockSize 4: the prompt loses its start
      const c = responseBatch([[1, 2, 3, 4]], [[5, 6]], 4);
      assert.deepEqual([c.inputs[0], c.targets[0], c.mask[0]], [[3, 4, 5], [4, 5, 6], [0, 1, 1]]);
    });

    it("batched greedy sampling with a KV cache equals one-by-one generate(), rows of different lengths", () => {
      const params = initGPT(config, { seed: 3, std: 0.5 });
      const prompts = [[1], [2, 3, 4], [5, 6], [7, 8, 9, 10, 11, 12, 13]];
      const g = generateBatch(params, config, prompts, { maxNewTokens: 5, temperature: 0 });
      prompts.forEach((p, i) => {
        const one = generate(params, config, p, { maxNewTokens: Math.min(5, config.blockSize - p.length), temperature: 0 });
        assert.deepEqual(g.responses[i], one, `row ${i}`);
      });
      assert.equal(g.responses[3].length, 1); // 7 prompt tokens + 1 = the context
      // stopping at the end-of-turn id: the stop token is kept, the row ends
      const stopId = g.responses[0][1];
      const s = generateBatch(params, config, prompts, { maxNewTokens: 5, temperature: 0, stopId });
      assert.deepEqual(s.responses[0], g.responses[0].slice(0, g.responses[0].indexOf(stopId) + 1));
      assert.equal(s.ended[0], true);
      tf.dispose(Object.values(params));
    });
  });

  describe("rollout with scores", () => {
    it("records logp, reference logp, values and a mask aligned with the sampled responses", () => {
      const config = gptConfig("tiny");
      const sft = initGPT(config, { seed: 4 });
      const policy = initPolicy(sft, config, 1), ref = copyParams(sft, false);
      const r = rollout(policy, ref, config, [[1, 2, 3], [4]], { maxNewTokens: 3, seed: 9 });
      r.responses.forEach((resp, b) => {
        assert.equal(r.batch.mask[b].reduce((x, y) => x + y, 0), resp.length);
        const at = r.batch.mask[b].map((m, t) => (m ? r.batch.targets[b][t] : -1)).filter((x) => x >= 0);
        assert.deepEqual(at, resp); // the masked targets are the response
      });
      // policy = a copy of the reference at the start: same log-probs, KL 0
      r.logp.forEach((row, b) => close(row, r.refLogp[b], 1e-6));
      assert.ok(r.logp.flat().every((x) => x <= 0) && r.values.flat().every(Number.isFinite));
      tf.dispose([...Object.values(sft), ...Object.values(policy), ...Object.values(ref)]);
    });
  });

  describe("critic", () => {
    it("stopGradient passes values forward and no gradient back", () => {
      const x = tf.tensor1d([1, -2, 3]);
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(stopGradient(v), v)))(x); // d/dv Σ c·v with c = v held fixed → c
      close(g.dataSync(), [1, -2, 3]);
      tf.dispose([x, g]);
    });

    for (const critic of ["detached", "shared"] as const) {
      it(`the value loss trains ${critic === "detached" ? "the value head alone" : "the transformer too"} (critic: "${critic}")`, () => {
        const config = gptConfig("tiny");
        const sft = initGPT(config, { seed: 5 });
        const policy = initPolicy(sft, config, 1);
        const inputs = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32"), targets = tf.tensor2d([[2, 3, 4, 5]], [1, 4], "int32");
        const names = Object.keys(policy);
        const { grads } = tf.variableGrads(() => {
          const out = policyOutputs(policy, config, inputs, targets, critic);
          return tf.sum(tf.square(tf.sub(out.values, 3))) as tf.Scalar; // a value loss only
        }, names.map((n) => policy[n]));
        const norm = (n: string) => Math.sqrt(num(tf.tidy(() => tf.sum(tf.square(grads[policy[n].name])))));
        assert.ok(norm("value.weight") > 0 && norm("value.bias") > 0);
        const trunk = names.filter((n) => !n.startsWith("value.")).map(norm);
        if (critic === "detached") assert.deepEqual(trunk, trunk.map(() => 0));
        else assert.ok(trunk.some((g) => g > 0));
        tf.dispose([...Object.values(grads), inputs, targets, ...Object.values(sft), ...Object.values(policy)]);
      });
    }
  });

  describe("zero points and PPO-ptx", () => {
    it("leaveOneOut: each score minus the mean of its siblings' (hand-computed); a lone score stays", () => {
      close(leaveOneOut([1, 2, 3, 10], ["a", "a", "a", "b"]), [1 - 2.5, 2 - 2, 3 - 1.5, 10]);
      close(leaveOneOut([4, 6], ["p", "p"]), [-2, 2]);
    });

    it("ptx alone trains on its batch: with zero advantages the policy moves only with ptx, and the SFT loss of the batch falls", function () {
      this.timeout(60000);
      const config = gptConfig("tiny");
      const sft = initGPT(config, { seed: 4 });
      const x = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 8]], [2, 4], "int32"), y = tf.tensor2d([[2, 3, 4, 5], [6, 7, 8, 9]], [2, 4], "int32");
      const m = tf.tensor2d([[0, 1, 1, 1], [0, 0, 1, 1]], [2, 4], "float32");
      const batch = () => ({ x: x.clone(), y: y.clone(), mask: m.clone() });
      const sftLossOf = (params: Record<string, tf.Tensor>) => tf.tidy(() => gptLoss(params as never, config, x, y, { mask: m }).dataSync()[0]);
      const run = (ptx?: PtxSource) => {
        const trainer = createPPO(sft, config, { generation: { maxNewTokens: 3, temperature: 1 }, epochs: 1, vfCoef: 0, seed: 1, optimizer: { lr: 1e-2 }, ptx });
        const ro = rollout(trainer.policy, trainer.ref, config, [[1], [2]], { maxNewTokens: 3, temperature: 1, seed: 2 });
        const zeros = ro.batch.mask.map((r) => r.map(() => 0));
        const before = sftLossOf(trainer.policy);
        const n0 = tf.memory().numTensors;
        const stats = ppoUpdate(trainer.policy, config, trainer.optimizer, ro, zeros, ro.values, trainer.hyper, createRng(3), ptx);
        assert.equal(tf.memory().numTensors, n0, "no tensor left behind");
        const after = sftLossOf(trainer.policy);
        disposePPO(trainer);
        return { before, after, stats };
      };
      const plain = run();
      assert.equal(plain.after, plain.before, "zero advantages, no value loss: nothing moves");
      assert.equal(plain.stats.ptxLoss, undefined);
      const withPtx = run({ coef: 0.5, next: batch });
      assert.ok(Math.abs(withPtx.stats.ptxLoss! - withPtx.before) < 1e-5, `ptxLoss ${withPtx.stats.ptxLoss} is the batch's SFT loss ${withPtx.before} before the step`);
      assert.ok(withPtx.after < withPtx.before, `SFT loss ${withPtx.before} → ${withPtx.after}`);
      tf.dispose([x, y, m, ...Object.values(sft)]);
    });
  });

  describe("ppoStep", () => {
    it("runs iterations without leaking tensors, with finite stats", function () {
      this.timeout(60000);
      const config = gptConfig("tiny");
      const sft = initGPT(config, { seed: 1 });
      const trainer = createPPO(sft, config, {
        generation: { maxNewTokens: 4, stopId: 15, temperature: 1 }, epochs: 2, minibatchSize: 2, seed: 7,
        adaptiveKL: { target: 1, horizon: 100 }, optimizer: { lr: 1e-3 },
      });
      const prompts = [[1, 2], [3], [4, 5, 6], [7]];
      const reward = (_p: number[][], rs: number[][]) => rs.map((r) => r.filter((t) => t === 9).length); // likes token 9
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const { stats } = ppoStep(trainer, prompts, reward);
        counts.push(tf.memory().numTensors);
        for (const [k, v] of Object.entries(stats)) assert.ok(Number.isFinite(v), `${k} = ${v}`);
        assert.equal(stats.steps, 4); // 2 epochs × 2 minibatches
      }
      assert.deepEqual(counts, [counts[0], counts[0], counts[0]]);
      assert.notEqual(trainer.kl.value, 0.1); // the adaptive controller moved β
      disposePPO(trainer);
      tf.dispose(Object.values(sft));
    });

    it("raises the reward it is given (tiny model, a few iterations)", function () {
      this.timeout(60000);
      const config = gptConfig("tiny");
      const sft = initGPT(config, { seed: 2 });
      const trainer = createPPO(sft, config, {
        generation: { maxNewTokens: 5, temperature: 1 }, epochs: 4, seed: 3, klCoef: 0.01, optimizer: { lr: 1e-2 },
      });
      const prompts = Array.from({ length: 16 }, (_, i) => [1 + (i % 8)]);
      const reward = (_p: number[][], rs: number[][]) => rs.map((r) => r.filter((t) => t === 9).length / r.length);
      const scores: number[] = [];
      for (let i = 0; i < 12; i++) scores.push(ppoStep(trainer, prompts, reward).stats.meanScore);
      const first = (scores[0] + scores[1] + scores[2]) / 3, last = (scores[9] + scores[10] + scores[11]) / 3;
      assert.ok(last > first + 0.2, `reward ${first.toFixed(3)} → ${last.toFixed(3)}: ${scores.map((s) => s.toFixed(2))}`);
      disposePPO(trainer);
      tf.dispose(Object.values(sft));
    });
  });
});
