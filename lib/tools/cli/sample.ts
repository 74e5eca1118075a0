#!/usr/bin/env node
/**
 * Generate text from a pretrained checkpoint, streaming it as it comes.
 *
 *   node lib/dist/tools/cli/sample.js --checkpoint build/artifacts/pretrained --prompt "Call me" --tokens 200
 *
 * DIR may also be a Hugging Face GPT-2 model directory (config.json + model.safetensors),
 * e.g. GPT-2 small's weights on disk: it is read into the course's model, with GPT-2's
 * tokenizer from the tokens chapter.
 * The prompt and the continuation go to stdout; the speed (tokens/s) to stderr.
 */
import * as tf from "@tensorflow/tfjs";
import { loadModelDir } from "../../pretrain/modelDir";
import { refuseRewardModel } from "../../rlhf/chat";
import { artifactPath } from "../../core/paths";
import { disposeParams } from "../../pretrain/pretrain";
import { textGenerate } from "../../gpt/sampling";
import { Command, Env, fail, loadOrFail, Options, parseOptions, runAsScript, streamingMain, UsageError, smokeOr } from "./cli";

const SAMPLE_OPTIONS: Options = {
  prompt: { kind: "string", value: '"TEXT"', help: "the text to continue (required)" },
  checkpoint: { kind: "string", value: "DIR", default: (env: Env) => artifactPath("pretrained", env), help: "a course checkpoint, or a Hugging Face GPT-2 directory (config.json + model.safetensors: GPT-2 small, or npm run export's output)" },
  tokens: { kind: "integer", value: "N", min: 1, default: smokeOr(20, 200), help: "tokens to generate" },
  temperature: { kind: "number", value: "T", min: 0, default: 0.8, help: "0 = greedy" },
  "top-k": { kind: "integer", value: "K", min: 1, defaultText: "all tokens", help: "sample among the K likeliest" },
  "top-p": { kind: "number", value: "P", min: 0, minExclusive: true, max: 1, defaultText: "1", help: "sample among the likeliest tokens holding P of the probability" },
  seed: { kind: "integer", value: "S", min: 0, default: 0, help: "random seed" },
};


export interface SampleArgs {
  checkpoint: string;
  prompt?: string;
  tokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  help: boolean;
}

const STRAY_HINT = "(put the prompt after --prompt, in quotes)";


const SAMPLE: Command<SampleArgs> = {
  name: "sample",
  summary: "Continue TEXT with a GPT, streaming it to stdout; tokens/s is reported on stderr.",
  options: SAMPLE_OPTIONS,
  strayHint: STRAY_HINT,
  validate(args) {
    if (args.prompt === undefined) throw new UsageError('missing --prompt "TEXT"');
    if (args.prompt === "") throw new UsageError("--prompt is empty; give at least one character of context");
  },
  backend: "quiet",
  async run(args, { write, err }) {
    const model = loadOrFail("the checkpoint", () => {
      const m = loadModelDir(args.checkpoint);
      try {
        refuseRewardModel(m.params, args.checkpoint);
      } catch (e) {
        tf.dispose(Object.values(m.params));
        throw e;
      }
      return m;
    });
    const prompt = args.prompt!;
    try {
      try {
        model.tokenizer.encode(prompt);
      } catch (e) {
        fail(`the prompt cannot be encoded with the checkpoint's ${model.tokenizer.type} tokenizer: ${(e as Error).message}`);
      }
      write(prompt);
      const t0 = performance.now();
      textGenerate(model.params, model.config, model.tokenizer, prompt, {
        maxNewTokens: args.tokens,
        temperature: args.temperature,
        topK: args.topK,
        topP: args.topP,
        seed: args.seed,
        onText: write,
      });
      const s = (performance.now() - t0) / 1000;
      write("\n");
      err(`sample: ${args.tokens} tokens in ${s.toFixed(2)} s (${(args.tokens / s).toFixed(1)} tokens/s) on ${tf.getBackend()}, step-${model.step} model from ${model.dir}`);
    } finally {
      disposeParams(model.params);
    }
  },
};

/** The options, checked as a run would check them (without starting it). */
export function parseSampleArgs(argv: readonly string[], env: Env = process.env): SampleArgs {
  const args = parseOptions<SampleArgs>(SAMPLE, argv, env);
  if (!args.help) SAMPLE.validate!(args);
  return args;
}

export const main = streamingMain(SAMPLE);

if (require.main === module) runAsScript(main);
