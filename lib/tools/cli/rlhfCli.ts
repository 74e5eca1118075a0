/**
 * What the RLHF command-line tools (rank, reward, ppo, dpo) share besides the runner (cli.ts): the
 * prompts of the SFT data, and the default file locations (the artifacts folder, so the
 * notebooks and the tools chain: sft → preferences.jsonl → reward → ppo / dpo).
 */
import * as path from "path";
import { artifactPath, dataDir, projectPath } from "../../core/paths";
import { EVAL_SAMPLES, evaluatePolicy, PolicyEval, PolicyEvalOptions } from "../../rlhf/evaluate";
import { loadChatModel, rlhfPrompts, RLHFPrompt } from "../../rlhf/chat";
import type { GPTParams } from "../../gpt/gpt";
import { disposeParams } from "../../pretrain/pretrain";
import { loadSFTData, sftSplitFiles } from "../../finetune/sft";
import { Env, jsonOption, loadOrFail, OptionDef, smokeOr } from "./cli";

/** Default locations (under COURSE_ARTIFACTS when set). */
export function rlhfDefaults(env: NodeJS.ProcessEnv = process.env) {
  return {
    sft: artifactPath("sft", env),
    preferences: artifactPath("preferences.jsonl", env),
    humanPreferences: artifactPath("preferences-human.jsonl", env),
    reward: artifactPath("reward", env),
    ppo: artifactPath("ppo", env),
    dpo: artifactPath("dpo", env),
    data: path.join(dataDir, "sft", "train.jsonl"),
  };
}

/** The options the RLHF tools share, declared once so their help and checks agree. */
export const RLHF_OPTIONS = {
  checkpoint: { kind: "string", value: "DIR", default: (env: Env) => rlhfDefaults(env).sft, help: "the SFT model" },
  data: { kind: "string", value: "FILE", default: (env: Env) => rlhfDefaults(env).data, help: "training questions (held-out ones from test.jsonl beside it)" },
  prefs: { kind: "string", value: "FILE", default: (env: Env) => rlhfDefaults(env).preferences, help: "the ranked answers (JSONL, lib/rlhf/preferences.ts)" },
  "max-new-tokens": { kind: "integer", value: "N", min: 1, default: smokeOr(6, 48), help: "longest sampled answer" },
  "eval-prompts": { kind: "integer", value: "N", min: 1, defaultText: "all; smoke 6", help: "held-out questions to evaluate on" },
  "eval-samples": { kind: "integer", value: "K", min: 1, default: smokeOr(1, EVAL_SAMPLES), help: "answers per held-out question and model (intervals count questions)" },
  seed: { kind: "integer", value: "S", min: 0, default: 0, help: "random seed" },
} satisfies Record<string, OptionDef>;

/**
 * ppo's and dpo's held-out evaluation (heldOutEvaluation), the seed of the whole run, and --json,
 * whose summary starts with the evaluation's fields (policyEvalSummary) and then has `moreFields`.
 */
export function policyEvalOptions(moreFields: string): Record<string, OptionDef> {
  return {
    "max-new-tokens": RLHF_OPTIONS["max-new-tokens"],
    "eval-prompts": RLHF_OPTIONS["eval-prompts"],
    "eval-samples": RLHF_OPTIONS["eval-samples"],
    seed: RLHF_OPTIONS.seed,
    json: jsonOption(`{winRate, winRateInterval, wins, ties, losses, meanKL, rewardScore, sftRewardScore, trueScore, sftTrueScore, ${moreFields}seconds, checkpoint, ...}`),
  };
}

/**
 * Runs `f`, which puts every set of weights it loads or makes in `held`: they are disposed
 * of however it ends (ppo and dpo hold several models at once).
 */
export async function disposingAfter<T>(f: (held: GPTParams[]) => Promise<T>): Promise<T> {
  const held: GPTParams[] = [];
  try {
    return await f(held);
  } finally {
    for (const p of held) disposeParams(p);
  }
}

/** The SFT model a policy starts from and is compared with (ppo, dpo), in `held` to be disposed of. */
export function loadSFTPolicy(checkpoint: string, held: GPTParams[]): ReturnType<typeof loadChatModel> {
  const sft = loadOrFail("the SFT checkpoint", () => loadChatModel(checkpoint));
  held.push(sft.params);
  return sft;
}

/** Training and held-out prompts: the train file's single-turn questions, and its sibling test.jsonl's. */
export function loadPrompts(trainFile: string): { train: RLHFPrompt[]; test: RLHFPrompt[]; files: { train: string; test: string } } {
  const files = sftSplitFiles(path.resolve(trainFile));
  const train = rlhfPrompts(loadSFTData(files.train));
  const test = rlhfPrompts(loadSFTData(files.test));
  if (train.length === 0) throw new Error(`${files.train}: no single-turn questions to use as prompts`);
  if (test.length === 0) throw new Error(`${files.test}: no single-turn questions to use as held-out prompts`);
  return { train, test, files: { train: files.train, test: files.test } };
}

/**
 * ppo's and dpo's held-out evaluation: the first --eval-prompts questions of test.jsonl (6 in
 * smoke mode, else all), each answered --eval-samples times,
 * seeded with --seed + 1; says on `err` what it evaluates.
 */
export function heldOutEvaluation(
  args: { evalPrompts?: number; evalSamples: number; seed: number }, prompts: ReturnType<typeof loadPrompts>, smoke: boolean,
  err: (line: string) => void, opts: Omit<PolicyEvalOptions, "prompts" | "samples" | "seed">,
): PolicyEval {
  const evalPrompts = prompts.test.slice(0, args.evalPrompts ?? (smoke ? 6 : Infinity));
  const samples = args.evalSamples;
  err(`evaluating on ${evalPrompts.length} held-out questions, ${samples} sampled answer${samples === 1 ? "" : "s"} each (${projectPath(prompts.files.test)})`);
  return evaluatePolicy({ ...opts, prompts: evalPrompts, samples, seed: args.seed + 1 });
}

export function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** Write the tool's result: the JSON line last (with --json) or readable lines. */
export type Out = (line: string) => void;
