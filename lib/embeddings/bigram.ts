import { splitWords } from "../tokens/wordTokenizer";

/**
 * The smallest possible "language model": predict the next word from the current word alone,
 * by counting which word followed which in a corpus (a word-level bigram model).
 *
 * It already does what an LLM does (give a probability to every possible next token, then
 * sample one, append it, repeat), but it sees only one word of context. The rest of the course
 * replaces the counting table with a neural network that reads the whole context.
 *
 * Words are split as the word tokenizer of the tokens lesson splits them (`splitWords`):
 * lowercase; runs of letters and digits, keeping inner apostrophes ("don't", "whale's"); every
 * other non-space character is a token of its own ("." "," "—"). So "Call me Ishmael." →
 * ["call", "me", "ishmael", "."] and "Sub-Sub" → ["sub", "-", "sub"].
 */

/**
 * Join tokens back into readable text: no space before closing punctuation, none after an
 * opening bracket or a dash. A straight double quote closes (sticks to the word before it) when a
 * quote is open and it follows a word or a sentence mark; otherwise it opens (sticks to the next word).
 */
export function joinWords(tokens: readonly string[]): string {
  let out = "";
  let glueNext = true; // no space before the first token
  let insideQuote = false;
  let prev = "";
  for (const t of tokens) {
    let glueLeft = /^[.,;:!?)\]}'’”\-—]$/u.test(t);
    let glueRight = /^[(\[{“\-—]$/u.test(t);
    if (t === '"') {
      const closes: boolean = insideQuote && /^(?:[\p{L}\p{N}].*|[.,;:!?)\]])$/u.test(prev);
      glueLeft = closes;
      glueRight = !closes;
      insideQuote = !closes;
    }
    out += glueNext || glueLeft ? t : ` ${t}`;
    glueNext = glueRight;
    prev = t;
  }
  return out;
}

export interface BigramModel {
  /** counts.get(a).get(b) = how many times word b followed word a. */
  counts: Map<string, Map<string, number>>;
  /** totals.get(a) = how many times word a was followed by anything. */
  totals: Map<string, number>;
  /** Every word seen in training. */
  vocabulary: Set<string>;
  /** Number of (word, next word) pairs counted. */
  pairs: number;
}

/** Count every (word, next word) pair of the text. The text is one long stream: pairs cross line and sentence ends. */
export function trainBigram(text: string): BigramModel {
  const words = splitWords(text);
  if (words.length < 2) throw new Error(`trainBigram: need at least two words of text, got ${words.length}`);
  const counts = new Map<string, Map<string, number>>();
  const totals = new Map<string, number>();
  for (let i = 0; i + 1 < words.length; i++) {
    const [a, b] = [words[i], words[i + 1]];
    let row = counts.get(a);
    if (!row) counts.set(a, (row = new Map()));
    row.set(b, (row.get(b) ?? 0) + 1);
    totals.set(a, (totals.get(a) ?? 0) + 1);
  }
  return { counts, totals, vocabulary: new Set(words), pairs: words.length - 1 };
}

export interface NextWord {
  word: string;
  count: number;
  /** count / (times the context word was followed by anything): the maximum-likelihood estimate. */
  probability: number;
}

/**
 * The most likely next words after `word` (lowercased), most frequent first; equal counts in
 * alphabetical order so the result never depends on insertion order. An unseen word gives [].
 */
export function nextWordDistribution(model: BigramModel, word: string, topK = 10): NextWord[] {
  const key = word.toLowerCase();
  const row = model.counts.get(key);
  if (!row) return [];
  const total = model.totals.get(key)!;
  return [...row.entries()]
    .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
    .slice(0, Math.max(0, topK))
    .map(([w, count]) => ({ word: w, count, probability: count / total }));
}

/** A source of uniform random numbers in [0, 1): a function, or an object with `next()` like `createRng(seed)`. */
export type UniformSource = (() => number) | { next(): number };

export interface SampleOptions {
  /** Stop after this many words (the start word included). */
  maxWords: number;
  /**
   * Reshape the distribution: probability ∝ count^(1/temperature). 1 = as counted, < 1 favours
   * frequent words, > 1 flattens towards uniform, 0 = always the most frequent (greedy).
   */
  temperature?: number;
  /** Source of randomness in [0, 1); a seeded one (`createRng(42)`) makes the text reproducible. */
  rng: UniformSource;
  /** Stop after one of these tokens (default: sentence ends "." "!" "?"). */
  stopAt?: readonly string[];
}

/**
 * Generate text one word at a time: look up the distribution after the last word, draw the
 * next word from it, repeat. Returns the joined text (start word included). Stops at `maxWords`,
 * at a sentence end, or at a word that was never followed by anything in training.
 */
export function sampleSentence(model: BigramModel, start: string, options: SampleOptions): string {
  return joinWords(sampleWords(model, start, options));
}

/** Like `sampleSentence`, but returns the list of tokens. */
export function sampleWords(model: BigramModel, start: string, options: SampleOptions): string[] {
  const { maxWords } = options;
  const source = options.rng;
  const rng = typeof source === "function" ? source : () => source.next();
  const temperature = options.temperature ?? 1;
  const stopAt = new Set(options.stopAt ?? [".", "!", "?"]);
  if (!(temperature >= 0)) throw new Error(`sampleSentence: temperature must be ≥ 0, got ${temperature}`);
  if (!Number.isInteger(maxWords) || maxWords < 1) throw new Error(`sampleSentence: maxWords must be a positive integer, got ${maxWords}`);
  const first = splitWords(start);
  if (first.length === 0) throw new Error(`sampleSentence: start "${start}" contains no word`);
  const unknown = first.filter((w) => !model.vocabulary.has(w));
  if (unknown.length > 0) throw new Error(`sampleSentence: start word "${unknown[0]}" never occurs in the training text`);

  const words = first.slice(0, maxWords);
  while (words.length < maxWords && !stopAt.has(words[words.length - 1])) {
    const row = model.counts.get(words[words.length - 1]);
    if (!row) break; // the corpus's last word: nothing ever followed it
    words.push(drawNext(row, temperature, rng));
  }
  return words;
}

function drawNext(row: Map<string, number>, temperature: number, rng: () => number): string {
  // Fixed order (alphabetical) so a seed gives the same words whatever order the counts were inserted in.
  const entries = [...row.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  if (temperature === 0) {
    let best = entries[0];
    for (const e of entries) if (e[1] > best[1]) best = e;
    return best[0];
  }
  // count^(1/T), computed in log space and shifted by the maximum so large exponents don't overflow.
  const logs = entries.map(([, c]) => Math.log(c) / temperature);
  const maxLog = Math.max(...logs);
  const weights = logs.map((l) => Math.exp(l - maxLog));
  const total = weights.reduce((s, w) => s + w, 0);
  let r = rng() * total;
  for (let i = 0; i < entries.length; i++) {
    r -= weights[i];
    if (r < 0) return entries[i][0];
  }
  return entries[entries.length - 1][0]; // rounding left a sliver: take the last
}

export interface Evaluation {
  /** Pairs of held-out text scored. */
  total: number;
  /** How often the true next word was among the model's top-k guesses. */
  correct: number;
  /** correct / total. */
  accuracy: number;
  /** Pairs whose context word never occurred in training (always counted wrong: no guess possible). */
  unseenContext: number;
}

/**
 * How often is the model's top guess (or one of its top k) the word that really came next,
 * on text it was not trained on? A simple, honest score; the next chapters use the loss instead.
 */
export function topPredictionAccuracy(model: BigramModel, heldOut: string, k = 1): Evaluation {
  const words = splitWords(heldOut);
  let correct = 0;
  let unseenContext = 0;
  // Guesses per context word are the same every time: compute each once.
  const guesses = new Map<string, Set<string>>();
  for (let i = 0; i + 1 < words.length; i++) {
    const a = words[i];
    if (!model.counts.has(a)) {
      unseenContext++;
      continue;
    }
    let g = guesses.get(a);
    if (!g) guesses.set(a, (g = new Set(nextWordDistribution(model, a, k).map((n) => n.word))));
    if (g.has(words[i + 1])) correct++;
  }
  const total = Math.max(0, words.length - 1);
  return { total, correct, accuracy: total === 0 ? 0 : correct / total, unseenContext };
}

/**
 * Perplexity on held-out text with add-α (Laplace) smoothing, so unseen pairs get a small
 * probability instead of zero: P(b | a) = (count(a,b) + α) / (count(a) + α·V), where V is the
 * training vocabulary plus one slot for "any unknown word". Perplexity = exp(mean negative log
 * probability): "as uncertain as choosing among this many equally likely words".
 */
export function perplexity(model: BigramModel, heldOut: string, alpha = 1): number {
  if (!(alpha > 0)) throw new Error(`perplexity: alpha must be > 0, got ${alpha}`);
  const words = splitWords(heldOut);
  if (words.length < 2) throw new Error(`perplexity: need at least two words of held-out text, got ${words.length}`);
  const V = model.vocabulary.size + 1;
  let nll = 0;
  for (let i = 0; i + 1 < words.length; i++) {
    const count = model.counts.get(words[i])?.get(words[i + 1]) ?? 0;
    const total = model.totals.get(words[i]) ?? 0;
    nll -= Math.log((count + alpha) / (total + alpha * V));
  }
  return Math.exp(nll / (words.length - 1));
}
