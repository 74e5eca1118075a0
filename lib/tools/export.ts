#!/usr/bin/env node
/**
 * Export a course checkpoint in Hugging Face's GPT-2 layout, the way out to the PyTorch stack:
 *
 *   node lib/dist/tools/export.js --checkpoint build/artifacts/pretrained --out build/hf-gpt2 --format hf-gpt2
 *
 * Writes config.json + model.safetensors (GPT2LMHeadModel names, Conv1D orientation, tied head)
 * and the tokenizer: GPT-2's vocab.json + merges.txt when the model uses GPT-2's tokenizer,
 * otherwise the course tokenizer's own file, tokenizer.course.json (load it with
 * `loadTokenizer` from @llm-course/lib; transformers has no class for it).
 */
import { parseArgs } from "util";
import { initBackend } from "../backend";
import { BPETokenizer } from "../bpe";
import { exportHfGpt2 } from "../hfGpt2";
import { artifactPath } from "../paths";
import { disposeParams, loadPretrained } from "../pretrain";
import { Tokenizer, tokenizerToJSON } from "../tokenizer";

const USAGE = `usage: export --out DIR [--checkpoint DIR] [--format hf-gpt2]
  Write the checkpoint (default ${artifactPath("pretrained")}) to DIR as Hugging Face GPT-2:
  config.json, model.safetensors and the tokenizer files. Prints the written files as JSON.`;

export const COURSE_TOKENIZER_FILE = "tokenizer.course.json";

/**
 * GPT-2's tokenizer files as Hugging Face's GPT2Tokenizer reads them: vocab.json maps each
 * token's display string (bytes through GPT-2's byte→unicode table) to its id; merges.txt lists
 * the merges in rank order, one "left right" pair per line after a version header.
 */
export function gpt2TokenizerFiles(tokenizer: BPETokenizer): Record<string, string> {
  const vocab: Record<string, number> = {};
  for (let id = 0; id < tokenizer.vocabSize; id++) vocab[tokenizer.idToToken(id)] = id;
  const merges = tokenizer.merges.map(([a, b]) => `${tokenizer.idToToken(a)} ${tokenizer.idToToken(b)}`);
  return {
    "vocab.json": JSON.stringify(vocab),
    "merges.txt": ["#version: 0.2", ...merges].join("\n") + "\n",
  };
}

/** The tokenizer files to ship next to the weights (see the header). */
export function tokenizerFiles(tokenizer: Tokenizer): Record<string, string> {
  if (tokenizer.type === "gpt2") return gpt2TokenizerFiles(tokenizer as BPETokenizer);
  return { [COURSE_TOKENIZER_FILE]: JSON.stringify(tokenizerToJSON(tokenizer)) + "\n" };
}

export async function main(
  argv: readonly string[],
  out: (line: string) => void = (l) => process.stdout.write(l + "\n"),
  err: (line: string) => void = (l) => process.stderr.write(l + "\n"),
): Promise<number> {
  let values: { checkpoint?: string; out?: string; format?: string; help?: boolean };
  try {
    values = parseArgs({
      args: [...argv],
      options: { checkpoint: { type: "string" }, out: { type: "string" }, format: { type: "string" }, help: { type: "boolean", short: "h" } },
    }).values;
    if (values.help) {
      out(USAGE);
      return 0;
    }
    if (values.out === undefined) throw new Error("missing --out DIR");
    if ((values.format ?? "hf-gpt2") !== "hf-gpt2") throw new Error(`--format must be hf-gpt2, got "${values.format}"`);
  } catch (e) {
    err(`export: ${(e as Error).message.split("\n")[0]}\n${USAGE}`);
    return 2;
  }
  await initBackend({ quiet: true });
  const checkpoint = values.checkpoint ?? artifactPath("pretrained");
  let model;
  try {
    model = loadPretrained(checkpoint);
  } catch (e) {
    err(`export: cannot load the checkpoint: ${(e as Error).message.split("\n")[0]}`);
    return 2;
  }
  try {
    const files = exportHfGpt2(values.out, model.params, model.config, { tokenizerFiles: tokenizerFiles(model.tokenizer) });
    out(JSON.stringify({ format: "hf-gpt2", checkpoint: model.dir, out: values.out, tokenizer: model.tokenizer.type, files }));
    return 0;
  } catch (e) {
    err(`export: ${(e as Error).message.split("\n")[0]}`);
    return 1;
  } finally {
    disposeParams(model.params);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
