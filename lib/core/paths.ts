import * as fs from "fs";
import * as path from "path";
import { isSmoke } from "./smoke";

/**
 * Where things live. Later chapters reuse what earlier ones produced (the pretrained
 * checkpoint feeds fine-tuning, which feeds the reward model and PPO), so every notebook
 * and CLI agrees on one artifacts folder: `build/artifacts/` (`build/artifacts-smoke/` in smoke mode)
 * unless `COURSE_ARTIFACTS` says otherwise.
 */
function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (fs.existsSync(pkg)) {
      try {
        const name = JSON.parse(fs.readFileSync(pkg, "utf8")).name;
        if (name === "llm-course") return dir;
      } catch {
        /* not ours; keep walking */
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

/** The course's top folder (the one with notebooks/, lib/, data/). */
export const repoRoot: string = findRepoRoot(__dirname);

/** Folder of small data files shipped with the course. */
export const dataDir: string = path.join(repoRoot, "data");

/** Folder for downloaded corpora (git-ignored). */
export const cacheDir: string = path.join(repoRoot, "data", "cache");

/**
 * Folder where chapters leave checkpoints and files for later chapters: COURSE_ARTIFACTS when
 * set (and not empty), else build/artifacts/, or build/artifacts-smoke/ in smoke mode, wherever
 * smoke mode was set (a notebook in Jupyter, a CLI, the course builder): tiny smoke models must
 * never replace a full build's.
 */
export function artifactsDir(env: NodeJS.ProcessEnv = process.env): string {
  const set = (env.COURSE_ARTIFACTS ?? "").trim();
  if (set !== "") return path.resolve(set);
  return path.join(repoRoot, "build", isSmoke(env) ? "artifacts-smoke" : "artifacts");
}

/** Path of a named artifact, e.g. `artifactPath("pretrained")` → build/artifacts/pretrained. */
export function artifactPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(artifactsDir(env), name);
}

/**
 * The course's base model, shipped with the course: a GPT pretrained on Moby-Dick once, with
 * the course's own code, for longer than a lecture allows (its card: data/base-model/README.md).
 * Chapters 06–09 fine-tune it by default, so that what they show does not depend on how long
 * a learner let notebook 05 run.
 */
export const shippedBaseModelDir: string = path.join(dataDir, "base-model");

export type BaseModelChoice = "course" | "own";

/**
 * Which base model chapters 06–09 start from: `COURSE_BASE_MODEL=course` (the shipped one) or
 * `own` (the learner's, from notebook 05 or `npm run train`: artifactPath("pretrained")).
 * Default: the shipped model in full mode; the learner's tiny one in smoke mode, which must
 * run in seconds.
 */
export function baseModelChoice(env: NodeJS.ProcessEnv = process.env): BaseModelChoice {
  const v = (env.COURSE_BASE_MODEL ?? "").trim().toLowerCase();
  if (v === "course" || v === "own") return v;
  if (v !== "") throw new Error(`COURSE_BASE_MODEL must be "course" (the shipped base model) or "own" (${projectPath(artifactPath("pretrained", env))}), got "${env.COURSE_BASE_MODEL}"`);
  return isSmoke(env) ? "own" : "course";
}

/** Directory of the base model that chapters 06–09 and `npm run sft` start from (see baseModelChoice). */
export function baseModelDir(env: NodeJS.ProcessEnv = process.env): string {
  return baseModelChoice(env) === "course" ? shippedBaseModelDir : artifactPath("pretrained", env);
}

/** baseModelDir, checked: the learner's own model must have been trained first (requireArtifact). */
export function requireBaseModel(env: NodeJS.ProcessEnv = process.env): string {
  return baseModelChoice(env) === "course" ? shippedBaseModelDir : requireArtifact("pretrained", env);
}

/**
 * Which notebook (by its number) and which command make each artifact a later chapter reads:
 * named when one is missing, and how the course build knows which notebooks must wait for which.
 */
export const ARTIFACT_MAKERS: Readonly<Record<string, { notebook: string; chapter: string; command: string }>> = {
  pretrained: { notebook: "05", chapter: "pretraining", command: "npm run train" },
  sft: { notebook: "06", chapter: "supervised fine-tuning", command: "npm run sft" },
  "preferences.jsonl": { notebook: "07", chapter: "reward model", command: "npm run reward" },
  reward: { notebook: "07", chapter: "reward model", command: "npm run reward" },
  ppo: { notebook: "08", chapter: "PPO", command: "npm run ppo" },
  dpo: { notebook: "09", chapter: "DPO", command: "npm run dpo" },
  grpo: { notebook: "11", chapter: "GRPO", command: "npm run grpo" },
};

/**
 * artifactPath(name) for reading: when an earlier chapter has not made it yet, one line that says
 * which notebook or command does ("build/artifacts/sft does not exist yet: run notebook 06 … first").
 */
export function requireArtifact(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const p = artifactPath(name, env);
  if (!fs.existsSync(p)) {
    const maker = ARTIFACT_MAKERS[name];
    throw new Error(`${projectPath(p)} does not exist yet: ${maker ? `run notebook ${maker.notebook} (${maker.chapter}) or \`${maker.command}\` first` : "no chapter makes an artifact of this name"}`);
  }
  return p;
}

/** A path as printed to people: relative to the project's top folder ("data/base-model"), never a machine's absolute path. */
export function projectPath(p: string): string {
  return path.relative(repoRoot, path.resolve(p)) || ".";
}
