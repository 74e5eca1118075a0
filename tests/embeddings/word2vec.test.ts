import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { createRng } from "../../lib/core/random";
import {
  buildVocabulary, cosineSimilarity, DiscreteSampler, heldOutPairs, keepProbability, nearestNeighbours, noiseDistribution,
  rocAuc, scorePairs, sgnsLoss, skipGramPairs, subsample, toIds, trainWord2Vec, word2vecWords, wordSimilarity, WordEmbeddings,
} from "../../lib/embeddings/word2vec";

/** Two disjoint topics: runs of 40 words from topic A, then 40 from topic B, and so on. */
function twoTopicCorpus(seed: number): string {
  const rng = createRng(seed);
  const A = ["sea", "wave", "salt", "tide", "shore", "foam"];
  const B = ["oak", "leaf", "root", "bark", "moss", "fern"];
  const words: string[] = [];
  for (let run = 0; run < 40; run++) {
    const topic = run % 2 === 0 ? A : B;
    for (let i = 0; i < 40; i++) words.push(topic[rng.int(topic.length)]);
  }
  return words.join(" ");
}

describe("word2vec", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("splits text into lowercase words without punctuation", () => {
    assert.deepEqual(word2vecWords("Call me Ishmael. Some years ago—never mind"), ["call", "me", "ishmael", "some", "years", "ago", "never", "mind"]);
  });

  it("builds a vocabulary by frequency, ties alphabetical, minCount and maxVocab applied", () => {
    const v = buildVocabulary(["b", "a", "c", "a", "b", "d", "a"], 1, 3);
    assert.deepEqual(v.words, ["a", "b", "c"]);
    assert.deepEqual(v.counts, [3, 2, 1]);
    assert.equal(v.index.get("c"), 2);
    assert.deepEqual(buildVocabulary(["b", "a", "c", "a", "b"], 2).words, ["a", "b"]);
    assert.deepEqual(Array.from(toIds(["c", "x", "a"], v)), [2, 0]);
  });

  it("noise distribution is unigram^0.75, normalised (hand example)", () => {
    const p = noiseDistribution([8, 1]);
    // 8^0.75 = 2^2.25 = 4.7568; 4.7568 / 5.7568 = 0.82629
    assert.ok(Math.abs(p[0] - 4.756828460010884 / 5.756828460010884) < 1e-12);
    assert.ok(Math.abs(p[1] - 1 / 5.756828460010884) < 1e-12);
    assert.deepEqual(Array.from(noiseDistribution([16, 1, 0], 0.5)), [0.8, 0.2, 0]);
    assert.throws(() => noiseDistribution([0, 0]), /all counts are zero/);
    assert.throws(() => noiseDistribution([1, -1]), /counts\[1\]/);
  });

  it("the sampler draws with the right frequencies and never a zero-weight index", () => {
    const s = new DiscreteSampler([0.5, 0, 0.25, 0.25]);
    assert.equal(s.sample(0), 0);
    assert.equal(s.sample(0.4999), 0);
    assert.equal(s.sample(0.5), 2);
    assert.equal(s.sample(0.75), 3);
    assert.equal(s.sample(0.9999), 3);
    const rng = createRng(5);
    const hist = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) hist[s.sample(rng.next())]++;
    assert.equal(hist[1], 0);
    assert.ok(Math.abs(hist[0] / 20000 - 0.5) < 0.02, `${hist}`);
  });

  it("subsampling keeps a word with probability √(t/f) + t/f, capped at 1", () => {
    // f = 0.01, t = 1e-3: √0.1 + 0.1 = 0.41623
    assert.ok(Math.abs(keepProbability(1, 100, 1e-3) - (Math.sqrt(0.1) + 0.1)) < 1e-12);
    assert.equal(keepProbability(1, 1e6, 1e-3), 1); // rare words always kept
    assert.equal(keepProbability(50, 100, 0), 1); // t = 0: off
    assert.throws(() => keepProbability(0, 10), /need 0 < count <= total/);
    // Empirically: "a" is 90% of the stream.
    const vocab = buildVocabulary([...Array(900).fill("a"), ...Array(100).fill("b")], 1);
    const ids = toIds([...Array(900).fill("a"), ...Array(100).fill("b")], vocab);
    const kept = subsample(ids, vocab, 0.01, createRng(1));
    const keptA = kept.filter((id) => id === 0).length;
    const pA = Math.sqrt(0.01 / 0.9) + 0.01 / 0.9; // 0.1165
    assert.ok(Math.abs(keptA / 900 - pA) < 0.04, `kept ${keptA}/900, expected ≈ ${pA * 900}`);
    const keptB = kept.filter((id) => id === 1).length; // f = 0.1: keep = √0.1 + 0.1 = 0.416
    assert.ok(Math.abs(keptB / 100 - 0.416) < 0.12, `kept ${keptB}/100 of b`);
  });

  it("skip-gram pairs: every pair is within the window, window 1 gives the neighbours", () => {
    const ids = Int32Array.from([0, 1, 2, 3]);
    const { centres, contexts } = skipGramPairs(ids, 1, createRng(0));
    const pairs = Array.from(centres, (c, i) => `${c}-${contexts[i]}`);
    assert.deepEqual(pairs, ["0-1", "1-0", "1-2", "2-1", "2-3", "3-2"]);
    const big = skipGramPairs(Int32Array.from({ length: 50 }, (_, i) => i), 3, createRng(1));
    for (let i = 0; i < big.centres.length; i++) {
      const d = Math.abs(big.centres[i] - big.contexts[i]);
      assert.ok(d >= 1 && d <= 3);
    }
    assert.throws(() => skipGramPairs(ids, 0, createRng(0)), /window must be a positive integer/);
  });

  it("the SGNS loss at zero output vectors is (1 + K)·log 2, and matches a hand computation", () => {
    const inT = tf.tensor2d([[1, 0], [0, 2]]);
    const zero = tf.zeros([2, 2]) as tf.Tensor2D;
    const c = tf.tensor1d([0, 1], "int32");
    const x = tf.tensor1d([1, 0], "int32");
    const n = tf.tensor1d([0, 1, 1, 0, 0, 1], "int32"); // K = 3
    assert.ok(Math.abs(sgnsLoss(inT, zero, c, x, n).dataSync()[0] - 4 * Math.log(2)) < 1e-5);
    // out = in: pair (0 → 1): u=[1,0], v=[0,2] → u·v = 0; negatives 0,1,1: scores 1, 0, 0.
    const sp = (z: number) => Math.log(1 + Math.exp(z));
    const l0 = sp(-0) + sp(1) + sp(0) + sp(0);
    // pair (1 → 0): u=[0,2], v=[1,0] → 0; negatives 0,0,1: scores 0, 0, 4.
    const l1 = sp(-0) + sp(0) + sp(0) + sp(4);
    const got = sgnsLoss(inT, inT, c, x, n).dataSync()[0];
    assert.ok(Math.abs(got - (l0 + l1) / 2) < 1e-5, `${got} vs ${(l0 + l1) / 2}`);
    tf.dispose([inT, zero, c, x, n]);
  });

  it("learns two disjoint topics: loss falls, same-topic words are closer; seeded; no leak", async function () {
    const text = twoTopicCorpus(7);
    const tensorsBefore = tf.memory().numTensors;
    const losses: number[] = [];
    const opts = { dim: 8, window: 2, negatives: 3, minCount: 1, subsampleT: 0, steps: 60, batchSize: 256, lr: 0.05, seed: 3, progressEvery: 10 };
    const res = await trainWord2Vec(text, { ...opts, onProgress: (p) => losses.push(p.loss) });
    assert.equal(tf.memory().numTensors, tensorsBefore, "tensors leaked");
    assert.equal(res.words.length, 12);
    assert.equal(res.losses.length, 6);
    assert.ok(losses[5] < losses[0] * 0.8, `loss ${losses[0]} → ${losses[5]}`);
    const A = ["sea", "wave", "salt", "tide", "shore", "foam"];
    const B = ["oak", "leaf", "root", "bark", "moss", "fern"];
    let within = 0, across = 0, nw = 0, na = 0;
    for (const a of A) for (const b of [...A, ...B]) {
      if (a === b) continue;
      const s = wordSimilarity(res, a, b);
      if (B.includes(b)) { across += s; na++; } else { within += s; nw++; }
    }
    assert.ok(within / nw > across / na + 0.5, `within ${within / nw}, across ${across / na}`);
    for (const nb of nearestNeighbours(res, "sea", 5)) assert.ok(A.includes(nb.word), `neighbour of sea: ${nb.word}`);
    const again = await trainWord2Vec(text, opts);
    assert.deepEqual(again.vectors, res.vectors);
    // steps: 0 → the random initialisation, same vocabulary.
    const init = await trainWord2Vec(text, { ...opts, steps: 0 });
    assert.deepEqual(init.words, res.words);
    assert.equal(init.losses.length, 0);
    const pairs = heldOutPairs(twoTopicCorpus(8), res.words, { count: 300, subsampleT: 0 });
    const after = scorePairs(res, pairs.related, pairs.random);
    const before = scorePairs(init, pairs.related, pairs.random);
    // Half of the random pairs fall inside one topic too, so a perfect model scores ≈ 0.75.
    assert.ok(after.auc > 0.68 && Math.abs(before.auc - 0.5) < 0.15, `AUC ${before.auc} → ${after.auc}`);
  });

  it("rejects bad options and unknown words", async () => {
    await assert.rejects(trainWord2Vec("a b a b", { dim: 0 }), /dim must be a positive integer, got 0/);
    await assert.rejects(trainWord2Vec("a b c", { minCount: 5 }), /need at least 2 words seen 5\+ times, found 0/);
    const emb: WordEmbeddings = { words: ["a", "b"], counts: [1, 1], dim: 2, vectors: [[1, 0], [0, 1]] };
    assert.throws(() => nearestNeighbours(emb, "zz", 1), /"zz" is not in the vocabulary \(2 words\)/);
  });

  it("held-out pairs: related pairs are near each other, random pairs share the first word; both in the vocabulary", () => {
    const text = "alpha beta gamma delta alpha beta gamma delta epsilon zeta alpha gamma";
    const vocab = ["alpha", "beta", "gamma", "delta"];
    const { related, random } = heldOutPairs(text, vocab, { window: 1, count: 50, subsampleT: 0, seed: 2 });
    assert.equal(related.length, 50);
    assert.equal(random.length, 50);
    const kept = word2vecWords(text).filter((w) => vocab.includes(w)); // alpha beta gamma delta alpha beta gamma delta alpha gamma
    const adjacent = new Set(kept.slice(1).map((w, i) => `${kept[i]} ${w}`).flatMap((p) => [p, p.split(" ").reverse().join(" ")]));
    related.forEach(([a, b], i) => {
      assert.ok(adjacent.has(`${a} ${b}`), `${a} ${b} are not neighbours`);
      assert.equal(random[i][0], a);
      assert.notEqual(random[i][1], a);
    });
    assert.throws(() => heldOutPairs("alpha beta", vocab, { window: 2, subsampleT: 0 }), /only 2 usable words/);
  });

  it("cosine similarity and AUC by hand", () => {
    assert.equal(cosineSimilarity([1, 0], [0, 3]), 0);
    assert.ok(Math.abs(cosineSimilarity([1, 1], [2, 2]) - 1) < 1e-12);
    assert.equal(cosineSimilarity([0, 0], [1, 2]), 0);
    assert.equal(rocAuc([3, 4], [1, 2]), 1);
    assert.equal(rocAuc([1], [2]), 0);
    assert.equal(rocAuc([1, 3], [2, 2]), 0.5); // 3>2 twice, 1<2 twice
    assert.equal(rocAuc([2], [2]), 0.5); // a tie counts half
    const emb: WordEmbeddings = { words: ["a", "b", "c"], counts: [1, 1, 1], dim: 2, vectors: [[1, 0], [1, 0.1], [0, 1]] };
    assert.deepEqual(nearestNeighbours(emb, "a", 2).map((n) => n.word), ["b", "c"]);
    const s = scorePairs(emb, [["a", "b"]], [["a", "c"]]);
    assert.equal(s.auc, 1);
    assert.equal(s.randomCosine, 0);
  });
});
