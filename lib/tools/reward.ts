#!/usr/bin/env node
/**
 * Train the reward model from the command line (the same trainRewardModel as notebook 07).
 *
 *   node lib/dist/tools/reward.js [--checkpoint build/artifacts/sft] [--prefs FILE] [--out DIR] [--json]
 *
 * Reads the preference file (JSONL, lib/preferences.ts). When it does not exist yet (or with
 * --simulate N), the SFT model answers N training questions K times and the simulated
 * labeller ranks the answers, appending to the file first (steps 1–2). Then the SFT model
 * with a scalar head learns the rankings (Bradley–Terry over every pair, step 3), is
 * evaluated on held-out records, and is saved. --json: the last stdout line is a JSON summary.
 */
import { initBackend } from "../backend";
import { projectPath } from "../paths";
import { disposeParams } from "../pretrain";
import { readPreferences } from "../preferences";
import { collectSimulatedPreferences, loadChatModel, trainRewardModel } from "../rlhf";
import { createRng } from "../random";
import { isSmoke } from "../smoke";
import { formatSeconds } from "../trainer";
import { ArgReader, loadPrompts, pct, rel, rlhfDefaults, UsageError } from "./rlhfCli";

const D = rlhfDefaults();
const USAGE = `Usage: reward [--checkpoint DIR] [--prefs FILE] [--simulate N] [--k K] [--data FILE] [--out DIR]
              [--max-iters N] [--batch-size N] [--lr LR] [--val-fraction F] [--max-new-tokens N] [--seed S] [--json]
  Train a reward model on ranked answers (lib/rewardModel.ts, lib/rlhf.ts). Defaults: --checkpoint ${rel(D.sft)} (the SFT model),
  --prefs ${rel(D.preferences)}, --out ${rel(D.reward)}, --data ${rel(D.data)}.
  When the preference file does not exist, or with --simulate N, first: K (default 4) answers to N training questions
  (default 1000) are sampled from the SFT model and ranked by the simulated labeller (lib/labeller.ts), appended to --prefs.
  Training: 300 steps of 16 pairs, AdamW lr 5e-5, 20 % of the rankings held out.
  Human rankings (npm run rank) work the same way: --prefs build/artifacts/preferences-human.jsonl.
  COURSE_SMOKE=1: a dozen questions and a few steps (seconds). --json: the last line of stdout is
  {accuracy, trainAccuracy (on a fixed sample of trainAccuracyPairs), accuracyBefore, valPairs, trainPairs, records, seconds, checkpoint, ...} (accuracy = held-out pairwise).`;

export interface RewardArgs {
  checkpoint: string;
  prefs: string;
  simulate?: number;
  k: number;
  data: string;
  out: string;
  maxIters?: number;
  batchSize?: number;
  lr?: number;
  valFraction: number;
  maxNewTokens?: number;
  seed: number;
  json: boolean;
  help: boolean;
}

export function parseRewardArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): RewardArgs {
  const d = rlhfDefaults(env);
  const args: RewardArgs = { checkpoint: d.sft, prefs: d.preferences, k: 4, data: d.data, out: d.reward, valFraction: 0.2, seed: 0, json: false, help: false };
  const r = new ArgReader(argv);
  for (let a = r.next(); a !== undefined; a = r.next()) {
    switch (a) {
      case "--checkpoint": args.checkpoint = r.value(a); break;
      case "--prefs": args.prefs = r.value(a); break;
      case "--simulate": args.simulate = r.int(a, 1); break;
      case "--k": args.k = r.int(a, 2); break;
      case "--data": args.data = r.value(a); break;
      case "--out": args.out = r.value(a); break;
      case "--max-iters": args.maxIters = r.int(a, 0); break;
      case "--batch-size": args.batchSize = r.int(a, 1); break;
      case "--lr": args.lr = r.num(a, 0, true); break;
      case "--val-fraction": {
        const f = r.num(a, 0);
        if (f >= 1) throw new UsageError(`--val-fraction must be in [0, 1), got ${f}`);
        args.valFraction = f;
        break;
      }
      case "--max-new-tokens": args.maxNewTokens = r.int(a, 1); break;
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
  let args: RewardArgs;
  try {
    args = parseRewardArgs(argv, env);
  } catch (e) {
    err(`reward: ${(e as Error).message} (see --help)`);
    return 2;
  }
  if (args.help) {
    out(USAGE);
    return 0;
  }
  const smoke = isSmoke(env);
  let model: ReturnType<typeof loadChatModel> | undefined;
  try {
    const t0 = performance.now();
    const info = await initBackend({ quiet: true });
    err(info.line);
    try {
      model = loadChatModel(args.checkpoint);
    } catch (e) {
      err(`reward: cannot load the SFT checkpoint: ${(e as Error).message}`);
      return 2;
    }
    const { params, config, codec } = model;
    const existing = readPreferences(args.prefs);
    existing.warnings.forEach((w) => err(`warning: ${w}`));
    const simulate = args.simulate ?? (existing.records.length === 0 ? (smoke ? 12 : 1000) : 0);
    if (simulate > 0) {
      const { train } = loadPrompts(args.data);
      const prompts = createRng(args.seed).shuffle([...train]).slice(0, simulate);
      err(`sampling ${args.k} answers to each of ${prompts.length} questions and ranking them with the simulated labeller → ${projectPath(args.prefs)}`);
      collectSimulatedPreferences(params, config, codec, prompts, {
        k: args.k, maxNewTokens: args.maxNewTokens ?? (smoke ? 8 : 48), temperature: 1, seed: args.seed, file: args.prefs,
      });
    }
    const { records } = readPreferences(args.prefs);
    err(`${records.length} ranked prompts in ${projectPath(args.prefs)}`);
    const maxIters = args.maxIters ?? (smoke ? 4 : 300);
    const r = await trainRewardModel({
      sft: params, config, codec, records, maxIters, batchSize: args.batchSize ?? (smoke ? 4 : 16), lr: args.lr ?? 5e-5,
      valFraction: args.valFraction, seed: args.seed, evalIters: smoke ? 1 : 4, progress: "auto", log: (l) => err(l), outDir: args.out,
    });
    disposeParams(r.params);
    const result = {
      accuracy: r.val.accuracy, byCriterion: r.valByCriterion, trainAccuracy: r.train.accuracy, trainAccuracyPairs: r.train.n, accuracyBefore: r.valBefore.accuracy,
      valLoss: r.val.loss, valMargin: r.val.meanMargin, valPairs: r.valPairs, trainPairs: r.trainPairs, heldOut: !r.valIsTrain,
      records: records.length, iterations: maxIters, seconds: (performance.now() - t0) / 1000, trainSeconds: r.seconds,
      checkpoint: projectPath(args.out), preferences: projectPath(args.prefs), backend: info.name,
    };
    if (args.json) out(JSON.stringify(result));
    else {
      out(`reward model: held-out pairwise accuracy ${pct(r.val.accuracy)} (before training ${pct(r.valBefore.accuracy)}, ${r.train.n} training pairs ${pct(r.train.accuracy)}) on ${r.valPairs} pairs`);
      out(`  by deciding criterion: ${Object.entries(r.valByCriterion).map(([k, v]) => `${k} ${pct(v.accuracy)} of ${v.n}`).join(", ")}`);
      out(`${records.length} rankings, ${r.trainPairs} training pairs, ${maxIters} steps in ${formatSeconds(result.seconds)}; checkpoint ${projectPath(args.out)}`);
    }
    return 0;
  } catch (e) {
    err(`reward: ${String((e as Error).message ?? e).split("\n")[0]}`);
    return 1;
  } finally {
    if (model) disposeParams(model.params);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
