/**
 * The honest evaluation of a policy (PPO's or DPO's) against the SFT model on held-out
 * questions: win-rate and true score by the labeller's rule (not by the reward model that was
 * optimised against), the reward model's score, and the KL travelled from SFT.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic } from "../core/atomic";
import { sequenceLogProbs } from "./dpo";
import type { GPTConfig, GPTParams } from "../gpt/gpt";
import { type MeanInterval, pairedDifference, trueScore, winRate, type WinRate } from "./labeller";
import { clippedScores, SCORE_CLIP } from "./ppo";
import { responseBatch, rowsToTensor } from "../gpt/rollout";
import { type ChatCodec, type RLHFPrompt, sampleResponses } from "./chat";

/**
 * Sampled answers per held-out question in the held-out evaluation of notebooks 08–09 and of
 * npm run ppo|dpo. One answer per question leaves the mean true score about ±0.17 noisy on ~300 questions,
 * as large as the differences being measured; three average out the sampling, and the
 * intervals still count questions (labeller.ts questionMeanInterval).
 */
export const EVAL_SAMPLES = 3;

export interface PolicyEvalOptions {
  policy: GPTParams;
  /** The SFT model: the baseline of the win-rate and the reference of the KL. */
  baseline: GPTParams;
  config: GPTConfig;
  codec: ChatCodec;
  /** Held-out prompts with references. */
  prompts: readonly RLHFPrompt[];
  /** Reward model, for its score of both policies' answers (optional). */
  reward?: GPTParams;
  /** Sampled answers per prompt and policy. Default 1. More answers make the means steadier; the intervals still count questions. */
  samples?: number;
  maxNewTokens: number;
  /** Sampling temperature (the policy as PPO trained it). Default 1. */
  temperature?: number;
  seed?: number;
  /**
   * An earlier evaluation with the same baseline, prompts, samples, temperature and seed: its
   * baseline answers are reused instead of sampled again (they would come out the same).
   */
  reuseBaselineOf?: PolicyEval;
}

export interface PolicyEvalRow {
  prompt: string;
  reference?: string;
  policy: string;
  baseline: string;
  policyTrue: number;
  baselineTrue: number;
}

export interface PolicyEval {
  /** Policy vs baseline by the labeller's TRUE rule, answer against answer on the same prompt. */
  winRate: WinRate;
  /** Mean true score of each side's answers. */
  trueScore: { policy: number; baseline: number };
  /** Policy minus baseline true score, answer against answer on the same prompt, with its 95 % interval over questions. */
  trueScoreDiff: MeanInterval;
  /** Answers per question and side (rows come in groups of this many per question). */
  samplesPerQuestion: number;
  /** How the answers were sampled ("row": each answer its own random stream, on every thread; lib/gpt/rollout.ts). */
  generation: { maxNewTokens: number; temperature: number; seed: number; streams: "row"; batchSize: number };
  /** Mean reward-model score of each side's answers, each clipped to ±SCORE_CLIP as PPO sees it (NaN without a reward model). */
  rewardScore: { policy: number; baseline: number };
  /** Mean Σ_t log π(y_t) − log π_ref(y_t) over the policy's own answers: a sample of KL(π ‖ π_sft) per answer, nats. */
  meanKL: number;
  /** Fraction of the policy's answers that ended with <|end|>, and their mean length in tokens. */
  endedFraction: number;
  meanLength: number;
  rows: PolicyEvalRow[];
}

/** Whether `ev` evaluated the same prompts with the same sampling as `opts` would (so its baseline answers are the ones `opts` would sample). */
export function evaluationMatches(ev: PolicyEval, opts: Pick<PolicyEvalOptions, "prompts" | "samples" | "maxNewTokens" | "temperature" | "seed">): boolean {
  const k = opts.samples ?? 1;
  const g = ev.generation, want = evalGeneration(opts);
  return ev.samplesPerQuestion === k && ev.rows.length === opts.prompts.length * k
    && ev.rows.every((r, i) => r.prompt === opts.prompts[Math.floor(i / k)].prompt)
    && g.maxNewTokens === want.maxNewTokens && g.temperature === want.temperature && g.seed === want.seed
    && g.streams === want.streams && g.batchSize === want.batchSize;
}

/** How evaluatePolicy samples, with its defaults filled in. */
function evalGeneration(opts: Pick<PolicyEvalOptions, "maxNewTokens" | "temperature" | "seed">): PolicyEval["generation"] {
  // Each answer its own random stream: a measurement that uses every core and gives the same
  // answers with any number of threads; large batches keep the threads busy.
  return { maxNewTokens: opts.maxNewTokens, temperature: opts.temperature ?? 1, seed: opts.seed ?? 12345, streams: "row", batchSize: 128 };
}

const EVAL_FILE = "evaluation.json";

/** An evaluation as flat fields, the JSON summary of `npm run ppo|dpo` (its intervals as [lo, hi]). */
export function policyEvalSummary(ev: PolicyEval) {
  return {
    winRate: ev.winRate.winRate, winRateInterval: ev.winRate.interval, wins: ev.winRate.wins, ties: ev.winRate.ties, losses: ev.winRate.losses, evalAnswers: ev.winRate.n,
    meanKL: ev.meanKL, rewardScore: ev.rewardScore.policy, sftRewardScore: ev.rewardScore.baseline,
    trueScore: ev.trueScore.policy, sftTrueScore: ev.trueScore.baseline, trueScoreDiffInterval: [ev.trueScoreDiff.lo, ev.trueScoreDiff.hi],
    evalQuestions: ev.winRate.n / ev.samplesPerQuestion, evalSamples: ev.samplesPerQuestion, endedFraction: ev.endedFraction, meanLength: ev.meanLength,
  };
}

/** Save an evaluation beside the checkpoint it measured (DIR/evaluation.json), so a later chapter can compare against it without sampling again. */
export function savePolicyEval(dir: string, ev: PolicyEval): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, EVAL_FILE), JSON.stringify(ev) + "\n");
}

/** The evaluation savePolicyEval wrote in `dir`, or undefined when there is none. A file that is not one is an error naming it. */
export function loadPolicyEval(dir: string): PolicyEval | undefined {
  const file = path.join(dir, EVAL_FILE);
  if (!fs.existsSync(file)) return undefined;
  let ev: PolicyEval;
  try {
    ev = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message})`);
  }
  const ok = ev !== null && typeof ev === "object" && Array.isArray(ev.rows) && typeof ev.samplesPerQuestion === "number"
    && ev.generation !== null && typeof ev.generation === "object" && typeof ev.winRate?.winRate === "number" && typeof ev.trueScoreDiff?.mean === "number"
    && ev.rows.every((r) => r !== null && typeof r === "object" && typeof r.prompt === "string" && typeof r.policy === "string" && typeof r.baseline === "string");
  if (!ok) throw new Error(`${file}: not an evaluation written by savePolicyEval (expected rows, samplesPerQuestion, generation, winRate, trueScoreDiff)`);
  return ev;
}

/**
 * KL from the baseline to the policy in nats per answer, estimated on the policy's own sampled
 * answers: the mean over answers of log π(y|x) − log π_base(y|x), the answer's tokens only.
 */
export function meanAnswerKL(policy: GPTParams, baseline: GPTParams, config: GPTConfig, codec: ChatCodec, prompts: readonly number[][], responses: readonly number[][]): number {
  let kl = 0;
  for (let i = 0; i < prompts.length; i += 32) {
    const rb = responseBatch(prompts.slice(i, i + 32), responses.slice(i, i + 32), config.blockSize, codec.padId);
    const d = tf.tidy(() => {
      const idx = rowsToTensor(rb.inputs, "int32"), tg = rowsToTensor(rb.targets, "int32"), m = rowsToTensor(rb.mask, "float32");
      return tf.sub(sequenceLogProbs(policy, config, idx, tg, m), sequenceLogProbs(baseline, config, idx, tg, m)).dataSync();
    });
    d.forEach((x) => (kl += x));
  }
  return prompts.length ? kl / prompts.length : NaN;
}

/** Held-out evaluation of a policy against the SFT model (see PolicyEval). */
export function evaluatePolicy(opts: PolicyEvalOptions): PolicyEval {
  const { config, codec } = opts;
  const k = opts.samples ?? 1;
  const items = opts.prompts.flatMap((p) => Array.from({ length: k }, () => p));
  const texts = items.map((p) => p.prompt);
  const gen = evalGeneration(opts);
  const pol = sampleResponses(opts.policy, config, codec, texts, gen).map((r) => r[0]);
  const prev = opts.reuseBaselineOf;
  if (prev && !evaluationMatches(prev, opts)) throw new Error("evaluatePolicy: reuseBaselineOf is an evaluation of other prompts or other sampling settings");
  const base = prev ? prev.rows.map((r) => r.baseline) : sampleResponses(opts.baseline, config, codec, texts, gen).map((r) => r[0]);
  const rows: PolicyEvalRow[] = items.map((p, i) => ({
    prompt: p.prompt, reference: p.reference, policy: pol[i], baseline: base[i],
    policyTrue: trueScore(p.prompt, pol[i], p.reference), baselineTrue: trueScore(p.prompt, base[i], p.reference),
  }));
  const promptIds = texts.map((t) => codec.encodePrompt(t));
  const polIds = pol.map((r) => codec.encodeResponse(r));
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  // Clipped as PPO sees them (rewardModelReward): a few junk answers near −100 must not decide the mean.
  const rm = (ids: number[][]) => (opts.reward ? mean(clippedScores(opts.reward, config, codec, promptIds, ids)) : NaN);
  return {
    winRate: winRate(items.map((p, i) => ({ prompt: p.prompt, a: pol[i], b: base[i], reference: p.reference })), {}, k),
    trueScore: { policy: mean(rows.map((r) => r.policyTrue)), baseline: mean(rows.map((r) => r.baselineTrue)) },
    trueScoreDiff: pairedDifference(rows.map((r) => r.policyTrue), rows.map((r) => r.baselineTrue), k),
    samplesPerQuestion: k,
    generation: gen,
    rewardScore: { policy: rm(polIds), baseline: rm(base.map((r) => codec.encodeResponse(r))) },
    meanKL: meanAnswerKL(opts.policy, opts.baseline, config, codec, promptIds, polIds),
    endedFraction: mean(pol.map((r) => (r.endsWith("<|end|>") ? 1 : 0))),
    meanLength: mean(polIds.map((r) => r.length)),
    rows,
  };
}
