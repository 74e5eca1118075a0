import * as fs from "fs";
import * as path from "path";

/**
 * Where things live. Later chapters reuse what earlier ones produced (the pretrained
 * checkpoint feeds fine-tuning, which feeds the reward model and PPO), so every notebook
 * and CLI agrees on one artifacts folder: `build/artifacts/` unless `COURSE_ARTIFACTS` says otherwise.
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

/** Folder where chapters leave checkpoints and files for later chapters. */
export function artifactsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.COURSE_ARTIFACTS ?? path.join(repoRoot, "build", "artifacts"));
}

/** Path of a named artifact, e.g. `artifactPath("pretrained")` → build/artifacts/pretrained. */
export function artifactPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(artifactsDir(env), name);
}
