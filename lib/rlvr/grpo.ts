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
import { stepMemoryLimitBytes } from "../core/backend";
import { AdamW, clipByGlobalNorm, type NamedTensors } from "../core/optim";
import { createRng, type Rng } from "../core/random";
import { checkTrainingStepFits, copyParams, type GPTConfig, type GPTParams, tokenLogProbs } from "../gpt/gpt";
import { generateBatch, responseBatch, rowsToTensor } from "../gpt/rollout";
import { stopGradient } from "../rlhf/ppo";
import { LiveLineChart, liveLineChart } from "../show/plot";
import { disposeParams } from "../pretrain/pretrain";
import { type ProgressMode, progressMode } from "../pretrain/trainer";
import { SingleBar } from "cli-progress";
import type { ChatCodec } from "../rlhf/chat";
import { meanAnswerKL } from "../rlhf/evaluate";
import { type MeanInterval, questionMeanInterval } from "../rlhf/labeller";
import type { VerifiablePrompt } from "./verifiable";

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

export interface GRPOHyper {
  /** Answers sampled per prompt (G). */
  groupSize: number;
  /** Gradient steps on each batch of answers (μ). */
  epochs: number;
  clipEps: number;
  /** KL coefficient to the reference; 0 drops the term from the loss (the KL is still measured when a reference is given). */
  beta: number;
  /** Divide advantages by the group's standard deviation (GRPO) or not (Dr. GRPO). */
  scaleAdvantages: boolean;
  temperature: number;
  maxNewTokens: number;
  gradClip: number;
}

/**
 * The course's GRPO settings. β = 0 (no KL term), as DAPO and Dr. GRPO train: with a checker
 * there is no reward model to exploit by drifting away (the KL is still measured and charted).
 * One update per batch of answers (μ = 1, as DeepSeekMath trained and TRL's default): the ratio
 * is then 1 where the gradient is taken and the clip never acts; on the course's fact task a
 * second epoch bought less than the extra iterations the same time buys (measured: 23.6 % held-out
 * pass@1 with one epoch against 21.5 % with two, 270–281 s each, lr 3e-4). 8 answers per prompt.
 */
export const DEFAULT_GRPO_HYPER: Readonly<GRPOHyper> = {
  groupSize: 8, epochs: 1, clipEps: 0.2, beta: 0, scaleAdvantages: true, temperature: 1, maxNewTokens: 16, gradClip: 1,
};

export interface GRPOIterationStats {
  /** Mean reward of the sampled answers (the fraction the checker accepted). */
  reward: number;
  /** Groups with at least one right answer, and groups with both right and wrong ones (the only ones that teach). */
  solvedGroups: number;
  mixedGroups: number;
  /**
   * Mean k3 KL to the reference per answer token (0 without a reference), from the last epoch's
   * forward pass (before its step), on the answers of the update (without a KL term: the answers
   * of the groups that teach).
   */
  kl: number;
  clipFraction: number;
  /** Mean answer length in tokens (the end token included). */
  length: number;
}

export interface GRPOIterationResult {
  stats: GRPOIterationStats;
  /** The sampled answers, group by group (G per prompt), and the checker's rewards for them. */
  answers: string[];
  rewards: number[];
}

/**
 * One GRPO iteration: G answers per prompt sampled from the policy, the checker's rewards,
 * group-relative advantages, then `epochs` clipped updates (AdamW) on those answers. `ref`
 * (the frozen SFT model), when given, is where the KL is measured from, and penalised with β > 0.
 *
 * Without a KL term, an answer whose advantage is 0 (every answer of a group all right or all
 * wrong) contributes nothing to the gradient, so only the groups that teach enter the update,
 * and the loss is their answers' mean (as DAPO's dynamic sampling keeps only such groups): the
 * same direction for about half the backward passes.
 * The KL is then measured on those answers. The old log-probabilities are the first epoch's own
 * (before any step the policy is the old policy), which saves a forward pass.
 */
export function grpoIteration(
  policy: GPTParams, ref: GPTParams | undefined, optimizer: AdamW, config: GPTConfig, codec: ChatCodec,
  prompts: readonly VerifiablePrompt[], hyper: GRPOHyper, rng: Rng,
): GRPOIterationResult {
  const G = hyper.groupSize;
  const ids = prompts.flatMap((p) => Array.from({ length: G }, () => codec.encodePrompt(p.question)));
  const gen = generateBatch(policy, config, ids, {
    maxNewTokens: hyper.maxNewTokens, temperature: hyper.temperature, stopId: codec.endId, padId: codec.padId, rng, streams: "row",
  });
  const answers = answerTexts(codec, gen.responses);
  const rewards: number[] = answers.map((a, i) => (prompts[Math.floor(i / G)].check(a) ? 1 : 0));
  const advantages = groupAdvantages(rewards, G, { scale: hyper.scaleAdvantages });
  const penalised = ref !== undefined && hyper.beta > 0;
  const rows = advantages.map((_, i) => i).filter((i) => penalised || advantages[i] !== 0);
  const groups = Array.from({ length: prompts.length }, (_, g) => rewards.slice(g * G, (g + 1) * G));
  const stats: GRPOIterationStats = {
    reward: rewards.reduce((a, b) => a + b, 0) / rewards.length,
    solvedGroups: groups.filter((g) => g.some((r) => r === 1)).length / groups.length,
    mixedGroups: groups.filter((g) => g.some((r) => r === 1) && g.some((r) => r === 0)).length / groups.length,
    kl: 0, clipFraction: 0,
    length: gen.responses.reduce((a, r) => a + r.length, 0) / gen.responses.length,
  };
  if (rows.length === 0) return { stats, answers, rewards };
  const batch = responseBatch(rows.map((i) => gen.prompts[i]), rows.map((i) => gen.responses[i]), config.blockSize, codec.padId);
  const names = Object.keys(policy).filter((k) => policy[k].trainable);
  const nameOf = new Map(names.map((k) => [policy[k].name, k]));
  const inputs = rowsToTensor(batch.inputs, "int32"), targets = rowsToTensor(batch.targets, "int32");
  const mask = rowsToTensor(batch.mask, "float32");
  const adv = tf.tensor1d(rows.map((i) => advantages[i]));
  const refLogp = ref ? tf.tidy(() => tokenLogProbs(ref, config, inputs, targets)) : undefined;
  let old: tf.Tensor2D | undefined;
  try {
    for (let e = 0; e < hyper.epochs; e++) {
      const kept: tf.Tensor[] = [];
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => {
          const logp = tokenLogProbs(policy, config, inputs, targets);
          if (old === undefined) old = tf.keep(stopGradient(logp));
          const r = grpoLoss(logp, old, adv, mask, { clipEps: hyper.clipEps, beta: hyper.beta, refLogp });
          kept.push(tf.keep(r.kl), tf.keep(r.clipFraction));
          return r.loss;
        }, names.map((k) => policy[k]));
        const named: NamedTensors = {};
        for (const [vn, g] of Object.entries(grads)) named[nameOf.get(vn) as string] = g;
        const { grads: clipped, norm } = clipByGlobalNorm(named, hyper.gradClip);
        if (Number.isFinite(norm)) optimizer.step(clipped);
      });
      [stats.kl, stats.clipFraction] = kept.map((t) => t.dataSync()[0]);
      tf.dispose(kept);
    }
  } finally {
    tf.dispose([inputs, targets, mask, adv, ...(old ? [old] : []), ...(refLogp ? [refLogp] : [])]);
  }
  return { stats, answers, rewards };
}

// ---------------------------------------------------------------------------------------
// The whole run, as notebook 11 and npm run grpo train

export interface GRPOStepStats extends GRPOIterationStats {
  iteration: number;
  /** Seconds since the run started. */
  seconds: number;
}

export interface GRPOCharts {
  push(stats: GRPOStepStats): void;
  close(): void;
  charts: LiveLineChart[];
}

/** Iterations in the running mean of the reward chart. */
export const GRPO_CHART_WINDOW = 20;

/**
 * Three live charts for a notebook (nothing is drawn outside a kernel): reward and the groups
 * that teach, KL to the reference, answer length.
 */
export function grpoLiveCharts(title = "GRPO"): GRPOCharts {
  const reward = liveLineChart({ title: `${title}: reward and groups`, xTitle: "iteration", height: 300 });
  const kl = liveLineChart({ title: `${title}: KL to the SFT model (nats per token)`, xTitle: "iteration", height: 260 });
  const length = liveLineChart({ title: `${title}: answer length (tokens)`, xTitle: "iteration", height: 260 });
  const recent: number[] = []; // one iteration's 64 answers are noisy: the trend shows in a running mean
  return {
    charts: [reward, kl, length],
    push(st) {
      recent.push(st.reward);
      if (recent.length > GRPO_CHART_WINDOW) recent.shift();
      reward.push("reward (fraction right)", st.iteration, st.reward);
      reward.push(`reward, mean of the last ${GRPO_CHART_WINDOW} iterations`, st.iteration, recent.reduce((a, b) => a + b, 0) / recent.length);
      reward.push("groups with a right answer", st.iteration, st.solvedGroups);
      reward.push("groups that teach", st.iteration, st.mixedGroups);
      kl.push("KL", st.iteration, st.kl);
      length.push("mean answer length", st.iteration, st.length);
    },
    close() {
      for (const c of [reward, kl, length]) c.close();
    },
  };
}

/**
 * The course's learning rate for GRPO (AdamW, no weight decay): higher than PPO's, since each
 * answer carries one bit of reward and many groups teach nothing. Measured on the fact task
 * (one epoch, 270 s): lr 3e-4 reached 23.6 % held-out pass@1 and pass@16 41.7 %, lr 5e-4 25.8 %
 * and 36.7 %: sharper, and a little narrower.
 */
export const GRPO_LR = 5e-4;

/** Prompts per GRPO iteration (each answered groupSize times). */
export const GRPO_PROMPTS_PER_ITERATION = 8;

/** Iterations of the course's GRPO run (notebook 11, npm run grpo). */
export const GRPO_ITERATIONS = 500;

/** Answers sampled per held-out question in the evaluation: pass@k for k up to 16. */
export const GRPO_EVAL_SAMPLES = 16;

export interface RunGRPOOptions extends Partial<GRPOHyper> {
  /** The model to start from and to measure the KL from (kept frozen; the policy is a copy). */
  sft: GPTParams;
  config: GPTConfig;
  codec: ChatCodec;
  /** Training prompts, drawn in shuffled order. */
  prompts: readonly VerifiablePrompt[];
  iterations: number;
  /** Default GRPO_PROMPTS_PER_ITERATION. */
  promptsPerIteration?: number;
  /** Default GRPO_LR. */
  lr?: number;
  seed?: number;
  /** Live charts in a notebook (title), or false. Default false. */
  chart?: string | false;
  /** Terminal output: "bar" (with ETA, on stderr), "lines" (one line per iteration to `log`), "auto" (a bar on a terminal). Default "lines". */
  progress?: ProgressMode;
  log?: (line: string) => void;
  onIteration?: (stats: GRPOStepStats, sample: { question: string; answer: string; right: boolean }) => void;
}

export interface RunGRPOResult {
  policy: GPTParams;
  history: GRPOStepStats[];
  seconds: number;
}

/** The GRPO loop: each iteration draws prompts, samples a group of answers to each, checks them, updates. */
export async function runGRPO(opts: RunGRPOOptions): Promise<RunGRPOResult> {
  const t0 = performance.now();
  const { config, codec } = opts;
  const hyper: GRPOHyper = { ...DEFAULT_GRPO_HYPER };
  for (const k of Object.keys(DEFAULT_GRPO_HYPER) as (keyof GRPOHyper)[]) if (opts[k] !== undefined) (hyper as unknown as Record<string, unknown>)[k] = opts[k];
  if (opts.prompts.length === 0) throw new Error("runGRPO: no training prompts");
  const P = Math.min(opts.promptsPerIteration ?? GRPO_PROMPTS_PER_ITERATION, opts.prompts.length);
  checkTrainingStepFits(config, P * hyper.groupSize, 1, "grpo", `${P} prompts × group size ${hyper.groupSize}`, stepMemoryLimitBytes());
  const policy = copyParams(opts.sft);
  const optimizer = new AdamW(policy, { lr: opts.lr ?? GRPO_LR, weightDecay: 0, beta1: 0.9, beta2: 0.99 });
  const rng = createRng((opts.seed ?? 0) + 13);
  const charts = opts.chart ? grpoLiveCharts(opts.chart) : undefined;
  const history: GRPOStepStats[] = [];
  let order: number[] = [];
  const bar = progressMode(opts.progress ?? "lines") === "bar"
    ? new SingleBar({ format: "grpo |{bar}| {value}/{total} | reward {reward} | right groups {solved} | KL {kl} | ETA {eta_formatted}", barsize: 24, hideCursor: true, etaBuffer: 20 })
    : undefined;
  bar?.start(opts.iterations, 0, { reward: "-", solved: "-", kl: "-" });
  try {
    for (let it = 1; it <= opts.iterations; it++) {
      if (order.length < P) order = order.concat(rng.shuffle(opts.prompts.map((_, i) => i)));
      const batch = order.splice(0, P).map((i) => opts.prompts[i]);
      const r = grpoIteration(policy, opts.sft, optimizer, config, codec, batch, hyper, rng);
      const stats = { ...r.stats, iteration: it, seconds: (performance.now() - t0) / 1000 };
      history.push(stats);
      charts?.push(stats);
      const sample = { question: batch[0].question, answer: r.answers[0], right: r.rewards[0] === 1 };
      bar?.update(it, { reward: stats.reward.toFixed(3), solved: stats.solvedGroups.toFixed(2), kl: stats.kl.toFixed(4) });
      if (!bar) opts.log?.(`iteration ${it}/${opts.iterations}: reward ${stats.reward.toFixed(3)}, groups with a right answer ${stats.solvedGroups.toFixed(2)} (mixed ${stats.mixedGroups.toFixed(2)}), KL ${stats.kl.toFixed(4)}, length ${stats.length.toFixed(1)}, ${stats.seconds.toFixed(0)} s | ${JSON.stringify(sample.question)} → ${JSON.stringify(sample.answer)} ${sample.right ? "✓" : "✗"}`);
      opts.onIteration?.(stats, sample);
      await new Promise((res) => setImmediate(res)); // let the notebook draw the charts
    }
  } catch (e) {
    disposeParams(policy);
    throw e;
  } finally {
    bar?.stop();
    optimizer.dispose();
    charts?.close();
  }
  return { policy, history, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------
// Evaluation: pass@k on held-out prompts

export interface VerifiableEval {
  /** Answers sampled per prompt (n). */
  samples: number;
  /** Right answers per prompt, of n. */
  correct: number[];
  /** pass@1 (mean over prompts of c/n) with its 95 % interval over prompts. */
  pass1: MeanInterval;
  /** passAt[k − 1] = pass@k for k = 1 … n (the unbiased estimator, averaged over prompts). */
  passAt: number[];
  /** The sampled answers, prompt by prompt (n each). */
  answers: string[][];
  /** KL from `reference` in nats per answer, on these answers (meanAnswerKL); NaN without a reference. */
  kl: number;
}

/**
 * pass@1 with its interval and pass@k for every k ≤ n on `prompts`, from n sampled answers each
 * (temperature 1 unless given: the policy as it samples, not its single most likely answer);
 * with `reference`, the KL travelled from it.
 */
export function evaluateVerifiable(
  params: GPTParams, config: GPTConfig, codec: ChatCodec, prompts: readonly VerifiablePrompt[],
  opts: { samples: number; temperature?: number; maxNewTokens?: number; seed?: number; reference?: GPTParams },
): VerifiableEval {
  const n = opts.samples;
  if (!Number.isInteger(n) || n < 1) throw new Error(`evaluateVerifiable: samples must be an integer >= 1, got ${n}`);
  const ids = prompts.flatMap((p) => Array.from({ length: n }, () => codec.encodePrompt(p.question)));
  const gen = generateBatch(params, config, ids, {
    maxNewTokens: opts.maxNewTokens ?? DEFAULT_GRPO_HYPER.maxNewTokens, temperature: opts.temperature ?? 1,
    stopId: codec.endId, padId: codec.padId, seed: opts.seed ?? 0, streams: "row",
  });
  const flat = answerTexts(codec, gen.responses);
  const answers = prompts.map((_, i) => flat.slice(i * n, (i + 1) * n));
  const correct = prompts.map((p, i) => answers[i].filter((a) => p.check(a)).length);
  const passAt = Array.from({ length: n }, (_, k) => correct.reduce((a, c) => a + passAtK(n, c, k + 1), 0) / Math.max(1, correct.length));
  const kl = opts.reference ? meanAnswerKL(params, opts.reference, config, codec, gen.prompts, gen.responses) : NaN;
  return { samples: n, correct, pass1: questionMeanInterval(correct.map((c) => c / n)), passAt, answers, kl };
}
