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
import { GPTConfig, GPTParams, tokenLogProbs } from "../gpt/gpt";
import { responseBatch, rowsToTensor } from "../gpt/rollout";
import { pairBatchRows } from "./rewardModel";
import { splitPrefix, type ShardLossFn, type ShardLossSpec } from "../pretrain/dataParallel";

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
