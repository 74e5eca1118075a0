/**
 * RLHF end to end, the plumbing shared by notebooks 07–09 and the reward / ppo / dpo / rank
 * CLIs. The pieces themselves live in their own modules (lib/rlhf/preferences, lib/rlhf/labeller,
 * lib/gpt/rollout, lib/rlhf/rewardModel, lib/rlhf/ppo, lib/rlhf/dpo); this file only connects them to the SFT
 * model's chat format and data:
 *
 *   SFT data (single-turn questions + reference answers) ── rlhfPrompts ──► prompts
 *   SFT model ── sampleResponses (K per prompt) ──► labeller / a person ──► preference JSONL
 *   preferences ── trainRewardModel (Bradley–Terry on every pair) ──► reward model
 *   SFT model + reward model ── runPPO ──► PPO policy;  SFT + preferences ── trainDPO ──► DPO policy
 *   policy vs SFT on held-out prompts ── evaluatePolicy ──► win-rate by the TRUE rule, RM score, KL
 *
 * Text conventions: a prompt is the user's question; the model sees it through the chat
 * template as "<|user|>Q<|end|><|assistant|>". A response is the decoded text of the sampled
 * tokens, INCLUDING the final "<|end|>" when the model ended its turn (the labeller's "ended"
 * criterion reads it; encodeResponse turns it back into the end token).
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic } from "../core/atomic";
import { LossHistory, saveCheckpoint } from "../pretrain/checkpoint";
import { withPrefix, type TensorBatch } from "../pretrain/dataParallel";
import { DPO_REF_PREFIX, dpoLossSpec, dpoPairLoss, dpoShardLoss, sequenceLogProbs } from "./dpo";
import { copyParams, GPTConfig, GPTParams } from "../gpt/gpt";
import { plainAnswer } from "../finetune/sftData";
import { decidingCriterion, MeanInterval, pairedDifference, simulatedPreference, trueScore, winRate, WinRate } from "./labeller";
import { appendPreference, PreferenceRecord, preferencePairs } from "./preferences";
import { createPPO, disposePPO, ppoLiveCharts, PPOOptions, ppoStep, PPOStepStats, PPOTrainer, RewardFn } from "./ppo";
import { loadPretrained, PretrainedModel } from "../pretrain/pretrain";
import { createRng } from "../core/random";
import {
  EncodedPair, encodePairs, evaluateRewardModel, initRewardModel, pairBatcher, pairBatchTensors, rewardLossSpec, rewardPairLoss, RewardEval, rewardShardLoss,
  scoreResponses, splitPairsByRecord,
} from "./rewardModel";
import { generateBatch, responseBatch, rowsToTensor } from "../gpt/rollout";
import { chatTokenIds, encodeChat, SFTExample } from "../finetune/sft";
import type { Tokenizer } from "../tokens/tokenizer";
import { ProgressMode, train } from "../pretrain/trainer";

// ---------------------------------------------------------------------------------------
// Prompts and the chat format

/** A question to answer, with the data set's reference answer (the labeller's "correct"). */
export interface RLHFPrompt {
  id: string;
  kind: string;
  prompt: string;
  reference?: string;
}

/**
 * The single-turn examples of an SFT data set as prompts (multi-turn ones are skipped), the
 * reference without a polite closing: the labeller's "correct" asks for the answer itself.
 */
export function rlhfPrompts(examples: readonly SFTExample[]): RLHFPrompt[] {
  return examples
    .filter((e) => e.messages.length === 2)
    .map((e) => ({ id: e.id, kind: e.kind, prompt: e.messages[0].content, reference: plainAnswer(e.messages[1].content) }));
}

/** How text meets token ids in the chat format of the SFT model. */
export interface ChatCodec {
  tokenizer: Tokenizer;
  blockSize: number;
  /** Id of "<|end|>": generation stops there; also used as padding. */
  endId: number;
  padId: number;
  /** "<|user|>prompt<|end|><|assistant|>" as ids. */
  encodePrompt(prompt: string): number[];
  /** A response's text (special tokens written as text, e.g. a final "<|end|>") as ids. */
  encodeResponse(response: string): number[];
  decodeResponse(ids: readonly number[]): string;
}

export function chatCodec(tokenizer: Tokenizer, blockSize: number): ChatCodec {
  const { end } = chatTokenIds(tokenizer);
  return {
    tokenizer, blockSize, endId: end, padId: end,
    encodePrompt: (p) => encodeChat(tokenizer, [{ role: "user", content: p }], blockSize, { addGenerationPrompt: true }).ids,
    encodeResponse: (r) => tokenizer.encode(r, { allowSpecial: true }),
    decodeResponse: (ids) => tokenizer.decode(ids),
  };
}

/** A fine-tuned chat model from a checkpoint (SFT, PPO or DPO output); refuses one without the chat tokens. */
export function loadChatModel(dir: string): PretrainedModel & { codec: ChatCodec } {
  const m = loadPretrained(dir);
  try {
    return { ...m, codec: chatCodec(m.tokenizer, m.config.blockSize) };
  } catch (e) {
    tf.dispose(Object.values(m.params));
    throw new Error(`${dir}: not a chat model (${(e as Error).message}); fine-tune it first (notebook 06 or npm run sft)`);
  }
}

// ---------------------------------------------------------------------------------------
// Steps 1–2: responses, rankings

export interface ResponseSampleOptions {
  /** Responses per prompt. Default 1. */
  k?: number;
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  seed?: number;
  /** Rows generated together (one KV cache). Default 64. */
  batchSize?: number;
  /** Random streams and threads of generateBatch (lib/gpt/rollout.ts): default one stream, one thread. */
  streams?: "batch" | "row";
}

/** K sampled responses per prompt (text, "<|end|>" kept when the turn ended): [prompt][k]. */
export function sampleResponses(params: GPTParams, config: GPTConfig, codec: ChatCodec, prompts: readonly string[], opts: ResponseSampleOptions): string[][] {
  const k = opts.k ?? 1;
  const rows = prompts.flatMap((p) => Array.from({ length: k }, () => codec.encodePrompt(p)));
  const rng = createRng(opts.seed ?? 0);
  const bs = opts.batchSize ?? 64;
  const texts: string[] = [];
  for (let i = 0; i < rows.length; i += bs) {
    const g = generateBatch(params, config, rows.slice(i, i + bs), {
      maxNewTokens: opts.maxNewTokens, stopId: codec.endId, padId: codec.padId, temperature: opts.temperature ?? 1, topK: opts.topK, rng, streams: opts.streams,
    });
    texts.push(...g.responses.map((r) => codec.decodeResponse(r)));
  }
  return prompts.map((_, i) => texts.slice(i * k, (i + 1) * k));
}

/**
 * Steps 1–2 with the simulated labeller: K responses per prompt, ranked by the true rule,
 * appended to `file` (when given) one record at a time, as a human ranking session would.
 */
export function collectSimulatedPreferences(
  params: GPTParams, config: GPTConfig, codec: ChatCodec, prompts: readonly RLHFPrompt[], opts: ResponseSampleOptions & { file?: string },
): PreferenceRecord[] {
  const responses = sampleResponses(params, config, codec, prompts.map((p) => p.prompt), { ...opts, k: opts.k ?? 4 });
  const time = new Date().toISOString();
  return prompts.map((p, i) => {
    const rec = simulatedPreference(p.prompt, responses[i], p.reference, { id: p.id, time });
    if (opts.file !== undefined) appendPreference(opts.file, rec);
    return rec;
  });
}

/**
 * Every pair of every ranking, tokenized. Dropped: pairs of two identical texts, and (dropTies,
 * default true) pairs of a SIMULATED ranking whose two answers have the same true score. A
 * ranking is a strict order, so ties had to be ordered somehow (the labeller keeps their
 * sampling order): such pairs say nothing about preference and would only teach the reward
 * model noise (and cap its measured accuracy). Human rankings keep every pair.
 */
export function encodePreferencePairs(records: readonly PreferenceRecord[], codec: ChatCodec, opts: { dropTies?: boolean } = {}): EncodedPair[] {
  const dropTies = opts.dropTies ?? true;
  const text = preferencePairs(records).filter((p) => {
    if (p.chosen === p.rejected) return false;
    const rec = records[p.record];
    if (!dropTies || !rec.rankedBy.startsWith("simulated:")) return true;
    return Math.abs(trueScore(rec.prompt, p.chosen, rec.reference) - trueScore(rec.prompt, p.rejected, rec.reference)) > 1e-9;
  });
  return encodePairs(text, codec.encodePrompt, codec.encodeResponse);
}

/** Train/validation pairs, split by record (all pairs of a ranking on one side). An empty validation side reuses training. */
export function splitPreferencePairs(pairs: readonly EncodedPair[], valFraction: number, seed = 0): { train: EncodedPair[]; val: EncodedPair[]; valIsTrain: boolean } {
  const s = splitPairsByRecord(pairs, valFraction, seed);
  if (s.train.length === 0) throw new Error(`no training pairs: ${pairs.length} pairs in all (need rankings of at least two different responses)`);
  return s.val.length === 0 ? { train: s.train, val: s.train, valIsTrain: true } : { ...s, valIsTrain: false };
}

// ---------------------------------------------------------------------------------------
// Step 3: the reward model

export interface RewardTrainOptions {
  /** The SFT model the reward model starts from (copied, not changed). */
  sft: GPTParams;
  config: GPTConfig;
  codec: ChatCodec;
  records: readonly PreferenceRecord[];
  maxIters: number;
  /** Pairs per step. Default 16. */
  batchSize?: number;
  /** Threads that compute each step (lib/pretrain/dataParallel.ts). Default: defaultThreads() (2 on a 2-core machine). */
  threads?: number;
  /** AdamW learning rate (constant). Default 1e-4. */
  lr?: number;
  /** Fraction of RECORDS held out. Default 0.2. */
  valFraction?: number;
  evalInterval?: number;
  evalIters?: number;
  seed?: number;
  chart?: boolean;
  chartTitle?: string;
  progress?: ProgressMode;
  log?: (line: string) => void;
  /** Save the reward model here (loadPretrained reads it; the head rides along as score.*). */
  outDir?: string;
  /** Also measure pairwise accuracy (train sample and held-out) at every evaluation, for a plot. Default false. */
  trackAccuracy?: boolean;
}

/** Training pairs the reward model's training accuracy is measured on (a fixed sample). */
export const TRAIN_ACCURACY_SAMPLE = 256;

export interface RewardTrainResult {
  params: GPTParams;
  /** Accuracy, loss, margin on a fixed sample of TRAIN_ACCURACY_SAMPLE training pairs (train.n says how many). */
  train: RewardEval;
  /** The same on every held-out pair. */
  val: RewardEval;
  /** Held-out accuracy before training (the fresh head: about chance). */
  valBefore: RewardEval;
  trainPairs: number;
  valPairs: number;
  /** True when there were too few records to hold any out (val = train). */
  valIsTrain: boolean;
  history: LossHistory;
  /** [step, training-pair accuracy, held-out accuracy] at each evaluation (trackAccuracy). */
  accuracyHistory: [number, number, number][];
  /** Held-out accuracy by the labeller's deciding criterion (accuracyByCriterion). */
  valByCriterion: Record<string, { n: number; accuracy: number }>;
  seconds: number;
}

/**
 * Pairwise accuracy split by the criterion that decided each pair under the labeller's rule
 * (decidingCriterion): does the reward model order correctly the pairs that correctness
 * decides, or only those that length or finishing decides? `margins[i]` is r_c − r_r of pairs[i].
 */
export function accuracyByCriterion(
  records: readonly PreferenceRecord[], pairs: readonly EncodedPair[], margins: readonly number[], codec: ChatCodec,
): Record<string, { n: number; accuracy: number }> {
  const counts: Record<string, { n: number; right: number }> = {};
  pairs.forEach((p, i) => {
    const rec = records[p.record];
    const key = decidingCriterion(rec.prompt, codec.decodeResponse(p.chosen), codec.decodeResponse(p.rejected), rec.reference);
    const g = (counts[key] ??= { n: 0, right: 0 });
    g.n++;
    if (margins[i] > 0) g.right++;
  });
  return Object.fromEntries(Object.entries(counts).map(([k, g]) => [k, { n: g.n, accuracy: g.right / g.n }]));
}

export async function trainRewardModel(opts: RewardTrainOptions): Promise<RewardTrainResult> {
  const t0 = performance.now();
  const { config, codec } = opts;
  const seed = opts.seed ?? 0;
  const split = splitPreferencePairs(encodePreferencePairs(opts.records, codec), opts.valFraction ?? 0.2, seed);
  const params = initRewardModel(opts.sft, config, seed);
  // Pairwise accuracy is the expensive part of evaluating (both answers of every pair, forward):
  // it runs once per state of the weights, at the trainer's evaluations. The first gives the
  // "before training" figure, the last the final ones; the training side uses a fixed sample.
  const trainSample = createRng(seed + 1).shuffle([...split.train]).slice(0, Math.max(Math.min(split.val.length, TRAIN_ACCURACY_SAMPLE), 32));
  const accuracyHistory: [number, number, number][] = [];
  let valBefore: RewardEval | undefined;
  let final: { val: RewardEval; train: RewardEval } | undefined;
  // Each batch of pairs is split between threads (lib/pretrain/dataParallel.ts), as in pretraining and SFT.
  const loss = rewardLossSpec(config, codec.padId);
  const batches = pairBatcher(split.train, split.val, opts.batchSize ?? 16);
  const summary = await train({
    params, lossFn: (b: TensorBatch, ctx) => rewardShardLoss(params, b, loss.options, ctx),
    getBatch: (s, rng) => pairBatchTensors(batches(s, rng)), dataParallel: { threads: opts.threads, loss },
    optimizer: { lr: opts.lr ?? 1e-4, weightDecay: 0, beta1: 0.9, beta2: 0.95 },
    maxIters: opts.maxIters, evalInterval: opts.evalInterval, evalIters: opts.evalIters ?? 4, gradClip: 1, seed,
    chart: opts.chart ?? false, chartTitle: opts.chartTitle ?? "Reward model: Bradley–Terry loss", progress: opts.progress ?? "none", log: opts.log,
    onEval: (ev) => {
      const first = valBefore === undefined;
      const last = ev.step >= opts.maxIters; // the trainer always ends with an evaluation at maxIters
      if (!first && !last && !opts.trackAccuracy) return;
      const val = evaluateRewardModel(params, config, split.val, 32, codec.padId);
      const trainAcc = opts.trackAccuracy || last ? evaluateRewardModel(params, config, trainSample, 32, codec.padId) : undefined;
      if (first) valBefore = val;
      if (last) final = { val, train: trainAcc! };
      if (opts.trackAccuracy) accuracyHistory.push([ev.step, trainAcc!.accuracy, val.accuracy]);
    },
  });
  if (valBefore === undefined || final === undefined) throw new Error("trainRewardModel: the trainer skipped its first or last evaluation");
  const { val } = final;
  const result: RewardTrainResult = {
    params, train: final.train, val, valBefore, trainPairs: split.train.length, valPairs: split.val.length, valIsTrain: split.valIsTrain,
    history: summary.history, accuracyHistory, valByCriterion: accuracyByCriterion(opts.records, split.val, val.margins, codec), seconds: 0,
  };
  result.seconds = (performance.now() - t0) / 1000;
  if (opts.outDir !== undefined) {
    saveCheckpoint(opts.outDir, {
      params, config, tokenizer: codec.tokenizer, step: summary.step, losses: summary.history,
      extra: { reward: { valAccuracy: result.val.accuracy, valByCriterion: result.valByCriterion, trainAccuracy: result.train.accuracy, trainPairs: result.trainPairs, valPairs: result.valPairs, records: opts.records.length, seed, seconds: result.seconds } },
    });
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// Steps 4–9: PPO

export interface RunPPOOptions extends Omit<PPOOptions, "generation" | "padId"> {
  sft: GPTParams;
  config: GPTConfig;
  codec: ChatCodec;
  /** The trained reward model (score head). */
  reward: GPTParams;
  /** Training prompts (drawn in shuffled order, batchSize per iteration). */
  prompts: readonly RLHFPrompt[];
  iterations: number;
  /** Prompts (rollouts) per iteration. Default 16. */
  batchSize?: number;
  maxNewTokens: number;
  temperature?: number;
  /** Subtracted from the reward-model score of an answer that did not end (rewardModelReward). Default MISSING_END_PENALTY. */
  missingEndPenalty?: number;
  /** Reward-model scores are clipped to ±scoreClip (rewardModelReward). Default SCORE_CLIP. */
  scoreClip?: number;
  /** Live charts in a notebook (title), or false. Default false. */
  chart?: string | false;
  log?: (line: string) => void;
  onIteration?: (stats: PPOStepStats, sample: { prompt: string; response: string; score: number }) => void;
}

export interface RunPPOResult {
  trainer: PPOTrainer;
  history: PPOStepStats[];
  /** Mean TRUE score (the labeller's rule) of each iteration's rollouts: what the reward model stands in for. */
  trueScores: number[];
  seconds: number;
}

/**
 * Penalty for an answer that ran out of room without `<|end|>` (TRL's `missing_eos_penalty`):
 * finishing the turn is a hard rule of the chat format, whatever the reward model guesses for a
 * cut-off answer (it was trained on few of them).
 */
export const MISSING_END_PENALTY = 2;

/**
 * Reward-model scores are clipped to ±SCORE_CLIP before PPO sees them (TRL's `score_clip`). The
 * likelihood term gives junk answers scores near −100 where ordinary ones lie between −10 and
 * +5; one such answer then dominates the batch's whitened advantages, and PPO spends its update
 * pushing down junk tokens (which spreads probability over other junk) instead of preferring the
 * better of the ordinary answers. Measured: without the clip, PPO's answers to fact questions
 * collapsed into junk in two seeds of three after 80 iterations.
 */
export const SCORE_CLIP = 10;

export interface RewardModelRewardOptions {
  /** Default MISSING_END_PENALTY. */
  missingEndPenalty?: number;
  /** Default SCORE_CLIP. */
  scoreClip?: number;
  /**
   * A model whose greedy answer to each prompt is the zero point of that prompt's reward:
   * r(x, y) − r(x, y_baseline). PPO passes its frozen reference (the SFT model). Omitted: raw scores.
   */
  baseline?: GPTParams;
  /** Length of the baseline's answers (the rollouts'). Default 48. */
  maxNewTokens?: number;
}

/** The reward model's scores of (prompt, response) pairs, each clipped to ±clip: what PPO sees of them. */
export function clippedScores(reward: GPTParams, config: GPTConfig, codec: ChatCodec, prompts: number[][], responses: number[][], clip = SCORE_CLIP): number[] {
  return scoreResponses(reward, config, prompts, responses, 32, codec.padId).map((s) => Math.max(-clip, Math.min(clip, s)));
}

/**
 * Step 8 as a RewardFn: the reward model's score clipped to ±scoreClip, minus
 * `missingEndPenalty` for an answer that did not end, and (with `baseline`) minus the clipped
 * score of the baseline model's greedy answer to the same prompt.
 *
 * Why a per-prompt zero point: Bradley–Terry only ever compares answers to the SAME prompt, so a
 * reward model's scores are defined up to a constant per prompt, and that constant is noise. Here
 * it is large: every answer to a fact question the model does not know scores around −8, every
 * answer to a letter question around 0. Raw, PPO would read "all answers to fact questions are
 * bad", push each sampled one down, and spread their probability into junk; relative to SFT's own
 * answer, a better-than-usual answer to a hard question is good news. Subtracting a function of
 * the prompt alone does not change which policy is best, only how noisy the updates are.
 */
export function rewardModelReward(reward: GPTParams, config: GPTConfig, codec: ChatCodec, opts: RewardModelRewardOptions = {}): RewardFn {
  const penalty = opts.missingEndPenalty ?? MISSING_END_PENALTY, clip = opts.scoreClip ?? SCORE_CLIP;
  const clipped = (prompts: number[][], responses: number[][]) => clippedScores(reward, config, codec, prompts, responses, clip);
  const zero = new Map<string, number>(); // prompt ids → the baseline's clipped score (the baseline is frozen)
  return (prompts, responses, ended) => {
    const scores = clipped(prompts, responses).map((s, i) => s - (ended[i] ? 0 : penalty));
    if (opts.baseline === undefined) return scores;
    const missing = [...new Set(prompts.map((p) => p.join(",")))].filter((k) => !zero.has(k));
    if (missing.length > 0) {
      const ps = missing.map((k) => k.split(",").map(Number));
      const g = generateBatch(opts.baseline, config, ps, { maxNewTokens: opts.maxNewTokens ?? 48, stopId: codec.endId, padId: codec.padId, temperature: 0 });
      const base = clipped(ps, g.responses.map((r) => (r.length > 0 ? r : [codec.endId])));
      missing.forEach((k, i) => zero.set(k, base[i] - (g.ended[i] ? 0 : penalty)));
    }
    return scores.map((s, i) => s - zero.get(prompts[i].join(","))!);
  };
}

/** The PPO loop: each iteration samples new prompts, rolls out, scores with the reward model, updates. */
export async function runPPO(opts: RunPPOOptions): Promise<RunPPOResult> {
  const t0 = performance.now();
  const { config, codec } = opts;
  const trainer = createPPO(opts.sft, config, {
    ...opts, generation: { maxNewTokens: opts.maxNewTokens, stopId: codec.endId, temperature: opts.temperature ?? 1 }, padId: codec.padId,
  });
  const rewardFn = rewardModelReward(opts.reward, config, codec, {
    missingEndPenalty: opts.missingEndPenalty, scoreClip: opts.scoreClip, baseline: trainer.ref, maxNewTokens: opts.maxNewTokens,
  });
  const charts = opts.chart ? ppoLiveCharts(opts.chart) : undefined;
  const rng = createRng((opts.seed ?? 0) + 7);
  const bs = Math.min(opts.batchSize ?? 16, opts.prompts.length);
  let order: number[] = [];
  const history: PPOStepStats[] = [];
  const trueScores: number[] = [];
  try {
    for (let it = 0; it < opts.iterations; it++) {
      if (order.length < bs) order = order.concat(rng.shuffle(opts.prompts.map((_, i) => i)));
      const batch = order.splice(0, bs).map((i) => opts.prompts[i]);
      const { stats, responses, scores } = ppoStep(trainer, batch.map((p) => codec.encodePrompt(p.prompt)), rewardFn);
      history.push(stats);
      const texts = responses.map((r) => codec.decodeResponse(r));
      const ts = texts.reduce((a, t, i) => a + trueScore(batch[i].prompt, t, batch[i].reference), 0) / texts.length;
      trueScores.push(ts);
      charts?.push(stats);
      charts?.charts[0].push("true score (labeller's rule)", stats.iteration, ts);
      const sample = { prompt: batch[0].prompt, response: texts[0], score: scores[0] };
      opts.log?.(`iteration ${stats.iteration}/${opts.iterations}: score ${stats.meanScore.toFixed(3)}, true score ${ts.toFixed(3)}, KL ${stats.meanKL.toFixed(3)}, β ${stats.beta.toFixed(3)}, clip ${stats.clipFraction.toFixed(3)}, entropy ${stats.entropy.toFixed(3)}, ${stats.seconds.toFixed(1)} s | ${JSON.stringify(sample.prompt)} → ${JSON.stringify(sample.response)}`);
      opts.onIteration?.(stats, sample);
      await new Promise((r) => setImmediate(r)); // let the notebook draw the charts
    }
  } catch (e) {
    disposePPO(trainer);
    throw e;
  } finally {
    charts?.close();
  }
  return { trainer, history, trueScores, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------
// DPO

export interface DPOTrainOptions {
  sft: GPTParams;
  config: GPTConfig;
  codec: ChatCodec;
  records: readonly PreferenceRecord[];
  maxIters: number;
  /** Pairs per step. Default 16. */
  batchSize?: number;
  /** Threads that compute each step (lib/pretrain/dataParallel.ts). Default: defaultThreads() (2 on a 2-core machine). */
  threads?: number;
  /** Default 5e-5. */
  lr?: number;
  /**
   * β of the DPO loss. Default 0.5, not the paper's 0.1: on the course's SFT model β = 0.1
   * (lr 1e-4, 80 steps) drifted 6 nats from SFT and lost the answers SFT got right, while
   * β = 0.5 with lr 5e-5 stayed within ~1 nat and kept them (notebook 09, exercise 1).
   */
  beta?: number;
  /** Same split as the reward model (same seed → same held-out records). Default 0.2. */
  valFraction?: number;
  evalInterval?: number;
  evalIters?: number;
  seed?: number;
  chart?: boolean;
  chartTitle?: string;
  progress?: ProgressMode;
  log?: (line: string) => void;
}

export interface DPOTrainResult {
  /** The trained policy; `ref` is the frozen SFT copy it was measured against. */
  policy: GPTParams;
  ref: GPTParams;
  /** Held-out implicit-reward accuracy (chosen's β·log π/π_ref above rejected's) and margin. */
  valAccuracy: number;
  valMargin: number;
  trainPairs: number;
  valPairs: number;
  history: LossHistory;
  seconds: number;
}

export async function trainDPO(opts: DPOTrainOptions): Promise<DPOTrainResult> {
  const t0 = performance.now();
  const { config, codec } = opts;
  const seed = opts.seed ?? 0;
  const beta = opts.beta ?? 0.5;
  const split = splitPreferencePairs(encodePreferencePairs(opts.records, codec), opts.valFraction ?? 0.2, seed);
  const policy = copyParams(opts.sft, true);
  const ref = copyParams(opts.sft, false);
  // Each batch of pairs is split between threads (lib/pretrain/dataParallel.ts); the workers copy the frozen reference once.
  const loss = dpoLossSpec(config, beta, codec.padId);
  const frozen = withPrefix(DPO_REF_PREFIX, ref);
  const lossParams = { ...policy, ...frozen };
  const batches = pairBatcher(split.train, split.val, opts.batchSize ?? 16);
  const summary = await train({
    params: policy,
    lossFn: (b: TensorBatch, ctx) => dpoShardLoss(lossParams, b, loss.options, ctx),
    getBatch: (s, rng) => pairBatchTensors(batches(s, rng)), dataParallel: { threads: opts.threads, loss, frozen },
    optimizer: { lr: opts.lr ?? 5e-5, weightDecay: 0, beta1: 0.9, beta2: 0.95 },
    maxIters: opts.maxIters, evalInterval: opts.evalInterval, evalIters: opts.evalIters ?? 4, gradClip: 1, seed,
    chart: opts.chart ?? false, chartTitle: opts.chartTitle ?? "DPO loss", progress: opts.progress ?? "none", log: opts.log,
  });
  let right = 0, margin = 0;
  for (let i = 0; i < split.val.length; i += 32) {
    const b = split.val.slice(i, i + 32);
    const r = dpoPairLoss(policy, ref, config, b.map((p) => p.prompt), b.map((p) => p.chosen), b.map((p) => p.rejected), beta, codec.padId);
    const m = tf.tidy(() => tf.sub(r.rewardsChosen, r.rewardsRejected).dataSync());
    m.forEach((x) => { if (x > 0) right++; margin += x; });
    tf.dispose(Object.values(r));
  }
  const n = Math.max(1, split.val.length);
  return {
    policy, ref, valAccuracy: right / n, valMargin: margin / n, trainPairs: split.train.length, valPairs: split.val.length,
    history: summary.history, seconds: (performance.now() - t0) / 1000,
  };
}

// ---------------------------------------------------------------------------------------
// The honest evaluation

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
  let kl = 0;
  for (let i = 0; i < items.length; i += 32) {
    const rb = responseBatch(promptIds.slice(i, i + 32), polIds.slice(i, i + 32), config.blockSize, codec.padId);
    const d = tf.tidy(() => {
      const idx = rowsToTensor(rb.inputs, "int32"), tg = rowsToTensor(rb.targets, "int32"), m = rowsToTensor(rb.mask, "float32");
      return tf.sub(sequenceLogProbs(opts.policy, config, idx, tg, m), sequenceLogProbs(opts.baseline, config, idx, tg, m)).dataSync();
    });
    d.forEach((x) => (kl += x));
  }
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
    meanKL: items.length ? kl / items.length : NaN,
    endedFraction: mean(pol.map((r) => (r.endsWith("<|end|>") ? 1 : 0))),
    meanLength: mean(polIds.map((r) => r.length)),
    rows,
  };
}

/** Save a policy (PPO or DPO) as a checkpoint loadPretrained / loadChatModel read (a value head rides along). */
export function savePolicy(dir: string, params: GPTParams, config: GPTConfig, tokenizer: Tokenizer, step: number, extra: Record<string, unknown>): void {
  saveCheckpoint(dir, { params, config, tokenizer, step, extra });
}

/** The `extra` notes a checkpoint was saved with (e.g. {ppo: {seconds, …}}), without loading its tensors; {} when none. */
export function checkpointNotes(dir: string): Record<string, unknown> {
  const file = path.join(dir, "model.json");
  let json: { extra?: Record<string, unknown> };
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: cannot read the checkpoint (${(e as Error).message})`);
  }
  return json.extra ?? {};
}
