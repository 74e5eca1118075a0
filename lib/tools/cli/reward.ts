#!/usr/bin/env node
/**
 * Train the reward model from the command line (the same trainRewardModel as notebook 07).
 *
 *   node lib/dist/tools/cli/reward.js [--checkpoint build/artifacts/sft] [--prefs FILE] [--out DIR] [--json]
 *
 * Reads the preference file (JSONL, lib/rlhf/preferences.ts). When it does not exist yet (or with
 * --simulate N), the SFT model answers N training questions K times and the simulated
 * labeller ranks the answers, appending to the file first (steps 1–2). Then the SFT model
 * with a scalar head learns the rankings (Bradley–Terry over every pair, step 3), is
 * evaluated on held-out records, and is saved. --json: the last stdout line is a JSON summary.
 */
import * as fs from "fs";
import * as path from "path";
import { projectPath } from "../../core/paths";
import { disposeParams } from "../../pretrain/pretrain";
import { readPreferences } from "../../rlhf/preferences";
import { collectSimulatedPreferences, loadChatModel } from "../../rlhf/chat";
import { trainRewardModel } from "../../rlhf/rewardModel";
import { createRng } from "../../core/random";
import { formatSeconds } from "../../pretrain/trainer";
import { Command, Env, fail, loadOrFail, jsonOption, optionParser, runAsScript, commandMain, smokeOr, outApartFrom } from "./cli";
import { loadPrompts, pct, RLHF_OPTIONS, rlhfDefaults } from "./rlhfCli";

export interface RewardArgs {
  checkpoint: string;
  prefs: string;
  simulate?: number;
  k: number;
  data: string;
  out: string;
  maxIters: number;
  batchSize: number;
  lr: number;
  valFraction: number;
  maxNewTokens: number;
  seed: number;
  json: boolean;
  help: boolean;
}

const REWARD: Command<RewardArgs> = {
  name: "reward",
  summary: `Train a reward model on ranked answers (lib/rlhf/rewardModel.ts): the SFT model with a scalar head learns
the rankings (Bradley–Terry over every pair). When the preference file does not exist, or with --simulate N, first
--k answers to N training questions are sampled from the SFT model and ranked by the simulated labeller (lib/rlhf/labeller.ts),
appended to --prefs. Human rankings (npm run rank) work the same way: --prefs build/artifacts/preferences-human.jsonl.`,
  options: {
    checkpoint: RLHF_OPTIONS.checkpoint,
    prefs: RLHF_OPTIONS.prefs,
    simulate: { kind: "integer", value: "N", min: 1, defaultText: "1000 when --prefs is missing; smoke 12", help: "rank answers to N training questions first" },
    k: { kind: "integer", value: "K", min: 2, default: 4, help: "answers per question to rank" },
    data: RLHF_OPTIONS.data,
    out: { kind: "string", value: "DIR", default: (env: Env) => rlhfDefaults(env).reward, help: "where the reward model is saved" },
    "max-iters": { kind: "integer", value: "N", min: 0, default: smokeOr(4, 300), help: "training steps" },
    "batch-size": { kind: "integer", value: "N", min: 1, default: smokeOr(4, 16), help: "pairs per step" },
    lr: { kind: "number", value: "LR", min: 0, minExclusive: true, default: 5e-5, help: "AdamW learning rate" },
    "val-fraction": { kind: "number", value: "F", min: 0, max: 1, maxExclusive: true, default: 0.2, help: "share of the rankings held out" },
    "max-new-tokens": { ...RLHF_OPTIONS["max-new-tokens"], default: smokeOr(8, 48) },
    seed: RLHF_OPTIONS.seed,
    json: jsonOption("{accuracy, trainAccuracy (on a fixed sample of trainAccuracyPairs), accuracyBefore, valPairs, trainPairs, records, seconds, checkpoint, ...} (accuracy = held-out pairwise)"),
  },
  notes: () => "COURSE_SMOKE=1: a dozen questions and a few steps (seconds).",
  validate: outApartFrom("checkpoint"),
  backend: "announce",
  async run(args, { err, smoke, seconds, backend, env }) {
    const model = loadOrFail("the SFT checkpoint", () => loadChatModel(args.checkpoint));
    try {
      const { params, config, codec } = model;
      if (args.simulate === undefined && !fs.existsSync(args.prefs) && path.resolve(args.prefs) !== path.resolve(rlhfDefaults(env).preferences)) {
        // A mistyped --prefs must not quietly become a new file of simulated rankings.
        fail(`--prefs ${projectPath(args.prefs)} does not exist; to rank answers into it with the simulated labeller, add --simulate N`);
      }
      const existing = readPreferences(args.prefs);
      existing.warnings.forEach((w) => err(`warning: ${w}`));
      const simulate = args.simulate ?? (existing.records.length === 0 ? (smoke ? 12 : 1000) : 0);
      if (simulate > 0) {
        const { train } = loadPrompts(args.data);
        const prompts = createRng(args.seed).shuffle([...train]).slice(0, simulate);
        err(`sampling ${args.k} answers to each of ${prompts.length} questions and ranking them with the simulated labeller → ${projectPath(args.prefs)}`);
        collectSimulatedPreferences(params, config, codec, prompts, {
          k: args.k, maxNewTokens: args.maxNewTokens, temperature: 1, seed: args.seed, file: args.prefs,
        });
      }
      const { records } = readPreferences(args.prefs);
      err(`${records.length} ranked prompts in ${projectPath(args.prefs)}`);
      const maxIters = args.maxIters;
      const r = await trainRewardModel({
        sft: params, config, codec, records, maxIters, batchSize: args.batchSize, lr: args.lr,
        valFraction: args.valFraction, seed: args.seed, evalIters: smoke ? 1 : 4, progress: "auto", log: (l) => err(l), outDir: args.out,
      });
      disposeParams(r.params);
      const result = {
        accuracy: r.val.accuracy, byCriterion: r.valByCriterion, trainAccuracy: r.train.accuracy, trainAccuracyPairs: r.train.n, accuracyBefore: r.valBefore.accuracy,
        valLoss: r.val.loss, valMargin: r.val.meanMargin, valPairs: r.valPairs, trainPairs: r.trainPairs, heldOut: !r.valIsTrain,
        records: records.length, iterations: maxIters, seconds: seconds(), trainSeconds: r.seconds,
        checkpoint: projectPath(args.out), preferences: projectPath(args.prefs), backend: backend.name,
      };
      return {
        json: result,
        lines: [
          r.valIsTrain
            ? `reward model: pairwise accuracy ${pct(r.val.accuracy)} on its TRAINING pairs (too few rankings to hold any out: not a held-out measure)`
            : `reward model: held-out pairwise accuracy ${pct(r.val.accuracy)} (before training ${pct(r.valBefore.accuracy)}, ${r.train.n} training pairs ${pct(r.train.accuracy)}) on ${r.valPairs} pairs`,
          `  by deciding criterion: ${Object.entries(r.valByCriterion).map(([k, v]) => `${k} ${pct(v.accuracy)} of ${v.n}`).join(", ")}`,
          `${records.length} rankings, ${r.trainPairs} training pairs, ${maxIters} steps in ${formatSeconds(result.seconds)}; checkpoint ${projectPath(args.out)}`,
        ],
      };
    } finally {
      disposeParams(model.params);
    }
  },
};

export const parseRewardArgs: (argv: readonly string[], env?: Env) => RewardArgs = optionParser(REWARD);

export const main = commandMain(REWARD);

if (require.main === module) runAsScript(main);
