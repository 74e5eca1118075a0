#!/usr/bin/env node
/**
 * DPO from the command line (the same trainDPO / evaluatePolicy as notebook 09).
 *
 *   node lib/dist/tools/cli/dpo.js [--checkpoint build/artifacts/sft] [--prefs FILE] [--out DIR] [--json]
 *
 * Learns from the same preference file as the reward model, with no reward model and no
 * sampling: the DPO loss against a frozen copy of the SFT model. Then the same held-out
 * evaluation as ppo (win-rate against SFT by the labeller's true rule, KL to SFT, and the
 * reward model's score when --reward names one that exists). --json: the last stdout line.
 */
import * as fs from "fs";
import * as path from "path";
import { projectPath } from "../../core/paths";
import type { GPTParams } from "../../gpt/gpt";
import { readPreferences } from "../../rlhf/preferences";
import { loadPretrained } from "../../pretrain/pretrain";
import { policyEvalSummary } from "../../rlhf/evaluate";
import { savePolicy } from "../../rlhf/chat";
import { trainDPO } from "../../rlhf/dpo";
import { formatSeconds } from "../../pretrain/trainer";
import { Command, Env, fail, optionParser, runAsScript, commandMain, smokeOr, outApartFrom } from "./cli";
import { disposingAfter, heldOutEvaluation, loadSFTPolicy, loadPrompts, pct, policyEvalOptions, RLHF_OPTIONS, rlhfDefaults } from "./rlhfCli";

export interface DPOArgs {
  checkpoint: string;
  prefs: string;
  reward: string;
  data: string;
  out: string;
  maxIters: number;
  batchSize: number;
  beta: number;
  lr?: number;
  maxNewTokens: number;
  evalPrompts?: number;
  evalSamples: number;
  seed: number;
  json: boolean;
  help: boolean;
}

const DPO: Command<DPOArgs> = {
  name: "dpo",
  summary: `Direct Preference Optimization on ranked answers (lib/rlhf/dpo.ts): no reward model and no sampling, the DPO
loss against a frozen copy of the SFT model. Then ppo's held-out evaluation (win-rate against SFT by the labeller's
true rule, KL to SFT, and the reward model's score when --reward names one that exists).`,
  options: {
    checkpoint: RLHF_OPTIONS.checkpoint,
    prefs: { ...RLHF_OPTIONS.prefs, help: "the ranked answers (written by npm run reward or notebook 07)" },
    reward: { kind: "string", value: "DIR", default: (env: Env) => rlhfDefaults(env).reward, help: "a reward model, only to report its score (skipped when missing)" },
    data: RLHF_OPTIONS.data,
    out: { kind: "string", value: "DIR", default: (env: Env) => rlhfDefaults(env).dpo, help: "where the policy is saved" },
    "max-iters": { kind: "integer", value: "N", min: 0, default: smokeOr(3, 80), help: "training steps" },
    "batch-size": { kind: "integer", value: "N", min: 1, default: smokeOr(4, 8), help: "pairs per step" },
    beta: { kind: "number", value: "B", min: 0, minExclusive: true, default: 0.5, help: "DPO's β" },
    lr: { kind: "number", value: "LR", min: 0, minExclusive: true, defaultText: "5e-5", help: "AdamW learning rate" },
    ...policyEvalOptions("valAccuracy, "),
  },
  notes: () => "COURSE_SMOKE=1: a few steps (seconds).",
  validate: outApartFrom("checkpoint"),
  backend: "announce",
  run: (args, { err, smoke, seconds, backend }) => disposingAfter(async (held) => {
    const sft = loadSFTPolicy(args.checkpoint, held);
    const { records, warnings } = readPreferences(args.prefs);
    warnings.forEach((w) => err(`warning: ${w}`));
    if (records.length === 0) {
      fail(`no rankings in ${projectPath(args.prefs)}: make them first (npm run reward simulates them, npm run rank asks you)`);
    }
    let rm: GPTParams | undefined;
    if (fs.existsSync(path.join(args.reward, "model.json"))) {
      rm = loadPretrained(args.reward).params;
      held.push(rm);
    } else err(`no reward model at ${args.reward}: its scores are left out of the evaluation`);
    const { config, codec } = sft;
    const prompts = loadPrompts(args.data);
    const maxIters = args.maxIters;
    const r = await trainDPO({
      sft: sft.params, config, codec, records, maxIters, batchSize: args.batchSize, lr: args.lr, beta: args.beta,
      seed: args.seed, evalIters: smoke ? 1 : 4, progress: "auto", log: (l) => err(l),
    });
    held.push(r.policy, r.ref);
    savePolicy(args.out, r.policy, config, codec.tokenizer, maxIters, { dpo: { maxIters, beta: args.beta, seed: args.seed, records: records.length } });
    const maxNewTokens = args.maxNewTokens;
    const ev = heldOutEvaluation(args, prompts, smoke, err, { policy: r.policy, baseline: sft.params, config, codec, reward: rm, maxNewTokens });
    const result = {
      ...policyEvalSummary(ev), valAccuracy: r.valAccuracy, valMargin: r.valMargin, trainPairs: r.trainPairs, valPairs: r.valPairs,
      iterations: maxIters, beta: args.beta, seconds: seconds(), trainSeconds: r.seconds, checkpoint: projectPath(args.out), backend: backend.name,
    };
    return {
      json: result,
      lines: [
        `DPO vs SFT on ${ev.winRate.n / ev.samplesPerQuestion} held-out questions (${ev.winRate.n} answers), by the labeller's true rule: win-rate ${pct(ev.winRate.winRate)} (95% interval ${pct(ev.winRate.interval[0])}–${pct(ev.winRate.interval[1])}; ${ev.winRate.wins} wins, ${ev.winRate.ties} ties, ${ev.winRate.losses} losses)`,
        `true score ${ev.trueScore.policy.toFixed(2)} (SFT ${ev.trueScore.baseline.toFixed(2)}), KL to SFT ${ev.meanKL.toFixed(2)} nats per answer; held-out pair accuracy of the implicit reward ${pct(r.valAccuracy)}`,
        `${maxIters} steps in ${formatSeconds(r.seconds)}; checkpoint ${projectPath(args.out)}`,
      ],
    };
  }),
};

export const parseDPOArgs: (argv: readonly string[], env?: Env) => DPOArgs = optionParser(DPO);

export const main = commandMain(DPO);

if (require.main === module) runAsScript(main);
