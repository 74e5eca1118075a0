import assert from "node:assert/strict";
import { markdownTable, seedFigures, spread } from "../../../lib/tools/cli/seeds";

// Two seeds' summaries as the CLIs print them (only the fields the figures read).
const run = (em: number, acc: number, ppoWin: number, ppoTrue: number, dpoWin: number) => ({
  sft: { sft: { exactMatch: em, n: 307, byKind: { fact: { exactMatch: em / 2, n: 60 }, transform: { exactMatch: em, n: 240 } } }, seconds: 100 },
  reward: { accuracy: acc, byCriterion: { correct: { n: 50, accuracy: acc - 0.1 } }, valPairs: 400, seconds: 50 },
  ppo: { winRate: ppoWin, winRateInterval: [ppoWin - 0.05, ppoWin + 0.05], trueScore: ppoTrue, sftTrueScore: 7, meanKL: 2, evalAnswers: 909, evalQuestions: 303, evalSamples: 3, seconds: 60 },
  dpo: { winRate: dpoWin, winRateInterval: [dpoWin - 0.05, dpoWin + 0.05], trueScore: 7.5, sftTrueScore: 7, meanKL: 1, evalAnswers: 303, seconds: 30 },
});

describe("seeds: figures over several seeds", () => {
  it("spread: mean, min, max", () => {
    assert.deepEqual(spread([0.5, 0.7, 0.6]), { mean: 0.6, min: 0.5, max: 0.7, values: [0.5, 0.7, 0.6] });
  });

  it("collects every target's figure, and says whether a policy beat SFT's true score in every seed", () => {
    const f = seedFigures([run(0.6, 0.8, 0.7, 7.2, 0.66), run(0.5, 0.9, 0.68, 6.9, 0.64)] as never);
    assert.equal(f.seeds, 2);
    assert.ok(Math.abs(f.sft.exactMatch.mean - 0.55) < 1e-12);
    assert.ok(Math.abs(f.sft.byKind.fact.max - 0.3) < 1e-12);
    assert.ok(Math.abs(f.reward.correct.min - 0.7) < 1e-12);
    const ppo = (f as unknown as Record<string, { beatsSftEverySeed: boolean; intervalLow: { min: number } }>).ppo;
    assert.equal(ppo.beatsSftEverySeed, false); // 6.9 < 7 in the second seed
    assert.ok(Math.abs(ppo.intervalLow.min - 0.63) < 1e-12);
    assert.equal((f as unknown as Record<string, { beatsSftEverySeed: boolean }>).dpo.beatsSftEverySeed, true);
    const md = markdownTable(f);
    assert.match(md, /held-out exact match, greedy, 307 questions \| 55\.0 % \(50\.0–60\.0\)/);
    assert.match(md, /PPO \| win-rate vs SFT, 303 held-out questions × 3 sampled answers \| 69\.0 % \(68\.0–70\.0\)/);
    assert.match(md, /higher than SFT in every seed: no/);
    assert.match(md, /DPO \| win-rate vs SFT, 303 held-out questions \|/); // an older summary: one answer per question
  });
});
