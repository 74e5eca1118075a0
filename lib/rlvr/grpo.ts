/**
 * GRPO, Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath): PPO without a
 * critic. For each prompt the policy samples a group of G answers; each answer's advantage is
 * its reward relative to its own group, so no value model has to learn what a prompt is worth.
 *
 *   A_i = (r_i − mean(r_1..G)) / (std(r_1..G) + ε)        (Dr. GRPO, Liu et al. 2025: no std)
 *   loss = −mean over answers of mean over their tokens of
 *            min(ρ_t·A_i, clip(ρ_t, 1 ± ε_clip)·A_i) − β·KL_t,      ρ_t = π(y_t)/π_old(y_t)
 *   KL_t = exp(ref_t − logπ_t) − (ref_t − logπ_t) − 1   (the k3 estimator: ≥ 0, unbiased)
 *
 * A group whose answers all get the same reward has all advantages 0: it teaches nothing, which
 * is why the fraction of groups with a right answer (and a wrong one) is worth watching.
 */
import * as tf from "@tensorflow/tfjs";

export interface GroupAdvantageOptions {
  /** Divide by the group's standard deviation (GRPO) or not (Dr. GRPO). Default true. */
  scale?: boolean;
  /** Added to the standard deviation. Default 1e-4. */
  eps?: number;
}

/**
 * Advantages of rewards laid out group by group (rewards.length = groups × groupSize): each
 * reward minus its group's mean, divided by the group's (population) standard deviation.
 */
export function groupAdvantages(rewards: readonly number[], groupSize: number, opts: GroupAdvantageOptions = {}): number[] {
  if (!Number.isInteger(groupSize) || groupSize < 2) throw new Error(`groupAdvantages: groupSize must be an integer >= 2, got ${groupSize}`);
  if (rewards.length % groupSize !== 0) throw new Error(`groupAdvantages: ${rewards.length} rewards are not whole groups of ${groupSize}`);
  const scale = opts.scale ?? true, eps = opts.eps ?? 1e-4;
  const out: number[] = [];
  for (let g = 0; g < rewards.length; g += groupSize) {
    const group = rewards.slice(g, g + groupSize);
    const mean = group.reduce((a, b) => a + b, 0) / groupSize;
    const std = Math.sqrt(group.reduce((a, r) => a + (r - mean) ** 2, 0) / groupSize);
    for (const r of group) out.push(scale ? (r - mean) / (std + eps) : r - mean);
  }
  return out;
}

export interface GRPOLossResult {
  loss: tf.Scalar;
  /** Mean k3 KL to the reference over response tokens (0 when no reference is given). */
  kl: tf.Scalar;
  /** Fraction of response tokens where the clipped term was the active one. */
  clipFraction: tf.Scalar;
}

/**
 * GRPO's objective, to minimise. newLogp, oldLogp, refLogp and mask are [B, T] (log-probabilities
 * of each answer's tokens; mask 1 on answer tokens); advantages [B], one per answer. Each answer's
 * tokens are averaged first, then the answers (the paper's 1/|o_i| normalisation). refLogp
 * undefined (or beta 0): no KL term, as in later work (DAPO, Dr. GRPO).
 */
export function grpoLoss(
  newLogp: tf.Tensor2D, oldLogp: tf.Tensor2D, advantages: tf.Tensor1D, mask: tf.Tensor2D,
  opts: { clipEps?: number; beta?: number; refLogp?: tf.Tensor2D } = {},
): GRPOLossResult {
  const clipEps = opts.clipEps ?? 0.2, beta = opts.beta ?? 0;
  return tf.tidy(() => {
    const m = tf.cast(mask, "float32");
    const lengths = tf.maximum(tf.sum(m, 1), 1); // [B]
    const perAnswer = (x: tf.Tensor) => tf.div(tf.sum(tf.mul(x, m), 1), lengths); // [B]
    const a = advantages.reshape([-1, 1]); // [B, 1]
    const ratio = tf.exp(tf.sub(newLogp, oldLogp)); // [B, T]
    const unclipped = tf.mul(ratio, a);
    const clipped = tf.mul(tf.clipByValue(ratio, 1 - clipEps, 1 + clipEps), a);
    let objective: tf.Tensor = tf.minimum(unclipped, clipped); // [B, T]
    let kl: tf.Scalar = tf.scalar(0);
    if (opts.refLogp !== undefined) {
      const d = tf.sub(opts.refLogp, newLogp);
      const k3 = tf.sub(tf.sub(tf.exp(d), d), 1); // [B, T], ≥ 0
      kl = tf.mean(perAnswer(k3)) as tf.Scalar;
      if (beta > 0) objective = tf.sub(objective, tf.mul(k3, beta));
    }
    const loss = tf.neg(tf.mean(perAnswer(objective))) as tf.Scalar;
    const clipFraction = tf.div(tf.sum(tf.mul(tf.cast(tf.less(clipped, unclipped), "float32"), m)), tf.maximum(tf.sum(m), 1)) as tf.Scalar;
    return { loss, kl, clipFraction };
  });
}
