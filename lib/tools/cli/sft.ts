#!/usr/bin/env node
/**
 * Supervised fine-tuning from the command line (the same `finetune` as notebook 06).
 *
 *   node lib/dist/tools/cli/sft.js --checkpoint build/artifacts/pretrained [--data data/sft/train.jsonl]
 *        [--max-iters N] [--lora R] [--out DIR] [--json]
 *
 * Loads the pretrained checkpoint, adds the chat tokens, fine-tunes on the training file
 * (validation loss on its sibling val.jsonl), scores the base model and the fine-tuned one on
 * the sibling test.jsonl (normalised exact match, and whether the reply ends with <|end|>),
 * and saves the fine-tuned model (LoRA: merged) as a checkpoint loadPretrained reads.
 * Progress goes to stderr; with --json the last stdout line is {base, sft, ...}.
 */
import * as path from "path";
import { countParameters } from "../../gpt/gpt";
import { artifactPath, baseModelDir, dataDir, projectPath } from "../../core/paths";
import { disposeParams, loadPretrained, PretrainedModel } from "../../pretrain/pretrain";
import { encodeSFTData, evaluateSFT, finetune, loadSFTData, prepareChatModel, SFTEvalResult, sftSplitFiles } from "../../finetune/sft";
import { formatSeconds } from "../../pretrain/trainer";
import { Command, Env, fail, loadOrFail, jsonOption, optionParser, runAsScript, commandMain, smokeOr, outApartFrom } from "./cli";

export interface SFTArgs {
  checkpoint: string;
  data: string;
  maxIters: number;
  lora?: number;
  out: string;
  json: boolean;
  batchSize: number;
  lr?: number;
  seed?: number;
  evalLimit?: number;
  blockSize?: number;
}

const SFT: Command<SFTArgs> = {
  name: "sft",
  summary: `Fine-tune a pretrained GPT on conversations (lib/finetune/sft.ts): full fine-tuning (--lora R: LoRA adapters of rank R
instead) on packed rows, validation loss on val.jsonl beside --data, the base and the fine-tuned model scored on
test.jsonl beside it (exact match, and whether the reply ends with <|end|>); saves the fine-tuned model (LoRA: merged).`,
  options: {
    checkpoint: { kind: "string", value: "DIR", default: (env: Env) => baseModelDir(env), help: "the pretrained model (COURSE_BASE_MODEL=own or smoke mode: yours from npm run train)" },
    data: { kind: "string", value: "FILE", default: path.join(dataDir, "sft", "train.jsonl"), help: "training conversations" },
    "max-iters": { kind: "integer", value: "N", min: 0, default: smokeOr(20, 800), help: "training steps" },
    lora: { kind: "integer", value: "R", min: 1, help: "LoRA adapters of rank R instead of full fine-tuning" },
    out: { kind: "string", value: "DIR", default: (env: Env) => artifactPath("sft", env), help: "where the fine-tuned model is saved" },
    "batch-size": { kind: "integer", value: "N", min: 1, default: smokeOr(8, 12), help: "packed rows per step" },
    lr: { kind: "number", value: "LR", min: 0, minExclusive: true, defaultText: "3e-3, LoRA 5e-3", help: "learning rate" },
    seed: { kind: "integer", value: "S", min: 0, help: "random seed" },
    "eval-limit": { kind: "integer", value: "N", min: 1, defaultText: "all; smoke 16", help: "test questions to score" },
    "block-size": { kind: "integer", value: "N", min: 1, defaultText: "the checkpoint's; smoke: under 32 grows to 64", help: "grow the context (new positions start at the mean position embedding)" },
    json: jsonOption("{base: {exactMatch, endsProperly, n}, sft: {...}, mode, rank, trainableParams, iterations, seconds, checkpoint, ...}"),
  },
  notes: () => "COURSE_SMOKE=1: a few iterations and 16 test questions (seconds).",
  validate: outApartFrom("checkpoint"),
  backend: "announce",
  async run(args, { err, smoke, seconds, backend }) {
    let base: PretrainedModel | undefined;
    try {
      const files = sftSplitFiles(path.resolve(args.data));
      const train = loadSFTData(files.train);
      const val = loadSFTData(files.val);
      const test = loadSFTData(files.test);
      base = loadOrFail("the checkpoint", () => loadPretrained(args.checkpoint));
      let model;
      try {
        model = prepareChatModel(base, { blockSize: args.blockSize ?? (smoke && base.config.blockSize < 32 ? 64 : undefined) });
      } catch (e) {
        fail(`the checkpoint ${projectPath(args.checkpoint)} does not fit the chat template: ${(e as Error).message}`);
      }
      // Every example must encode with the checkpoint's tokenizer (errors name file:line).
      for (const set of [train, val, test]) encodeSFTData(model.tokenizer, set, model.config.blockSize);
      const limit = args.evalLimit ?? (smoke ? 16 : undefined);
      const testSet = limit !== undefined ? test.slice(0, limit) : test;
      const baseEval = evaluateSFT(model.params, model.config, model.tokenizer, testSet);
      err(`base model: exact match ${pct(baseEval.exactMatch)}, ends with <|end|> ${pct(baseEval.endsProperly)} on ${baseEval.n} test questions`);
      const maxIters = args.maxIters;
      const r = await finetune({
        model, train, val, lora: args.lora, maxIters, batchSize: args.batchSize, pack: true, lr: args.lr, seed: args.seed,
        evalIters: smoke ? 2 : 10, outDir: args.out, chart: false, progress: "auto", log: (l) => err(l),
      });
      const sftEval = evaluateSFT(r.params, r.config, r.tokenizer, testSet);
      err(`fine-tuned: exact match ${pct(sftEval.exactMatch)}, ends with <|end|> ${pct(sftEval.endsProperly)}`);
      const s = r.summary;
      const result = {
        base: metrics(baseEval), sft: metrics(sftEval), ...s, seconds: seconds(),
        checkpoint: s.checkpoint === null ? null : projectPath(s.checkpoint),
        parameters: countParameters(r.params), data: projectPath(files.train), test: projectPath(files.test), backend: backend.name,
      };
      disposeParams(r.params);
      disposeParams(model.params);
      return {
        json: result,
        lines: [
          `${s.mode === "lora" ? `LoRA rank ${s.rank}` : "full fine-tuning"}: ${s.trainableParams.toLocaleString("en")} trainable parameters, ${s.iterations} steps in ${formatSeconds(s.seconds)} (${Math.round(s.msPerStep)} ms/step)`,
          `test exact match: base ${pct(baseEval.exactMatch)} → SFT ${pct(sftEval.exactMatch)}; ends with <|end|>: base ${pct(baseEval.endsProperly)} → SFT ${pct(sftEval.endsProperly)} (${sftEval.n} questions)`,
          `checkpoint: ${s.checkpoint === null ? "none" : projectPath(s.checkpoint)}`,
        ],
      };
    } finally {
      if (base) disposeParams(base.params);
    }
  },
};

const metrics = (e: SFTEvalResult) => ({ exactMatch: e.exactMatch, endsProperly: e.endsProperly, n: e.n, byKind: e.byKind });

export const parseSFTArgs: (argv: readonly string[], env?: Env) => SFTArgs = optionParser(SFT);

export const main = commandMain(SFT);

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

if (require.main === module) runAsScript(main);
