#!/usr/bin/env node
/**
 * The later chapters' pipeline over several seeds: SFT → rankings + reward model → PPO → DPO,
 * each stage the command-line tool of its chapter (npm run sft|reward|ppo|dpo) with --seed,
 * from the course's base model, in its own artifacts folder per seed.
 *
 *   node lib/dist/tools/cli/seeds.js [--seeds 1,2,3] [--out build/seeds] [--markdown]
 *
 * Each stage's --json summary is kept in <out>/seed-<s>/<stage>.json (a seed whose four
 * summaries exist is not run again: delete them to redo it); then the figures over the seeds
 * are printed (mean, min–max) and written to <out>/summary.json. --markdown prints the table
 * the README shows. Progress of each stage goes to stderr.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { projectPath, repoRoot } from "../../core/paths";
import { Command, fail, runAsScript, commandMain } from "./cli";

export const STAGES = ["sft", "reward", "ppo", "dpo"] as const;
type Stage = (typeof STAGES)[number];
type Summary = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Spread {
  mean: number;
  min: number;
  max: number;
  values: number[];
}

export function spread(values: readonly number[]): Spread {
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, min: Math.min(...values), max: Math.max(...values), values: [...values] };
}

/** The figures the issue's targets name, over the seeds' summaries (one record of stage → summary per seed). */
export function seedFigures(runs: ReadonlyArray<Record<Stage, Summary>>) {
  const of = (f: (r: Record<Stage, Summary>) => number) => spread(runs.map(f));
  const kinds = Object.keys(runs[0].sft.sft.byKind ?? {});
  return {
    seeds: runs.length,
    sft: {
      exactMatch: of((r) => r.sft.sft.exactMatch),
      byKind: Object.fromEntries(kinds.map((k) => [k, of((r) => r.sft.sft.byKind[k].exactMatch)])),
      testQuestions: runs[0].sft.sft.n,
      seconds: of((r) => r.sft.seconds),
    },
    reward: {
      accuracy: of((r) => r.reward.accuracy),
      correct: of((r) => r.reward.byCriterion?.correct?.accuracy ?? NaN),
      heldOutPairs: of((r) => r.reward.valPairs),
      seconds: of((r) => r.reward.seconds),
    },
    ...Object.fromEntries((["ppo", "dpo"] as const).map((m) => [m, {
      winRate: of((r) => r[m].winRate),
      intervalLow: of((r) => r[m].winRateInterval[0]),
      trueScore: of((r) => r[m].trueScore),
      sftTrueScore: of((r) => r[m].sftTrueScore),
      beatsSftEverySeed: runs.every((r) => r[m].trueScore > r[m].sftTrueScore),
      meanKL: of((r) => r[m].meanKL),
      evalAnswers: runs[0][m].evalAnswers,
      // Older summaries (one answer per question) have no evalQuestions.
      evalQuestions: runs[0][m].evalQuestions ?? runs[0][m].evalAnswers,
      evalSamples: runs[0][m].evalSamples ?? 1,
      seconds: of((r) => r[m].seconds),
    }])),
  };
}

const pct = (s: Spread) => `${(100 * s.mean).toFixed(1)} % (${(100 * s.min).toFixed(1)}–${(100 * s.max).toFixed(1)})`;
const num = (s: Spread, d = 2) => `${s.mean.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;

export function markdownTable(f: ReturnType<typeof seedFigures>): string {
  const rows = [
    `| Stage | Measure (mean over ${f.seeds} seeds, min–max) | |`,
    "|---|---|---|",
    `| SFT | held-out exact match, greedy, ${f.sft.testQuestions} questions | ${pct(f.sft.exactMatch)} |`,
    ...Object.entries(f.sft.byKind).map(([k, s]) => `| | … ${k} | ${pct(s)} |`),
    `| Reward model | held-out pairwise accuracy (${Math.round(f.reward.heldOutPairs.mean)} pairs) | ${pct(f.reward.accuracy)} |`,
    `| | … pairs decided by correctness | ${pct(f.reward.correct)} |`,
  ];
  for (const m of ["ppo", "dpo"] as const) {
    const x = (f as any)[m]; // eslint-disable-line @typescript-eslint/no-explicit-any
    rows.push(
      `| ${m.toUpperCase()} | win-rate vs SFT, ${x.evalQuestions} held-out questions${x.evalSamples > 1 ? ` × ${x.evalSamples} sampled answers` : ""} | ${pct(x.winRate)}; 95 % interval's lower end ${pct(x.intervalLow)} |`,
      `| | mean true score (SFT's) | ${num(x.trueScore)} (${num(x.sftTrueScore)}); higher than SFT in every seed: ${x.beatsSftEverySeed ? "yes" : "no"} |`,
      `| | KL to SFT, nats per answer | ${num(x.meanKL)} |`,
    );
  }
  return rows.join("\n");
}

interface SeedsArgs {
  seeds: number[];
  out: string;
  markdown: boolean;
}

const SEEDS: Command<SeedsArgs> = {
  name: "seeds",
  summary: "Run npm run sft, reward, ppo, dpo with each seed and print the figures over the seeds (a stage already run is read back).",
  options: {
    seeds: { kind: "integer", value: "S", list: true, min: 0, default: [1, 2, 3], help: "the seeds" },
    out: { kind: "string", value: "DIR", default: path.join(repoRoot, "build", "seeds"), help: "one folder of artifacts and summaries per seed" },
    markdown: { kind: "boolean", help: "print the figures as a Markdown table instead of JSON" },
  },
  async run(args, { out, err }) {
    // summary.json has always listed the seeds as strings, as they go on the stages' command lines.
    const seeds = args.seeds.map(String);
    const outDir = path.resolve(args.out);
    const runs: Array<Record<Stage, Summary>> = [];
    for (const seed of seeds) {
      const dir = path.join(outDir, `seed-${seed}`);
      fs.mkdirSync(dir, { recursive: true });
      const run = {} as Record<Stage, Summary>;
      for (const stage of STAGES) {
        const file = path.join(dir, `${stage}.json`);
        if (!fs.existsSync(file)) {
          err(`seed ${seed}: npm run ${stage} -- --seed ${seed} --json (artifacts in ${projectPath(dir)})`);
          const r = spawnSync(process.execPath, [path.join(__dirname, `${stage}.js`), "--seed", seed, "--json"], {
            env: { ...process.env, COURSE_ARTIFACTS: dir }, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8", maxBuffer: 64 << 20,
          });
          if (r.status !== 0) {
            fail(`${stage} with seed ${seed} failed (exit ${r.status})`, 1);
          }
          const last = r.stdout.trim().split("\n").pop() ?? "";
          fs.writeFileSync(file, last + "\n");
        }
        run[stage] = JSON.parse(fs.readFileSync(file, "utf8"));
      }
      runs.push(run);
    }
    const figures = seedFigures(runs);
    fs.writeFileSync(path.join(outDir, "summary.json"), JSON.stringify({ date: new Date().toISOString().slice(0, 10), seeds, figures }, null, 2) + "\n");
    out(args.markdown ? markdownTable(figures) : JSON.stringify(figures, null, 2));
  },
};

export const main = commandMain(SEEDS);

if (require.main === module) runAsScript(main, { exit: true });
