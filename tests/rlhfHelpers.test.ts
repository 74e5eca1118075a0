import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend";
import { simulatedPreference } from "../lib/labeller";
import { PreferenceRecord } from "../lib/preferences";
import { disposePPO } from "../lib/ppo";
import {
  checkpointNotes, collectSimulatedPreferences, encodePreferencePairs, evaluatePolicy, loadChatModel, rlhfPrompts, runPPO, sampleResponses,
  savePolicy, splitPreferencePairs, trainRewardModel,
} from "../lib/rlhf";
import { TINY_EXAMPLES, makeTinyChatModel } from "./rlhfFixture";

describe("rlhf helpers (lib/rlhf.ts)", function () {
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
    savePolicy(path.join(dir, "ppo"), r.trainer.policy, config, codec.tokenizer, 2, { ppo: { seconds: r.seconds } });
    const back = loadChatModel(path.join(dir, "ppo"));
    assert.ok("value.weight" in back.params);
    tf.dispose(Object.values(back.params));
    disposePPO(r.trainer);
    tf.dispose(Object.values(rm.params));
  });
});
