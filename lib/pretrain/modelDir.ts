/**
 * One loader for every model directory a learner may point a tool at: a course checkpoint (as
 * pretrain writes), or a Hugging Face directory (config.json + model.safetensors) in GPT-2's
 * layout (GPT-2 small, or what `npm run export` wrote) or Llama's (chapter 10's models).
 */
import * as fs from "fs";
import * as path from "path";
import { checkpointExists } from "./checkpoint";
import { COURSE_TOKENIZER_FILE, HF_CONFIG_FILE, HF_WEIGHTS_FILE, importHfGpt2, readHfConfig } from "./hfGpt2";
import { importHfLlama } from "./hfLlama";
import { disposeParams, loadPretrained, type PretrainedModel } from "./pretrain";
import { GPT2_VOCAB_SIZE, gpt2Tokenizer } from "../tokens/gpt2Tokenizer";
import type { Tokenizer } from "../tokens/tokenizer";
import { loadTokenizer } from "../tokens/tokenizerFiles";

/**
 * The model in `dir` with its tokenizer: a checkpoint's own, else the course's
 * tokenizer.course.json beside Hugging Face weights, else GPT-2's BPE (the model must then have
 * GPT-2's 50,257-token vocabulary).
 */
export function loadModelDir(dir: string): PretrainedModel {
  if (!checkpointExists(dir) && !fs.existsSync(path.join(dir, HF_CONFIG_FILE)) && fs.existsSync(path.join(dir, HF_WEIGHTS_FILE))) {
    throw new Error(`${dir}: ${HF_WEIGHTS_FILE} without ${HF_CONFIG_FILE}: a Hugging Face model directory needs its ${HF_CONFIG_FILE} beside the weights`);
  }
  if (checkpointExists(dir) || !fs.existsSync(path.join(dir, HF_CONFIG_FILE))) return loadPretrained(dir);
  const llama = (readHfConfig(dir).hfConfig as { model_type?: unknown } | null)?.model_type === "llama";
  const { params, config } = llama ? importHfLlama(dir) : importHfGpt2(dir);
  try {
    const courseTokenizer = path.join(dir, COURSE_TOKENIZER_FILE);
    let tokenizer: Tokenizer;
    if (fs.existsSync(courseTokenizer)) tokenizer = loadTokenizer(courseTokenizer);
    else if (config.vocabSize === GPT2_VOCAB_SIZE) tokenizer = gpt2Tokenizer();
    else throw new Error(`${dir}: no ${COURSE_TOKENIZER_FILE}, and the vocabulary (${config.vocabSize}) is not GPT-2's ${GPT2_VOCAB_SIZE}: which tokenizer goes with this model?`);
    if (tokenizer.vocabSize > config.vocabSize) throw new Error(`${dir}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${config.vocabSize}`);
    return { params, config, tokenizer, step: 0, dir, backend: llama ? "hf-llama" : "hf-gpt2" };
  } catch (e) {
    disposeParams(params);
    throw e;
  }
}
