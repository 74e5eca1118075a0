/**
 * The reward model: "how much would the labeller like this answer?" as one number.
 *
 *   prompt + response ids [B, T] ──GPT trunk (from SFT)──► h [B, T, C]
 *        h at the last real token of each row [B, C] ──score head──► r [B]
 *
 * Same trunk as the SFT model (it already "reads" the chat format), plus a scalar head
 * (`score.weight` [C, 1], `score.bias` [1]). The last token is the only position that has seen
 * the whole answer (causal attention), so the score is read there.
 *
 * One more learned number, `score.loglik` (α, starting at 1), weighs the trunk's own
 * log-likelihood of the answer:
 *
 *   r(x, y) = w · h_last + b + α · Σ_t log p(y_t | x, y_<t)
 *
 * Why: to judge whether "s" is the first letter of "whale", the head at the last position has
 * to compare two tokens far apart, and a small model trained on a few thousand rankings learns
 * that too slowly (held-out correctness stayed near chance in our measurements); whether the
 * answer is what a model that knows the task would write is exactly what the language-model
 * head already computes at every position. The rankings decide how much that counts (α) and
 * keep training the trunk. Starting at α = 1, the untrained reward model already prefers what
 * the SFT model finds likely: short, finished, plausible answers, which the labeller mostly
 * likes too; training adds what the labeller wants beyond that. Large reward models learn such
 * features from their own data. A checkpoint without `score.loglik` scores with the head alone.
 *
 * Training: rankings give pairs (chosen, rejected); the Bradley–Terry model (1952) says
 *   P(chosen ≻ rejected) = σ(r_c − r_r)
 * and the loss is its negative log-likelihood, mean over pairs:
 *   L = −log σ(r_c − r_r) = softplus(r_r − r_c)
 * (softplus(x) = log(1 + eˣ), computed stably). ∂L/∂r_c = −σ(r_r − r_c) = −(1 − P): a pair the
 * model already gets right with confidence barely moves it. Only score DIFFERENCES matter:
 * adding a constant to every reward changes nothing (PPO later whitens anyway).
 */
import * as tf from "@tensorflow/tfjs";
import { defaultTrainingThreads, stepMemoryLimitBytes } from "../core/backend";
import { checkTrainingStepFits, GPTConfig, gptForward, GPTParams, targetLogProbs } from "../gpt/gpt";
import type { Split } from "../pretrain/batches";
import { preferencePairs, type PreferenceRecord, type TextPair } from "./preferences";
import { createRng, Rng, seedFor } from "../core/random";
import { responseBatch, rowsToTensor } from "../gpt/rollout";
import type { ShardLossFn, ShardLossSpec, TensorBatch } from "../pretrain/dataParallel";
import { type LossHistory, saveCheckpoint } from "../pretrain/checkpoint";
import { decidingCriterion, trueScore } from "./labeller";
import { loadPretrained } from "../pretrain/pretrain";
import { type ProgressMode, train } from "../pretrain/trainer";
import type { ChatCodec } from "./chat";

export const SCORE_WEIGHT = "score.weight";
export const SCORE_BIAS = "score.bias";
export const SCORE_LOGLIK = "score.loglik";

/**
 * A reward model from a (SFT) GPT: copies of every trunk tensor (the SFT model is left as
 * is), plus a fresh scalar head ~ N(0, 1/(C+1)) (as Hugging Face's reward heads), bias 0.
 */
export function initRewardModel(fromParams: GPTParams, config: GPTConfig, seed = 0): GPTParams {
  const params: GPTParams = {};
  for (const [name, p] of Object.entries(fromParams)) {
    if (name === SCORE_WEIGHT || name === SCORE_BIAS || name === SCORE_LOGLIK) continue;
    params[name] = tf.variable(p.clone() as tf.Tensor, true, undefined, "float32");
  }
  Object.assign(params, initScalarHead("score", config, seed));
  params[SCORE_LOGLIK] = tf.variable(tf.ones([1]), true, undefined, "float32");
  return params;
}

/** A head [C, 1] + [1] named `<prefix>.weight`/`<prefix>.bias` (reward score, PPO value). */
export function initScalarHead(prefix: string, config: GPTConfig, seed = 0): GPTParams {
  const rng = createRng(seed);
  return tf.tidy(() => ({
    [`${prefix}.weight`]: tf.variable(tf.randomNormal([config.nEmbd, 1], 0, 1 / Math.sqrt(config.nEmbd + 1), "float32", seedFor(rng)), true),
    [`${prefix}.bias`]: tf.variable(tf.zeros([1]), true),
  }));
}

/** Hidden states [B, T, C] → one scalar per position [B, T] through head `<prefix>`. */
export function scalarHead(params: GPTParams, prefix: string, hidden: tf.Tensor3D): tf.Tensor2D {
  const [b, t, c] = hidden.shape;
  const w = params[`${prefix}.weight`], bias = params[`${prefix}.bias`];
  if (w === undefined || bias === undefined) throw new Error(`scalarHead: parameters "${prefix}.weight" and "${prefix}.bias" are missing`);
  return tf.tidy(() => tf.add(tf.matMul(hidden.reshape([b * t, c]), w as tf.Tensor2D), bias).reshape([b, t]) as tf.Tensor2D);
}

/** Which positions of a reward-model row hold answer tokens, for the likelihood term. */
export interface AnswerTokens {
  /** targets[b][j] = idx[b][j + 1] (anything where mask is 0), [B, T]. */
  targets: number[][];
  /** 1 where targets[b][j] is a token of the answer, [B, T]. */
  mask: number[][];
}

/**
 * Reward of each row of idx [B, T] (right-padded), read at position lengths[b] − 1 → [B],
 * plus α · Σ log p(answer tokens) when the model has `score.loglik` and `answer` says where
 * the answer is. Differentiable (call inside variableGrads to train).
 */
export function rewardScores(params: GPTParams, config: GPTConfig, idx: tf.Tensor2D, lengths: readonly number[], answer?: AnswerTokens): tf.Tensor1D {
  const [b, t] = idx.shape;
  if (lengths.length !== b) throw new Error(`rewardScores: ${lengths.length} lengths for ${b} rows`);
  lengths.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 1 || n > t) throw new Error(`rewardScores: lengths[${i}] = ${n} must be an integer in 1..${t}`);
  });
  const alpha = params[SCORE_LOGLIK];
  return tf.tidy(() => {
    const { logits, hidden } = gptForward(params, config, idx, { returnHidden: true }); // [B, T, V], [B, T, C]
    const all = scalarHead(params, "score", hidden); // [B, T]
    // Pick position length − 1 of each row with a one-hot mask (no gather: its gradient is slow on wasm).
    const pick = tf.tensor2d(lengths.flatMap((n) => Array.from({ length: t }, (_, j) => (j === n - 1 ? 1 : 0))), [b, t]);
    const headScore = tf.sum(tf.mul(all, pick), 1) as tf.Tensor1D; // [B]
    if (alpha === undefined || answer === undefined) return headScore;
    const logp = targetLogProbs(logits.reshape([b * t, config.vocabSize]) as tf.Tensor2D, tf.tensor1d(answer.targets.flat(), "int32")).reshape([b, t]); // [B, T]
    const loglik = tf.sum(tf.mul(logp, tf.tensor2d(answer.mask.flat(), [b, t])), 1); // [B]
    return tf.add(headScore, tf.mul(alpha, loglik)) as tf.Tensor1D;
  });
}

/** Mean over pairs of −log σ(r_c − r_r) = softplus(r_r − r_c). Inputs [N]. */
export function bradleyTerryLoss(chosenScores: tf.Tensor1D, rejectedScores: tf.Tensor1D): tf.Scalar {
  if (!tf.util.arraysEqual(chosenScores.shape, rejectedScores.shape)) {
    throw new Error(`bradleyTerryLoss: chosen [${chosenScores.shape}] and rejected [${rejectedScores.shape}] scores must have the same shape`);
  }
  return tf.tidy(() => tf.mean(tf.softplus(tf.sub(rejectedScores, chosenScores))) as tf.Scalar);
}

/** Fraction of pairs where the chosen response scores strictly higher (a plain number). */
export function pairwiseAccuracy(chosenScores: ArrayLike<number> | tf.Tensor, rejectedScores: ArrayLike<number> | tf.Tensor): number {
  const c = chosenScores instanceof tf.Tensor ? chosenScores.dataSync() : chosenScores;
  const r = rejectedScores instanceof tf.Tensor ? rejectedScores.dataSync() : rejectedScores;
  if (c.length !== r.length) throw new Error(`pairwiseAccuracy: ${c.length} chosen but ${r.length} rejected scores`);
  if (c.length === 0) return NaN;
  let right = 0;
  for (let i = 0; i < c.length; i++) if (c[i] > r[i]) right++;
  return right / c.length;
}

/** prompt + response token rows → right-padded ids, lengths and answer positions for rewardScores (cropped as responseBatch). */
export function rewardInputs(
  prompts: readonly number[][], responses: readonly number[][], blockSize: number, padId = 0,
): { rows: number[][]; lengths: number[]; answer: AnswerTokens } {
  const rb = responseBatch(prompts, responses, blockSize, padId);
  return {
    rows: rb.inputs.map((inp, i) => [inp[0], ...rb.targets[i]]), lengths: rb.lengths,
    answer: { targets: rb.targets.map((r) => [...r, padId]), mask: rb.mask.map((r) => [...r, 0]) },
  };
}

/**
 * Bradley–Terry loss of a batch of pairs, in ONE forward pass over chosen and rejected rows
 * stacked [2N, T]. Returns the loss (differentiable) and the scores.
 */
export function rewardPairLoss(
  params: GPTParams, config: GPTConfig,
  prompts: readonly number[][], chosen: readonly number[][], rejected: readonly number[][], padId = 0,
): { loss: tf.Scalar; chosenScores: tf.Tensor1D; rejectedScores: tf.Tensor1D } {
  const n = prompts.length;
  const { rows, lengths, answer } = rewardInputs([...prompts, ...prompts], [...chosen, ...rejected], config.blockSize, padId);
  return tf.tidy(() => {
    const scores = rewardScores(params, config, rowsToTensor(rows, "int32"), lengths, answer); // [2N]
    const chosenScores = scores.slice(0, n) as tf.Tensor1D;
    const rejectedScores = scores.slice(n, n) as tf.Tensor1D;
    return { loss: bradleyTerryLoss(chosenScores, rejectedScores), chosenScores, rejectedScores };
  });
}

/** Scores (plain numbers) of prompt + response pairs, in batches (no gradient). */
export function scoreResponses(
  params: GPTParams, config: GPTConfig, prompts: readonly number[][], responses: readonly number[][], batchSize = 32, padId = 0,
): number[] {
  const out: number[] = [];
  for (let i = 0; i < prompts.length; i += batchSize) {
    const { rows, lengths, answer } = rewardInputs(prompts.slice(i, i + batchSize), responses.slice(i, i + batchSize), config.blockSize, padId);
    const s = tf.tidy(() => rewardScores(params, config, rowsToTensor(rows, "int32"), lengths, answer));
    out.push(...Array.from(s.dataSync()));
    s.dispose();
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Pairs as token ids, batches for lib/pretrain/trainer's train(), evaluation

/** A comparison as token ids (the reward model's and DPO's training example). */
export interface EncodedPair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
  /** Index of the preference record it came from. */
  record: number;
}

/**
 * Tokenize text pairs with the caller's chat format, e.g. prompt → "<|user|>Q<|end|><|assistant|>"
 * and response → "A<|end|>" (as SFT encodes them).
 */
export function encodePairs(pairs: readonly TextPair[], encodePrompt: (prompt: string) => number[], encodeResponse: (response: string) => number[]): EncodedPair[] {
  return pairs.map((p, i) => {
    const prompt = encodePrompt(p.prompt), chosen = encodeResponse(p.chosen), rejected = encodeResponse(p.rejected);
    if (prompt.length === 0 || chosen.length === 0 || rejected.length === 0) throw new Error(`encodePairs: pair ${i} (record ${p.record}) encodes to an empty prompt or response`);
    return { prompt, chosen, rejected, record: p.record };
  });
}

/** A batch of pairs as three lists of rows. */
export interface PairBatch {
  prompts: number[][];
  chosen: number[][];
  rejected: number[][];
}

/** getBatch for train(): batchSize pairs drawn at random (with replacement) from a split. */
export function pairBatcher(train: readonly EncodedPair[], val: readonly EncodedPair[], batchSize: number): (split: Split, rng: Rng) => PairBatch {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`pairBatcher: batchSize must be a positive integer, got ${batchSize}`);
  return (split, rng) => {
    const set = split === "train" ? train : val;
    if (set.length === 0) throw new Error(`pairBatcher: the ${split} split has no pairs`);
    const picked = Array.from({ length: batchSize }, () => set[rng.int(set.length)]);
    return { prompts: picked.map((p) => p.prompt), chosen: picked.map((p) => p.chosen), rejected: picked.map((p) => p.rejected) };
  };
}

/**
 * A batch of pairs as tensors with the pairs on axis 0, as data parallelism needs them (it cuts
 * batches by rows and sends them to other threads): each list of rows padded into `name`
 * [B, longest] with its lengths in `${name}Length` [B]. pairBatchRows undoes it exactly.
 */
export function pairBatchTensors(b: PairBatch): TensorBatch {
  const ragged = (name: string, rows: readonly number[][]): TensorBatch => {
    const width = Math.max(1, ...rows.map((r) => r.length));
    const data = new Int32Array(rows.length * width);
    rows.forEach((r, i) => data.set(r, i * width));
    return { [name]: tf.tensor2d(data, [rows.length, width], "int32"), [`${name}Length`]: tf.tensor1d(rows.map((r) => r.length), "int32") };
  };
  return { ...ragged("prompts", b.prompts), ...ragged("chosen", b.chosen), ...ragged("rejected", b.rejected) };
}

/** The three lists of rows of a batch made by pairBatchTensors (or a shard of one). */
export function pairBatchRows(t: TensorBatch): PairBatch {
  const rows = (name: string): number[][] => {
    const ids = t[name], lengths = t[`${name}Length`];
    if (ids === undefined || lengths === undefined) throw new Error(`pairBatchRows: the batch has no "${name}" and "${name}Length" tensors`);
    const data = ids.dataSync(), len = lengths.dataSync(), width = ids.shape[1] ?? 0;
    return Array.from(len, (n, i) => Array.from(data.subarray(i * width, i * width + n)));
  };
  return { prompts: rows("prompts"), chosen: rows("chosen"), rejected: rows("rejected") };
}

/**
 * The reward model's Bradley–Terry loss of a shard of pairs (pairBatchTensors), the function a
 * data-parallel worker computes (lib/pretrain/dataParallel.ts); options: { config, padId }.
 */
export const rewardShardLoss: ShardLossFn = (params, batch, options) => {
  const { config, padId } = options as { config: GPTConfig; padId: number };
  const b = pairBatchRows(batch);
  return rewardPairLoss(params as GPTParams, config, b.prompts, b.chosen, b.rejected, padId).loss;
};

/** rewardShardLoss as data parallelism names it (a worker loads it from this module). */
export function rewardLossSpec(config: GPTConfig, padId: number): ShardLossSpec {
  return { module: __filename, name: "rewardShardLoss", options: { config, padId } };
}

/**
 * Split pairs by RECORD (all pairs of one ranking on the same side): pairs of the same prompt
 * on both sides would make held-out accuracy look better than it is.
 */
export function splitPairsByRecord<T extends { record: number }>(pairs: readonly T[], valFraction: number, seed = 0): { train: T[]; val: T[] } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new Error(`splitPairsByRecord: valFraction must be in [0, 1), got ${valFraction}`);
  const records = [...new Set(pairs.map((p) => p.record))].sort((a, b) => a - b);
  createRng(seed).shuffle(records);
  const val = new Set(records.slice(0, Math.round(records.length * valFraction)));
  return { train: pairs.filter((p) => !val.has(p.record)), val: pairs.filter((p) => val.has(p.record)) };
}

export interface RewardEval {
  /** Fraction of pairs scored in the right order. */
  accuracy: number;
  /** Mean Bradley–Terry loss. */
  loss: number;
  /** Mean r_c − r_r. */
  meanMargin: number;
  n: number;
  /** r_c − r_r of each pair, in the order given (> 0: ordered right). */
  margins: number[];
}

/** Held-out evaluation of a reward model on encoded pairs (no gradient). */
export function evaluateRewardModel(params: GPTParams, config: GPTConfig, pairs: readonly EncodedPair[], batchSize = 32, padId = 0): RewardEval {
  const prompts = pairs.map((p) => p.prompt);
  const c = scoreResponses(params, config, prompts, pairs.map((p) => p.chosen), batchSize, padId);
  const r = scoreResponses(params, config, prompts, pairs.map((p) => p.rejected), batchSize, padId);
  const soft = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
  const n = pairs.length;
  const mean = (f: (i: number) => number) => (n === 0 ? NaN : c.reduce((s, _, i) => s + f(i), 0) / n);
  return { accuracy: pairwiseAccuracy(c, r), loss: mean((i) => soft(r[i] - c[i])), meanMargin: mean((i) => c[i] - r[i]), n, margins: c.map((x, i) => x - r[i]) };
}

// ---------------------------------------------------------------------------------------
// Training on rankings (notebook 07, npm run reward)

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


export interface RewardTrainOptions {
  /** The SFT model the reward model starts from (copied, not changed). */
  sft: GPTParams;
  config: GPTConfig;
  codec: ChatCodec;
  records: readonly PreferenceRecord[];
  maxIters: number;
  /** Pairs per step. Default 16. */
  batchSize?: number;
  /** Threads that compute each step (lib/pretrain/dataParallel.ts). Default: defaultTrainingThreads() (on a 2-core machine: 1 when a BLAS splits the products across the cores, else 2). */
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
  const pairs = opts.batchSize ?? 16;
  checkTrainingStepFits(config, 2 * pairs, opts.threads ?? defaultTrainingThreads(), "reward model", `batch size ${pairs} (pairs, two sequences each)`, stepMemoryLimitBytes());
  const batches = pairBatcher(split.train, split.val, pairs);
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
