#!/usr/bin/env node
/**
 * DPO from the command line (the same trainDPO / evaluatePolicy as notebook 09).
 *
 *   node lib/dist/tools/dpo.js [--checkpoint build/artifacts/sft] [--prefs FILE] [--out DIR] [--json]
 *
 * Learns from the same preference file as the reward model, with no reward model and no
 * sampling: the DPO loss against a frozen copy of the SFT model. Then the same held-out
 * evaluation as ppo (win-rate against SFT by the labeller's true rule, KL to SFT, and the
 * reward model's score when --reward names one that exists). --json: the last stdout line.
 */
import * as fs from "fs";
import * as path from "path";
import { initBackend } from "../backend";
import { projectPath } from "../paths";
import type { GPTParams } from "../gpt";
import { readPreferences } from "../preferences";
import { disposeParams, loadPretrained } from "../pretrain";
import { EVAL_SAMPLES, loadChatModel, savePolicy, trainDPO } from "../rlhf";
import { isSmoke } from "../smoke";
import { formatSeconds } from "../trainer";
import { evalSummary } from "./ppo";
import { ArgReader, heldOutEvaluation, loadPrompts, pct, rel, rlhfDefaults, UsageError } from "./rlhfCli";

const D = rlhfDefaults();
const USAGE = `Usage: dpo [--checkpoint DIR] [--prefs FILE] [--reward DIR] [--data FILE] [--out DIR] [--max-iters N] [--batch-size N]
           [--beta B] [--lr LR] [--max-new-tokens N] [--eval-prompts N] [--eval-samples K] [--seed S] [--json]
  Direct Preference Optimization on ranked answers (lib/dpo.ts, lib/rlhf.ts). Defaults: --checkpoint ${rel(D.sft)},
  --prefs ${rel(D.preferences)} (written by npm run reward or notebook 07), --reward ${rel(D.reward)} (only to report its score; skipped
  when missing), --out ${rel(D.dpo)}, 80 steps of 8 pairs, AdamW lr 5e-5, β = 0.5, --data ${rel(D.data)} (held-out questions from test.jsonl beside it).
  Evaluation: every held-out question answered ${EVAL_SAMPLES} times by each model (--eval-samples K); intervals count questions.
  COURSE_SMOKE=1: a few steps (seconds). --json: the last line of stdout is
  {winRate, winRateInterval, wins, ties, losses, meanKL, rewardScore, sftRewardScore, trueScore, sftTrueScore, valAccuracy, seconds, checkpoint, ...}.`;

export interface DPOArgs {
  checkpoint: string;
  prefs: string;
  reward: string;
  data: string;
  out: string;
  maxIters?: number;
  batchSize?: number;
  beta: number;
  lr?: number;
  maxNewTokens?: number;
  evalPrompts?: number;
  evalSamples?: number;
  seed: number;
  json: boolean;
  help: boolean;
}

export function parseDPOArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): DPOArgs {
  const d = rlhfDefaults(env);
  const args: DPOArgs = { checkpoint: d.sft, prefs: d.preferences, reward: d.reward, data: d.data, out: d.dpo, beta: 0.5, seed: 0, json: false, help: false };
  const r = new ArgReader(argv);
  for (let a = r.next(); a !== undefined; a = r.next()) {
    switch (a) {
      case "--checkpoint": args.checkpoint = r.value(a); break;
      case "--prefs": args.prefs = r.value(a); break;
      case "--reward": args.reward = r.value(a); break;
      case "--data": args.data = r.value(a); break;
      case "--out": args.out = r.value(a); break;
      case "--max-iters": args.maxIters = r.int(a, 0); break;
      case "--batch-size": args.batchSize = r.int(a, 1); break;
      case "--beta": args.beta = r.num(a, 0, true); break;
      case "--lr": args.lr = r.num(a, 0, true); break;
      case "--max-new-tokens": args.maxNewTokens = r.int(a, 1); break;
      case "--eval-prompts": args.evalPrompts = r.int(a, 1); break;
      case "--eval-samples": args.evalSamples = r.int(a, 1); break;
      case "--seed": args.seed = r.int(a, 0); break;
      case "--json": args.json = true; break;
      case "-h": case "--help": args.help = true; break;
      default: throw new UsageError(a.startsWith("-") ? `unknown option ${a}` : `unexpected argument "${a}"`);
    }
  }
  return args;
}

export async function main(
  argv: readonly string[],
  out: (line: string) => void = (l) => process.stdout.write(l + "\n"),
  err: (line: string) => void = (l) => process.stderr.write(l + "\n"),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let args: DPOArgs;
  try {
    args = parseDPOArgs(argv, env);
  } catch (e) {
    err(`dpo: ${(e as Error).message} (see --help)`);
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
    let sft;
    try {
      sft = loadChatModel(args.checkpoint);
      held.push(sft.params);
    } catch (e) {
      err(`dpo: cannot load the SFT checkpoint: ${(e as Error).message}`);
      return 2;
    }
    const { records, warnings } = readPreferences(args.prefs);
    warnings.forEach((w) => err(`warning: ${w}`));
    if (records.length === 0) {
      err(`dpo: no rankings in ${projectPath(args.prefs)}: make them first (npm run reward simulates them, npm run rank asks you)`);
      return 2;
    }
    let rm: GPTParams | undefined;
    if (fs.existsSync(path.join(args.reward, "model.json"))) {
      rm = loadPretrained(args.reward).params;
      held.push(rm);
    } else err(`no reward model at ${args.reward}: its scores are left out of the evaluation`);
    const { config, codec } = sft;
    const prompts = loadPrompts(args.data);
    const maxIters = args.maxIters ?? (smoke ? 3 : 80);
    const r = await trainDPO({
      sft: sft.params, config, codec, records, maxIters, batchSize: args.batchSize ?? (smoke ? 4 : 8), lr: args.lr, beta: args.beta,
      seed: args.seed, evalIters: smoke ? 1 : 4, progress: "auto", log: (l) => err(l),
    });
    held.push(r.policy, r.ref);
    savePolicy(args.out, r.policy, config, codec.tokenizer, maxIters, { dpo: { maxIters, beta: args.beta, seed: args.seed, records: records.length } });
    const maxNewTokens = args.maxNewTokens ?? (smoke ? 6 : 48);
    const ev = heldOutEvaluation(args, prompts, smoke, err, { policy: r.policy, baseline: sft.params, config, codec, reward: rm, maxNewTokens });
    const result = {
      ...evalSummary(ev), valAccuracy: r.valAccuracy, valMargin: r.valMargin, trainPairs: r.trainPairs, valPairs: r.valPairs,
      iterations: maxIters, beta: args.beta, seconds: (performance.now() - t0) / 1000, trainSeconds: r.seconds, checkpoint: projectPath(args.out), backend: info.name,
    };
    if (args.json) out(JSON.stringify(result));
    else {
      out(`DPO vs SFT on ${ev.winRate.n / ev.samplesPerQuestion} held-out questions (${ev.winRate.n} answers), by the labeller's true rule: win-rate ${pct(ev.winRate.winRate)} (95% interval ${pct(ev.winRate.interval[0])}–${pct(ev.winRate.interval[1])}; ${ev.winRate.wins} wins, ${ev.winRate.ties} ties, ${ev.winRate.losses} losses)`);
      out(`true score ${ev.trueScore.policy.toFixed(2)} (SFT ${ev.trueScore.baseline.toFixed(2)}), KL to SFT ${ev.meanKL.toFixed(2)} nats per answer; held-out pair accuracy of the implicit reward ${pct(r.valAccuracy)}`);
      out(`${maxIters} steps in ${formatSeconds(r.seconds)}; checkpoint ${projectPath(args.out)}`);
    }
    return 0;
  } catch (e) {
    err(`dpo: ${String((e as Error).message ?? e).split("\n")[0]}`);
    return 1;
  } finally {
    for (const p of held) disposeParams(p);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
