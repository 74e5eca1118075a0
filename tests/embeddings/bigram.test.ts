import assert from "node:assert/strict";
import {
  joinWords,
  nextWordDistribution,
  perplexity,
  sampleSentence,
  sampleWords,
  topPredictionAccuracy,
  trainBigram,
} from "../../lib/embeddings/bigram";
import { createRng } from "../../lib/core/random";
import { splitWords } from "../../lib/tokens/wordTokenizer";

// 12 tokens, 11 pairs:
//   the→cat ×2, the→dog ×1 | cat→sat ×1, cat→ran ×1 | sat→. ×2 | .→the ×2 | ran→. ×1 | dog→sat ×1
const CORPUS = "The cat sat. The cat ran. The dog sat.";
const constant = (x: number) => () => x;

describe("bigram", () => {
  describe("joinWords", () => {
    it("joins tokens back into readable text", () => {
      assert.equal(joinWords(splitWords('He said, "call me (Ishmael)."')), 'he said, "call me (ishmael)."');
      assert.equal(joinWords(["years", "ago", "—", "never"]), "years ago—never");
      // Straight quotes: open before a word, close after a word or a sentence mark.
      assert.equal(joinWords(splitWords('"I see." "Well," said he, "go."')), '"i see." "well," said he, "go."');
    });
  });

  describe("counts and distributions", () => {
    const model = trainBigram(CORPUS);

    it("counts every pair", () => {
      assert.equal(model.pairs, 11);
      assert.deepEqual([...model.vocabulary].sort(), [".", "cat", "dog", "ran", "sat", "the"]);
      assert.equal(model.totals.get("the"), 3);
      assert.equal(model.counts.get("sat")!.get("."), 2);
    });

    it("gives count / total, most frequent first, ties alphabetically", () => {
      assert.deepEqual(nextWordDistribution(model, "The"), [
        { word: "cat", count: 2, probability: 2 / 3 },
        { word: "dog", count: 1, probability: 1 / 3 },
      ]);
      assert.deepEqual(nextWordDistribution(model, "cat"), [
        { word: "ran", count: 1, probability: 0.5 },
        { word: "sat", count: 1, probability: 0.5 },
      ]);
      assert.deepEqual(nextWordDistribution(model, "the", 1), [{ word: "cat", count: 2, probability: 2 / 3 }]);
      assert.deepEqual(nextWordDistribution(model, "whale"), []);
    });

    it("needs two words to learn anything", () => {
      assert.throws(() => trainBigram("hello"), /at least two words/);
    });
  });

  describe("sampling", () => {
    const model = trainBigram(CORPUS);

    it("draws by cumulative probability over the alphabetically ordered next words", () => {
      // After "the": cat 2/3 then dog 1/3. u = 0.5 → 1.5 of 3 → cat; after "cat": ran ½, sat ½, u·2 = 1 → sat.
      assert.equal(sampleSentence(model, "the", { maxWords: 10, rng: constant(0.5) }), "the cat sat.");
      // u = 0.7 → 2.1 of 3 → past cat's 2 → dog; dog → sat → "." (sentence end).
      assert.equal(sampleSentence(model, "the", { maxWords: 10, rng: constant(0.7) }), "the dog sat.");
    });

    it("temperature reshapes: p ∝ count^(1/T)", () => {
      // T = 0.5 squares the counts: cat 4, dog 1; u = 0.7 → 3.5 of 5 → cat (dog at T = 1).
      assert.deepEqual(sampleWords(model, "the", { maxWords: 2, temperature: 0.5, rng: constant(0.7) }), ["the", "cat"]);
      // T = 0: always the most frequent; a tie goes to the alphabetically first ("ran" before "sat").
      assert.deepEqual(sampleWords(model, "the", { maxWords: 10, temperature: 0, rng: constant(0.99) }), ["the", "cat", "ran", "."]);
    });

    it("stops at maxWords, or goes on past sentence ends when told", () => {
      assert.deepEqual(sampleWords(model, "the", { maxWords: 2, temperature: 0, rng: Math.random }), ["the", "cat"]);
      assert.deepEqual(sampleWords(model, "the", { maxWords: 6, temperature: 0, rng: Math.random, stopAt: [] }), ["the", "cat", "ran", ".", "the", "cat"]);
    });

    it("is reproducible with a seeded generator", () => {
      const big = trainBigram("a b c a c b a a b b c c a b a c c b b a c a a c");
      const run = (seed: number) => sampleSentence(big, "a", { maxWords: 30, rng: createRng(seed) });
      assert.equal(run(42), run(42));
      assert.notEqual(run(1), run(2));
      // A plain function works too.
      const r = createRng(7);
      const s = createRng(7);
      assert.equal(sampleSentence(big, "b", { maxWords: 30, rng: () => r.next() }), sampleSentence(big, "b", { maxWords: 30, rng: s }));
    });

    it("refuses a start word it never saw", () => {
      assert.throws(() => sampleSentence(model, "whale", { maxWords: 5, rng: Math.random }), /start word "whale" never occurs/);
    });
  });

  describe("evaluation on held-out text", () => {
    const model = trainBigram(CORPUS);

    it("top-1 and top-k accuracy", () => {
      // Pairs: the→dog ✗ (guess cat), dog→sat ✓, sat→. ✓, .→the ✓, the→bird ✗.
      assert.deepEqual(topPredictionAccuracy(model, "the dog sat. the bird"), { total: 5, correct: 3, accuracy: 0.6, unseenContext: 0 });
      // With two guesses after "the" (cat, dog), the→dog counts too.
      assert.equal(topPredictionAccuracy(model, "the dog sat. the bird", 2).correct, 4);
      // "bird" was never seen: no guess possible, counted wrong.
      assert.deepEqual(topPredictionAccuracy(model, "bird sat"), { total: 1, correct: 0, accuracy: 0, unseenContext: 1 });
    });

    it("perplexity with add-one smoothing", () => {
      // V = 6 words + 1 unknown slot = 7. P(cat|the) = (2+1)/(3+7) = 0.3 → perplexity 1/0.3.
      assert.ok(Math.abs(perplexity(model, "the cat") - 1 / 0.3) < 1e-12);
      // P(dog|the) = 2/10, P(sat|dog) = (1+1)/(1+7) = 1/4 → (0.2 · 0.25)^(-1/2) = √20.
      assert.ok(Math.abs(perplexity(model, "the dog sat") - Math.sqrt(20)) < 1e-12);
    });
  });
});
