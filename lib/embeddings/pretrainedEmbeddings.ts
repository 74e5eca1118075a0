/**
 * Pre-trained embeddings: vectors someone else learned on a huge corpus, loaded instead of
 * (or as the starting point for) the model's own embedding table.
 *
 * Two text formats are common, and `loadWordVectors` reads both:
 *  - GloVe (nlp.stanford.edu/projects/glove): one line per word, `word v1 v2 … vD`;
 *  - word2vec / fastText `.vec` text format: the same lines after a header `count dim`.
 *
 * `embeddingFromPretrained` builds an embedding table for a tokenizer's vocabulary: rows
 * of words found in the file are copied, the others start random (and "coverage" says how
 * many were found).
 */
import * as fs from "fs";
import * as tf from "@tensorflow/tfjs";
import { createRng } from "../core/random";
import type { Tokenizer } from "../tokens/tokenizer";

export interface WordVectors {
  words: string[];
  dim: number;
  /** Row i is the vector of words[i]. */
  vectors: Float32Array[];
  /** word → row */
  index: Map<string, number>;
  format: "glove" | "word2vec";
}

export interface LoadWordVectorsOptions {
  /** Read at most this many words (files are sorted by frequency, so these are the commonest). */
  limit?: number;
  /** Fail unless the vectors have this length. */
  expectedDim?: number;
}

/** Parse the text of a vectors file; `file` names it in errors. */
export function parseWordVectors(text: string, file: string, opts: LoadWordVectorsOptions = {}): WordVectors {
  const { limit = Infinity, expectedDim } = opts;
  const lines = text.split("\n");
  const fail = (line: number, msg: string): never => {
    throw new Error(`${file}:${line}: ${msg}`);
  };
  let start = 0;
  let headerCount: number | undefined;
  let dim = expectedDim;
  let format: WordVectors["format"] = "glove";
  const first = (lines[0] ?? "").trim().split(/\s+/);
  if (first.length === 2 && /^\d+$/.test(first[0]) && /^\d+$/.test(first[1])) {
    // word2vec header: "count dim".
    format = "word2vec";
    headerCount = Number(first[0]);
    const headerDim = Number(first[1]);
    if (expectedDim !== undefined && headerDim !== expectedDim) fail(1, `header says dimension ${headerDim}, expected ${expectedDim}`);
    dim = headerDim;
    start = 1;
  }
  const words: string[] = [];
  const vectors: Float32Array[] = [];
  const index = new Map<string, number>();
  for (let i = start; i < lines.length && words.length < limit; i++) {
    const line = lines[i].replace(/\r$/, "");
    if (line.trim() === "") continue;
    const parts = line.trimEnd().split(" ");
    const word = parts[0];
    const nums = parts.slice(1);
    if (dim === undefined) dim = nums.length;
    if (nums.length !== dim) fail(i + 1, `word "${word}" has ${nums.length} numbers, expected ${dim}`);
    const v = new Float32Array(dim);
    nums.forEach((s, j) => {
      const x = Number(s);
      if (s === "" || !Number.isFinite(x)) fail(i + 1, `value ${j + 1} of word "${word}" is not a number: "${s}"`);
      v[j] = x;
    });
    if (dim === 0) fail(i + 1, `word "${word}" has no numbers`);
    if (!index.has(word)) index.set(word, words.length); // keep the first (most frequent) entry
    words.push(word);
    vectors.push(v);
  }
  if (headerCount !== undefined && limit === Infinity && words.length !== headerCount) {
    fail(1, `header says ${headerCount} words, the file has ${words.length}`);
  }
  if (words.length === 0 || dim === undefined) throw new Error(`${file}: no word vectors found`);
  return { words, dim, vectors, index, format };
}

/** Load a GloVe or word2vec text file (the format is detected from the first line). */
export function loadWordVectors(file: string, opts: LoadWordVectorsOptions = {}): WordVectors {
  if (!fs.existsSync(file)) throw new Error(`loadWordVectors: ${file} does not exist (download GloVe from https://nlp.stanford.edu/projects/glove/ and unzip it)`);
  return parseWordVectors(fs.readFileSync(file, "utf8"), file, opts);
}

export interface PretrainedEmbedding {
  /** [vocabSize, dim] table, trainable or frozen. */
  table: tf.Variable;
  /** Fraction of the vocabulary found in the file. */
  coverage: number;
  found: number;
  /** Vocabulary entries not in the file (they got random rows). */
  missing: string[];
}

/**
 * An embedding table for a vocabulary (a list of words or a tokenizer's tokens): rows of
 * words present in `vectors` are copied (also trying the lowercased word), the others
 * are drawn from N(0, σ²) with σ the standard deviation of the pre-trained numbers, so
 * they look like the rest. `trainable: false` freezes the table.
 */
export function embeddingFromPretrained(
  vectors: WordVectors,
  vocab: Tokenizer | readonly string[],
  opts: { trainable?: boolean; seed?: number } = {},
): PretrainedEmbedding {
  const words = Array.isArray(vocab)
    ? (vocab as readonly string[])
    : Array.from({ length: (vocab as Tokenizer).vocabSize }, (_, i) => (vocab as Tokenizer).idToToken(i));
  const D = vectors.dim;
  let sum = 0;
  let sq = 0;
  let n = 0;
  for (const v of vectors.vectors) for (const x of v) {
    sum += x;
    sq += x * x;
    n++;
  }
  const mean = sum / n;
  const std = Math.sqrt(Math.max(sq / n - mean * mean, 1e-12));
  const rng = createRng(opts.seed ?? 0);
  const data = new Float32Array(words.length * D); // [V, D] row-major
  const missing: string[] = [];
  words.forEach((w, i) => {
    const row = vectors.index.get(w) ?? vectors.index.get(w.toLowerCase());
    if (row !== undefined) data.set(vectors.vectors[row], i * D);
    else {
      missing.push(w);
      for (let j = 0; j < D; j++) data[i * D + j] = rng.normal() * std;
    }
  });
  const found = words.length - missing.length;
  const table = tf.tidy(() => tf.variable(tf.tensor2d(data, [words.length, D]), opts.trainable ?? true));
  return { table, coverage: words.length ? found / words.length : 0, found, missing };
}
