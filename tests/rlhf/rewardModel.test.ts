import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { gptConfig, gptForward, initGPT } from "../../lib/gpt/gpt";
import { createRng, Rng } from "../../lib/core/random";
import { preferencePairs } from "../../lib/rlhf/preferences";
import {
  bradleyTerryLoss, encodePairs, EncodedPair, evaluateRewardModel, initRewardModel, pairBatcher, pairwiseAccuracy, rewardPairLoss,
  rewardScores, scoreResponses, splitPairsByRecord,
} from "../../lib/rlhf/rewardModel";
import { train } from "../../lib/pretrain/trainer";

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};
const softplus = (x: number) => Math.log1p(Math.exp(x));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

describe("reward model", function () {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("Bradley–Terry loss: hand values and gradient", () => {
    const c = tf.tensor1d([2, 0, -1]), r = tf.tensor1d([1, 0, 1]); // differences 1, 0, −2
    const loss = bradleyTerryLoss(c, r);
    // −log σ(d) = softplus(−d): 0.3132617 + 0.6931472 + 2.1269280, mean 1.0444456
    close([loss.dataSync()[0]], [(softplus(-1) + Math.LN2 + softplus(2)) / 3], 1e-6);
    close([loss.dataSync()[0]], [1.0444456], 1e-6);
    // ∂L/∂r_c = −σ(r_r − r_c)/N, ∂L/∂r_r = +σ(r_r − r_c)/N
    const [gc, gr] = tf.grads((a: tf.Tensor, b: tf.Tensor) => bradleyTerryLoss(a as tf.Tensor1D, b as tf.Tensor1D))([c, r]);
    const want = [sigmoid(-1), sigmoid(0), sigmoid(2)].map((s) => -s / 3);
    close(gc.dataSync(), want, 1e-6);
    close(gr.dataSync(), want.map((x) => -x), 1e-6);
    // and against finite differences
    const f = (xs: number[]) => xs.reduce((s, d) => s + softplus(-d), 0) / xs.length;
    const h = 1e-4, d = [1, 0, -2];
    const fd = d.map((_, i) => (f(d.map((x, j) => (j === i ? x + h : x))) - f(d.map((x, j) => (j === i ? x - h : x)))) / (2 * h));
    close(gc.dataSync(), fd, 1e-5);
    // stable for large differences
    const big = bradleyTerryLoss(tf.tensor1d([0]), tf.tensor1d([200])).dataSync()[0];
    close([big], [200], 1e-3);
    assert.equal(pairwiseAccuracy([2, 0, -1], [1, 0, 1]), 1 / 3); // a tie is not a win
    assert.throws(() => bradleyTerryLoss(tf.tensor1d([1, 2]), tf.tensor1d([1])), /same shape/);
  });

  it("starts from a copy of the SFT trunk, plus a scalar head", () => {
    const config = gptConfig("tiny");
    const sft = initGPT(config, { seed: 1 });
    const rm = initRewardModel(sft, config, 0);
    assert.deepEqual(rm["score.weight"].shape, [config.nEmbd, 1]);
    assert.deepEqual(rm["score.bias"].shape, [1]);
    assert.deepEqual(Array.from(rm["score.loglik"].dataSync()), [1]); // α starts at 1: the trunk's likelihood counts fully
    for (const name of Object.keys(sft)) {
      assert.notEqual(rm[name], sft[name]);
      close(rm[name].dataSync(), sft[name].dataSync(), 0);
    }
    rm["ln_f.weight"].assign(tf.zerosLike(rm["ln_f.weight"]));
    assert.equal(sft["ln_f.weight"].dataSync()[0], 1); // the SFT model is untouched
    tf.dispose([...Object.values(sft), ...Object.values(rm)]);
  });

  it("reads the score at the last real token of each padded row", () => {
    const config = gptConfig("tiny");
    const rm = initRewardModel(initGPT(config, { seed: 1 }), config, 4);
    const idx = tf.tensor2d([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [1, 2, 3, 9, 9]], [3, 5], "int32");
    const s = Array.from(rewardScores(rm, config, idx, [3, 5, 3]).dataSync());
    close([s[2]], [s[0]], 1e-6); // padding content does not matter
    const { hidden } = gptForward(rm, config, tf.tensor2d([[1, 2, 3]], [1, 3], "int32"), { returnHidden: true });
    const last = hidden.slice([0, 2, 0], [1, 1, config.nEmbd]).reshape([1, config.nEmbd]);
    const manual = tf.add(tf.matMul(last, rm["score.weight"]), rm["score.bias"]).dataSync()[0];
    close([s[0]], [manual], 1e-5);
    // scoreResponses adds α · Σ log p(answer tokens): by hand from the logits of each full row
    const lp = (row: number[], from: number) => {
      const logits = tf.tidy(() => tf.logSoftmax(gptForward(rm, config, tf.tensor2d([row], [1, row.length], "int32"))).arraySync() as number[][][]);
      let sum = 0;
      for (let j = from; j < row.length; j++) sum += logits[0][j - 1][row[j]];
      return sum;
    };
    const alpha = rm["score.loglik"].dataSync()[0];
    close(scoreResponses(rm, config, [[1, 2], [4, 5, 6]], [[3], [7, 8]]), [s[0] + alpha * lp([1, 2, 3], 2), s[1] + alpha * lp([4, 5, 6, 7, 8], 3)], 1e-5);
    rm["score.loglik"].assign(tf.tensor1d([0.25]));
    close(scoreResponses(rm, config, [[1, 2]], [[3]]), [s[0] + 0.25 * lp([1, 2, 3], 2)], 1e-5);
    delete (rm as Record<string, tf.Variable>)["score.loglik"]; // a reward model saved before α existed: the head alone
    close(scoreResponses(rm, config, [[1, 2], [4, 5, 6]], [[3], [7, 8]]), [s[0], s[1]], 1e-5);
    assert.throws(() => rewardScores(rm, config, idx, [3, 6, 3]), /lengths\[1\] = 6 must be an integer in 1..5/);
  });

  it("learns a preference from pairs: held-out pairwise accuracy well above 50%", async function () {
    this.timeout(60000);
    const config = gptConfig("tiny");
    const sft = initGPT(config, { seed: 5 });
    const rm = initRewardModel(sft, config, 0);
    // The "labeller" prefers responses with more 9s. Pairs: prompt [p], chosen and rejected of length 3.
    const pair = (rng: Rng) => {
      const p = [1 + rng.int(8)];
      const draw = () => [0, 1, 2].map(() => (rng.next() < 0.5 ? 9 : 2 + rng.int(6)));
      const nines = (xs: number[]) => xs.filter((t) => t === 9).length;
      for (;;) {
        const a = draw(), b = draw();
        if (nines(a) !== nines(b)) return nines(a) > nines(b) ? { p, c: a, r: b } : { p, c: b, r: a };
      }
    };
    const genRng = createRng("pairs");
    const all: EncodedPair[] = Array.from({ length: 400 }, (_, i) => {
      const x = pair(genRng);
      return { prompt: x.p, chosen: x.c, rejected: x.r, record: Math.floor(i / 2) };
    });
    const { train: trainPairs, val } = splitPairsByRecord(all, 0.25, 1);
    const before = evaluateRewardModel(rm, config, val);
    await train({
      params: rm, maxIters: 60, evalIters: 0, progress: "none", chart: false, optimizer: { lr: 3e-3, weightDecay: 0 },
      getBatch: pairBatcher(trainPairs, val, 16),
      lossFn: (b) => rewardPairLoss(rm, config, b.prompts, b.chosen, b.rejected).loss,
    });
    const after = evaluateRewardModel(rm, config, val);
    assert.equal(after.n, 100);
    assert.ok(after.accuracy >= 0.85, `held-out accuracy ${before.accuracy} → ${after.accuracy}`);
    assert.ok(after.loss < before.loss && after.meanMargin > 0);
    tf.dispose([...Object.values(sft), ...Object.values(rm)]);
  });

  it("encodes text pairs and splits them by record (no prompt on both sides)", () => {
    const recs = [
      { prompt: "ab", responses: ["a", "b", "c"], ranking: [2, 0, 1], rankedBy: "human:t" },
      { prompt: "c", responses: ["cc", "a"], ranking: [0, 1], rankedBy: "human:t" },
    ];
    const code = (s: string) => [...s].map((ch) => ch.charCodeAt(0) - 96);
    const enc = encodePairs(preferencePairs(recs), code, (r) => [...code(r), 0]);
    assert.deepEqual(enc[0], { prompt: [1, 2], chosen: [3, 0], rejected: [1, 0], record: 0 });
    assert.equal(enc.length, 4);
    const { train: tr, val } = splitPairsByRecord(enc, 0.5, 0);
    assert.equal(tr.length + val.length, 4);
    assert.ok(new Set(tr.map((p) => p.record)).size === 1 && new Set(val.map((p) => p.record)).size === 1);
    assert.notEqual(tr[0].record, val[0].record);
    assert.throws(() => encodePairs(preferencePairs(recs), () => [], code), /pair 0 \(record 0\) encodes to an empty/);
  });
});
