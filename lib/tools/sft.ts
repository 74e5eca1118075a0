#!/usr/bin/env node
/**
 * Supervised fine-tuning from the command line (the same `finetune` as notebook 06).
 *
 *   node lib/dist/tools/sft.js --checkpoint build/artifacts/pretrained [--data data/sft/train.jsonl]
 *        [--max-iters N] [--lora R] [--out DIR] [--json]
 *
 * Loads the pretrained checkpoint, adds the chat tokens, fine-tunes on the training file
 * (validation loss on its sibling val.jsonl), scores the base model and the fine-tuned one on
 * the sibling test.jsonl (normalised exact match, and whether the reply ends with <|end|>),
 * and saves the fine-tuned model (LoRA: merged) as a checkpoint loadPretrained reads.
 * Progress goes to stderr; with --json the last stdout line is {base, sft, ...}.
 */
import * as path from "path";
import { initBackend } from "../backend";
import { countParameters } from "../gpt";
import { artifactPath, baseModelDir, dataDir, projectPath, shippedBaseModelDir } from "../paths";
import { disposeParams, loadPretrained, PretrainedModel } from "../pretrain";
import { encodeSFTData, evaluateSFT, finetune, loadSFTData, prepareChatModel, SFTEvalResult, sftSplitFiles } from "../sft";
import { isSmoke } from "../smoke";
import { formatSeconds } from "../trainer";

const USAGE = `Usage: sft [--checkpoint DIR] [--data FILE] [--max-iters N] [--lora R] [--out DIR] [--json]
           [--batch-size N] [--lr LR] [--seed S] [--eval-limit N] [--block-size N]
  Fine-tune a pretrained GPT on conversations (lib/sft.ts). Defaults: --checkpoint the course's base model,
  ${rel(shippedBaseModelDir)} (COURSE_BASE_MODEL=own: yours from npm run train, ${rel(artifactPath("pretrained"))}; smoke mode: own),
  --data ${rel(path.join(dataDir, "sft", "train.jsonl"))} (val.jsonl and test.jsonl beside it are the validation and test sets),
  full fine-tuning (--lora R: LoRA adapters of rank R instead), 800 steps of 12 packed rows, lr 3e-3 (LoRA 5e-3),
  --out ${rel(artifactPath("sft"))}.
  --block-size N grows the model's context (new positions start at the mean position embedding).
  COURSE_SMOKE=1: a few iterations and 16 test questions (seconds; a context under 32 grows to 64). --json: the last line of stdout is
  {base: {exactMatch, endsProperly, n}, sft: {...}, mode, rank, trainableParams, iterations, seconds, checkpoint, ...}.`;

function rel(p: string): string {
  return path.relative(process.cwd(), p) || ".";
}

export class UsageError extends Error {}

export interface SFTArgs {
  checkpoint: string;
  data: string;
  maxIters?: number;
  lora?: number;
  out: string;
  json: boolean;
  batchSize?: number;
  lr?: number;
  seed?: number;
  evalLimit?: number;
  blockSize?: number;
  help: boolean;
}

export function parseSFTArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): SFTArgs {
  const args: SFTArgs = {
    checkpoint: baseModelDir(env), data: path.join(dataDir, "sft", "train.jsonl"),
    out: artifactPath("sft", env), json: false, help: false,
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
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--checkpoint": args.checkpoint = value(i++, a); break;
      case "--data": args.data = value(i++, a); break;
      case "--max-iters": args.maxIters = int(i++, a, 0); break;
      case "--lora": args.lora = int(i++, a, 1); break;
      case "--out": args.out = value(i++, a); break;
      case "--json": args.json = true; break;
      case "--batch-size": args.batchSize = int(i++, a, 1); break;
      case "--seed": args.seed = int(i++, a, 0); break;
      case "--eval-limit": args.evalLimit = int(i++, a, 1); break;
      case "--block-size": args.blockSize = int(i++, a, 1); break;
      case "--lr": {
        const v = value(i++, a);
        const n = Number(v);
        if (v.trim() === "" || !Number.isFinite(n) || n <= 0) throw new UsageError(`--lr must be a number > 0, got "${v}"`);
        args.lr = n;
        break;
      }
      case "-h":
      case "--help": args.help = true; break;
      default:
        throw new UsageError(a.startsWith("-") ? `unknown option ${a}` : `unexpected argument "${a}"`);
    }
  }
  return args;
}

const metrics = (e: SFTEvalResult) => ({ exactMatch: e.exactMatch, endsProperly: e.endsProperly, n: e.n, byKind: e.byKind });

export async function main(
  argv: readonly string[],
  out: (line: string) => void = (l) => process.stdout.write(l + "\n"),
  err: (line: string) => void = (l) => process.stderr.write(l + "\n"),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let args: SFTArgs;
  try {
    args = parseSFTArgs(argv, env);
  } catch (e) {
    err(`sft: ${(e as Error).message} (see --help)`);
    return 2;
  }
  if (args.help) {
    out(USAGE);
    return 0;
  }
  const smoke = isSmoke(env);
  let base: PretrainedModel | undefined;
  try {
    const t0 = performance.now();
    const info = await initBackend({ quiet: true });
    err(info.line);
    const files = sftSplitFiles(path.resolve(args.data));
    const train = loadSFTData(files.train);
    const val = loadSFTData(files.val);
    const test = loadSFTData(files.test);
    try {
      base = loadPretrained(args.checkpoint);
    } catch (e) {
      err(`sft: cannot load the checkpoint: ${(e as Error).message}`);
      return 2;
    }
    let model;
    try {
      model = prepareChatModel(base, { blockSize: args.blockSize ?? (smoke && base.config.blockSize < 32 ? 64 : undefined) });
    } catch (e) {
      err(`sft: the checkpoint ${projectPath(args.checkpoint)} does not fit the chat template: ${(e as Error).message}`);
      return 2;
    }
    // Every example must encode with the checkpoint's tokenizer (errors name file:line).
    for (const set of [train, val, test]) encodeSFTData(model.tokenizer, set, model.config.blockSize);
    const limit = args.evalLimit ?? (smoke ? 16 : undefined);
    const testSet = limit !== undefined ? test.slice(0, limit) : test;
    const baseEval = evaluateSFT(model.params, model.config, model.tokenizer, testSet);
    err(`base model: exact match ${pct(baseEval.exactMatch)}, ends with <|end|> ${pct(baseEval.endsProperly)} on ${baseEval.n} test questions`);
    const maxIters = args.maxIters ?? (smoke ? 20 : 800);
    const r = await finetune({
      model, train, val, lora: args.lora, maxIters, batchSize: args.batchSize ?? (smoke ? 8 : 12), pack: true, lr: args.lr, seed: args.seed,
      evalIters: smoke ? 2 : 10, outDir: args.out, chart: false, progress: "auto", log: (l) => err(l),
    });
    const sftEval = evaluateSFT(r.params, r.config, r.tokenizer, testSet);
    err(`fine-tuned: exact match ${pct(sftEval.exactMatch)}, ends with <|end|> ${pct(sftEval.endsProperly)}`);
    const s = r.summary;
    const result = {
      base: metrics(baseEval), sft: metrics(sftEval), ...s, seconds: (performance.now() - t0) / 1000,
      checkpoint: s.checkpoint === null ? null : projectPath(s.checkpoint),
      parameters: countParameters(r.params), data: projectPath(files.train), test: projectPath(files.test), backend: info.name,
    };
    disposeParams(r.params);
    disposeParams(model.params);
    if (args.json) out(JSON.stringify(result));
    else {
      out(`${s.mode === "lora" ? `LoRA rank ${s.rank}` : "full fine-tuning"}: ${s.trainableParams.toLocaleString("en")} trainable parameters, ${s.iterations} steps in ${formatSeconds(s.seconds)} (${Math.round(s.msPerStep)} ms/step)`);
      out(`test exact match: base ${pct(baseEval.exactMatch)} → SFT ${pct(sftEval.exactMatch)}; ends with <|end|>: base ${pct(baseEval.endsProperly)} → SFT ${pct(sftEval.endsProperly)} (${sftEval.n} questions)`);
      out(`checkpoint: ${s.checkpoint === null ? "none" : projectPath(s.checkpoint)}`);
    }
    return 0;
  } catch (e) {
    err(`sft: ${String((e as Error).message ?? e).split("\n")[0]}`);
    return 1;
  } finally {
    if (base) disposeParams(base.params);
  }
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
