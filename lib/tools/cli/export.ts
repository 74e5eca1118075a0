#!/usr/bin/env node
/**
 * Export a course checkpoint in Hugging Face's layout, the way out to the PyTorch stack:
 *
 *   node lib/dist/tools/cli/export.js --checkpoint build/artifacts/pretrained --out build/hf-gpt2 [--format hf-gpt2|hf-llama]
 *
 * Writes config.json + model.safetensors (GPT2LMHeadModel's names and Conv1D orientation, or for
 * a model with chapter 10's RMSNorm, SwiGLU and RoPE LlamaForCausalLM's: lib/pretrain/hfLlama.ts)
 * and the tokenizer: GPT-2's vocab.json + merges.txt when the model uses GPT-2's tokenizer,
 * otherwise the course tokenizer's own file, tokenizer.course.json (load it with
 * `loadTokenizer` from @llm-course/lib; transformers has no class for it).
 */
import * as fs from "fs";
import * as path from "path";
import { COURSE_TOKENIZER_FILE, exportHfGpt2, HF_CONFIG_FILE, HF_WEIGHTS_FILE, hfTokenizerFiles } from "../../pretrain/hfGpt2";
import { exportHfLlama, isLlamaLayout } from "../../pretrain/hfLlama";
import { artifactPath, projectPath } from "../../core/paths";
import { checkpointExists } from "../../pretrain/checkpoint";
import { disposeParams, loadPretrained } from "../../pretrain/pretrain";
import { checkWritable, Command, Env, fail, loadOrFail, runAsScript, commandMain, UsageError } from "./cli";

interface ExportArgs {
  checkpoint: string;
  out?: string;
  format?: "hf-gpt2" | "hf-llama";
  force: boolean;
}

const EXPORT: Command<ExportArgs> = {
  name: "export",
  summary: "Write a checkpoint to DIR as Hugging Face GPT-2 or Llama: config.json, model.safetensors and the tokenizer files. Prints the written files as JSON.",
  options: {
    out: { kind: "string", value: "DIR", help: "where to write (required)" },
    checkpoint: { kind: "string", value: "DIR", default: (env: Env) => artifactPath("pretrained", env), help: "the course checkpoint" },
    format: { kind: "choice", choices: ["hf-gpt2", "hf-llama"], defaultText: "hf-llama for a model with RMSNorm, SwiGLU and RoPE, else hf-gpt2", help: "the layout" },
    force: { kind: "boolean", help: "replace the model already in --out (its tokenizer files too)" },
  },
  validate(args) {
    if (args.out === undefined) throw new UsageError("missing --out DIR");
    checkWritable(args.out, "--out", "directory");
    if (path.resolve(args.out) === path.resolve(args.checkpoint)) throw new UsageError(`--out is the same directory as --checkpoint (${projectPath(args.out)}); give another --out`);
    const held = [HF_CONFIG_FILE, HF_WEIGHTS_FILE, COURSE_TOKENIZER_FILE].find((f) => fs.existsSync(path.join(args.out!, f)));
    if (!args.force && (held !== undefined || checkpointExists(args.out))) {
      throw new UsageError(`--out ${projectPath(args.out)} already holds a model (${held ?? "a course checkpoint"}): replace it with --force, or give another --out`);
    }
  },
  backend: "quiet",
  async run(args, { out }) {
    const model = loadOrFail("the checkpoint", () => loadPretrained(args.checkpoint));
    try {
      const format = args.format ?? (isLlamaLayout(model.config) ? "hf-llama" : "hf-gpt2");
      const write = format === "hf-llama" ? exportHfLlama : exportHfGpt2;
      let files: string[];
      try {
        files = write(args.out!, model.params, model.config, { tokenizerFiles: hfTokenizerFiles(model.tokenizer) });
      } catch (e) {
        return fail(`--format ${format}: ${(e as Error).message}`);
      }
      out(JSON.stringify({ format, checkpoint: projectPath(model.dir), out: projectPath(args.out!), tokenizer: model.tokenizer.type, files: files.map(projectPath) }));
    } finally {
      disposeParams(model.params);
    }
  },
};

export const main = commandMain(EXPORT);

if (require.main === module) runAsScript(main, { exit: true });
