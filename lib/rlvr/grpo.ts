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
import { AdamW, clipByGlobalNorm, type NamedTensors } from "../core/optim";
import type { Rng } from "../core/random";
import { type GPTConfig, type GPTParams, tokenLogProbs } from "../gpt/gpt";
import { generateBatch, responseBatch, rowsToTensor } from "../gpt/rollout";
import type { ChatCodec } from "../rlhf/chat";

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

// ---------------------------------------------------------------------------------------
// pass@k and the loop

/**
 * The unbiased pass@k of Chen et al. (2021, Codex) from n samples of which c are right:
 * 1 − C(n − c, k) / C(n, k), the chance that k of the n samples, drawn without replacement,
 * include a right one. pass@1 = c/n.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!(Number.isInteger(n) && Number.isInteger(c) && Number.isInteger(k) && n >= 1 && c >= 0 && c <= n && k >= 1 && k <= n)) {
    throw new Error(`passAtK: need integers 1 <= k <= n and 0 <= c <= n, got n=${n}, c=${c}, k=${k}`);
  }
  if (n - c < k) return 1;
  let missAll = 1; // C(n − c, k) / C(n, k) as a product, no large numbers
  for (let i = 0; i < k; i++) missAll *= (n - c - i) / (n - i);
  return 1 - missAll;
}

/** Sampled responses as answer texts, without the end-of-turn token. */
function answerTexts(codec: ChatCodec, responses: readonly number[][]): string[] {
  return responses.map((r) => codec.decodeResponse(r.filter((id) => id !== codec.endId)));
}

/** A prompt whose answers a checker verifies. */
export interface VerifiablePrompt {
  question: string;
  check: (answer: string) => boolean;
}

export interface GRPOHyper {
  /** Answers sampled per prompt (G). */
  groupSize: number;
  /** Gradient steps on each batch of answers (μ). */
  epochs: number;
  clipEps: number;
  /** KL coefficient to the reference; 0 drops the term (and the reference pass). */
  beta: number;
  /** Divide advantages by the group's standard deviation (GRPO) or not (Dr. GRPO). */
  scaleAdvantages: boolean;
  temperature: number;
  maxNewTokens: number;
  gradClip: number;
}

export const DEFAULT_GRPO_HYPER: Readonly<GRPOHyper> = {
  groupSize: 8, epochs: 2, clipEps: 0.2, beta: 0.04, scaleAdvantages: true, temperature: 1, maxNewTokens: 16, gradClip: 1,
};

export interface GRPOIterationStats {
  /** Mean reward of the sampled answers (the fraction the checker accepted). */
  reward: number;
  /** Groups with at least one right answer, and groups with both right and wrong ones (the only ones that teach). */
  solvedGroups: number;
  mixedGroups: number;
  kl: number;
  clipFraction: number;
  /** Mean answer length in tokens. */
  length: number;
}

/**
 * One GRPO iteration: G answers per prompt sampled from the policy, the checker's rewards,
 * group-relative advantages, then `epochs` clipped updates (AdamW) on those answers.
 */
export function grpoIteration(
  policy: GPTParams, ref: GPTParams | undefined, optimizer: AdamW, config: GPTConfig, codec: ChatCodec,
  prompts: readonly VerifiablePrompt[], hyper: GRPOHyper, rng: Rng,
): GRPOIterationStats {
  const G = hyper.groupSize;
  const ids = prompts.flatMap((p) => Array.from({ length: G }, () => codec.encodePrompt(p.question)));
  const gen = generateBatch(policy, config, ids, {
    maxNewTokens: hyper.maxNewTokens, temperature: hyper.temperature, stopId: codec.endId, padId: codec.padId, rng, streams: "row",
  });
  const answers = answerTexts(codec, gen.responses);
  const rewards: number[] = answers.map((a, i) => (prompts[Math.floor(i / G)].check(a) ? 1 : 0));
  const advantages = groupAdvantages(rewards, G, { scale: hyper.scaleAdvantages });
  const batch = responseBatch(gen.prompts, gen.responses, config.blockSize, codec.padId);
  const names = Object.keys(policy).filter((k) => policy[k].trainable);
  const nameOf = new Map(names.map((k) => [policy[k].name, k]));
  const inputs = rowsToTensor(batch.inputs, "int32"), targets = rowsToTensor(batch.targets, "int32");
  const mask = rowsToTensor(batch.mask, "float32");
  const adv = tf.tensor1d(advantages);
  const old = tf.tidy(() => tokenLogProbs(policy, config, inputs, targets));
  const refLogp = ref && hyper.beta > 0 ? tf.tidy(() => tokenLogProbs(ref, config, inputs, targets)) : undefined;
  let kl = 0, clipFraction = 0;
  try {
    for (let e = 0; e < hyper.epochs; e++) {
      const stats: tf.Tensor[] = [];
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => {
          const r = grpoLoss(tokenLogProbs(policy, config, inputs, targets), old, adv, mask, { clipEps: hyper.clipEps, beta: hyper.beta, refLogp });
          stats.push(tf.keep(r.kl), tf.keep(r.clipFraction));
          return r.loss;
        }, names.map((k) => policy[k]));
        const named: NamedTensors = {};
        for (const [vn, g] of Object.entries(grads)) named[nameOf.get(vn) as string] = g;
        const { grads: clipped, norm } = clipByGlobalNorm(named, hyper.gradClip);
        if (Number.isFinite(norm)) optimizer.step(clipped);
      });
      [kl, clipFraction] = stats.map((s) => s.dataSync()[0]);
      tf.dispose(stats);
    }
  } finally {
    tf.dispose([inputs, targets, mask, adv, old, ...(refLogp ? [refLogp] : [])]);
  }
  const groups = Array.from({ length: prompts.length }, (_, g) => rewards.slice(g * G, (g + 1) * G));
  return {
    reward: rewards.reduce((a, b) => a + b, 0) / rewards.length,
    solvedGroups: groups.filter((g) => g.some((r) => r === 1)).length / groups.length,
    mixedGroups: groups.filter((g) => g.some((r) => r === 1) && g.some((r) => r === 0)).length / groups.length,
    kl, clipFraction,
    length: batch.responseLengths.reduce((a, b) => a + b, 0) / batch.batch,
  };
}

/** pass@1 and pass@k over prompts from n sampled answers each (the unbiased estimators). */
export function evaluateVerifiable(
  params: GPTParams, config: GPTConfig, codec: ChatCodec, prompts: readonly VerifiablePrompt[],
  opts: { samples: number; k: number; temperature?: number; maxNewTokens?: number; seed?: number },
): { pass1: number; passK: number; correct: number[] } {
  const ids = prompts.flatMap((p) => Array.from({ length: opts.samples }, () => codec.encodePrompt(p.question)));
  const gen = generateBatch(params, config, ids, {
    maxNewTokens: opts.maxNewTokens ?? 16, temperature: opts.temperature ?? 1, stopId: codec.endId, padId: codec.padId, seed: opts.seed ?? 0, streams: "row",
  });
  const answers = answerTexts(codec, gen.responses);
  const correct = prompts.map((p, i) => answers.slice(i * opts.samples, (i + 1) * opts.samples).filter((a) => p.check(a)).length);
  const mean = (f: (c: number) => number) => correct.reduce((a, c) => a + f(c), 0) / correct.length;
  return { pass1: mean((c) => passAtK(opts.samples, c, 1)), passK: mean((c) => passAtK(opts.samples, c, opts.k)), correct };
}
