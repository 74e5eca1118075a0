#!/usr/bin/env node
/**
 * Generate text from a pretrained checkpoint, streaming it as it comes.
 *
 *   node lib/dist/tools/sample.js --checkpoint build/artifacts/pretrained --prompt "Call me" --tokens 200
 *
 * DIR may also be a Hugging Face GPT-2 model directory (config.json + model.safetensors),
 * e.g. GPT-2 small's weights on disk: it is read into the course's model, with GPT-2's
 * tokenizer from the tokens chapter.
 * The prompt and the continuation go to stdout; the speed (tokens/s) to stderr.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend";
import { checkpointExists } from "../checkpoint";
import { GPT2_VOCAB_SIZE, gpt2Tokenizer } from "../gpt2Tokenizer";
import { HF_CONFIG_FILE, importHfGpt2 } from "../hfGpt2";
import { loadTokenizer, Tokenizer } from "../tokenizer";
import { COURSE_TOKENIZER_FILE } from "./export";
import { artifactPath } from "../paths";
import { disposeParams, loadPretrained, PretrainedModel } from "../pretrain";
import { textGenerate } from "../sampling";
import { isSmoke } from "../smoke";

const USAGE = `Usage: sample --prompt "TEXT" [--checkpoint DIR] [--tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
  Continue TEXT with the GPT saved in DIR (default: the pretrained checkpoint, ${artifactPath("pretrained")}),
  or in a Hugging Face GPT-2 directory (config.json + model.safetensors: GPT-2 small, or npm run export's output).
  Defaults: 200 tokens (20 with COURSE_SMOKE=1), temperature 0.8, all tokens (no top-k / top-p), seed 0.
  Temperature 0 = greedy. The text streams to stdout; tokens/s is reported on stderr.`;

export class UsageError extends Error {}

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

export function parseSampleArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): SampleArgs {
  const args: SampleArgs = {
    checkpoint: artifactPath("pretrained", env), tokens: isSmoke(env) ? 20 : 200, temperature: 0.8, seed: 0, help: false,
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const int = (i: number, flag: string, min: number): number => {
    const v = value(i, flag);
    const n = Number(v);
    if (!/^\s*-?\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got "${v}"`);
    return n;
  };
  const num = (i: number, flag: string, ok: (n: number) => boolean, expected: string): number => {
    const v = value(i, flag);
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || !ok(n)) throw new UsageError(`${flag} must be ${expected}, got "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--checkpoint": args.checkpoint = value(i++, a); break;
      case "--prompt": args.prompt = value(i++, a); break;
      case "--tokens": args.tokens = int(i++, a, 1); break;
      case "--temperature": args.temperature = num(i++, a, (n) => n >= 0, "a number >= 0"); break;
      case "--top-k": args.topK = int(i++, a, 1); break;
      case "--top-p": args.topP = num(i++, a, (n) => n > 0 && n <= 1, "a number in (0, 1]"); break;
      case "--seed": args.seed = int(i++, a, 0); break;
      case "-h":
      case "--help": args.help = true; break;
      default:
        throw new UsageError(a.startsWith("-") ? `unknown option ${a}` : `unexpected argument "${a}" (put the prompt after --prompt, in quotes)`);
    }
  }
  if (!args.help && args.prompt === undefined) throw new UsageError('missing --prompt "TEXT"');
  if (!args.help && args.prompt === "") throw new UsageError("--prompt is empty; give at least one character of context");
  return args;
}

export async function main(
  argv: readonly string[],
  write: (text: string) => void = (t) => process.stdout.write(t),
  err: (line: string) => void = (l) => process.stderr.write(l + "\n"),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let args: SampleArgs;
  try {
    args = parseSampleArgs(argv, env);
  } catch (e) {
    err(`sample: ${(e as Error).message} (see --help)`);
    return 2;
  }
  if (args.help) {
    write(USAGE + "\n");
    return 0;
  }
  await initBackend({ quiet: true });
  let model: PretrainedModel;
  try {
    model = loadModelDir(args.checkpoint);
  } catch (e) {
    err(`sample: cannot load the checkpoint: ${oneLine(e)}`);
    return 2;
  }
  try {
    try {
      model.tokenizer.encode(args.prompt!);
    } catch (e) {
      err(`sample: the prompt cannot be encoded with the checkpoint's ${model.tokenizer.type} tokenizer: ${oneLine(e)}`);
      return 2;
    }
    write(args.prompt!);
    const t0 = performance.now();
    textGenerate(model.params, model.config, model.tokenizer, args.prompt!, {
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
    return 0;
  } catch (e) {
    err(`sample: ${oneLine(e)}`);
    return 1;
  } finally {
    disposeParams(model.params);
  }
}

/**
 * A course checkpoint (as pretrain writes), or a Hugging Face GPT-2 model directory
 * (config.json + model.safetensors, e.g. GPT-2 small or what `npm run export` wrote) with
 * its tokenizer: the course's tokenizer.course.json when present, else GPT-2's own BPE
 * (the model must then have GPT-2's 50,257-token vocabulary).
 */
export function loadModelDir(dir: string): PretrainedModel {
  if (checkpointExists(dir) || !fs.existsSync(path.join(dir, HF_CONFIG_FILE))) return loadPretrained(dir);
  const { params, config } = importHfGpt2(dir);
  try {
    const courseTokenizer = path.join(dir, COURSE_TOKENIZER_FILE);
    let tokenizer: Tokenizer;
    if (fs.existsSync(courseTokenizer)) tokenizer = loadTokenizer(courseTokenizer);
    else if (config.vocabSize === GPT2_VOCAB_SIZE) tokenizer = gpt2Tokenizer();
    else throw new Error(`${dir}: no ${COURSE_TOKENIZER_FILE}, and the vocabulary (${config.vocabSize}) is not GPT-2's ${GPT2_VOCAB_SIZE}: which tokenizer goes with this model?`);
    if (tokenizer.vocabSize > config.vocabSize) throw new Error(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${config.vocabSize}`);
    return { params, config, tokenizer, step: 0, dir, backend: "hf-gpt2" };
  } catch (e) {
    disposeParams(params);
    throw e;
  }
}

function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
