/**
 * What the RLHF command-line tools (rank, reward, ppo, dpo) share: option parsing in the
 * course's CLI style (a bad option is a UsageError: one line on stderr, exit code 2), the
 * prompts of the SFT data, and the default file locations (the artifacts folder, so the
 * notebooks and the tools chain: sft → preferences.jsonl → reward → ppo / dpo).
 */
import * as path from "path";
import { artifactPath, dataDir, projectPath } from "../paths";
import { EVAL_SAMPLES, evaluatePolicy, PolicyEval, PolicyEvalOptions, rlhfPrompts, RLHFPrompt } from "../rlhf";
import { loadSFTData, sftSplitFiles } from "../sft";

export class UsageError extends Error {}

export function rel(p: string): string {
  return path.relative(process.cwd(), p) || ".";
}

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

/** A small argv reader: flags with values, typed numbers, one error message per mistake. */
export class ArgReader {
  i = 0;
  constructor(readonly argv: readonly string[]) {}
  next(): string | undefined {
    return this.argv[this.i++];
  }
  value(flag: string): string {
    const v = this.argv[this.i];
    if (v === undefined || v.startsWith("--")) throw new UsageError(`${flag} needs a value`);
    this.i++;
    return v;
  }
  int(flag: string, min: number): number {
    const v = this.value(flag);
    const n = Number(v);
    if (!/^\s*-?\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got "${v}"`);
    return n;
  }
  num(flag: string, min: number, strict = false): number {
    const v = this.value(flag);
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < min || (strict && n === min)) throw new UsageError(`${flag} must be a number ${strict ? ">" : ">="} ${min}, got "${v}"`);
    return n;
  }
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
 * smoke mode, else all), each answered --eval-samples times (1 in smoke mode, else EVAL_SAMPLES),
 * seeded with --seed + 1; says on `err` what it evaluates.
 */
export function heldOutEvaluation(
  args: { evalPrompts?: number; evalSamples?: number; seed: number }, prompts: ReturnType<typeof loadPrompts>, smoke: boolean,
  err: (line: string) => void, opts: Omit<PolicyEvalOptions, "prompts" | "samples" | "seed">,
): PolicyEval {
  const evalPrompts = prompts.test.slice(0, args.evalPrompts ?? (smoke ? 6 : Infinity));
  const samples = args.evalSamples ?? (smoke ? 1 : EVAL_SAMPLES);
  err(`evaluating on ${evalPrompts.length} held-out questions, ${samples} sampled answer${samples === 1 ? "" : "s"} each (${projectPath(prompts.files.test)})`);
  return evaluatePolicy({ ...opts, prompts: evalPrompts, samples, seed: args.seed + 1 });
}

export function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** Write the tool's result: the JSON line last (with --json) or readable lines. */
export type Out = (line: string) => void;
