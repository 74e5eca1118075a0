import assert from "node:assert/strict";
import {
  explainPreference, scoreBreakdown, simulatedRanking, SIMULATED_RANKED_BY, TRUE_PREFERENCE_RULE, trueScore,
} from "../../lib/rlhf/labeller";
import { validatePreference } from "../../lib/rlhf/preferences";

const E = "<|end|>";
const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

describe("labeller (the simulated human)", () => {
  const prompt = "Who is the captain of the Pequod?";
  const ref = "Ahab.";

  it("scores by the documented rule: 8·correct + 2·ended + 1·concise + 0.5·polite", () => {
    assert.deepEqual(TRUE_PREFERENCE_RULE.map((c) => [c.name, c.weight]), [["correct", 8], ["ended", 2], ["concise", 1], ["polite", 0.5]]);
    near(trueScore(prompt, `Captain Ahab, thank you!${E}`, ref), 8 + 2 + (1 - 24 / 64) + 0.5); // 11.125
    near(trueScore(prompt, `Ahab.${E}`, ref), 8 + 2 + (1 - 5 / 64)); // 10.921875
    near(trueScore(prompt, "Ahab. The captain of the ship", ref), 8 + (1 - 29 / 64)); // unfinished
    near(trueScore(prompt, `Starbuck.${E}`, ref), 2 + (1 - 9 / 64)); // wrong
    near(trueScore(prompt, "The whale", ref), 1 - 9 / 64);
    // partly correct: 2 of the reference's 4 distinct words (the, captain, of, rachel)
    near(trueScore("Who is Gardiner?", `The captain.${E}`, "The captain of the Rachel."), 8 * 0.5 + 2 + (1 - 12 / 64));
    // no reference (chat): correctness counts 0 for everyone
    near(trueScore("Hello!", `Glad to help.${E}`), 2 + (1 - 13 / 64) + 0.5);
    // a long answer gets 0 for concise, never negative
    assert.equal(scoreBreakdown("q", "x".repeat(100)).parts[2].points, 0);
  });

  it("ranks best first with exact expected orders", () => {
    const responses = [`Starbuck.${E}`, `Captain Ahab, thank you!${E}`, "The whale", "Ahab. The captain of the ship", `Ahab.${E}`];
    assert.deepEqual(simulatedRanking(prompt, responses, ref), [1, 4, 3, 0, 2]);
    // ties keep the given order
    assert.deepEqual(simulatedRanking("q", ["same", "same", "longer one"]), [0, 1, 2]);
    // without a reference, polite beats a few characters of length
    assert.deepEqual(simulatedRanking("Hello!", [`Hi${E}`, `Glad to help.${E}`, "Hi"]), [1, 0, 2]);
    // a custom end-of-turn marker
    assert.deepEqual(simulatedRanking("q", ["abc", "abcdef\n"], undefined, { endOfTurn: "\n" }), [1, 0]);
  });

  it("explains which criterion decided", () => {
    assert.equal(explainPreference(prompt, `Ahab.${E}`, `Starbuck.${E}`, ref),
      "A wins, total A 10.92 vs B 2.86; first differing criterion: correct (A 8.00 vs B 0.00)");
    assert.match(explainPreference(prompt, "Ahab.", `Ahab.${E}`, ref), /^B wins.*first differing criterion: ended \(A 0\.00 vs B 2\.00\)$/);
    assert.match(explainPreference("q", "same", "same"), /^tie/);
  });

  it("its rankings are valid preference records", () => {
    const responses = [`Starbuck.${E}`, `Ahab.${E}`];
    const r = validatePreference({ prompt, responses, ranking: simulatedRanking(prompt, responses, ref), rankedBy: SIMULATED_RANKED_BY, reference: ref });
    assert.deepEqual(r.ranking, [1, 0]);
    assert.equal(r.rankedBy, "simulated:correct>ended>concise>polite-v1");
  });
});

describe("labeller records and win-rate", () => {
  it("simulatedPreference writes the same record format as a human", async () => {
    const { simulatedPreference, winRate } = await import("../../lib/rlhf/labeller");
    const r = simulatedPreference("Who?", ["x", `Ahab${E}`], "Ahab", { id: "fact-1" });
    assert.deepEqual(r, { prompt: "Who?", responses: ["x", `Ahab${E}`], ranking: [1, 0], rankedBy: SIMULATED_RANKED_BY, reference: "Ahab", id: "fact-1" });
    const w = winRate([
      { prompt: "q", a: `Ahab${E}`, b: "Ahab", reference: "Ahab" }, // win (ended)
      { prompt: "q", a: "same", b: "same" }, // tie
      { prompt: "q", a: "Starbuck", b: "Ahab", reference: "Ahab" }, // loss
      { prompt: "q", a: "Ahab", b: "Stubb", reference: "Ahab" }, // win
    ]);
    const { interval, ...counts } = w;
    assert.deepEqual(counts, { wins: 2, ties: 1, losses: 1, winRate: 2.5 / 4, n: 4 });
    // scores 1, 1, ½, 0: mean 0.625, Σ(s − mean)² = 2·0.375² + 0.125² + 0.625² = 0.6875,
    // standard error √(0.6875 / 3 / 4) = 0.239357; 0.625 ± 1.96·0.239357, the top clipped to 1
    assert.ok(Math.abs(interval[0] - 0.155860) < 1e-6, String(interval[0]));
    assert.equal(interval[1], 1);
  });

  it("winRateInterval: the normal interval of the mean of 1 / ½ / 0 scores", async () => {
    const { winRateInterval } = await import("../../lib/rlhf/labeller");
    // 130 wins, 20 ties, 50 losses: mean 0.7, Σ(s − mean)² = 130·0.09 + 20·0.04 + 50·0.49 = 37,
    // standard error √(37 / 199 / 200) = 0.030490, half-width 1.96·0.030490 = 0.059761
    const [lo, hi] = winRateInterval(130, 20, 50);
    assert.ok(Math.abs(lo - 0.640239) < 1e-6 && Math.abs(hi - 0.759761) < 1e-6, `${lo} ${hi}`);
    // all ties: no spread at all
    assert.deepEqual(winRateInterval(0, 10, 0), [0.5, 0.5]);
    // too few comparisons for an interval
    assert.ok(winRateInterval(1, 0, 0).every(Number.isNaN));
  });

  it("questionMeanInterval averages each question's answers first, and counts questions", async () => {
    const { questionMeanInterval, pairedDifference, winRate, winRateInterval } = await import("../../lib/rlhf/labeller");
    // questions (1, 0), (1, 1), (0, 0): means ½, 1, 0; mean ½, Σ(x − ½)² = 0.5,
    // standard error √(0.5 / 2 / 3) = 0.288675, half-width 0.565803
    const m = questionMeanInterval([1, 0, 1, 1, 0, 0], 2);
    assert.equal(m.mean, 0.5);
    assert.equal(m.n, 3);
    assert.ok(Math.abs(m.lo + 0.065803) < 1e-6 && Math.abs(m.hi - 1.065803) < 1e-6, `${m.lo} ${m.hi}`);
    // one answer per question: the win-rate interval of the counts
    const one = questionMeanInterval([...Array(130).fill(1), ...Array(20).fill(0.5), ...Array(50).fill(0)]);
    const [lo, hi] = winRateInterval(130, 20, 50);
    assert.ok(Math.abs(one.lo - lo) < 1e-12 && Math.abs(one.hi - hi) < 1e-12);
    assert.throws(() => questionMeanInterval([1, 2, 3], 2), /3 values are not whole groups of 2/);
    const d = pairedDifference([3, 5, 8, 8], [1, 5, 9, 9], 2); // differences (2, 0), (−1, −1): means 1, −1
    assert.equal(d.mean, 0);
    assert.ok(Math.abs(d.hi - 1.96) < 1e-12, String(d.hi)); // s = √2, se = √2/√2 = 1
    // winRate with two answers per question: scores (1, ½), (0, 1) → question means 0.75, 0.5;
    // mean 0.625, se √(2·0.125² / 1 / 2) = 0.125, interval 0.625 ± 0.245
    const w = winRate([
      { prompt: "q", a: `Ahab${E}`, b: "Ahab", reference: "Ahab" },
      { prompt: "q", a: "same", b: "same" },
      { prompt: "q", a: "Starbuck", b: "Ahab", reference: "Ahab" },
      { prompt: "q", a: "Ahab", b: "Stubb", reference: "Ahab" },
    ], {}, 2);
    assert.equal(w.winRate, 0.625);
    assert.ok(Math.abs(w.interval[0] - 0.38) < 1e-12 && Math.abs(w.interval[1] - 0.87) < 1e-12, String(w.interval));
  });
});
