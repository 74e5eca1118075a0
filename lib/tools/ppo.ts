#!/usr/bin/env node
/**
 * RLHF with PPO from the command line (the same runPPO / evaluatePolicy as notebook 08).
 *
 *   node lib/dist/tools/ppo.js [--checkpoint build/artifacts/sft] [--reward build/artifacts/reward] [--out DIR] [--json]
 *
 * Policy and value head start from the SFT model, a frozen copy is the reference of the KL
 * penalty; each iteration samples new training questions, rolls out answers, scores them
 * with the reward model and updates the policy with PPO. Then the honest evaluation on
 * held-out questions (the data's test.jsonl): win-rate against the SFT model by the
 * simulated labeller's own rule, reward-model scores, KL to SFT. --json: the last stdout line.
 */
import { initBackend } from "../backend";
import { projectPath } from "../paths";
import { CriticMode, disposePPO } from "../ppo";
import { disposeParams, loadPretrained } from "../pretrain";
import { EVAL_SAMPLES, loadChatModel, PolicyEval, runPPO, savePolicy } from "../rlhf";
import { isSmoke } from "../smoke";
import { formatSeconds } from "../trainer";
import { ArgReader, heldOutEvaluation, loadPrompts, pct, rel, rlhfDefaults, UsageError } from "./rlhfCli";

const D = rlhfDefaults();
const USAGE = `Usage: ppo [--checkpoint DIR] [--reward DIR] [--data FILE] [--out DIR] [--iters N] [--batch-size N]
           [--beta B] [--adaptive-kl TARGET] [--lr LR] [--epochs N] [--minibatch-size N] [--max-new-tokens N]
           [--missing-end-penalty P] [--score-clip C] [--critic detached|shared] [--eval-prompts N] [--eval-samples K] [--seed S] [--json]
  Optimise the SFT policy against the reward model with PPO (lib/ppo.ts, lib/rlhf.ts). Defaults: --checkpoint ${rel(D.sft)},
  --reward ${rel(D.reward)} (npm run reward), --out ${rel(D.ppo)}, --data ${rel(D.data)} (training questions; held-out ones from test.jsonl beside it),
  80 iterations, β = 0.5 fixed (--adaptive-kl T: Ziegler's controller aiming at T nats per answer),
  2 epochs of minibatches of 8 per batch of 16 rollouts, AdamW lr 5e-5; rewards from the SFT model's greedy answer's
  score as zero, clipped to ±10, minus 2 for an answer that did not end (--score-clip, --missing-end-penalty).
  The value loss trains the value head only (--critic detached; shared: the transformer too, lib/ppo.ts says why not).
  Evaluation: every held-out question answered ${EVAL_SAMPLES} times by each model (--eval-samples K); intervals count questions.
  COURSE_SMOKE=1: two iterations of 4 rollouts (seconds). --json: the last line of stdout is
  {winRate, winRateInterval, wins, ties, losses, meanKL, rewardScore, sftRewardScore, trueScore, sftTrueScore, seconds, checkpoint, ...}.`;

export interface PPOArgs {
  checkpoint: string;
  reward: string;
  data: string;
  out: string;
  iters?: number;
  batchSize?: number;
  beta: number;
  adaptiveKL?: number;
  lr?: number;
  epochs?: number;
  minibatchSize?: number;
  maxNewTokens?: number;
  missingEndPenalty?: number;
  scoreClip?: number;
  evalPrompts?: number;
  evalSamples?: number;
  critic?: CriticMode;
  seed: number;
  json: boolean;
  help: boolean;
}

export function parsePPOArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): PPOArgs {
  const d = rlhfDefaults(env);
  const args: PPOArgs = { checkpoint: d.sft, reward: d.reward, data: d.data, out: d.ppo, beta: 0.5, seed: 0, json: false, help: false };
  const r = new ArgReader(argv);
  for (let a = r.next(); a !== undefined; a = r.next()) {
    switch (a) {
      case "--checkpoint": args.checkpoint = r.value(a); break;
      case "--reward": args.reward = r.value(a); break;
      case "--data": args.data = r.value(a); break;
      case "--out": args.out = r.value(a); break;
      case "--iters": args.iters = r.int(a, 1); break;
      case "--batch-size": args.batchSize = r.int(a, 1); break;
      case "--beta": args.beta = r.num(a, 0); break;
      case "--adaptive-kl": args.adaptiveKL = r.num(a, 0, true); break;
      case "--lr": args.lr = r.num(a, 0, true); break;
      case "--epochs": args.epochs = r.int(a, 1); break;
      case "--missing-end-penalty": args.missingEndPenalty = r.num(a, 0); break;
      case "--score-clip": args.scoreClip = r.num(a, 0, true); break;
      case "--minibatch-size": args.minibatchSize = r.int(a, 1); break;
      case "--max-new-tokens": args.maxNewTokens = r.int(a, 1); break;
      case "--eval-prompts": args.evalPrompts = r.int(a, 1); break;
      case "--eval-samples": args.evalSamples = r.int(a, 1); break;
      case "--critic": {
        const v = r.value(a);
        if (v !== "detached" && v !== "shared") throw new UsageError(`--critic must be detached or shared, got "${v}"`);
        args.critic = v;
        break;
      }
      case "--seed": args.seed = r.int(a, 0); break;
      case "--json": args.json = true; break;
      case "-h": case "--help": args.help = true; break;
      default: throw new UsageError(a.startsWith("-") ? `unknown option ${a}` : `unexpected argument "${a}"`);
    }
  }
  return args;
}

/** The evaluation fields every policy CLI prints (ppo, dpo). */
export function evalSummary(ev: PolicyEval) {
  return {
    winRate: ev.winRate.winRate, winRateInterval: ev.winRate.interval, wins: ev.winRate.wins, ties: ev.winRate.ties, losses: ev.winRate.losses, evalAnswers: ev.winRate.n,
    meanKL: ev.meanKL, rewardScore: ev.rewardScore.policy, sftRewardScore: ev.rewardScore.baseline,
    trueScore: ev.trueScore.policy, sftTrueScore: ev.trueScore.baseline, trueScoreDiffInterval: [ev.trueScoreDiff.lo, ev.trueScoreDiff.hi],
    evalQuestions: ev.winRate.n / ev.samplesPerQuestion, evalSamples: ev.samplesPerQuestion, endedFraction: ev.endedFraction, meanLength: ev.meanLength,
  };
}

export async function main(
  argv: readonly string[],
  out: (line: string) => void = (l) => process.stdout.write(l + "\n"),
  err: (line: string) => void = (l) => process.stderr.write(l + "\n"),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let args: PPOArgs;
  try {
    args = parsePPOArgs(argv, env);
  } catch (e) {
    err(`ppo: ${(e as Error).message} (see --help)`);
    return 2;
  }
  if (args.help) {
    out(USAGE);
    return 0;
  }
  const smoke = isSmoke(env);
  const held: Array<Record<string, import("@tensorflow/tfjs").Tensor>> = [];
  try {
    const t0 = performance.now();
    const info = await initBackend({ quiet: true });
    err(info.line);
    let sft, rm;
    try {
      sft = loadChatModel(args.checkpoint);
      held.push(sft.params);
    } catch (e) {
      err(`ppo: cannot load the SFT checkpoint: ${(e as Error).message}`);
      return 2;
    }
    try {
      rm = loadPretrained(args.reward);
      held.push(rm.params);
      if (!("score.weight" in rm.params)) throw new Error(`${args.reward}: no score head (score.weight); train it with npm run reward`);
      if (rm.config.vocabSize !== sft.config.vocabSize) throw new Error(`${args.reward}: vocabulary ${rm.config.vocabSize} does not match the SFT model's ${sft.config.vocabSize}`);
    } catch (e) {
      err(`ppo: cannot load the reward model: ${(e as Error).message}`);
      return 2;
    }
    const { config, codec } = sft;
    const prompts = loadPrompts(args.data);
    const iterations = args.iters ?? (smoke ? 2 : 80);
    const maxNewTokens = args.maxNewTokens ?? (smoke ? 6 : 48);
    const batchSize = args.batchSize ?? (smoke ? 4 : 16);
    const r = await runPPO({
      sft: sft.params, config, codec, reward: rm.params, prompts: prompts.train, iterations,
      batchSize, maxNewTokens, klCoef: args.beta,
      // Horizon in answers: ten batches, so β can move within a run of a few dozen iterations
      // (Ziegler's 10,000 suits runs of 100,000s of answers; here β would hardly change).
      adaptiveKL: args.adaptiveKL !== undefined ? { target: args.adaptiveKL, horizon: 10 * batchSize } : undefined,
      optimizer: { lr: args.lr ?? 5e-5 }, epochs: args.epochs ?? (smoke ? 1 : 2),
      minibatchSize: args.minibatchSize ?? (smoke ? 2 : 8), seed: args.seed, log: (l) => err(l), missingEndPenalty: args.missingEndPenalty, scoreClip: args.scoreClip,
      critic: args.critic,
    });
    const trainSeconds = r.seconds;
    savePolicy(args.out, r.trainer.policy, config, codec.tokenizer, iterations, { ppo: { iterations, beta: args.beta, adaptiveKL: args.adaptiveKL ?? null, critic: args.critic ?? "detached", seed: args.seed } });
    const ev = heldOutEvaluation(args, prompts, smoke, err, { policy: r.trainer.policy, baseline: sft.params, config, codec, reward: rm.params, maxNewTokens });
    disposePPO(r.trainer);
    const last = r.history[r.history.length - 1];
    const result = {
      ...evalSummary(ev), iterations, finalBeta: last.beta, trainMeanScore: last.meanScore, trainMeanKL: last.meanKL,
      seconds: (performance.now() - t0) / 1000, trainSeconds, checkpoint: projectPath(args.out), backend: info.name,
    };
    if (args.json) out(JSON.stringify(result));
    else {
      out(`PPO vs SFT on ${ev.winRate.n / ev.samplesPerQuestion} held-out questions (${ev.winRate.n} answers), by the labeller's true rule: win-rate ${pct(ev.winRate.winRate)} (95% interval ${pct(ev.winRate.interval[0])}–${pct(ev.winRate.interval[1])}; ${ev.winRate.wins} wins, ${ev.winRate.ties} ties, ${ev.winRate.losses} losses)`);
      out(`true score ${ev.trueScore.policy.toFixed(2)} (SFT ${ev.trueScore.baseline.toFixed(2)}), reward-model score ${ev.rewardScore.policy.toFixed(2)} (SFT ${ev.rewardScore.baseline.toFixed(2)}), KL to SFT ${ev.meanKL.toFixed(2)} nats per answer`);
      out(`${iterations} iterations in ${formatSeconds(trainSeconds)}; checkpoint ${projectPath(args.out)}`);
    }
    return 0;
  } catch (e) {
    err(`ppo: ${String((e as Error).message ?? e).split("\n")[0]}`);
    return 1;
  } finally {
    for (const p of held) disposeParams(p);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
