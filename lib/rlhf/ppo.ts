/**
 * PPO for language models, as in Ziegler et al. 2019 ("Fine-Tuning Language Models from
 * Human Preferences"), InstructGPT (Ouyang et al. 2022) and Hugging Face TRL's PPOTrainer.
 *
 * One iteration:
 *   1. rollout: the policy answers B prompts (sampling, KV cache: lib/gpt/rollout)
 *   2. score:   reward model → one score per answer; teacher-forced passes give per token
 *               logp (policy, "old"), logp_ref (frozen SFT copy), value V (value head)
 *   3. reward per response token t:  r_t = −β·KL_t  (+ score on the answer's last token)
 *               KL_t = logp_t − logp_ref_t (k1): the penalty keeps the policy near the SFT
 *               model, so it cannot drift into gibberish the reward model over-rates
 *   4. GAE:     δ_t = r_t + γ·V_{t+1} − V_t,  A_t = δ_t + γλ·A_{t+1},  returns R_t = A_t + V_t
 *               (V after the last token = 0: the episode ends there); advantages whitened
 *   5. update:  several epochs of shuffled minibatches, each minimising
 *                 policy loss  mean(max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε))),  ρ = exp(logp − logp_old)
 *                 + vfCoef · value loss  ½·mean(max((V−R)², (V_old + clip(V−V_old, ±c) − R)²))
 *                 − entCoef · entropy
 *               with AdamW and global-norm clipping. The clip stops any one update from
 *               moving a token's probability far from where the rollout sampled it.
 *   6. adapt β (optional, Ziegler's controller) towards a target KL.
 *
 * The value head (`value.weight` [C, 1], `value.bias` [1]) sits on the policy's own trunk,
 * like TRL's AutoModelForCausalLMWithValueHead: one forward pass gives both. By default it
 * reads the trunk's features without sending its gradient back into them (`critic:
 * "detached"`): the value loss trains the head alone. With `critic: "shared"` (the older TRL
 * design) the value loss also moves the transformer; its returns are on the reward's scale (up
 * to ±10 here) while the policy loss is about 1, so after global-norm clipping most of each
 * step serves the value guess, and the language model drifts: answers the SFT model got right
 * come out wrong, even when PPO optimises the labeller's own rule instead of a reward model.
 * Newer TRL trains a separate value model for the same reason.
 */
import * as tf from "@tensorflow/tfjs";
import { stepMemoryLimitBytes } from "../core/backend";
import { checkTrainingStepFits, copyParams, GPTConfig, gptForward, gptLoss, GPTParams, targetLogProbs } from "../gpt/gpt";
import { AdamW, AdamWConfig, clipByGlobalNorm, NamedTensors } from "../core/optim";
import { createRng, Rng } from "../core/random";
import { LiveLineChart, liveLineChart } from "../show/plot";
import { initScalarHead, scalarHead, scoreResponses } from "./rewardModel";
import { BatchGenerateOptions, generateBatch, responseBatch, ResponseBatch, rowsToTensor } from "../gpt/rollout";
import { trueScore } from "./labeller";
import type { ChatCodec, RLHFPrompt } from "./chat";
import { encodeSFTData, type SFTExample, sftBatch } from "../finetune/sft";

// ---------------------------------------------------------------------------------------
// Plain-number pieces: GAE, KL estimators, rewards, whitening

export interface GAEResult {
  advantages: number[];
  returns: number[];
}

/**
 * Generalised Advantage Estimation (Schulman et al. 2016) over ONE sequence of per-token
 * rewards and values. Positions with mask 0 are skipped (advantage 0, return 0): the next
 * value of a position is that of the next masked-in position, 0 after the last.
 */
export function gae(rewards: readonly number[], values: readonly number[], gamma: number, lambda: number, mask?: readonly number[]): GAEResult {
  const n = rewards.length;
  if (values.length !== n) throw new Error(`gae: ${n} rewards but ${values.length} values`);
  if (mask !== undefined && mask.length !== n) throw new Error(`gae: ${n} rewards but ${mask.length} mask entries`);
  if (!(gamma >= 0 && gamma <= 1) || !(lambda >= 0 && lambda <= 1)) throw new Error(`gae: gamma and lambda must be in [0, 1], got ${gamma}, ${lambda}`);
  const advantages = new Array<number>(n).fill(0);
  const returns = new Array<number>(n).fill(0);
  let nextValue = 0;
  let nextAdv = 0;
  for (let t = n - 1; t >= 0; t--) {
    if (mask !== undefined && mask[t] === 0) continue;
    const delta = rewards[t] + gamma * nextValue - values[t];
    nextAdv = delta + gamma * lambda * nextAdv;
    advantages[t] = nextAdv;
    returns[t] = nextAdv + values[t];
    nextValue = values[t];
  }
  return { advantages, returns };
}

/**
 * Estimators of KL(π ‖ π_ref) from a token sampled from π (Schulman, "Approximating KL
 * Divergence", 2020), with log r = logp_ref − logp:
 *   k1 = −log r = logp − logp_ref        unbiased, can be negative per token (PPO's reward uses it, as Ziegler/TRL)
 *   k3 = (r − 1) − log r                 unbiased, always ≥ 0, lower variance (GRPO uses it)
 *   k2 = ½ (log r)²                      biased but ≥ 0 (for reference)
 */
export type KLEstimator = "k1" | "k2" | "k3";

export function klPerToken(logpPolicy: ArrayLike<number>, logpRef: ArrayLike<number>, estimator: KLEstimator = "k1"): number[] {
  if (logpPolicy.length !== logpRef.length) throw new Error(`klPerToken: ${logpPolicy.length} policy log-probs but ${logpRef.length} reference ones`);
  const out = new Array<number>(logpPolicy.length);
  for (let i = 0; i < out.length; i++) {
    const logr = logpRef[i] - logpPolicy[i];
    out[i] = estimator === "k1" ? -logr : estimator === "k2" ? 0.5 * logr * logr : Math.expm1(logr) - logr;
  }
  return out;
}

export interface TokenRewards {
  /** [B][T] per-token rewards (0 outside the response). */
  rewards: number[][];
  /** Per sequence: Σ_t KL_t over its response tokens. */
  kl: number[];
  /** Per sequence: Σ_t −β·KL_t (the "non-score" part of the reward). */
  klReward: number[];
}

/**
 * r_t = −β·KL_t on every response token, plus the score on the LAST response token
 * (the reward model judges the whole answer, once it is complete).
 */
export function ppoRewards(
  scores: readonly number[], logp: readonly number[][], logpRef: readonly number[][], mask: readonly number[][],
  beta: number, estimator: KLEstimator = "k1",
): TokenRewards {
  const rewards: number[][] = [], kl: number[] = [], klReward: number[] = [];
  scores.forEach((score, b) => {
    const k = klPerToken(logp[b], logpRef[b], estimator);
    const m = mask[b];
    const r = k.map((x, t) => (m[t] ? -beta * x : 0));
    let last = -1;
    for (let t = 0; t < m.length; t++) if (m[t]) last = t;
    if (last < 0) throw new Error(`ppoRewards: row ${b} has no response token`);
    r[last] += score;
    rewards.push(r);
    kl.push(k.reduce((s, x, t) => s + (m[t] ? x : 0), 0));
    klReward.push(-beta * kl[kl.length - 1]);
  });
  return { rewards, kl, klReward };
}

/** GAE of every row ([B][T] rewards, values, mask). */
export function gaeBatch(rewards: readonly number[][], values: readonly number[][], mask: readonly number[][], gamma: number, lambda: number): { advantages: number[][]; returns: number[][] } {
  const res = rewards.map((r, b) => gae(r, values[b], gamma, lambda, mask[b]));
  return { advantages: res.map((x) => x.advantages), returns: res.map((x) => x.returns) };
}

/** (x − mean) / std over the masked-in entries (0 elsewhere); shiftMean false keeps the mean (TRL). */
export function whiten(rows: readonly number[][], mask: readonly number[][], shiftMean = true): number[][] {
  let n = 0, sum = 0, sq = 0;
  rows.forEach((r, b) => r.forEach((x, t) => { if (mask[b][t]) { n++; sum += x; sq += x * x; } }));
  if (n === 0) return rows.map((r) => r.map(() => 0));
  const mean = sum / n;
  const variance = n > 1 ? Math.max(0, (sq - n * mean * mean) / (n - 1)) : 0; // unbiased, as torch.var
  const inv = 1 / Math.sqrt(variance + 1e-8);
  return rows.map((r, b) => r.map((x, t) => (mask[b][t] ? (shiftMean ? (x - mean) * inv : (x - mean) * inv + mean) : 0)));
}

// ---------------------------------------------------------------------------------------
// KL controllers

export interface KLController {
  /** Current β. */
  readonly value: number;
  /** Feed the KL measured on a rollout batch of nSteps sequences. */
  update(currentKL: number, nSteps: number): void;
}

export class FixedKLController implements KLController {
  constructor(readonly value: number) {
    if (!(value >= 0)) throw new Error(`FixedKLController: beta must be >= 0, got ${value}`);
  }
  update(): void { /* fixed */ }
}

/**
 * Ziegler et al. 2019 (§2.2): β ← β·(1 + clip(KL/target − 1, −0.2, 0.2)·nSteps/horizon).
 * KL above target raises β (pull back to the reference), below lowers it; the clip and the
 * horizon make the change gradual.
 */
export class AdaptiveKLController implements KLController {
  value: number;
  constructor(initBeta: number, readonly target: number, readonly horizon: number) {
    if (!(initBeta >= 0)) throw new Error(`AdaptiveKLController: initial beta must be >= 0, got ${initBeta}`);
    if (!(target > 0)) throw new Error(`AdaptiveKLController: target must be > 0, got ${target}`);
    if (!(horizon > 0)) throw new Error(`AdaptiveKLController: horizon must be > 0, got ${horizon}`);
    this.value = initBeta;
  }
  update(currentKL: number, nSteps: number): void {
    const err = Math.min(0.2, Math.max(-0.2, currentKL / this.target - 1));
    this.value *= 1 + (err * nSteps) / this.horizon;
  }
}

// ---------------------------------------------------------------------------------------
// Tensor losses

function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
}

export interface PolicyLossResult {
  loss: tf.Scalar;
  /** Fraction of response tokens where the clipped term was the active one. */
  clipFraction: tf.Scalar;
  /** ½·mean((logp − logp_old)²): how far this update has moved the policy (TRL's approxkl). */
  approxKL: tf.Scalar;
}

/** PPO's clipped surrogate (to minimise), masked mean over response tokens. All inputs [B, T]. */
export function ppoPolicyLoss(newLogp: tf.Tensor, oldLogp: tf.Tensor, advantages: tf.Tensor, mask: tf.Tensor, clipEps = 0.2): PolicyLossResult {
  return tf.tidy(() => {
    const diff = tf.sub(newLogp, oldLogp);
    const ratio = tf.exp(diff); // ρ = π/π_old
    const unclipped = tf.mul(tf.neg(advantages), ratio);
    const clipped = tf.mul(tf.neg(advantages), tf.clipByValue(ratio, 1 - clipEps, 1 + clipEps));
    const loss = maskedMean(tf.maximum(unclipped, clipped), mask);
    const clipFraction = maskedMean(tf.cast(tf.greater(clipped, unclipped), "float32"), mask);
    const approxKL = tf.mul(maskedMean(tf.square(diff), mask), 0.5) as tf.Scalar;
    return { loss, clipFraction, approxKL };
  });
}

export interface ValueLossResult {
  loss: tf.Scalar;
  /** Fraction of tokens where the clipped prediction gave the larger error. */
  clipFraction: tf.Scalar;
}

/**
 * Clipped value loss (PPO2 / TRL): the new value may not move more than clipRange from the
 * rollout's value for free: ½·mean(max((V − R)², (V_old + clip(V − V_old, ±c) − R)²)).
 */
export function ppoValueLoss(newValues: tf.Tensor, oldValues: tf.Tensor, returns: tf.Tensor, mask: tf.Tensor, clipRange = 0.2): ValueLossResult {
  return tf.tidy(() => {
    const vClipped = tf.add(oldValues, tf.clipByValue(tf.sub(newValues, oldValues), -clipRange, clipRange));
    const l1 = tf.square(tf.sub(newValues, returns));
    const l2 = tf.square(tf.sub(vClipped, returns));
    const loss = tf.mul(maskedMean(tf.maximum(l1, l2), mask), 0.5) as tf.Scalar;
    const clipFraction = maskedMean(tf.cast(tf.greater(l2, l1), "float32"), mask);
    return { loss, clipFraction };
  });
}

/** Entropy −Σ p·log p of each position's next-token distribution: logits [..., V] → [...]. */
export function entropy(logits: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1));
  });
}

// ---------------------------------------------------------------------------------------
// Policy with value head

export const VALUE_WEIGHT = "value.weight";
export const VALUE_BIAS = "value.bias";

/** The PPO policy: a copy of the SFT model plus a value head (fresh unless the source has one). */
export function initPolicy(sftParams: GPTParams, config: GPTConfig, seed = 0): GPTParams {
  const params = copyParams(sftParams, true);
  if (!(VALUE_WEIGHT in params)) Object.assign(params, initScalarHead("value", config, seed));
  return params;
}

export interface PolicyOutputs {
  /** [B, T] log π(target_t | inputs_≤t). */
  logp: tf.Tensor2D;
  /** [B, T] V(state after inputs_≤t). */
  values: tf.Tensor2D;
  /** [B, T] entropy of the next-token distribution. */
  entropy: tf.Tensor2D;
}

/**
 * One forward pass of the policy: log-probs of targets, values, entropies. Differentiable.
 * No dropout, ever: the ratio π/π_old must compare the same function, not two random masks.
 */
export function policyOutputs(
  params: GPTParams, config: GPTConfig, inputs: tf.Tensor2D, targets: tf.Tensor2D, critic: CriticMode = "detached",
): PolicyOutputs {
  const [b, t] = inputs.shape;
  return tf.tidy(() => {
    const { logits, hidden } = gptForward(params, config, inputs, { returnHidden: true }); // [B, T, V], [B, T, C]
    const flat = logits.reshape([b * t, config.vocabSize]) as tf.Tensor2D;
    const logp = targetLogProbs(flat, tf.cast(targets, "int32").reshape([b * t]) as tf.Tensor1D).reshape([b, t]) as tf.Tensor2D;
    const values = scalarHead(params, "value", critic === "detached" ? stopGradient(hidden) : hidden); // [B, T]
    return { logp, values, entropy: entropy(logits) as tf.Tensor2D };
  });
}

/** Where the value loss's gradient goes: the value head only ("detached"), or also the policy's transformer ("shared"). */
export type CriticMode = "detached" | "shared";

/** x in the forward pass, no gradient in the backward pass (tfjs has no tf.stopGradient). */
export const stopGradient = tf.customGrad(
  ((x: tf.Tensor) => ({ value: tf.clone(x), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) })) as unknown as Parameters<typeof tf.customGrad>[0],
) as <T extends tf.Tensor>(x: T) => T;

/** log π_ref(targets) [B, T] of the frozen reference model (any GPT; no value head needed). */
export function referenceLogProbs(params: GPTParams, config: GPTConfig, inputs: tf.Tensor2D, targets: tf.Tensor2D): tf.Tensor2D {
  const [b, t] = inputs.shape;
  return tf.tidy(() => {
    const logits = gptForward(params, config, inputs); // [B, T, V]
    return targetLogProbs(logits.reshape([b * t, config.vocabSize]) as tf.Tensor2D, tf.cast(targets, "int32").reshape([b * t]) as tf.Tensor1D).reshape([b, t]) as tf.Tensor2D;
  });
}

const toRows = (t: tf.Tensor2D): number[][] => {
  const [b, n] = t.shape;
  const d = t.dataSync();
  return Array.from({ length: b }, (_, i) => Array.from(d.subarray(i * n, (i + 1) * n)));
};

/** What the rollout recorded, as plain numbers (the per-token "old" quantities of PPO). */
export interface ScoredRollout {
  batch: ResponseBatch;
  /** [B][T] policy log-probs at rollout time, reference log-probs, values. */
  logp: number[][];
  refLogp: number[][];
  values: number[][];
}

/** Teacher-forced passes over a response batch: old logp, reference logp, values (no gradient). */
export function scoreRollout(policy: GPTParams, ref: GPTParams, config: GPTConfig, batch: ResponseBatch): ScoredRollout {
  const out = tf.tidy(() => {
    const inputs = rowsToTensor(batch.inputs, "int32");
    const targets = rowsToTensor(batch.targets, "int32");
    const p = policyOutputs(policy, config, inputs, targets);
    return [p.logp, p.values, referenceLogProbs(ref, config, inputs, targets)];
  }) as tf.Tensor2D[];
  const [logp, values, refLogp] = out.map(toRows);
  tf.dispose(out);
  return { batch, logp, refLogp, values };
}

export interface Rollout extends ScoredRollout {
  /** Prompts as used (cropped to the context) and the sampled responses (stop token included). */
  prompts: number[][];
  responses: number[][];
  /** Whether each response ended with the stop token. */
  ended: boolean[];
}

/**
 * Steps 1–2 of an iteration minus the reward: sample answers for all prompts at once (KV
 * cache), then record per token the policy's logp, the reference's logp, the values and the
 * response mask (teacher-forced passes over the same tokens, as TRL does).
 */
export function rollout(policy: GPTParams, ref: GPTParams, config: GPTConfig, prompts: readonly number[][], opts: BatchGenerateOptions): Rollout {
  const gen = generateBatch(policy, config, prompts, opts);
  const batch = responseBatch(gen.prompts, gen.responses, config.blockSize, opts.padId ?? 0);
  return { ...scoreRollout(policy, ref, config, batch), prompts: gen.prompts, responses: gen.responses, ended: gen.ended };
}

// ---------------------------------------------------------------------------------------
// The update

export interface PPOHyper {
  /** Policy ratio clip ε. Default 0.2. */
  clipEps: number;
  /** Value clip range. Default 0.2. */
  valueClip: number;
  /** Weight of the value loss. Default 0.1 (TRL). */
  vfCoef: number;
  /** Weight of the entropy bonus. Default 0. */
  entCoef: number;
  /** Discount γ. Default 1 (the episode is one short answer). */
  gamma: number;
  /** GAE λ. Default 0.95. */
  lambda: number;
  /** Passes over each rollout batch. Default 4. */
  epochs: number;
  /** Rows per minibatch. Default: the whole batch. */
  minibatchSize: number;
  /** Global-norm gradient clip (0 = off). Default 1. */
  gradClip: number;
  /** Whiten advantages over the batch. Default true. */
  whitenAdvantages: boolean;
  /** KL estimator inside the reward. Default "k1". */
  klEstimator: KLEstimator;
  /** Whether the value loss trains the head only (default "detached") or the transformer too ("shared"). */
  critic: CriticMode;
}

export const DEFAULT_PPO_HYPER: Readonly<Omit<PPOHyper, "minibatchSize">> = {
  clipEps: 0.2, valueClip: 0.2, vfCoef: 0.1, entCoef: 0, gamma: 1, lambda: 0.95, epochs: 4, gradClip: 1, whitenAdvantages: true, klEstimator: "k1", critic: "detached",
};

/**
 * PPO-ptx (InstructGPT, section 3.5): supervised batches whose log-likelihood joins PPO's
 * objective, loss += coef · (masked cross-entropy of `next()`'s targets). Optimising a reward
 * model on a few thousand answers also moves everything else the model knows; InstructGPT
 * called what is lost the "alignment tax" and paid less of it by mixing in pretraining data.
 * Here the batches are SFT examples (ptxSource in this file, PTX_COEF).
 */
export interface PtxSource {
  coef: number;
  /** A fresh batch: inputs, targets, and 1 where a target counts ([B, T] each); disposed by the caller. */
  next: () => { x: tf.Tensor2D; y: tf.Tensor2D; mask: tf.Tensor2D };
}

export interface PPOUpdateStats {
  policyLoss: number;
  /** Mean cross-entropy of the ptx batches (only with ptx). */
  ptxLoss?: number;
  valueLoss: number;
  clipFraction: number;
  valueClipFraction: number;
  approxKL: number;
  entropy: number;
  /** Mean global gradient norm before clipping (NaN when gradClip is 0). */
  gradNorm: number;
  /** Optimizer steps done. */
  steps: number;
  /** Minibatches whose gradient norm was NaN/Inf: no step was taken. */
  skippedSteps: number;
}

/**
 * Several epochs of shuffled minibatches over one rollout batch: policy + value loss,
 * gradient, clip, AdamW step. Returns the means over all minibatches. Everything tensor
 * lives inside tidy / variableGrads: the tensor count is the same before and after.
 */
export function ppoUpdate(
  params: GPTParams, config: GPTConfig, optimizer: AdamW, rollout: ScoredRollout,
  advantages: number[][], returns: number[][], hyper: PPOHyper, rng: Rng, ptx?: PtxSource,
): PPOUpdateStats {
  const { batch } = rollout;
  const names = Object.keys(params).filter((k) => params[k].trainable);
  const varList = names.map((k) => params[k]);
  const nameOf = new Map(names.map((k) => [params[k].name, k]));
  const mb = Math.max(1, Math.min(hyper.minibatchSize, batch.batch));
  const sums = { policyLoss: 0, ptxLoss: 0, valueLoss: 0, clipFraction: 0, valueClipFraction: 0, approxKL: 0, entropy: 0, gradNorm: 0, steps: 0, skippedSteps: 0 };
  const pick = <T>(rows: T[], ids: number[]) => ids.map((i) => rows[i]);
  for (let epoch = 0; epoch < hyper.epochs; epoch++) {
    const order = rng.shuffle(Array.from({ length: batch.batch }, (_, i) => i));
    for (let start = 0; start < order.length; start += mb) {
      const ids = order.slice(start, start + mb);
      const stats: tf.Tensor[] = [];
      tf.tidy(() => {
        const inputs = rowsToTensor(pick(batch.inputs, ids), "int32");
        const targets = rowsToTensor(pick(batch.targets, ids), "int32");
        const mask = rowsToTensor(pick(batch.mask, ids), "float32");
        const oldLogp = rowsToTensor(pick(rollout.logp, ids), "float32");
        const oldValues = rowsToTensor(pick(rollout.values, ids), "float32");
        const adv = rowsToTensor(pick(advantages, ids), "float32");
        const ret = rowsToTensor(pick(returns, ids), "float32");
        const { grads } = tf.variableGrads(() => {
          const out = policyOutputs(params, config, inputs, targets, hyper.critic);
          const pg = ppoPolicyLoss(out.logp, oldLogp, adv, mask, hyper.clipEps);
          const vl = ppoValueLoss(out.values, oldValues, ret, mask, hyper.valueClip);
          const ent = maskedMean(out.entropy, mask);
          stats.push(...[pg.loss, vl.loss, pg.clipFraction, vl.clipFraction, pg.approxKL, ent].map((s) => tf.keep(s.clone())));
          let loss = tf.add(pg.loss, tf.mul(vl.loss, hyper.vfCoef));
          if (hyper.entCoef !== 0) loss = tf.sub(loss, tf.mul(ent, hyper.entCoef));
          if (ptx !== undefined) {
            const b = ptx.next();
            const ce = gptLoss(params, config, b.x, b.y, { mask: b.mask });
            stats.push(tf.keep(ce.clone()));
            loss = tf.add(loss, tf.mul(ce, ptx.coef));
          }
          return loss as tf.Scalar;
        }, varList);
        const named: NamedTensors = {};
        for (const [vn, g] of Object.entries(grads)) named[nameOf.get(vn) as string] = g;
        let norm = NaN;
        let use = named;
        if (hyper.gradClip > 0) ({ grads: use, norm } = clipByGlobalNorm(named, hyper.gradClip));
        if (Number.isFinite(norm) || hyper.gradClip === 0) optimizer.step(use);
        else sums.skippedSteps++; // one bad minibatch must not wreck the policy
        sums.gradNorm += norm;
      });
      const v = stats.map((s) => s.dataSync()[0]);
      tf.dispose(stats);
      sums.policyLoss += v[0]; sums.valueLoss += v[1]; sums.clipFraction += v[2];
      sums.valueClipFraction += v[3]; sums.approxKL += v[4]; sums.entropy += v[5]; if (ptx) sums.ptxLoss += v[6];
      sums.steps++;
    }
  }
  const n = Math.max(1, sums.steps);
  return {
    ...(ptx ? { ptxLoss: sums.ptxLoss / n } : {}), policyLoss: sums.policyLoss / n, valueLoss: sums.valueLoss / n, clipFraction: sums.clipFraction / n,
    valueClipFraction: sums.valueClipFraction / n, approxKL: sums.approxKL / n, entropy: sums.entropy / n,
    gradNorm: sums.gradNorm / n, steps: sums.steps, skippedSteps: sums.skippedSteps,
  };
}

// ---------------------------------------------------------------------------------------
// The whole loop

export interface PPOOptions extends Partial<PPOHyper> {
  /** AdamW settings. Default lr 1e-4, weightDecay 0 (decay would pull away from SFT too), betas (0.9, 0.95). */
  optimizer?: AdamWConfig;
  /** Initial β of the KL penalty. Default 0.1. */
  klCoef?: number;
  /** Adaptive β: target KL (nats per answer) and horizon (answers). Default: fixed β. */
  adaptiveKL?: { target: number; horizon: number };
  /** Sampling of the rollouts (maxNewTokens, stopId, temperature…). */
  generation: Omit<BatchGenerateOptions, "rng" | "seed">;
  /** Seed of everything random (sampling, minibatch order, value head init). Default 0. */
  seed?: number;
  /** Pad id of the response batches. Default 0. */
  padId?: number;
  /** Supervised batches mixed into every update (PPO-ptx). Default none. */
  ptx?: PtxSource;
}

export interface PPOTrainer {
  policy: GPTParams;
  ref: GPTParams;
  config: GPTConfig;
  optimizer: AdamW;
  kl: KLController;
  hyper: PPOHyper;
  generation: Omit<BatchGenerateOptions, "rng" | "seed">;
  rng: Rng;
  padId: number;
  ptx?: PtxSource;
  iteration: number;
}

/** Policy (SFT copy + value head, trainable) and reference (SFT copy, frozen), optimizer, β. */
export function createPPO(sftParams: GPTParams, config: GPTConfig, opts: PPOOptions): PPOTrainer {
  const seed = opts.seed ?? 0;
  const policy = initPolicy(sftParams, config, seed);
  const ref: GPTParams = {};
  for (const [name, p] of Object.entries(sftParams)) if (name !== VALUE_WEIGHT && name !== VALUE_BIAS) ref[name] = tf.variable(p.clone() as tf.Tensor, false, undefined, "float32");
  const optimizer = new AdamW(policy, { lr: 1e-4, weightDecay: 0, beta1: 0.9, beta2: 0.95, ...opts.optimizer });
  const beta = opts.klCoef ?? 0.1;
  const kl: KLController = opts.adaptiveKL ? new AdaptiveKLController(beta, opts.adaptiveKL.target, opts.adaptiveKL.horizon) : new FixedKLController(beta);
  const hyper: PPOHyper = { ...DEFAULT_PPO_HYPER, minibatchSize: Number.MAX_SAFE_INTEGER, ...stripUndefined(opts) };
  return { policy, ref, config, optimizer, kl, hyper, generation: opts.generation, rng: createRng(seed), padId: opts.padId ?? 0, ptx: opts.ptx, iteration: 0 };
}

function stripUndefined(o: Partial<PPOHyper>): Partial<PPOHyper> {
  const keys: Array<keyof PPOHyper> = ["clipEps", "valueClip", "vfCoef", "entCoef", "gamma", "lambda", "epochs", "minibatchSize", "gradClip", "whitenAdvantages", "klEstimator", "critic"];
  const out: Partial<PPOHyper> = {};
  for (const k of keys) if (o[k] !== undefined) (out as Record<string, unknown>)[k] = o[k];
  return out;
}

export function disposePPO(trainer: PPOTrainer): void {
  tf.dispose(Object.values(trainer.policy));
  tf.dispose(Object.values(trainer.ref));
  trainer.optimizer.dispose();
}

/** A reward function's answer: the rewards PPO optimises, and the scores they came from before any zero point was subtracted (for the charts). */
export interface Rewards {
  rewards: number[];
  scores: number[];
}

/** Scores of answers: the reward model (or, to debug, the labeller's true rule); plain numbers are both rewards and scores. */
export type RewardFn = (prompts: number[][], responses: number[][], ended: boolean[]) => number[] | Rewards;

export interface PPOStepStats extends PPOUpdateStats {
  iteration: number;
  /** Mean score of the rollout's answers, before any zero point (the reward model's own scale). */
  meanScore: number;
  /** Mean Σ_t KL_t per answer (nats), against the reference. */
  meanKL: number;
  /** Mean total reward per answer (reward − β·KL, the reward after its zero point). */
  meanReward: number;
  /** β used for this batch (before the controller's update). */
  beta: number;
  meanResponseLength: number;
  /** Fraction of answers that ended with the stop token. */
  endedFraction: number;
  seconds: number;
}

export interface PPOStepResult {
  stats: PPOStepStats;
  prompts: number[][];
  responses: number[][];
  /** Each answer's score (Rewards.scores) and reward (Rewards.rewards). */
  scores: number[];
  rewards: number[];
}

/** One PPO iteration on a batch of prompts (see the top of the file). */
export function ppoStep(trainer: PPOTrainer, prompts: number[][], reward: RewardFn): PPOStepResult {
  const t0 = performance.now();
  const { policy, ref, config, hyper } = trainer;
  const gen = rollout(policy, ref, config, prompts, { ...trainer.generation, padId: trainer.padId, rng: trainer.rng });
  const r = reward(gen.prompts, gen.responses, gen.ended);
  const { rewards: answerRewards, scores } = Array.isArray(r) ? { rewards: r, scores: r } : r;
  for (const xs of [answerRewards, scores]) {
    if (xs.length !== prompts.length || xs.some((s) => !Number.isFinite(s))) {
      throw new Error(`ppoStep: the reward function must return ${prompts.length} finite numbers, got [${xs.slice(0, 5).join(", ")}${xs.length > 5 ? ", …" : ""}]`);
    }
  }
  const { batch } = gen;
  const beta = trainer.kl.value;
  const { rewards, kl } = ppoRewards(answerRewards, gen.logp, gen.refLogp, batch.mask, beta, hyper.klEstimator);
  const g = gaeBatch(rewards, gen.values, batch.mask, hyper.gamma, hyper.lambda);
  const advantages = hyper.whitenAdvantages ? whiten(g.advantages, batch.mask) : g.advantages;
  const update = ppoUpdate(policy, config, trainer.optimizer, gen, advantages, g.returns, hyper, trainer.rng, trainer.ptx);
  const meanKL = mean(kl);
  trainer.kl.update(meanKL, prompts.length);
  trainer.iteration++;
  const stats: PPOStepStats = {
    ...update, iteration: trainer.iteration, meanScore: mean(scores), meanKL,
    meanReward: mean(answerRewards.map((s, i) => s - beta * kl[i])), beta,
    meanResponseLength: mean(gen.responses.map((r) => r.length)),
    endedFraction: mean(gen.ended.map((e) => (e ? 1 : 0))),
    seconds: (performance.now() - t0) / 1000,
  };
  return { stats, prompts: gen.prompts, responses: gen.responses, scores, rewards: answerRewards };
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

// ---------------------------------------------------------------------------------------
// Watching it train

export interface PPOCharts {
  /** Add one iteration's stats to the four charts. */
  push(stats: PPOStepStats): void;
  close(): void;
  charts: LiveLineChart[];
}

/**
 * Four live charts for a notebook (nothing is drawn outside a kernel): reward (score and
 * score − β·KL), KL to the reference (and β), clip fraction, entropy.
 */
export function ppoLiveCharts(title = "PPO"): PPOCharts {
  const reward = liveLineChart({ title: `${title}: mean reward per answer`, xTitle: "iteration", height: 300 });
  const kl = liveLineChart({ title: `${title}: KL to the reference (nats per answer)`, xTitle: "iteration", height: 300 });
  const clip = liveLineChart({ title: `${title}: clip fraction`, xTitle: "iteration", height: 300 });
  const ent = liveLineChart({ title: `${title}: entropy (nats per token)`, xTitle: "iteration", height: 300 });
  return {
    charts: [reward, kl, clip, ent],
    push(st) {
      reward.push("reward-model score", st.iteration, st.meanScore);
      reward.push("score − β·KL", st.iteration, st.meanScore - st.beta * st.meanKL);
      kl.push("KL", st.iteration, st.meanKL);
      kl.push("β", st.iteration, st.beta);
      clip.push("policy clip fraction", st.iteration, st.clipFraction);
      clip.push("value clip fraction", st.iteration, st.valueClipFraction);
      ent.push("entropy", st.iteration, st.entropy);
    },
    close() {
      for (const c of [reward, kl, clip, ent]) c.close();
    },
  };
}

// ---------------------------------------------------------------------------------------
// Steps 4–9: PPO

export interface RunPPOOptions extends Omit<PPOOptions, "generation" | "padId" | "ptx"> {
  sft: GPTParams;
  config: GPTConfig;
  codec: ChatCodec;
  /** The trained reward model (score head). */
  reward: GPTParams;
  /** Training prompts (drawn in shuffled order, batchSize per iteration). */
  prompts: readonly RLHFPrompt[];
  iterations: number;
  /** Prompts per iteration. Default 16. */
  batchSize?: number;
  /**
   * Answers sampled per prompt (rollouts per iteration: batchSize × samplesPerPrompt). Default 1:
   * each answer's reward is measured from the SFT model's greedy answer to its prompt. With 2 or
   * more, from the mean score of the other answers to the same prompt (rewardModelReward's
   * `zero: "siblings"`; the course uses SAMPLES_PER_PROMPT).
   */
  samplesPerPrompt?: number;
  /**
   * PPO-ptx: every update also minimises coef × the SFT loss on batchSize (default 8) random SFT
   * examples, so that optimising the reward model does not unlearn what SFT taught (PtxSource;
   * the course uses PTX_COEF). Default none.
   */
  ptx?: { examples: readonly SFTExample[]; coef: number; batchSize?: number };
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

/**
 * Answers per prompt in the course's PPO (notebook 08, npm run ppo), each measured against its
 * siblings (rewardModelReward's `zero: "siblings"`), 8 prompts per iteration. Why: with one
 * answer per prompt measured against SFT's greedy answer, PPO learned to close its answers
 * politely and, on the way, to give wrong letters that SFT had right: the reward model scores a
 * wrong letter followed by "Glad to help!" above SFT's plain right letter, though it puts the
 * right letter first among all 26 with the same closing (96 % of held-out letter questions).
 * Siblings bring the right and the wrong letter into the same comparison.
 */
export const SAMPLES_PER_PROMPT = 4;

/**
 * The course's PPO-ptx coefficient (PtxSource). On notebook 08's SFT and reward model (mean true
 * score against SFT's, 95 % interval, 306 held-out questions × 3 answers): plain PPO −0.08
 * (−0.20 to +0.04), siblings alone +0.01, ptx 0.1 alone +0.08, both +0.18 (+0.09 to +0.28);
 * coefficients 1 and 0.3 held the policy so close to SFT that it won only 56 % and 65 %.
 */
export const PTX_COEF = 0.1;

/** Supervised batches of `batchSize` random SFT examples (the chat format, loss on the answers) for PPO-ptx. */
export function ptxSource(examples: readonly SFTExample[], codec: ChatCodec, config: GPTConfig, opts: { coef: number; batchSize?: number; seed?: number }): PtxSource {
  const items = encodeSFTData(codec.tokenizer, examples, config.blockSize).items;
  if (items.length === 0) throw new Error("ptxSource: no SFT examples to mix in");
  const rng = createRng(opts.seed ?? 0);
  const n = opts.batchSize ?? 8;
  return { coef: opts.coef, next: () => sftBatch(Array.from({ length: n }, () => items[rng.int(items.length)]), codec.padId) };
}

/**
 * Each score minus the mean of the other scores with the same key (its siblings: answers to the
 * same prompt), as RLOO (Ahmadian et al. 2024) and GRPO do; a score without siblings stays as it is.
 */
export function leaveOneOut(scores: readonly number[], keys: readonly string[]): number[] {
  const groups = new Map<string, { total: number; n: number }>();
  keys.forEach((k, i) => {
    const g = groups.get(k) ?? { total: 0, n: 0 };
    g.total += scores[i];
    g.n++;
    groups.set(k, g);
  });
  return scores.map((s, i) => {
    const g = groups.get(keys[i])!;
    return g.n < 2 ? s : s - (g.total - s) / (g.n - 1);
  });
}

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
  /**
   * "siblings": the zero point of an answer is the mean score of the other answers to the same
   * prompt in the batch (leaveOneOut) instead of a baseline model's greedy answer.
   */
  zero?: "siblings";
}

/** The reward model's scores of (prompt, response) pairs, each clipped to ±clip: what PPO sees of them. */
export function clippedScores(reward: GPTParams, config: GPTConfig, codec: ChatCodec, prompts: number[][], responses: number[][], clip = SCORE_CLIP): number[] {
  return scoreResponses(reward, config, prompts, responses, 32, codec.padId).map((s) => Math.max(-clip, Math.min(clip, s)));
}

/**
 * Step 8 as a RewardFn: the reward model's score clipped to ±scoreClip, minus
 * `missingEndPenalty` for an answer that did not end (the `scores`), and from a zero point per
 * prompt (the `rewards`): with `zero: "siblings"` the mean score of the other answers to the
 * same prompt, with `baseline` the clipped score of the baseline model's greedy answer to it.
 *
 * Why a per-prompt zero point: Bradley–Terry only ever compares answers to the SAME prompt, so a
 * reward model's scores are defined up to a constant per prompt, and that constant is noise. Here
 * it is large: every answer to a fact question the model does not know scores around −8, every
 * answer to a letter question around 0. Raw, PPO would read "all answers to fact questions are
 * bad", push each sampled one down, and spread their probability into junk; relative to SFT's own
 * answer, a better-than-usual answer to a hard question is good news. Subtracting a function of
 * the prompt alone does not change which policy is best, only how noisy the updates are. Siblings
 * make a sharper zero than SFT's answer: they are the current policy's, so an answer is rewarded
 * for beating what the policy does now, and answers that differ only in what the reward model
 * judges best (the right letter against a wrong one, both politely closed) meet in every batch.
 */
export function rewardModelReward(
  reward: GPTParams, config: GPTConfig, codec: ChatCodec, opts: RewardModelRewardOptions = {},
): (prompts: number[][], responses: number[][], ended: boolean[]) => Rewards {
  if (opts.zero === "siblings" && opts.baseline !== undefined) throw new Error('rewardModelReward: give a baseline or zero: "siblings", not both');
  const penalty = opts.missingEndPenalty ?? MISSING_END_PENALTY, clip = opts.scoreClip ?? SCORE_CLIP;
  const clipped = (prompts: number[][], responses: number[][]) => clippedScores(reward, config, codec, prompts, responses, clip);
  const zero = new Map<string, number>(); // prompt ids → the baseline's clipped score (the baseline is frozen)
  return (prompts, responses, ended) => {
    const scores = clipped(prompts, responses).map((s, i) => s - (ended[i] ? 0 : penalty));
    if (opts.zero === "siblings") return { rewards: leaveOneOut(scores, prompts.map((p) => p.join(","))), scores };
    if (opts.baseline === undefined) return { rewards: scores, scores };
    const missing = [...new Set(prompts.map((p) => p.join(",")))].filter((k) => !zero.has(k));
    if (missing.length > 0) {
      const ps = missing.map((k) => k.split(",").map(Number));
      const g = generateBatch(opts.baseline, config, ps, { maxNewTokens: opts.maxNewTokens ?? 48, stopId: codec.endId, padId: codec.padId, temperature: 0 });
      const base = clipped(ps, g.responses.map((r) => (r.length > 0 ? r : [codec.endId])));
      missing.forEach((k, i) => zero.set(k, base[i] - (g.ended[i] ? 0 : penalty)));
    }
    return { rewards: scores.map((s, i) => s - zero.get(prompts[i].join(","))!), scores };
  };
}

/** The PPO loop: each iteration samples new prompts, rolls out, scores with the reward model, updates. */
export async function runPPO(opts: RunPPOOptions): Promise<RunPPOResult> {
  const t0 = performance.now();
  const { config, codec } = opts;
  const k = opts.samplesPerPrompt ?? 1;
  const ptx = opts.ptx !== undefined && opts.ptx.coef > 0 ? ptxSource(opts.ptx.examples, codec, config, { ...opts.ptx, seed: (opts.seed ?? 0) + 11 }) : undefined;
  const trainer = createPPO(opts.sft, config, {
    ...opts, ptx, generation: { maxNewTokens: opts.maxNewTokens, stopId: codec.endId, temperature: opts.temperature ?? 1 }, padId: codec.padId,
  });
  const rewardFn = rewardModelReward(opts.reward, config, codec, {
    missingEndPenalty: opts.missingEndPenalty, scoreClip: opts.scoreClip, maxNewTokens: opts.maxNewTokens,
    ...(k > 1 ? { zero: "siblings" as const } : { baseline: trainer.ref }),
  });
  const charts = opts.chart ? ppoLiveCharts(opts.chart) : undefined;
  const rng = createRng((opts.seed ?? 0) + 7);
  const bs = Math.min(opts.batchSize ?? 16, opts.prompts.length);
  checkTrainingStepFits(config, bs * SAMPLES_PER_PROMPT, 1, "ppo", `batch size ${bs} (prompts, ${SAMPLES_PER_PROMPT} answers each)`, stepMemoryLimitBytes());
  let order: number[] = [];
  const history: PPOStepStats[] = [];
  const trueScores: number[] = [];
  try {
    for (let it = 0; it < opts.iterations; it++) {
      if (order.length < bs) order = order.concat(rng.shuffle(opts.prompts.map((_, i) => i)));
      const batch = order.splice(0, bs).flatMap((i) => Array.from({ length: k }, () => opts.prompts[i]));
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
