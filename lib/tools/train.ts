#!/usr/bin/env node
/**
 * Pretrain a GPT from the command line (the same `pretrain` as notebook 05).
 *
 *   node lib/dist/tools/train.js --data shakespeare --tokenizer char --preset nanogpt-cpu --max-iters 2000 --json
 *
 * Progress (a bar with loss and ETA on a terminal, lines otherwise) goes to stderr; the
 * result to stdout: a human summary, or with --json one JSON line (the last line).
 * A checkpoint is saved every eval interval, so Ctrl-C loses little: run again with --resume.
 */
import * as path from "path";
import { initBackend } from "../backend";
import { loadCorpus } from "../corpus";
import { GPT_PRESETS, GPTConfig, GPTPresetName } from "../gpt";
import { artifactPath } from "../paths";
import { disposeParams, pretrain, PretrainOptions } from "../pretrain";
import { isSmoke } from "../smoke";
import { formatSeconds } from "../trainer";

const USAGE = `Usage: train [--data moby-dick|shakespeare|FILE] [--tokenizer char|bpe] [--preset ${Object.keys(GPT_PRESETS).join("|")}]
             [--max-iters N] [--batch-size N] [--block-size N] [--lr LR] [--min-lr LR] [--warmup N]
             [--eval-interval N] [--eval-iters N] [--bpe-vocab-size N] [--out DIR] [--resume] [--seed S] [--threads N] [--json]
  Pretrain a GPT (lib/pretrain.ts). Defaults: moby-dick, char, nanogpt-cpu, 2000 iterations,
  batch 12, lr 1e-3 (warm-up 100, cosine to lr/10), AdamW (0.9, 0.99), weight decay 0.1, clip 1.0,
  --out ${path.relative(process.cwd(), artifactPath("pretrained")) || "."} (COURSE_ARTIFACTS moves it).
  --threads: threads sharing each batch (data parallelism; default 2 on a 2+-core machine with wasm).
  COURSE_SMOKE=1: tiny model, 20 iterations on a 50,000-character slice (seconds). --json: the last line of stdout is
  {trainLoss, valLoss, iterations, seconds, msPerStep, backend, checkpoint, ...}.`;

/** A problem with the command line: one line on stderr, exit code 2. */
export class UsageError extends Error {}

export interface TrainArgs {
  data: string;
  tokenizer: "char" | "bpe";
  preset: GPTPresetName;
  maxIters?: number;
  batchSize?: number;
  blockSize?: number;
  lr?: number;
  minLr?: number;
  warmup?: number;
  evalInterval?: number;
  evalIters?: number;
  bpeVocabSize?: number;
  out: string;
  resume: boolean;
  seed?: number;
  threads?: number;
  json: boolean;
  help: boolean;
}

export function parseTrainArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): TrainArgs {
  const args: TrainArgs = {
    data: "moby-dick", tokenizer: "char", preset: isSmoke(env) ? "tiny" : "nanogpt-cpu",
    out: artifactPath("pretrained", env), resume: false, json: false, help: false,
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const int = (i: number, flag: string, min: number): number => {
    const v = value(i, flag);
    const n = Number(v);
    if (!/^\s*-?\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got "${v}"`);
    return n;
  };
  const num = (i: number, flag: string): number => {
    const v = value(i, flag);
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a number >= 0, got "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--data": args.data = value(i++, a); break;
      case "--tokenizer": {
        const t = value(i++, a);
        if (t !== "char" && t !== "bpe") throw new UsageError(`--tokenizer must be char or bpe, got "${t}"`);
        args.tokenizer = t;
        break;
      }
      case "--preset": {
        const p = value(i++, a);
        if (!(p in GPT_PRESETS)) throw new UsageError(`--preset must be one of ${Object.keys(GPT_PRESETS).join(", ")}, got "${p}"`);
        args.preset = p as GPTPresetName;
        break;
      }
      case "--max-iters": args.maxIters = int(i++, a, 0); break;
      case "--batch-size": args.batchSize = int(i++, a, 1); break;
      case "--block-size": args.blockSize = int(i++, a, 1); break;
      case "--lr": args.lr = num(i++, a); break;
      case "--min-lr": args.minLr = num(i++, a); break;
      case "--warmup": args.warmup = int(i++, a, 0); break;
      case "--eval-interval": args.evalInterval = int(i++, a, 1); break;
      case "--eval-iters": args.evalIters = int(i++, a, 0); break;
      case "--bpe-vocab-size": args.bpeVocabSize = int(i++, a, 256); break;
      case "--out": args.out = value(i++, a); break;
      case "--resume": args.resume = true; break;
      case "--seed": args.seed = int(i++, a, 0); break;
      case "--threads": args.threads = int(i++, a, 1); break;
      case "--json": args.json = true; break;
      case "-h":
      case "--help": args.help = true; break;
      default:
        throw new UsageError(a.startsWith("-") ? `unknown option ${a}` : `unexpected argument "${a}"`);
    }
  }
  return args;
}

/** The pretrain options of a command line (smoke mode: tiny sizes unless a flag says otherwise). */
export function trainOptions(args: TrainArgs, env: NodeJS.ProcessEnv = process.env): PretrainOptions {
  const smoke = isSmoke(env);
  const overrides: Partial<GPTConfig> = {};
  if (args.blockSize !== undefined) overrides.blockSize = args.blockSize;
  const maxIters = args.maxIters ?? (smoke ? 20 : 2000);
  return {
    data: args.data,
    tokenizer: args.tokenizer,
    bpeVocabSize: args.bpeVocabSize ?? (smoke ? 300 : undefined),
    preset: args.preset,
    overrides,
    maxIters,
    batchSize: args.batchSize ?? (smoke ? 4 : 12),
    lr: args.lr ?? (smoke ? 1e-2 : undefined),
    minLr: args.minLr,
    warmup: args.warmup,
    evalInterval: args.evalInterval ?? (smoke ? 10 : undefined),
    evalIters: args.evalIters ?? (smoke ? 2 : 20),
    seed: args.seed,
    threads: args.threads,
    outDir: args.out,
    // Save at every evaluation too: an interrupted run loses little (--resume continues it).
    checkpointInterval: args.evalInterval ?? (smoke ? 10 : Math.max(1, Math.round(maxIters / 8))),
    resume: args.resume,
    chart: false,
  };
}

export async function main(
  argv: readonly string[],
  out: (line: string) => void = (l) => process.stdout.write(l + "\n"),
  err: (line: string) => void = (l) => process.stderr.write(l + "\n"),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let args: TrainArgs;
  try {
    args = parseTrainArgs(argv, env);
  } catch (e) {
    err(`train: ${(e as Error).message} (see --help)`);
    return 2;
  }
  if (args.help) {
    out(USAGE);
    return 0;
  }
  try {
    const opts = trainOptions(args, env);
    if (isSmoke(env)) {
      // Smoke: a slice of the corpus is enough (tokenizing, BPE training in milliseconds).
      opts.text = (await loadCorpus(args.data)).slice(0, 50_000);
    }
    const info = await initBackend({ quiet: true });
    err(info.line);
    const r = await pretrain({ ...opts, log: (l) => err(l), progress: "auto" });
    disposeParams(r.params);
    const s = r.summary;
    if (args.json) {
      const { config, ...rest } = s;
      out(JSON.stringify({ ...rest, config }));
    } else {
      out(
        `${s.iterations} iterations (${s.itersThisRun} in this run) in ${formatSeconds(s.seconds)}, ${Math.round(s.msPerStep)} ms/step on ${s.backend}: ` +
          `train loss ${s.trainLoss.toFixed(4)}, val loss ${s.valLoss.toFixed(4)} (perplexity ${s.perplexity.toFixed(2)}); checkpoint ${s.checkpoint}`,
      );
    }
    return 0;
  } catch (e) {
    err(`train: ${String((e as Error).message ?? e).split("\n")[0]}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
