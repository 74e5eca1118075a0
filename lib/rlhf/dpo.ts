/**
 * DPO, Direct Preference Optimization (Rafailov et al. 2023): learn from the same
 * preference pairs as the reward model, but with no reward model and no sampling.
 *
 * RLHF's objective (maximise reward − β·KL to the reference) has a closed-form optimum
 * π*(y|x) ∝ π_ref(y|x)·exp(r(x, y)/β), so r(x, y) = β·log(π*(y|x)/π_ref(y|x)) + const.
 * Put that "implicit reward" into the Bradley–Terry loss and the constant cancels:
 *
 *   L = −log σ( β·[(log π(y_c) − log π_ref(y_c)) − (log π(y_r) − log π_ref(y_r))] )
 *
 * where log π(y) sums the log-probs of the response tokens only (prompt excluded). The
 * gradient raises log π(y_c) and lowers log π(y_r), weighted by σ(−margin): pairs the policy
 * already orders correctly (relative to the reference) count less.
 */
import * as tf from "@tensorflow/tfjs";
import { defaultTrainingThreads, stepMemoryLimitBytes } from "../core/backend";
import { checkTrainingStepFits, copyParams, GPTConfig, GPTParams, tokenLogProbs } from "../gpt/gpt";
import { responseBatch, rowsToTensor } from "../gpt/rollout";
import { encodePreferencePairs, pairBatcher, pairBatchRows, pairBatchTensors, splitPreferencePairs } from "./rewardModel";
import { type ShardLossFn, type ShardLossSpec, splitPrefix, type TensorBatch, withPrefix } from "../pretrain/dataParallel";
import type { LossHistory } from "../pretrain/checkpoint";
import type { PreferenceRecord } from "./preferences";
import { type ProgressMode, train } from "../pretrain/trainer";
import type { ChatCodec } from "./chat";

export interface DPOLossResult {
  loss: tf.Scalar;
  /** Implicit rewards β·(log π − log π_ref) of chosen and rejected answers [B]. */
  rewardsChosen: tf.Tensor1D;
  rewardsRejected: tf.Tensor1D;
  /** Fraction of pairs whose chosen implicit reward is higher. */
  accuracy: tf.Scalar;
  /** Mean of rewardsChosen − rewardsRejected. */
  margin: tf.Scalar;
}

/** DPO loss from per-sequence summed log-probs [B] (see the top of the file). */
export function dpoLoss(
  policyChosenLogp: tf.Tensor1D, policyRejectedLogp: tf.Tensor1D, refChosenLogp: tf.Tensor1D, refRejectedLogp: tf.Tensor1D, beta = 0.1,
): DPOLossResult {
  const shapes = [policyChosenLogp, policyRejectedLogp, refChosenLogp, refRejectedLogp].map((t) => t.shape);
  if (!shapes.every((s) => tf.util.arraysEqual(s, shapes[0]))) throw new Error(`dpoLoss: the four log-prob tensors must have the same shape, got ${shapes.map((s) => `[${s}]`).join(", ")}`);
  if (!(beta > 0)) throw new Error(`dpoLoss: beta must be > 0, got ${beta}`);
  return tf.tidy((): tf.TensorContainerObject => {
    const rewardsChosen = tf.mul(tf.sub(policyChosenLogp, refChosenLogp), beta) as tf.Tensor1D;
    const rewardsRejected = tf.mul(tf.sub(policyRejectedLogp, refRejectedLogp), beta) as tf.Tensor1D;
    const margins = tf.sub(rewardsChosen, rewardsRejected);
    const loss = tf.mean(tf.softplus(tf.neg(margins))) as tf.Scalar; // −log σ(m) = softplus(−m)
    const accuracy = tf.mean(tf.cast(tf.greater(margins, 0), "float32")) as tf.Scalar;
    return { loss, rewardsChosen, rewardsRejected, accuracy, margin: tf.mean(margins) as tf.Scalar };
  }) as unknown as DPOLossResult;
}

/** Σ_t mask·log p(targets) per row → [B]. idx, targets, mask [B, T]. Differentiable. */
export function sequenceLogProbs(params: GPTParams, config: GPTConfig, idx: tf.Tensor2D, targets: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor1D {
  if (!tf.util.arraysEqual(mask.shape, idx.shape)) throw new Error(`sequenceLogProbs: mask [${mask.shape}] must have the shape of idx [${idx.shape}]`);
  return tf.tidy(() => tf.sum(tf.mul(tokenLogProbs(params, config, idx, targets), tf.cast(mask, "float32")), 1) as tf.Tensor1D);
}

/**
 * DPO loss of a batch of pairs given as token ids: chosen and rejected rows stacked [2N, T]
 * for ONE policy pass and ONE reference pass (the reference under no gradient).
 */
export function dpoPairLoss(
  policy: GPTParams, ref: GPTParams, config: GPTConfig,
  prompts: readonly number[][], chosen: readonly number[][], rejected: readonly number[][], beta = 0.1, padId = 0,
): DPOLossResult {
  const n = prompts.length;
  const rb = responseBatch([...prompts, ...prompts], [...chosen, ...rejected], config.blockSize, padId);
  return tf.tidy((): tf.TensorContainerObject => {
    const idx = rowsToTensor(rb.inputs, "int32");
    const targets = rowsToTensor(rb.targets, "int32");
    const mask = rowsToTensor(rb.mask, "float32");
    const pol = sequenceLogProbs(policy, config, idx, targets, mask); // [2N]
    const refLp = sequenceLogProbs(ref, config, idx, targets, mask); // [2N]; no gradient flows: ref's variables are frozen (trainable false) or not in the var list
    return { ...dpoLoss(pol.slice(0, n) as tf.Tensor1D, pol.slice(n, n) as tf.Tensor1D, refLp.slice(0, n) as tf.Tensor1D, refLp.slice(n, n) as tf.Tensor1D, beta) };
  }) as unknown as DPOLossResult;
}

/** The reference model's weights go beside the policy's under this prefix in a data-parallel step. */
export const DPO_REF_PREFIX = "ref/";

/**
 * DPO's loss of a shard of pairs (rewardModel's pairBatchTensors), the function a data-parallel
 * worker computes: the policy's weights under their names, the frozen reference's under
 * DPO_REF_PREFIX. Options: { config, beta, padId }.
 */
export const dpoShardLoss: ShardLossFn = (params, batch, options) => {
  const { config, beta, padId } = options as { config: GPTConfig; beta: number; padId: number };
  const { prefixed: ref, rest: policy } = splitPrefix(params as GPTParams, DPO_REF_PREFIX);
  const b = pairBatchRows(batch);
  return dpoPairLoss(policy, ref, config, b.prompts, b.chosen, b.rejected, beta, padId).loss;
};

/** dpoShardLoss as data parallelism names it (a worker loads it from this module). */
export function dpoLossSpec(config: GPTConfig, beta: number, padId: number): ShardLossSpec {
  return { module: __filename, name: "dpoShardLoss", options: { config, beta, padId } };
}

// ---------------------------------------------------------------------------------------
// Training (notebook 09, npm run dpo)

export interface DPOTrainOptions {
  sft: GPTParams;
  config: GPTConfig;
  codec: ChatCodec;
  records: readonly PreferenceRecord[];
  maxIters: number;
  /** Pairs per step. Default 16. */
  batchSize?: number;
  /** Threads that compute each step (lib/pretrain/dataParallel.ts). Default: defaultTrainingThreads() (on a 2-core machine: 1 when a BLAS splits the products across the cores, else 2). */
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
  const pairs = opts.batchSize ?? 16;
  checkTrainingStepFits(config, 2 * pairs, opts.threads ?? defaultTrainingThreads(), "dpo", `batch size ${pairs} (pairs, two sequences each)`, stepMemoryLimitBytes());
  const batches = pairBatcher(split.train, split.val, pairs);
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
