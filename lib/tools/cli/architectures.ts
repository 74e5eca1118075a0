#!/usr/bin/env node
/**
 * Chapter 10's measured comparison: nanoGPT's CPU recipe on Tiny Shakespeare (nanogpt-cpu's
 * size, 2,000 steps, 200 validation batches at the end) for GPT-2's block, each of today's
 * changes alone, and all of them together (the llama preset), over several seeds.
 *
 *   node lib/dist/tools/cli/architectures.js [--seeds 1,2] [--iters 2000] [--out build/architectures] [--markdown] [--save FILE]
 *
 * Each run is `npm run train` with the variant's flags and --json; its summary is kept in
 * <out>/<variant>-seed-<s>.json (not run again while it exists: delete it to redo the run).
 * Then the figures per variant (mean, min–max over the seeds) are printed and written to
 * <out>/summary.json; --save writes them where notebook 10 reads them (data/architectures.json).
 * Runs one after another, each on the default threads: time them on an otherwise idle machine.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { writeFileAtomic } from "../../core/atomic";
import { projectPath, repoRoot } from "../../core/paths";
import { Command, fail, runAsScript, commandMain, UsageError } from "./cli";
import { spread, type Spread } from "./seeds";

/** Each variant: what it changes from GPT-2's block, as train's flags. */
export const ARCHITECTURE_VARIANTS: ReadonlyArray<{ name: string; change: string; flags: string[] }> = [
  { name: "gpt-2", change: "GPT-2's block (nanogpt-cpu)", flags: [] },
  { name: "rmsnorm", change: "RMSNorm instead of LayerNorm", flags: ["--norm", "rmsnorm"] },
  { name: "swiglu", change: "SwiGLU MLP instead of GELU", flags: ["--mlp", "swiglu"] },
  { name: "rope", change: "rotary positions instead of a learned table", flags: ["--positions", "rope"] },
  { name: "gqa", change: "2 key/value heads for 4 query heads", flags: ["--kv-heads", "2"] },
  { name: "no-bias", change: "no biases", flags: ["--no-bias"] },
  { name: "llama", change: "all of them: the llama preset", flags: ["--preset", "llama"] },
];

type Summary = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface VariantFigures {
  name: string;
  change: string;
  valLoss: Spread;
  msPerStep: Spread;
  parameters: number;
  seeds: number[];
}

export interface ArchitectureComparison {
  date: string;
  command: string;
  iters: number;
  evalBatches: number;
  data: string;
  backend: string;
  variants: VariantFigures[];
}

/** The figures of each variant over its seeds' train summaries. */
export function architectureFigures(runs: ReadonlyArray<{ variant: string; seed: number; summary: Summary }>): VariantFigures[] {
  return ARCHITECTURE_VARIANTS.filter((v) => runs.some((r) => r.variant === v.name)).map((v) => {
    const mine = runs.filter((r) => r.variant === v.name);
    return {
      name: v.name,
      change: v.change,
      valLoss: spread(mine.map((r) => r.summary.valLoss)),
      msPerStep: spread(mine.map((r) => r.summary.msPerStep)),
      parameters: mine[0].summary.parameters,
      seeds: mine.map((r) => r.seed),
    };
  });
}

/** The README's table. */
export function architectureMarkdown(c: ArchitectureComparison): string {
  const base = c.variants.find((v) => v.name === "gpt-2");
  const rows = c.variants.map((v) => {
    const d = base && v !== base ? ` (${v.valLoss.mean - base.valLoss.mean >= 0 ? "+" : "−"}${Math.abs(v.valLoss.mean - base.valLoss.mean).toFixed(3)})` : "";
    return `| ${v.change} | ${v.valLoss.mean.toFixed(3)}${d} | ${v.valLoss.values.map((x) => x.toFixed(3)).join(" / ")} | ${v.parameters.toLocaleString("en-US")} |`;
  });
  // No step times: runs one after another are timed in different conditions; `npm run bench` compares speeds in one sitting.
  return [
    `| Block | Val loss (mean) | Per seed (${c.variants[0]?.seeds.join(", ")}) | Parameters |`,
    "|---|---|---|---|",
    ...rows,
  ].join("\n");
}

interface ArchitecturesArgs {
  seeds: number[];
  iters: number;
  evalIters: number;
  only?: string;
  out: string;
  save?: string;
  markdown: boolean;
}

const ARCHITECTURES: Command<ArchitecturesArgs> = {
  name: "architectures",
  summary: "Trains GPT-2's block, each of today's changes alone and all together on Tiny Shakespeare over several seeds (chapter 10), and prints the table.",
  options: {
    seeds: { kind: "integer", value: "S", list: true, min: 0, default: [1, 2], help: "seeds" },
    iters: { kind: "integer", value: "N", min: 1, default: 2000, help: "training steps per run" },
    "eval-iters": { kind: "integer", value: "N", min: 1, default: 200, help: "validation batches of the final evaluation" },
    only: { kind: "string", value: "NAME,…", help: `variants to run: ${ARCHITECTURE_VARIANTS.map((v) => v.name).join(", ")} (default: all)` },
    out: { kind: "string", value: "DIR", default: "build/architectures", help: "where the runs' summaries and checkpoints go" },
    save: { kind: "string", value: "FILE", help: "also write the figures here (notebook 10 reads data/architectures.json)" },
    markdown: { kind: "boolean", help: "print the README's table" },
  },
  validate(args) {
    for (const name of args.only?.split(",") ?? []) {
      if (!ARCHITECTURE_VARIANTS.some((v) => v.name === name)) throw new UsageError(`--only: unknown variant "${name}"; expected one of ${ARCHITECTURE_VARIANTS.map((v) => v.name).join(", ")}`);
    }
  },
  async run(args, { out, err }) {
    const dir = path.resolve(args.out);
    fs.mkdirSync(dir, { recursive: true });
    const train = path.join(repoRoot, "lib", "dist", "tools", "cli", "train.js");
    const variants = ARCHITECTURE_VARIANTS.filter((v) => args.only === undefined || args.only.split(",").includes(v.name));
    const runs: Array<{ variant: string; seed: number; summary: Summary }> = [];
    let backend = "";
    for (const v of variants) {
      for (const seed of args.seeds) {
        const file = path.join(dir, `${v.name}-seed-${seed}.json`);
        if (!fs.existsSync(file)) {
          err(`architectures: ${v.name}, seed ${seed} …`);
          const argv = [
            train, "--data", "shakespeare", "--tokenizer", "char", "--max-iters", String(args.iters), "--eval-interval", String(args.iters),
            "--eval-iters", String(args.evalIters), "--seed", String(seed), "--out", path.join(dir, `${v.name}-seed-${seed}`), "--force", "--json", ...v.flags,
          ];
          const r = spawnSync(process.execPath, argv, { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
          const last = (r.stdout ?? "").trim().split("\n").pop() ?? "";
          if (r.status !== 0 || !last.startsWith("{")) fail(`architectures: ${v.name}, seed ${seed}: train exited with ${r.status}`, 1);
          writeFileAtomic(file, last + "\n");
        }
        const summary = JSON.parse(fs.readFileSync(file, "utf8")) as Summary;
        backend = summary.backend;
        runs.push({ variant: v.name, seed, summary });
      }
    }
    const comparison: ArchitectureComparison = {
      date: new Date().toISOString().slice(0, 10),
      command: `npm run architectures -- --seeds ${args.seeds.join(",")} --iters ${args.iters} --eval-iters ${args.evalIters}`,
      iters: args.iters,
      evalBatches: args.evalIters,
      data: "shakespeare",
      backend,
      variants: architectureFigures(runs),
    };
    writeFileAtomic(path.join(dir, "summary.json"), JSON.stringify(comparison, null, 1) + "\n");
    if (args.save !== undefined) {
      writeFileAtomic(path.resolve(args.save), JSON.stringify(comparison, null, 1) + "\n");
      err(`architectures: figures written to ${projectPath(path.resolve(args.save))}`);
    }
    out(args.markdown ? architectureMarkdown(comparison) : JSON.stringify(comparison));
  },
};

export const main = commandMain(ARCHITECTURES);

if (require.main === module) runAsScript(main, { exit: true });
