import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { simulatedPreference } from "../../lib/rlhf/labeller";
import { PreferenceRecord } from "../../lib/rlhf/preferences";
import { disposePPO } from "../../lib/rlhf/ppo";
import { disposeParams } from "../../lib/pretrain/pretrain";
import { accuracyByCriterion, encodePreferencePairs, splitPreferencePairs, TRAIN_ACCURACY_SAMPLE, trainRewardModel } from "../../lib/rlhf/rewardModel";
import { checkpointNotes, collectSimulatedPreferences, loadChatModel, rlhfPrompts, sampleResponses, savePolicy } from "../../lib/rlhf/chat";
import { evaluatePolicy, evaluationMatches, loadPolicyEval, savePolicyEval } from "../../lib/rlhf/evaluate";
import { MISSING_END_PENALTY, rewardModelReward, runPPO, SCORE_CLIP } from "../../lib/rlhf/ppo";
import { initRewardModel, scoreResponses } from "../../lib/rlhf/rewardModel";
import { generateBatch } from "../../lib/gpt/rollout";
import { TINY_EXAMPLES, makeTinyChatModel } from "./rlhfFixture";

describe("RLHF in the chat format: prompts, rankings, the training loops, the evaluation (lib/rlhf/chat.ts and the methods' files)", function () {
  this.timeout(120000);
  let dir: string;
  let model: ReturnType<typeof loadChatModel>;
  before(async () => {
    await initBackend({ quiet: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rlhf-helpers-"));
    model = loadChatModel(makeTinyChatModel(dir).ckpt);
  });
  after(() => {
    tf.dispose(Object.values(model.params));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("prompts from SFT data; the codec round-trips a response with its <|end|>", () => {
    const prompts = rlhfPrompts([...TINY_EXAMPLES, { id: "multi", kind: "chat", messages: [
      { role: "user", content: "Hi!" }, { role: "assistant", content: "Hello." }, { role: "user", content: "Sea?" }, { role: "assistant", content: "Blue." }] }]);
    assert.equal(prompts.length, TINY_EXAMPLES.length, "multi-turn examples are skipped");
    assert.deepEqual(prompts[0], { id: "t-0", kind: "fact", prompt: "Who is Ahab?", reference: "The captain." });
    const { codec } = model;
    const ids = codec.encodeResponse("The captain.<|end|>");
    assert.equal(ids[ids.length - 1], codec.endId);
    assert.equal(codec.decodeResponse(ids), "The captain.<|end|>");
    const p = codec.encodePrompt("Who is Ahab?");
    assert.equal(codec.decodeResponse(p), "<|user|>Who is Ahab?<|end|><|assistant|>");
  });

  it("a checkpoint without the chat tokens is refused with a hint", () => {
    assert.throws(() => loadChatModel(path.join(dir, "nope")), /nope/);
  });

  it("pairs: identical answers and simulated ties are dropped, human rankings keep every pair", () => {
    const sim = simulatedPreference("Who is Ahab?", ["The captain.<|end|>", "xyz<|end|>", "abc<|end|>", "xyz<|end|>"], "The captain.");
    // "xyz" and "abc" tie (same length, both wrong and ended); the two "xyz" are identical.
    const simPairs = encodePreferencePairs([sim], model.codec);
    assert.equal(simPairs.length, 3, "6 pairs − 2 ties (xyz/abc twice) − 1 identical (xyz/xyz)");
    const human: PreferenceRecord = { ...sim, rankedBy: "human:ann" };
    assert.equal(encodePreferencePairs([human], model.codec).length, 5, "only the identical pair is dropped");
    assert.equal(encodePreferencePairs([sim], model.codec, { dropTies: false }).length, 5);
    const s = splitPreferencePairs(simPairs, 0.2, 0);
    assert.equal(s.valIsTrain, true, "one record: nothing can be held out");
    assert.deepEqual(s.val, s.train);
  });

  it("collect → reward model → PPO → evaluation, and a policy equal to SFT has win-rate 0.5 and KL 0", async () => {
    const { params, config, codec } = model;
    const prompts = rlhfPrompts(TINY_EXAMPLES);
    const file = path.join(dir, "prefs.jsonl");
    const recs = collectSimulatedPreferences(params, config, codec, prompts, { k: 3, maxNewTokens: 5, seed: 1, file });
    assert.equal(recs.length, prompts.length);
    assert.equal(fs.readFileSync(file, "utf8").trim().split("\n").length, prompts.length);
    const same = sampleResponses(params, config, codec, ["Hi!", "Hi!"], { k: 2, maxNewTokens: 5, seed: 4 });
    assert.deepEqual(sampleResponses(params, config, codec, ["Hi!", "Hi!"], { k: 2, maxNewTokens: 5, seed: 4 }), same, "seeded");

    const rm = await trainRewardModel({ sft: params, config, codec, records: recs, maxIters: 2, batchSize: 4, evalInterval: 1, evalIters: 1, trackAccuracy: true, outDir: path.join(dir, "rm") });
    assert.equal(rm.accuracyHistory.length, 3);
    assert.ok(rm.val.accuracy >= 0 && rm.val.accuracy <= 1);
    // The curve's first and last points are the before and after figures (one pass per state of the weights).
    assert.equal(rm.accuracyHistory[0][2], rm.valBefore.accuracy);
    assert.deepEqual(rm.accuracyHistory[2].slice(1), [rm.train.accuracy, rm.val.accuracy]);
    assert.equal(rm.train.n, Math.min(rm.trainPairs, Math.max(Math.min(rm.valPairs, TRAIN_ACCURACY_SAMPLE), 32)), "training accuracy on the fixed sample");
    const untracked = await trainRewardModel({ sft: params, config, codec, records: recs, maxIters: 2, batchSize: 4, evalInterval: 1, evalIters: 1 });
    assert.deepEqual([untracked.valBefore, untracked.val, untracked.train], [rm.valBefore, rm.val, rm.train], "the same figures without the curve");
    assert.deepEqual(untracked.accuracyHistory, []);
    disposeParams(untracked.params);
    assert.equal((checkpointNotes(path.join(dir, "rm")).reward as { records: number }).records, prompts.length);

    const ev0 = evaluatePolicy({ policy: params, baseline: params, config, codec, prompts, reward: rm.params, maxNewTokens: 5 });
    assert.equal(ev0.winRate.winRate, 0.5);
    assert.equal(ev0.winRate.ties, prompts.length);
    assert.ok(Math.abs(ev0.meanKL) < 1e-6);
    assert.equal(ev0.rewardScore.policy, ev0.rewardScore.baseline);

    const r = await runPPO({ sft: params, config, codec, reward: rm.params, prompts, iterations: 2, batchSize: 3, maxNewTokens: 5, epochs: 1, minibatchSize: 3 });
    assert.equal(r.history.length, 2);
    assert.equal(r.trueScores.length, 2);
    const ev = evaluatePolicy({ policy: r.trainer.policy, baseline: params, config, codec, prompts, maxNewTokens: 5 });
    assert.ok(Number.isNaN(ev.rewardScore.policy), "no reward model: no score");
    assert.ok(Number.isFinite(ev.meanKL));
    // two answers per question: rows grouped by question; the baseline's answers reused, not resampled
    const ev2 = evaluatePolicy({ policy: r.trainer.policy, baseline: params, config, codec, prompts, maxNewTokens: 5, samples: 2 });
    assert.equal(ev2.samplesPerQuestion, 2);
    assert.deepEqual(ev2.rows.map((row) => row.prompt), prompts.flatMap((p) => [p.prompt, p.prompt]));
    assert.equal(ev2.trueScoreDiff.n, prompts.length);
    const again = evaluatePolicy({ policy: params, baseline: params, config, codec, prompts, maxNewTokens: 5, samples: 2, reuseBaselineOf: ev2 });
    assert.deepEqual(again.rows.map((row) => row.baseline), ev2.rows.map((row) => row.baseline));
    assert.deepEqual(again.rows.map((row) => row.policy), ev2.rows.map((row) => row.baseline), "the same model and seed: the reused answers are what sampling gives");
    assert.throws(() => evaluatePolicy({ policy: params, baseline: params, config, codec, prompts, maxNewTokens: 5, samples: 1, reuseBaselineOf: ev2 }), /other prompts or other sampling settings/);
    // saved beside a checkpoint and read back by a later chapter
    const evDir = path.join(dir, "eval");
    assert.equal(loadPolicyEval(evDir), undefined);
    savePolicyEval(evDir, ev2);
    const back2 = loadPolicyEval(evDir)!;
    assert.deepEqual(back2.rows, ev2.rows);
    assert.equal(back2.winRate.winRate, ev2.winRate.winRate);
    assert.ok(evaluationMatches(back2, { prompts, maxNewTokens: 5, samples: 2 }));
    assert.ok(!evaluationMatches(back2, { prompts, maxNewTokens: 5, samples: 2, seed: 7 }));
    assert.ok(!evaluationMatches(back2, { prompts: prompts.slice(1), maxNewTokens: 5, samples: 2 }));
    fs.writeFileSync(path.join(evDir, "evaluation.json"), JSON.stringify({ rows: "no" }));
    assert.throws(() => loadPolicyEval(evDir), /evaluation\.json: not an evaluation written by savePolicyEval/);
    savePolicy(path.join(dir, "ppo"), r.trainer.policy, config, codec.tokenizer, 2, { ppo: { seconds: r.seconds } });
    const back = loadChatModel(path.join(dir, "ppo"));
    assert.ok("value.weight" in back.params);
    tf.dispose(Object.values(back.params));
    disposePPO(r.trainer);
    tf.dispose(Object.values(rm.params));
  });

  it("accuracyByCriterion: held-out accuracy split by the criterion that decided each pair", () => {
    const { codec } = model;
    const E = "<|end|>";
    const records: PreferenceRecord[] = [
      simulatedPreference("Who is Ahab?", [`The captain.${E}`, `A mate.${E}`], "The captain."), // correct decides
      simulatedPreference("Sea?", [`Blue.${E}`, "Blue."], "Blue."), // ended decides
      simulatedPreference("Hi!", [`Hello. Glad to help!${E}`, `Hello.${E}`], "Hello."), // polite outweighs concise
    ];
    const pairs = encodePreferencePairs(records, codec);
    assert.equal(pairs.length, 3);
    // right, wrong, right
    const acc = accuracyByCriterion(records, pairs, [1, -1, 0.5], codec);
    assert.deepEqual(acc, { correct: { n: 1, accuracy: 1 }, ended: { n: 1, accuracy: 0 }, polite: { n: 1, accuracy: 1 } });
  });

  it("rewardModelReward: clipped score, minus the missing-end penalty, minus the baseline's greedy answer's score", () => {
    const { params, config, codec } = model;
    const rm = initRewardModel(params, config, 3);
    const prompts = ["Who is Ahab?", "Sea?"].map((q) => codec.encodePrompt(q));
    const responses = [codec.encodeResponse("The captain.<|end|>"), codec.encodeResponse("Blue")];
    const raw = scoreResponses(rm, config, prompts, responses, 32, codec.padId);
    const clip = Math.min(Math.abs(raw[0]), Math.abs(raw[1])) / 2; // a clip that bites on both
    const plain = rewardModelReward(rm, config, codec, { scoreClip: clip, missingEndPenalty: 1.5 })(prompts, responses, [true, false]);
    close(plain.scores, [Math.sign(raw[0]) * clip, Math.sign(raw[1]) * clip - 1.5], 1e-6);
    assert.deepEqual(plain.rewards, plain.scores, "no zero point: the rewards are the scores");
    // With a baseline: its greedy answer to each prompt, scored the same way, is the zero point.
    const g = generateBatch(params, config, prompts, { maxNewTokens: 24, stopId: codec.endId, padId: codec.padId, temperature: 0 });
    const clipped = (x: number) => Math.max(-SCORE_CLIP, Math.min(SCORE_CLIP, x));
    const zero = scoreResponses(rm, config, prompts, g.responses, 32, codec.padId).map((z, i) => clipped(z) - (g.ended[i] ? 0 : MISSING_END_PENALTY));
    const fn = rewardModelReward(rm, config, codec, { baseline: params });
    const r = fn(prompts, responses, [true, true]);
    close(r.rewards, raw.map((x, i) => clipped(x) - zero[i]), 1e-5);
    close(r.scores, raw.map(clipped), 1e-5);
    // The baseline's own greedy answer scores exactly 0.
    close(fn(prompts, g.responses, g.ended).rewards, [0, 0], 1e-5);
    // Siblings: three answers to the first prompt, one to the second; each reward is its score minus the mean of the others'.
    const p4 = [prompts[0], prompts[0], prompts[0], prompts[1]];
    const r4 = [responses[0], responses[1], codec.encodeResponse("Ahab.<|end|>"), responses[1]];
    const s4 = scoreResponses(rm, config, p4, r4, 32, codec.padId).map(clipped);
    const sib = rewardModelReward(rm, config, codec, { zero: "siblings" })(p4, r4, [true, true, true, true]);
    close(sib.scores, s4, 1e-5);
    close(sib.rewards, [s4[0] - (s4[1] + s4[2]) / 2, s4[1] - (s4[0] + s4[2]) / 2, s4[2] - (s4[0] + s4[1]) / 2, s4[3]], 1e-5);
    assert.throws(() => rewardModelReward(rm, config, codec, { zero: "siblings", baseline: params }), /not both/);
    tf.dispose(Object.values(rm));
  });
});

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
}
