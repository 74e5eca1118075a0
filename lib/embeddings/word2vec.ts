/**
 * word2vec: learn word embeddings from raw text (Mikolov et al., 2013), the skip-gram
 * model with negative sampling (SGNS).
 *
 * The idea: a word is known by the company it keeps. For every word of the corpus (the
 * *centre*) and every word near it (a *context* word, at most `window` positions away),
 * train two tables of vectors so that
 *
 *   σ(in[centre] · out[context])  → 1   (this pair really occurred)
 *   σ(in[centre] · out[noise_k])  → 0   (k = 1..negatives words drawn at random)
 *
 * i.e. minimise  −log σ(u·v) − Σ_k log σ(−u·n_k)  per pair. Words that appear in similar
 * contexts need similar `in` vectors to score well against the same `out` vectors, so they
 * end up close: those `in` vectors are the embeddings.
 *
 * The three tricks of the paper, all here:
 *  - noise words are drawn from the unigram distribution raised to the power 0.75
 *    (`noiseDistribution`): rare words are drawn a bit more often than their frequency;
 *  - frequent words are subsampled (`keepProbability`): "the" near "whale" says little, and
 *    dropping most occurrences of "the" speeds training and widens the effective window;
 *  - the window size is drawn uniformly in 1..window for every centre, so nearer words
 *    count more.
 *
 * On tfjs (wasm) it runs fast by training on large batches of pairs at once: gather the
 * rows of both tables, take dot products as elementwise product + sum over the vector axis,
 * and let Adam update the tables.
 */
import * as tf from "@tensorflow/tfjs";
import { createRng, Rng, seedFor } from "../core/random";
import { splitWords } from "../tokens/wordTokenizer";

// ---------------------------------------------------------------------------------------
// Vocabulary and the two sampling distributions

export interface Word2VecVocabulary {
  /** Words by id, most frequent first (ties alphabetical). */
  words: string[];
  /** Corpus count of each word. */
  counts: number[];
  /** word → id */
  index: Map<string, number>;
}

/** Words of a text as word2vec sees them: lowercased, punctuation dropped. */
export function word2vecWords(text: string): string[] {
  return splitWords(text, true).filter((w) => /[\p{L}\p{N}]/u.test(w));
}

/** Words seen at least `minCount` times, most frequent first, at most `maxVocab` of them. */
export function buildVocabulary(words: readonly string[], minCount = 5, maxVocab = Infinity): Word2VecVocabulary {
  const counts = new Map<string, number>();
  for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
  const rows = [...counts]
    .filter(([, c]) => c >= minCount)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, maxVocab);
  const index = new Map<string, number>();
  rows.forEach(([w], i) => index.set(w, i));
  return { words: rows.map(([w]) => w), counts: rows.map(([, c]) => c), index };
}

/**
 * The noise distribution for negative sampling: P(w) ∝ count(w)^power (power 0.75 in the
 * paper). Example: counts [8, 1] → weights [8^0.75, 1] = [4.757, 1] → [0.826, 0.174],
 * where plain frequencies would give [0.889, 0.111].
 */
export function noiseDistribution(counts: readonly number[], power = 0.75): Float64Array {
  if (counts.length === 0) throw new Error("noiseDistribution: counts is empty");
  const w = Float64Array.from(counts, (c, i) => {
    if (!(c >= 0)) throw new Error(`noiseDistribution: counts[${i}] must be a non-negative number, got ${c}`);
    return Math.pow(c, power);
  });
  const total = w.reduce((s, x) => s + x, 0);
  if (!(total > 0)) throw new Error("noiseDistribution: all counts are zero");
  return w.map((x) => x / total);
}

/**
 * Probability of keeping one occurrence of a word of relative frequency f = count/total
 * (word2vec's C code; the paper's "discard with 1 − √(t/f)" is the same idea):
 *
 *   keep(f) = √(t/f) + t/f,  capped at 1.
 *
 * With t = 1e-3 a word making up 1% of the text is kept 35% of the time; words rarer than
 * about 2.6·t are always kept.
 */
export function keepProbability(count: number, total: number, t = 1e-3): number {
  if (!(count > 0) || !(total >= count)) throw new Error(`keepProbability: need 0 < count <= total, got count ${count}, total ${total}`);
  if (!(t > 0)) return 1; // t = 0 switches subsampling off
  const f = count / total;
  return Math.min(1, Math.sqrt(t / f) + t / f);
}

/** Draws from a fixed discrete distribution in O(log n) per draw (cumulative sums + binary search). */
export class DiscreteSampler {
  private readonly cdf: Float64Array;
  constructor(probs: ArrayLike<number>) {
    this.cdf = new Float64Array(probs.length);
    let s = 0;
    for (let i = 0; i < probs.length; i++) this.cdf[i] = s += probs[i];
  }
  /** One index, from a uniform number u in [0, 1). */
  sample(u: number): number {
    const x = u * this.cdf[this.cdf.length - 1];
    let lo = 0;
    let hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cdf[mid] > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/** The corpus as ids, out-of-vocabulary words removed (as word2vec does). */
export function toIds(words: readonly string[], vocab: Word2VecVocabulary): Int32Array {
  const ids: number[] = [];
  for (const w of words) {
    const id = vocab.index.get(w);
    if (id !== undefined) ids.push(id);
  }
  return Int32Array.from(ids);
}

/** Keep each occurrence with its `keepProbability` (one random draw per token). */
export function subsample(ids: Int32Array, vocab: Word2VecVocabulary, t: number, rng: Rng): Int32Array {
  const total = vocab.counts.reduce((s, c) => s + c, 0);
  const keep = vocab.counts.map((c) => keepProbability(c, total, t));
  return ids.filter((id) => rng.next() < keep[id]);
}

/**
 * (centre, context) pairs of a token stream: for each centre a window b is drawn in
 * 1..window and every token at most b positions away is a context. Returns two parallel
 * arrays of ids.
 */
export function skipGramPairs(ids: Int32Array, window: number, rng: Rng): { centres: Int32Array; contexts: Int32Array } {
  if (!Number.isInteger(window) || window < 1) throw new Error(`skipGramPairs: window must be a positive integer, got ${window}`);
  const centres: number[] = [];
  const contexts: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const b = 1 + rng.int(window);
    for (let j = Math.max(0, i - b); j <= Math.min(ids.length - 1, i + b); j++) {
      if (j === i) continue;
      centres.push(ids[i]);
      contexts.push(ids[j]);
    }
  }
  return { centres: Int32Array.from(centres), contexts: Int32Array.from(contexts) };
}

// ---------------------------------------------------------------------------------------
// The model

/** The SGNS loss of a batch, averaged over pairs. Shapes in the comments. */
export function sgnsLoss(
  inTable: tf.Tensor2D, // [V, D] centre ("input") vectors: the embeddings
  outTable: tf.Tensor2D, // [V, D] context ("output") vectors
  centres: tf.Tensor1D, // [B] int32
  contexts: tf.Tensor1D, // [B] int32
  negatives: tf.Tensor1D, // [B·K] int32
): tf.Scalar {
  return tf.tidy(() => {
    const B = centres.shape[0];
    const D = inTable.shape[1];
    const u = tf.gather(inTable, centres); // [B, D]
    const v = tf.gather(outTable, contexts); // [B, D]
    const n = tf.gather(outTable, negatives).reshape([B, -1, D]); // [B, K, D]
    const pos = tf.sum(tf.mul(u, v), -1); // [B]   u·v
    const neg = tf.sum(tf.mul(u.expandDims(1), n), -1); // [B, K]   u·n_k
    // −log σ(x) = softplus(−x), and −log σ(−x) = softplus(x): stable for large |x|.
    const perPair = tf.add(tf.softplus(tf.neg(pos)), tf.sum(tf.softplus(neg), -1)); // [B]
    return tf.mean(perPair) as tf.Scalar;
  });
}

export interface Word2VecOptions {
  /** Vector length (default 50). */
  dim?: number;
  /** Largest distance between centre and context (default 5). */
  window?: number;
  /** Noise words per pair (default 5). */
  negatives?: number;
  /** Ignore words seen fewer times (default 5). */
  minCount?: number;
  /** Keep at most this many words, the most frequent (default: no limit). */
  maxVocab?: number;
  /** Subsampling threshold t (default 1e-3; 0 = off). */
  subsampleT?: number;
  /** Passes over the corpus (default 1). Ignored if `steps` is given. */
  epochs?: number;
  /** Exact number of batches to train (overrides `epochs`); 0 = return the random initialisation. */
  steps?: number;
  /** Pairs per step (default 1024). */
  batchSize?: number;
  /** Adam learning rate at the start; decays linearly to 10% of it (default 0.01). */
  lr?: number;
  seed?: number;
  /** Called every `progressEvery` steps (and at the end) with the step and the mean loss since the last call. */
  onProgress?: (p: { step: number; totalSteps: number; epoch: number; loss: number }) => void;
  progressEvery?: number;
}

/** Trained (or initial) word vectors. */
export interface WordEmbeddings {
  words: string[];
  counts: number[];
  dim: number;
  /** One row per word, in `words` order. */
  vectors: number[][];
}

export interface Word2VecResult extends WordEmbeddings {
  /** Mean loss per progress report. */
  losses: { step: number; loss: number }[];
  steps: number;
  pairsPerEpoch: number;
  seconds: number;
}

/** Adam's learning rate is read on every step; tfjs only lacks a public setter. */
function setAdamLearningRate(opt: tf.AdamOptimizer, lr: number): void {
  (opt as unknown as { learningRate: number }).learningRate = lr;
}

/**
 * Train skip-gram with negative sampling on `text` (or on an already split word list).
 * Seeded: the same text, options and seed give the same vectors.
 */
export async function trainWord2Vec(text: string | readonly string[], opts: Word2VecOptions = {}): Promise<Word2VecResult> {
  const {
    dim = 50, window = 5, negatives = 5, minCount = 5, maxVocab = Infinity, subsampleT = 1e-3,
    epochs = 1, batchSize = 1024, lr = 0.01, seed = 0, onProgress, progressEvery = 20,
  } = opts;
  for (const [k, v] of Object.entries({ dim, window, negatives, batchSize, progressEvery })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`trainWord2Vec: ${k} must be a positive integer, got ${v}`);
  }
  const started = Date.now();
  const words = typeof text === "string" ? word2vecWords(text) : text;
  const vocab = buildVocabulary(words, minCount, maxVocab);
  const V = vocab.words.length;
  if (V < 2) throw new Error(`trainWord2Vec: need at least 2 words seen ${minCount}+ times, found ${V}`);
  const ids = toIds(words, vocab);
  const rng = createRng(seed);
  const noise = new DiscreteSampler(noiseDistribution(vocab.counts));

  // word2vec's initialisation: small uniform input vectors, zero output vectors (so every
  // score starts at 0 and the first loss is (1 + K)·log 2).
  const inTable: tf.Variable<tf.Rank.R2> = tf.tidy(() =>
    tf.variable(tf.randomUniform([V, dim], -0.5 / dim, 0.5 / dim, "float32", seedFor(rng)), true, "w2v_in"),
  ); // tidy frees the initial value tensor (the variable keeps its own copy)
  const outTable: tf.Variable<tf.Rank.R2> = tf.tidy(() => tf.variable(tf.zeros([V, dim]), true, "w2v_out"));

  // Estimate pairs per epoch from one draw, to know the number of steps for the lr schedule.
  let epochPairs = skipGramPairs(subsample(ids, vocab, subsampleT, rng), window, rng);
  const pairsPerEpoch = epochPairs.centres.length;
  const stepsPerEpoch = Math.max(1, Math.ceil(pairsPerEpoch / batchSize));
  const totalSteps = opts.steps ?? Math.round(epochs * stepsPerEpoch);
  if (!Number.isInteger(totalSteps) || totalSteps < 0) throw new Error(`trainWord2Vec: steps must be a non-negative integer, got ${totalSteps}`);

  const optimizer = tf.train.adam(lr);
  const losses: { step: number; loss: number }[] = [];
  let order = rng.shuffle(Array.from({ length: pairsPerEpoch }, (_, i) => i));
  let cursor = 0;
  let epoch = 0;
  let lossSum = 0;
  let lossCount = 0;
  const negIds = new Int32Array(batchSize * negatives);
  const cBatch = new Int32Array(batchSize);
  const xBatch = new Int32Array(batchSize);

  try {
    for (let step = 1; step <= totalSteps; step++) {
      if (cursor + batchSize > order.length) {
        // New epoch: fresh subsampling, windows and order.
        epoch++;
        epochPairs = skipGramPairs(subsample(ids, vocab, subsampleT, rng), window, rng);
        order = rng.shuffle(Array.from({ length: epochPairs.centres.length }, (_, i) => i));
        cursor = 0;
      }
      const B = Math.min(batchSize, order.length);
      for (let b = 0; b < B; b++) {
        const p = order[(cursor + b) % order.length];
        cBatch[b] = epochPairs.centres[p];
        xBatch[b] = epochPairs.contexts[p];
      }
      cursor += B;
      for (let i = 0; i < B * negatives; i++) negIds[i] = noise.sample(rng.next());

      setAdamLearningRate(optimizer, lr * (1 - 0.9 * (step - 1) / Math.max(1, totalSteps)));
      const lossT = tf.tidy(() => {
        const c = tf.tensor1d(cBatch.subarray(0, B), "int32");
        const x = tf.tensor1d(xBatch.subarray(0, B), "int32");
        const n = tf.tensor1d(negIds.subarray(0, B * negatives), "int32");
        return optimizer.minimize(() => sgnsLoss(inTable, outTable, c, x, n), true, [inTable, outTable]) as tf.Scalar;
      });
      lossSum += (await lossT.data())[0];
      lossT.dispose();
      lossCount++;
      if (step % progressEvery === 0 || step === totalSteps) {
        const loss = lossSum / lossCount;
        losses.push({ step, loss });
        onProgress?.({ step, totalSteps, epoch, loss });
        lossSum = 0;
        lossCount = 0;
        // Let the kernel send display updates (live charts) while training runs.
        await new Promise((r) => setImmediate(r));
      }
    }
    const vectors = inTable.arraySync() as number[][];
    return {
      words: vocab.words, counts: vocab.counts, dim, vectors, losses, steps: totalSteps, pairsPerEpoch,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    optimizer.dispose();
    inTable.dispose();
    outTable.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// Using the vectors

export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosineSimilarity: lengths differ (${a.length} vs ${b.length})`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

function rowOf(emb: WordEmbeddings, word: string, where: string): number {
  const i = emb.words.indexOf(word);
  if (i < 0) throw new Error(`${where}: "${word}" is not in the vocabulary (${emb.words.length} words)`);
  return i;
}

/** The vector of `word` (throws if it is not in the vocabulary). */
export function vectorOf(emb: WordEmbeddings, word: string): number[] {
  return emb.vectors[rowOf(emb, word, "vectorOf")];
}

/** Cosine similarity of two words' vectors. */
export function wordSimilarity(emb: WordEmbeddings, a: string, b: string): number {
  return cosineSimilarity(emb.vectors[rowOf(emb, a, "wordSimilarity")], emb.vectors[rowOf(emb, b, "wordSimilarity")]);
}

/** The `k` words whose vectors have the highest cosine similarity with `word`'s (itself excluded). */
export function nearestNeighbours(emb: WordEmbeddings, word: string, k = 10): { word: string; similarity: number }[] {
  const i = rowOf(emb, word, "nearestNeighbours");
  const q = emb.vectors[i];
  const scored: { word: string; similarity: number }[] = [];
  emb.vectors.forEach((v, j) => {
    if (j !== i) scored.push({ word: emb.words[j], similarity: cosineSimilarity(q, v) });
  });
  return scored.sort((a, b) => b.similarity - a.similarity).slice(0, k);
}

// ---------------------------------------------------------------------------------------
// Did training help? Related pairs vs random pairs, on text the model never saw

export type WordPair = [string, string];

/**
 * Pairs from held-out text: `related` are words at most `window` apart, `random` pair the
 * same centre words with a word from a random position. Both sides come from the same
 * (subsampled) token stream, so word frequencies are matched; only "occur together" differs.
 * Only words of the vocabulary, never a word with itself.
 */
export function heldOutPairs(
  text: string,
  vocab: readonly string[],
  opts: { window?: number; count?: number; subsampleT?: number; seed?: number; counts?: readonly number[] } = {},
): { related: WordPair[]; random: WordPair[] } {
  const { window = 2, count = 2000, subsampleT = 1e-3, seed = 1 } = opts;
  const rng = createRng(seed);
  const known = new Set(vocab);
  let words = word2vecWords(text).filter((w) => known.has(w));
  // Subsample frequent words (by their held-out frequency) so "of the" does not dominate.
  const freq = new Map<string, number>();
  for (const w of words) freq.set(w, (freq.get(w) ?? 0) + 1);
  words = words.filter((w) => rng.next() < keepProbability(freq.get(w)!, words.length, subsampleT));
  if (words.length < 2 * window + 2) throw new Error(`heldOutPairs: only ${words.length} usable words in the held-out text`);
  const related: WordPair[] = [];
  const random: WordPair[] = [];
  for (let tries = 0; related.length < count && tries < count * 20; tries++) {
    const i = rng.int(words.length);
    const off = 1 + rng.int(window);
    const j = rng.next() < 0.5 ? i - off : i + off;
    const r = rng.int(words.length);
    if (j < 0 || j >= words.length || words[j] === words[i] || words[r] === words[i]) continue;
    related.push([words[i], words[j]]);
    random.push([words[i], words[r]]);
  }
  return { related, random };
}

export interface PairScore {
  /** Mean cosine similarity of the related pairs. */
  relatedCosine: number;
  /** Mean cosine similarity of the random pairs. */
  randomCosine: number;
  /**
   * Probability that a related pair scores higher than a random pair (area under the ROC
   * curve): 0.5 = no better than chance, 1 = related pairs always rank first.
   */
  auc: number;
}

/** AUC of scores `pos` vs `neg` by the rank-sum formula (ties count half). */
export function rocAuc(pos: readonly number[], neg: readonly number[]): number {
  if (pos.length === 0 || neg.length === 0) throw new Error("rocAuc: need at least one positive and one negative score");
  const all = [...pos.map((s) => ({ s, p: 1 })), ...neg.map((s) => ({ s, p: 0 }))].sort((a, b) => a.s - b.s);
  let rankSumPos = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j].s === all[i].s) j++;
    const avgRank = (i + 1 + j) / 2; // ranks i+1..j share their mean
    for (let k = i; k < j; k++) if (all[k].p) rankSumPos += avgRank;
    i = j;
  }
  return (rankSumPos - (pos.length * (pos.length + 1)) / 2) / (pos.length * neg.length);
}

/** How much more similar related pairs are than random pairs, under these embeddings. */
export function scorePairs(emb: WordEmbeddings, related: readonly WordPair[], random: readonly WordPair[]): PairScore {
  const sims = (pairs: readonly WordPair[]) => pairs.map(([a, b]) => wordSimilarity(emb, a, b));
  const rel = sims(related);
  const rnd = sims(random);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  return { relatedCosine: mean(rel), randomCosine: mean(rnd), auc: rocAuc(rel, rnd) };
}
