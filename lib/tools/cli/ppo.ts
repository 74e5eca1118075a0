#!/usr/bin/env node
/**
 * RLHF with PPO from the command line (the same runPPO / evaluatePolicy as notebook 08).
 *
 *   node lib/dist/tools/cli/ppo.js [--checkpoint build/artifacts/sft] [--reward build/artifacts/reward] [--out DIR] [--json]
 *
 * Policy and value head start from the SFT model, a frozen copy is the reference of the KL
 * penalty; each iteration samples new training questions, rolls out answers, scores them
 * with the reward model and updates the policy with PPO. Then the honest evaluation on
 * held-out questions (the data's test.jsonl): win-rate against the SFT model by the
 * simulated labeller's own rule, reward-model scores, KL to SFT. --json: the last stdout line.
 */
import { projectPath } from "../../core/paths";
import { loadPretrained } from "../../pretrain/pretrain";
import { type CriticMode, disposePPO, MISSING_END_PENALTY, PTX_COEF, runPPO, SAMPLES_PER_PROMPT, SCORE_CLIP } from "../../rlhf/ppo";
import { loadSFTData } from "../../finetune/sft";
import { policyEvalSummary } from "../../rlhf/evaluate";
import { savePolicy } from "../../rlhf/chat";
import { formatSeconds } from "../../pretrain/trainer";
import { Command, Env, loadOrFail, optionParser, runAsScript, commandMain, smokeOr, outApartFrom } from "./cli";
import { disposingAfter, heldOutEvaluation, loadSFTPolicy, loadPrompts, pct, policyEvalOptions, RLHF_OPTIONS, rlhfDefaults } from "./rlhfCli";

export interface PPOArgs {
  checkpoint: string;
  reward: string;
  data: string;
  out: string;
  iters: number;
  batchSize: number;
  samplesPerPrompt: number;
  ptx: number;
  beta: number;
  adaptiveKL?: number;
  lr: number;
  epochs: number;
  minibatchSize: number;
  maxNewTokens: number;
  missingEndPenalty: number;
  scoreClip: number;
  evalPrompts?: number;
  evalSamples: number;
  critic?: CriticMode;
  seed: number;
  json: boolean;
  help: boolean;
}

const PPO: Command<PPOArgs> = {
  name: "ppo",
  summary: `Optimise the SFT policy against the reward model with PPO (lib/rlhf/ppo.ts): β fixed (--adaptive-kl T:
Ziegler's controller aiming at T nats per answer), AdamW; --samples-per-prompt answers to each prompt, each rewarded with
its reward-model score (clipped to ±--score-clip, minus --missing-end-penalty for an answer that did not end) minus the
mean of its siblings'; --ptx mixes the SFT loss into every update (PPO-ptx).
Then the held-out evaluation: win-rate against SFT by the labeller's true rule, reward-model scores, KL to SFT.`,
  options: {
    checkpoint: RLHF_OPTIONS.checkpoint,
    reward: { kind: "string", value: "DIR", default: (env: Env) => rlhfDefaults(env).reward, help: "the reward model (npm run reward)" },
    data: RLHF_OPTIONS.data,
    out: { kind: "string", value: "DIR", default: (env: Env) => rlhfDefaults(env).ppo, help: "where the policy is saved" },
    iters: { kind: "integer", value: "N", min: 1, default: smokeOr(2, 80), help: "PPO iterations" },
    "batch-size": { kind: "integer", value: "N", min: 1, default: smokeOr(2, 8), help: "prompts per iteration" },
    "samples-per-prompt": { kind: "integer", value: "N", min: 1, default: smokeOr(2, SAMPLES_PER_PROMPT), help: "answers per prompt, each rewarded from the mean score of its siblings (1: from the SFT model's greedy answer)" },
    ptx: { kind: "number", value: "C", min: 0, default: PTX_COEF, help: "PPO-ptx: C × the SFT loss on training examples joins every update (0: plain PPO)" },
    beta: { kind: "number", value: "B", min: 0, default: 0.5, help: "KL penalty coefficient β" },
    "adaptive-kl": { kind: "number", key: "adaptiveKL", value: "TARGET", min: 0, minExclusive: true, help: "adapt β towards TARGET nats of KL per answer" },
    lr: { kind: "number", value: "LR", min: 0, minExclusive: true, default: 5e-5, help: "AdamW learning rate" },
    epochs: { kind: "integer", value: "N", min: 1, default: smokeOr(1, 2), help: "passes over each batch" },
    "minibatch-size": { kind: "integer", value: "N", min: 1, default: smokeOr(2, 8), help: "rollouts per update" },
    "missing-end-penalty": { kind: "number", value: "P", min: 0, default: MISSING_END_PENALTY, help: "subtracted from an answer that did not end" },
    "score-clip": { kind: "number", value: "C", min: 0, minExclusive: true, default: SCORE_CLIP, help: "reward-model scores clipped to ±C" },
    critic: { kind: "choice", choices: ["detached", "shared"] satisfies CriticMode[], defaultText: "detached", help: "what the value loss trains: the value head only, or the transformer too (lib/rlhf/ppo.ts says why not)" },
    ...policyEvalOptions(""),
  },
  notes: () => "COURSE_SMOKE=1: two iterations of 2 prompts × 2 answers (seconds).",
  validate: outApartFrom("checkpoint", "reward"),
  backend: "announce",
  run: (args, { err, smoke, seconds, backend }) => disposingAfter(async (held) => {
    const sft = loadSFTPolicy(args.checkpoint, held);
    const rm = loadOrFail("the reward model", () => {
      const m = loadPretrained(args.reward);
      held.push(m.params);
      if (!("score.weight" in m.params)) throw new Error(`${args.reward}: no score head (score.weight); train it with npm run reward`);
      if (m.config.vocabSize !== sft.config.vocabSize) throw new Error(`${args.reward}: vocabulary ${m.config.vocabSize} does not match the SFT model's ${sft.config.vocabSize}`);
      return m;
    });
    const { config, codec } = sft;
    const prompts = loadPrompts(args.data);
    const { iters: iterations, maxNewTokens, batchSize } = args;
    const r = await runPPO({
      sft: sft.params, config, codec, reward: rm.params, prompts: prompts.train, iterations,
      batchSize, samplesPerPrompt: args.samplesPerPrompt, ptx: { examples: loadSFTData(prompts.files.train), coef: args.ptx }, maxNewTokens, klCoef: args.beta,
      // Horizon in answers: ten batches, so β can move within a run of a few dozen iterations
      // (Ziegler's 10,000 suits runs of 100,000s of answers; here β would hardly change).
      adaptiveKL: args.adaptiveKL !== undefined ? { target: args.adaptiveKL, horizon: 10 * batchSize * args.samplesPerPrompt } : undefined,
      optimizer: { lr: args.lr }, epochs: args.epochs,
      minibatchSize: args.minibatchSize, seed: args.seed, log: (l) => err(l), missingEndPenalty: args.missingEndPenalty, scoreClip: args.scoreClip,
      critic: args.critic,
    });
    const trainSeconds = r.seconds;
    savePolicy(args.out, r.trainer.policy, config, codec.tokenizer, iterations, { ppo: { iterations, beta: args.beta, adaptiveKL: args.adaptiveKL ?? null, critic: args.critic ?? "detached", seed: args.seed } });
    const ev = heldOutEvaluation(args, prompts, smoke, err, { policy: r.trainer.policy, baseline: sft.params, config, codec, reward: rm.params, maxNewTokens });
    disposePPO(r.trainer);
    const last = r.history[r.history.length - 1];
    const result = {
      ...policyEvalSummary(ev), iterations, finalBeta: last.beta, trainMeanScore: last.meanScore, trainMeanKL: last.meanKL,
      seconds: seconds(), trainSeconds, checkpoint: projectPath(args.out), backend: backend.name,
    };
    return {
      json: result,
      lines: [
        `PPO vs SFT on ${ev.winRate.n / ev.samplesPerQuestion} held-out questions (${ev.winRate.n} answers), by the labeller's true rule: win-rate ${pct(ev.winRate.winRate)} (95% interval ${pct(ev.winRate.interval[0])}–${pct(ev.winRate.interval[1])}; ${ev.winRate.wins} wins, ${ev.winRate.ties} ties, ${ev.winRate.losses} losses)`,
        `true score ${ev.trueScore.policy.toFixed(2)} (SFT ${ev.trueScore.baseline.toFixed(2)}), reward-model score ${ev.rewardScore.policy.toFixed(2)} (SFT ${ev.rewardScore.baseline.toFixed(2)}), KL to SFT ${ev.meanKL.toFixed(2)} nats per answer`,
        `${iterations} iterations in ${formatSeconds(trainSeconds)}; checkpoint ${projectPath(args.out)}`,
      ],
    };
  }),
};

export const parsePPOArgs: (argv: readonly string[], env?: Env) => PPOArgs = optionParser(PPO);

export const main = commandMain(PPO);

if (require.main === module) runAsScript(main);
