/**
 * The simulated labeller: a transparent rule that ranks responses the way a (very
 * predictable) human would, so the whole RLHF loop runs without people, and so we know the
 * "true" preference when we evaluate (the reward model only ever sees its rankings).
 *
 * A response's true score is a weighted sum of four criteria, each a number in [0, 1]:
 *
 *   criterion  weight  value
 *   correct      8     1 if the reference answer appears in the response (after normalising:
 *                      lower case, letters/digits/spaces only), else the fraction of the
 *                      reference's words that appear; 0 when there is no reference (chat)
 *   ended        2     1 if the response ends with the end-of-turn marker (it finished its
 *                      turn instead of being cut off), else 0
 *   concise      1     1 − length/64, floored at 0 (length in characters, marker excluded)
 *   polite       0.5   1 if it contains a polite word (please, thank, glad, happy, welcome)
 *
 * Weights are chosen so that a criterion higher in the table outweighs everything below it
 * together: a correct answer beats any incorrect one (8 > 2 + 1 + 0.5), a finished answer
 * beats an unfinished one that is as correct (2 > 1 + 0.5). Only "concise" and "polite"
 * trade off: a polite word is worth up to 32 characters of length.
 *
 * Ranking = sort by true score, best first; ties keep the responses' order (so the ranking
 * is deterministic). `explainPreference(a, b)` says which criterion decided.
 *
 * Why this rule: a character-level GPT can visibly learn each part in minutes of PPO
 * (stop earlier, say "thanks", spell the answer), and it has a built-in trap for reward
 * hacking: the reward model may learn "polite words are good" more strongly than the rule
 * means it, and a policy that repeats them gets a high reward-model score but a LOWER true
 * score (the bonus counts once, the length costs every character).
 */

import type { PreferenceRecord } from "./preferences";

/**
 * The end-of-turn marker a finished response ends with: the SFT chat format's "<|end|>"
 * (lib/finetune/sft CHAT_TOKENS.end), as it appears in decoded text.
 */
export const DEFAULT_END_OF_TURN = "<|end|>";

/** Responses longer than this many characters score 0 on "concise" (the model's context). */
export const CONCISE_MAX_CHARS = 64;

export const POLITE_WORDS: readonly string[] = ["please", "thank", "glad", "happy", "welcome"];

export interface LabellerOptions {
  /** The end-of-turn marker (default DEFAULT_END_OF_TURN). */
  endOfTurn?: string;
}

export interface ScoreContext {
  prompt: string;
  /** The response without its end-of-turn marker. */
  text: string;
  /** Whether the response ended with the end-of-turn marker. */
  ended: boolean;
  reference?: string;
}

export interface Criterion {
  name: string;
  weight: number;
  /** What a learner reads to understand the rule. */
  description: string;
  /** Value in [0, 1]. */
  value: (ctx: ScoreContext) => number;
}

/** Lower case, letters and digits only, single spaces: "The  Pequod!" → "the pequod". */
function normalizeText(s: string): string {
  return s.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();
}

function correctness(text: string, reference: string): number {
  const ref = normalizeText(reference);
  if (ref === "") return 0;
  const res = normalizeText(text);
  if (` ${res} `.includes(` ${ref} `)) return 1;
  const words = new Set(res.split(" "));
  const refWords = [...new Set(ref.split(" "))];
  return refWords.filter((w) => words.has(w)).length / refWords.length;
}

/** The rule, in decreasing order of importance. */
export const TRUE_PREFERENCE_RULE: readonly Criterion[] = [
  {
    name: "correct", weight: 8,
    description: "contains the reference answer (else: fraction of its words present); 0 without a reference",
    value: (c) => (c.reference === undefined ? 0 : correctness(c.text, c.reference)),
  },
  {
    name: "ended", weight: 2,
    description: "ends with the end-of-turn marker instead of being cut off",
    value: (c) => (c.ended ? 1 : 0),
  },
  {
    name: "concise", weight: 1,
    description: `1 − characters/${CONCISE_MAX_CHARS}, floored at 0`,
    value: (c) => Math.max(0, 1 - [...c.text].length / CONCISE_MAX_CHARS),
  },
  {
    name: "polite", weight: 0.5,
    description: `contains one of: ${POLITE_WORDS.join(", ")} (counts once)`,
    value: (c) => {
      const words = normalizeText(c.text).split(" ");
      return words.some((w) => POLITE_WORDS.some((p) => w.startsWith(p))) ? 1 : 0;
    },
  },
];

/** Name of the rule, stored in `rankedBy` as "simulated:<name>". Change it when the rule changes. */
export const LABELLER_RULE_NAME = "correct>ended>concise>polite-v1";
export const SIMULATED_RANKED_BY = `simulated:${LABELLER_RULE_NAME}`;

export interface ScoreBreakdown {
  total: number;
  /** Per criterion: its value in [0, 1] and weighted contribution. */
  parts: Array<{ name: string; value: number; points: number }>;
}

function context(prompt: string, response: string, reference: string | undefined, opts: LabellerOptions): ScoreContext {
  const eot = opts.endOfTurn ?? DEFAULT_END_OF_TURN;
  const ended = eot !== "" && response.endsWith(eot);
  return { prompt, text: ended ? response.slice(0, response.length - eot.length) : response, ended, reference };
}

/** The true score with each criterion's contribution. */
export function scoreBreakdown(prompt: string, response: string, reference?: string, opts: LabellerOptions = {}): ScoreBreakdown {
  const ctx = context(prompt, response, reference, opts);
  const parts = TRUE_PREFERENCE_RULE.map((c) => {
    const value = c.value(ctx);
    return { name: c.name, value, points: c.weight * value };
  });
  return { total: parts.reduce((s, p) => s + p.points, 0), parts };
}

/** The true score of a response (higher is better). */
export function trueScore(prompt: string, response: string, reference?: string, opts: LabellerOptions = {}): number {
  return scoreBreakdown(prompt, response, reference, opts).total;
}

/** Indices of `responses`, best first by true score (ties: earlier response first). */
export function simulatedRanking(prompt: string, responses: readonly string[], reference?: string, opts: LabellerOptions = {}): number[] {
  const scores = responses.map((r) => trueScore(prompt, r, reference, opts));
  return responses.map((_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
}

/**
 * The criterion that decides between two responses: the most important one (highest weight)
 * on which the preferred response scores higher, or "tie" when their totals are equal. Each
 * criterion outweighs all below it together, except that "polite" can outweigh a small loss
 * on "concise": then "polite" is what decided.
 */
export function decidingCriterion(prompt: string, a: string, b: string, reference?: string, opts: LabellerOptions = {}): string {
  const sa = scoreBreakdown(prompt, a, reference, opts);
  const sb = scoreBreakdown(prompt, b, reference, opts);
  if (Math.abs(sa.total - sb.total) < 1e-9) return "tie";
  const [win, lose] = sa.total > sb.total ? [sa, sb] : [sb, sa];
  return win.parts.find((p, i) => p.points > lose.parts[i].points + 1e-9)?.name ?? "tie";
}

/**
 * Why the labeller prefers one response: "A beats B on correct (8.00 vs 2.67)", naming the
 * most important criterion where they differ, or "tie".
 */
export function explainPreference(prompt: string, a: string, b: string, reference?: string, opts: LabellerOptions = {}): string {
  const sa = scoreBreakdown(prompt, a, reference, opts);
  const sb = scoreBreakdown(prompt, b, reference, opts);
  if (sa.total === sb.total) return `tie (${sa.total.toFixed(2)})`;
  const winner = sa.total > sb.total ? "A" : "B";
  const diff = sa.parts.find((p, i) => p.points !== sb.parts[i].points);
  const detail = diff === undefined ? "" : ` first differing criterion: ${diff.name} (A ${diff.points.toFixed(2)} vs B ${sb.parts[sa.parts.indexOf(diff)].points.toFixed(2)})`;
  return `${winner} wins, total A ${sa.total.toFixed(2)} vs B ${sb.total.toFixed(2)};${detail}`;
}

/** A preference record ranked by the simulated labeller (same format as a human's). */
export function simulatedPreference(
  prompt: string, responses: readonly string[], reference?: string, extra: { id?: string; time?: string } = {}, opts: LabellerOptions = {},
): PreferenceRecord {
  const rec: PreferenceRecord = { prompt, responses: [...responses], ranking: simulatedRanking(prompt, responses, reference, opts), rankedBy: SIMULATED_RANKED_BY };
  if (reference !== undefined) rec.reference = reference;
  if (extra.id !== undefined) rec.id = extra.id;
  if (extra.time !== undefined) rec.time = extra.time;
  return rec;
}

export interface WinRate {
  wins: number;
  ties: number;
  losses: number;
  /** (wins + ties/2) / n: 0.5 = no better than the baseline. */
  winRate: number;
  n: number;
  /**
   * 95 % confidence interval of the win-rate, [low, high] (winRateInterval): the spread of
   * the same comparison run again on new questions of the same kind. [NaN, NaN] when n < 2.
   */
  interval: [number, number];
}

/** A mean with its 95 % interval, over `n` independent units (questions). */
export interface MeanInterval {
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

/**
 * Mean of `values` and its normal 95 % interval, mean ± 1.96·s/√n, where every `perQuestion`
 * consecutive values belong to one question and are averaged first: answers sampled for the
 * same question are not independent (an easy question makes all of them good), so the spread
 * and the count are those of the questions, not of the answers. perQuestion = 1: the usual
 * interval of a mean. lo/hi are NaN with fewer than two questions.
 */
export function questionMeanInterval(values: readonly number[], perQuestion = 1, z = 1.96): MeanInterval {
  if (!Number.isInteger(perQuestion) || perQuestion < 1 || values.length % perQuestion !== 0) {
    throw new Error(`questionMeanInterval: ${values.length} values are not whole groups of ${perQuestion} per question`);
  }
  const q: number[] = [];
  for (let i = 0; i < values.length; i += perQuestion) q.push(values.slice(i, i + perQuestion).reduce((a, b) => a + b, 0) / perQuestion);
  const n = q.length;
  const mean = n === 0 ? NaN : q.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, lo: NaN, hi: NaN, n };
  const se = Math.sqrt(q.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) / n);
  return { mean, lo: mean - z * se, hi: mean + z * se, n };
}

/** The mean difference a[i] − b[i] of paired scores (same questions, same order), with its interval (questionMeanInterval). */
export function pairedDifference(a: readonly number[], b: readonly number[], perQuestion = 1): MeanInterval {
  if (a.length !== b.length) throw new Error(`pairedDifference: ${a.length} scores against ${b.length}`);
  return questionMeanInterval(a.map((x, i) => x - b[i]), perQuestion);
}

/**
 * 95 % interval of a win-rate from its counts. Each comparison scores 1 (win), ½ (tie) or 0
 * (loss); the win-rate is their mean, so by the central limit theorem it is about normal with
 * the standard error s/√n, s the sample standard deviation of the scores:
 *
 *   winRate ± 1.96 · s / √n, clipped to [0, 1].
 *
 * With n ≥ 100 comparisons this is what a bootstrap gives to two decimals. Example: 130 wins,
 * 20 ties, 50 losses of 200 → 0.70 ± 0.06. (Several answers per question: `winRate`'s
 * perQuestion, which counts questions.)
 */
export function winRateInterval(wins: number, ties: number, losses: number, z = 1.96): [number, number] {
  const n = wins + ties + losses;
  if (n < 2) return [NaN, NaN];
  const mean = (wins + ties / 2) / n;
  const sumSq = wins * (1 - mean) ** 2 + ties * (0.5 - mean) ** 2 + losses * mean ** 2;
  const se = Math.sqrt(sumSq / (n - 1) / n);
  return [Math.max(0, mean - z * se), Math.min(1, mean + z * se)];
}

/**
 * Head-to-head by the TRUE rule (the honest evaluation: not the reward model that was
 * optimised against): does answer a[i] beat b[i] on prompt i? With several answers per
 * question (`perQuestion` consecutive items each), the interval counts questions.
 */
export function winRate(
  items: ReadonlyArray<{ prompt: string; a: string; b: string; reference?: string }>, opts: LabellerOptions = {}, perQuestion = 1,
): WinRate {
  let wins = 0, ties = 0, losses = 0;
  const scores = items.map(({ prompt, a, b, reference }) => {
    const d = trueScore(prompt, a, reference, opts) - trueScore(prompt, b, reference, opts);
    if (Math.abs(d) < 1e-9) return ties++, 0.5;
    if (d > 0) return wins++, 1;
    return losses++, 0;
  });
  const n = items.length;
  const m = questionMeanInterval(scores, perQuestion);
  const interval: [number, number] = Number.isNaN(m.lo) ? [NaN, NaN] : [Math.max(0, m.lo), Math.min(1, m.hi)];
  return { wins, ties, losses, winRate: n === 0 ? NaN : (wins + ties / 2) / n, n, interval };
}
