import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { dpoPairLoss } from "../../lib/rlhf/dpo";
import { gptConfig, initGPT } from "../../lib/gpt/gpt";
import { simulatedPreference, winRate } from "../../lib/rlhf/labeller";
import { appendPreference, preferencePairs, readPreferences } from "../../lib/rlhf/preferences";
import { createPPO, disposePPO, ppoStep } from "../../lib/rlhf/ppo";
import { copyParams } from "../../lib/gpt/gpt";
import { encodePairs, evaluateRewardModel, initRewardModel, pairBatcher, rewardPairLoss, scoreResponses } from "../../lib/rlhf/rewardModel";
import { generateBatch } from "../../lib/gpt/rollout";
import { train } from "../../lib/pretrain/trainer";

// The whole RLHF loop wired together on a tiny untrained model: checks the pieces fit
// (formats, shapes, tokenization), not that anything is learned (the unit tests and the
// notebook do that).
describe("RLHF pipeline (tiny, end to end)", function () {
  this.timeout(120000);
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("labeller → preference file → reward model → PPO and DPO → win-rate", async () => {
    const qa: Array<[string, string]> = [
      ["Who is Ahab?", "The captain."], ["Who is Ishmael?", "The narrator."], ["What is the Pequod?", "A ship."],
      ["Who is Stubb?", "The second mate."], ["Repeat sea two times.", "sea sea"], ["Hello!", "Ahoy."],
    ];
    const END = "<|end|>";
    const tok = CharTokenizer.fromText(qa.flat().join("") + "Q:A \n", { specialTokens: [END] });
    const endId = tok.specialTokens[END];
    const encPrompt = (q: string) => tok.encode(`Q: ${q}\nA: `);
    // The decoded text holds "<|end|>" when the turn ended: it must become the end token again.
    const encResponse = (r: string) => tok.encode(r, { allowSpecial: [END] });
    const config = gptConfig("tiny", { vocabSize: tok.vocabSize, blockSize: 48 });
    const sft = initGPT(config, { seed: 1 });
    const gen = { maxNewTokens: 12, stopId: endId, temperature: 1 };

    // 1-2: K = 3 answers per prompt, ranked by the simulated labeller, appended to the file
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rlhf-"));
    const file = path.join(dir, "prefs.jsonl");
    try {
      const K = 3;
      const rows = qa.flatMap(([q]) => Array.from({ length: K }, () => encPrompt(q)));
      const g = generateBatch(sft, config, rows, { ...gen, seed: 5 });
      qa.forEach(([q, ref], i) => {
        const responses = g.responses.slice(i * K, (i + 1) * K).map((r) => tok.decode(r));
        appendPreference(file, simulatedPreference(q, responses, ref, { id: `q${i}` }));
      });
      const { records } = readPreferences(file);
      assert.equal(records.length, qa.length);

      // 3: reward model on every pair of every ranking
      const pairs = encodePairs(preferencePairs(records), encPrompt, encResponse);
      assert.equal(pairs.length, qa.length * 3);
      const rm = initRewardModel(sft, config, 0);
      await train({
        params: rm, maxIters: 3, evalIters: 0, progress: "none", chart: false,
        getBatch: pairBatcher(pairs, pairs, 4), lossFn: (b) => rewardPairLoss(rm, config, b.prompts, b.chosen, b.rejected).loss,
      });
      const ev = evaluateRewardModel(rm, config, pairs);
      assert.ok(ev.accuracy >= 0 && ev.accuracy <= 1 && Number.isFinite(ev.loss));

      // 4-9: PPO against the reward model
      const trainer = createPPO(sft, config, { generation: gen, epochs: 2, minibatchSize: 3, seed: 2 });
      const prompts = qa.map(([q]) => encPrompt(q));
      const reward = (p: number[][], r: number[][]) => scoreResponses(rm, config, p, r);
      for (let i = 0; i < 2; i++) {
        const { stats, responses } = ppoStep(trainer, prompts, reward);
        assert.equal(responses.length, qa.length);
        assert.ok(Number.isFinite(stats.meanScore) && Number.isFinite(stats.meanKL));
      }

      // DPO on the same pairs
      const policy = copyParams(sft, true), ref = copyParams(sft, false);
      await train({
        params: policy, maxIters: 3, evalIters: 0, progress: "none", chart: false,
        getBatch: pairBatcher(pairs, pairs, 4), lossFn: (b) => dpoPairLoss(policy, ref, config, b.prompts, b.chosen, b.rejected, 0.1).loss,
      });

      // honest evaluation: PPO vs SFT by the labeller's own rule
      const greedy = (params: typeof sft) => generateBatch(params, config, prompts, { ...gen, temperature: 0 }).responses.map((r) => tok.decode(r));
      const ppoAnswers = greedy(trainer.policy), sftAnswers = greedy(sft);
      const w = winRate(qa.map(([q, ref], i) => ({ prompt: q, a: ppoAnswers[i], b: sftAnswers[i], reference: ref })));
      assert.equal(w.n, qa.length);
      assert.ok(w.winRate >= 0 && w.winRate <= 1);
      disposePPO(trainer);
      tf.dispose([...Object.values(sft), ...Object.values(rm), ...Object.values(policy), ...Object.values(ref)]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
