#!/usr/bin/env node
/**
 * Pretrain a GPT from the command line (the same `pretrain` as notebook 05).
 *
 *   node lib/dist/tools/cli/train.js --data shakespeare --tokenizer char --preset nanogpt-cpu --max-iters 2000 --json
 *
 * Progress (a bar with loss and ETA on a terminal, lines otherwise) goes to stderr; the
 * result to stdout: a human summary, or with --json one JSON line (the last line).
 * A checkpoint is saved every eval interval, so Ctrl-C loses little: run again with --resume.
 */
import { loadCorpus } from "../../tokens/corpus";
import { GPT_PRESETS, GPTConfig, GPTPresetName } from "../../gpt/gpt";
import { artifactPath, projectPath } from "../../core/paths";
import { disposeParams, pretrain, PretrainOptions, PRETRAIN_BPE_VOCAB } from "../../pretrain/pretrain";
import { isSmoke } from "../../core/smoke";
import { formatSeconds } from "../../pretrain/trainer";
import { Command, Env, Options, optionParser, runAsScript, commandMain, smokeOr, UsageError, outApartFrom } from "./cli";
import { checkpointExists } from "../../pretrain/checkpoint";
import { threadsProblem } from "../../core/backend";

const TRAIN_OPTIONS: Options = {
  data: { kind: "string", value: "moby-dick|shakespeare|FILE", default: "moby-dick", help: "the corpus" },
  tokenizer: { kind: "choice", choices: ["char", "bpe"], default: "char", help: "character or byte-pair tokens" },
  preset: { kind: "choice", choices: Object.keys(GPT_PRESETS), value: "NAME", default: smokeOr("tiny", "nanogpt-cpu"), help: `model size: ${Object.keys(GPT_PRESETS).join(", ")}` },
  "max-iters": { kind: "integer", value: "N", min: 0, default: smokeOr(20, 2000), help: "training steps" },
  "batch-size": { kind: "integer", value: "N", min: 1, default: smokeOr(4, 12), help: "rows per step" },
  "block-size": { kind: "integer", value: "N", min: 1, defaultText: "the preset's", help: "context length" },
  norm: { kind: "choice", choices: ["layernorm", "rmsnorm"], defaultText: "the preset's", help: "normalisation (chapter 10)" },
  mlp: { kind: "choice", choices: ["gelu", "swiglu"], defaultText: "the preset's", help: "the MLP (chapter 10)" },
  positions: { kind: "choice", choices: ["learned", "rope"], defaultText: "the preset's", help: "learned position table or rotary embeddings (chapter 10)" },
  "kv-heads": { kind: "integer", value: "N", min: 1, defaultText: "the preset's", help: "key/value heads: fewer than the heads is grouped-query attention (chapter 10)" },
  "no-bias": { kind: "boolean", help: "no biases in the linear layers and norms (chapter 10)" },
  lr: { kind: "number", value: "LR", min: 0, defaultText: "1e-3; smoke 1e-2", help: "peak learning rate (AdamW 0.9, 0.99, weight decay 0.1, clip 1.0)" },
  "min-lr": { kind: "number", value: "LR", min: 0, defaultText: "lr/10", help: "where the cosine schedule ends" },
  warmup: { kind: "integer", value: "N", min: 0, defaultText: "100", help: "warm-up steps" },
  "eval-interval": { kind: "integer", value: "N", min: 1, help: "steps between evaluations (and checkpoints)" },
  "eval-iters": { kind: "integer", value: "N", min: 1, default: smokeOr(2, 20), help: "batches per evaluation" },
  "bpe-vocab-size": { kind: "integer", value: "N", min: 256, default: smokeOr(300, PRETRAIN_BPE_VOCAB), help: "BPE vocabulary" },
  out: { kind: "string", value: "DIR", default: (env: Env) => artifactPath("pretrained", env), help: "checkpoint directory (COURSE_ARTIFACTS moves it)" },
  resume: { kind: "boolean", help: "continue the checkpoint in --out" },
  force: { kind: "boolean", help: "replace a checkpoint already in --out (without it, the run refuses to start)" },
  seed: { kind: "integer", value: "S", min: 0, help: "random seed" },
  threads: { kind: "integer", value: "N", min: 1, defaultText: "1 where a BLAS splits products across the cores, else 2 on a 2+-core machine with wasm", help: "threads sharing each batch (data parallelism)" },
  json: { kind: "boolean", help: "the last line of stdout is {trainLoss, valLoss, iterations, seconds, msPerStep, backend, checkpoint, ...}" },
};

export interface TrainArgs {
  data: string;
  tokenizer: "char" | "bpe";
  preset: GPTPresetName;
  maxIters: number;
  batchSize: number;
  blockSize?: number;
  norm?: "layernorm" | "rmsnorm";
  mlp?: "gelu" | "swiglu";
  positions?: "learned" | "rope";
  kvHeads?: number;
  noBias: boolean;
  lr?: number;
  minLr?: number;
  warmup?: number;
  evalInterval?: number;
  evalIters: number;
  bpeVocabSize: number;
  out: string;
  resume: boolean;
  force: boolean;
  seed?: number;
  threads?: number;
  json: boolean;
  help: boolean;
}

/** The pretrain options of a command line (smoke mode: tiny sizes unless a flag says otherwise). */
export function trainOptions(args: TrainArgs, env: Env = process.env): PretrainOptions {
  const smoke = isSmoke(env);
  const overrides: Partial<GPTConfig> = {};
  if (args.blockSize !== undefined) overrides.blockSize = args.blockSize;
  if (args.norm !== undefined) overrides.norm = args.norm;
  if (args.mlp !== undefined) overrides.mlp = args.mlp;
  if (args.positions !== undefined) overrides.positions = args.positions;
  if (args.kvHeads !== undefined) overrides.nKvHead = args.kvHeads;
  if (args.noBias) overrides.bias = false;
  const maxIters = args.maxIters;
  return {
    data: args.data,
    tokenizer: args.tokenizer,
    bpeVocabSize: args.bpeVocabSize,
    preset: args.preset,
    overrides,
    maxIters,
    batchSize: args.batchSize,
    lr: args.lr ?? (smoke ? 1e-2 : undefined),
    minLr: args.minLr,
    warmup: args.warmup,
    evalInterval: args.evalInterval ?? (smoke ? 10 : undefined),
    evalIters: args.evalIters,
    seed: args.seed,
    threads: args.threads,
    outDir: args.out,
    // Save at every evaluation too: an interrupted run loses little (--resume continues it).
    checkpointInterval: args.evalInterval ?? (smoke ? 10 : Math.max(1, Math.round(maxIters / 8))),
    resume: args.resume,
    chart: false,
  };
}

const TRAIN: Command<TrainArgs> = {
  name: "train",
  summary: "Pretrain a GPT (lib/pretrain/pretrain.ts): cosine learning rate after the warm-up, a checkpoint at every evaluation.",
  options: TRAIN_OPTIONS,
  notes: () => "COURSE_SMOKE=1: tiny model, 20 iterations on a 50,000-character slice (seconds).",
  backend: "announce",
  validate(args) {
    if (args.resume && args.force) throw new UsageError("--resume continues the checkpoint in --out, --force replaces it: give one of them");
    outApartFrom()({ out: args.out });
    const threads = args.threads === undefined ? undefined : threadsProblem(args.threads, "--threads");
    if (threads !== undefined) throw new UsageError(threads);
    if (!args.resume && !args.force && checkpointExists(args.out)) {
      throw new UsageError(`--out ${projectPath(args.out)} already holds a checkpoint: continue it with --resume, replace it with --force, or give another --out`);
    }
  },
  async run(args, { err, env }) {
    const opts = trainOptions(args, env);
    if (isSmoke(env)) {
      // Smoke: a slice of the corpus is enough (tokenizing, BPE training in milliseconds).
      opts.text = (await loadCorpus(args.data)).slice(0, 50_000);
    }
    const r = await pretrain({ ...opts, log: (l) => err(l), progress: "auto" });
    disposeParams(r.params);
    const s = r.summary;
    const { config, ...rest } = s;
    return {
      json: { ...rest, config },
      lines: [
        `${s.iterations} iterations (${s.itersThisRun} in this run) in ${formatSeconds(s.seconds)}, ${Math.round(s.msPerStep)} ms/step on ${s.backend}: ` +
          `train loss ${s.trainLoss.toFixed(4)}, val loss ${s.valLoss.toFixed(4)} (perplexity ${s.perplexity.toFixed(2)}); checkpoint ${s.checkpoint}`,
      ],
    };
  },
};

export const parseTrainArgs: (argv: readonly string[], env?: Env) => TrainArgs = optionParser(TRAIN);

export const main = commandMain(TRAIN);

if (require.main === module) runAsScript(main);
