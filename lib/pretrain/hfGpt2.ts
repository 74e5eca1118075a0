/**
 * The course's GPT ⇄ Hugging Face transformers' GPT2LMHeadModel (a directory with
 * config.json + model.safetensors that `GPT2LMHeadModel.from_pretrained(dir)` loads).
 *
 * The course names its parameters as GPT2LMHeadModel does, minus the `transformer.` prefix,
 * in the same Conv1D orientation (y = x·W, W [in, out]), so the mapping is a rename:
 *
 *   course                         HF checkpoint (save_pretrained)      shape
 *   wte.weight                     transformer.wte.weight               [V, C]
 *   wpe.weight                     transformer.wpe.weight               [n_positions, C]
 *   h.{i}.ln_1.weight / .bias      transformer.h.{i}.ln_1.weight/bias   [C]
 *   h.{i}.attn.c_attn.weight       transformer.h.{i}.attn.c_attn.weight [C, 3C]  (.bias [3C])
 *   h.{i}.attn.c_proj.weight       transformer.h.{i}.attn.c_proj.weight [C, C]   (.bias [C])
 *   h.{i}.ln_2.weight / .bias      transformer.h.{i}.ln_2.weight/bias   [C]
 *   h.{i}.mlp.c_fc.weight          transformer.h.{i}.mlp.c_fc.weight    [C, 4C]  (.bias [4C])
 *   h.{i}.mlp.c_proj.weight        transformer.h.{i}.mlp.c_proj.weight  [4C, C]  (.bias [C])
 *   ln_f.weight / .bias            transformer.ln_f.weight/bias         [C]
 *   lm_head.weight (untied only)   lm_head.weight                       [V, C]
 *
 * With a tied head (GPT-2), lm_head.weight IS wte.weight, and save_pretrained does not store
 * it. Older uploads, like the original `gpt2` repository's model.safetensors, store the
 * names WITHOUT `transformer.` (from_pretrained adds the base model prefix when missing)
 * and carry each block's causal-mask buffers `h.{i}.attn.bias` [1, 1, n_positions,
 * n_positions] and `h.{i}.attn.masked_bias` (constants, not parameters). Import accepts both
 * layouts and skips those buffers; export writes the save_pretrained layout.
 *
 * HF's GPT-2 always has biases: exporting a model with `bias: false` writes zero biases
 * (the same function), and importing gives `bias: true`.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { writeFileAtomic } from "../core/atomic";
import type { GPTConfig } from "../gpt/gpt";
import type { BPETokenizer } from "../tokens/bpe";
import { GPT2_END_OF_TEXT_ID, GPT2_VOCAB_SIZE } from "../tokens/gpt2Tokenizer";
import type { Tokenizer } from "../tokens/tokenizer";
import { tokenizerToJSON } from "../tokens/tokenizerFiles";
import { SafeTensor, SafeTensors, bf16ToNumber, decodeSafetensors, encodeSafetensors, f16ToNumber } from "../core/safetensors";

/** The course's model config (lib/gpt/gpt.ts); the name says which side of the mapping it is. */
export type HfGpt2ModelConfig = GPTConfig;

/** Prefix of the base model's parameters in GPT2LMHeadModel's state dict. */
export const HF_GPT2_PREFIX = "transformer.";
export const HF_CONFIG_FILE = "config.json";
export const HF_WEIGHTS_FILE = "model.safetensors";

const isTied = (c: HfGpt2ModelConfig) => c.tiedHead !== false;

function checkModelConfig(config: HfGpt2ModelConfig, where: string): void {
  if (config === null || typeof config !== "object") throw new Error(`${where}: expected a model config object, got ${String(config)}`);
  for (const key of ["vocabSize", "blockSize", "nLayer", "nHead", "nEmbd"] as const) {
    const v = config[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new Error(`${where}: config.${key} must be a positive integer, got ${String(v)}`);
  }
  if (config.nEmbd % config.nHead !== 0) throw new Error(`${where}: config.nEmbd ${config.nEmbd} is not divisible by config.nHead ${config.nHead}`);
  if (typeof config.dropout !== "number" || !(config.dropout >= 0 && config.dropout < 1)) {
    throw new Error(`${where}: config.dropout must be in [0, 1), got ${String(config.dropout)}`);
  }
  const modern = [config.norm === "rmsnorm" && "RMSNorm", config.mlp === "swiglu" && "SwiGLU", config.positions === "rope" && "RoPE",
    (config.nKvHead ?? config.nHead) !== config.nHead && "grouped-query attention"].filter(Boolean);
  if (modern.length > 0) throw new Error(`${where}: a model with ${modern.join(", ")} is not GPT-2's layout; export it as Llama (lib/pretrain/hfLlama.ts, npm run export -- --format hf-llama)`);
}

/**
 * Every tensor of GPT2LMHeadModel's checkpoint for this config, in its state-dict order:
 * [HF name, course name, shape]. Biases are always there (HF's GPT-2 has them).
 */
export function hfGpt2TensorList(config: HfGpt2ModelConfig): Array<[hfName: string, courseName: string, shape: number[]]> {
  checkModelConfig(config, "hfGpt2TensorList");
  const { vocabSize: V, blockSize: T, nLayer: L, nEmbd: C } = config;
  const out: Array<[string, string, number[]]> = [];
  const add = (name: string, shape: number[]) => out.push([HF_GPT2_PREFIX + name, name, shape]);
  add("wte.weight", [V, C]);
  add("wpe.weight", [T, C]);
  for (let i = 0; i < L; i++) {
    const h = `h.${i}`;
    add(`${h}.ln_1.weight`, [C]);
    add(`${h}.ln_1.bias`, [C]);
    add(`${h}.attn.c_attn.weight`, [C, 3 * C]);
    add(`${h}.attn.c_attn.bias`, [3 * C]);
    add(`${h}.attn.c_proj.weight`, [C, C]);
    add(`${h}.attn.c_proj.bias`, [C]);
    add(`${h}.ln_2.weight`, [C]);
    add(`${h}.ln_2.bias`, [C]);
    add(`${h}.mlp.c_fc.weight`, [C, 4 * C]);
    add(`${h}.mlp.c_fc.bias`, [4 * C]);
    add(`${h}.mlp.c_proj.weight`, [4 * C, C]);
    add(`${h}.mlp.c_proj.bias`, [C]);
  }
  add("ln_f.weight", [C]);
  add("ln_f.bias", [C]);
  if (!isTied(config)) out.push(["lm_head.weight", "lm_head.weight", [V, C]]);
  return out;
}

export const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * The course's parameters as GPT2LMHeadModel's checkpoint tensors (F32, save_pretrained
 * names, state-dict order). Throws on a missing parameter, a wrong shape or an extra one.
 */
export function toHfGpt2(params: Record<string, tf.Tensor>, config: HfGpt2ModelConfig): SafeTensors {
  const where = "toHfGpt2";
  checkModelConfig(config, where);
  if (params === null || typeof params !== "object") throw new Error(`${where}: expected a record of parameters, got ${String(params)}`);
  const out: SafeTensors = {};
  const used = new Set<string>();
  for (const [hfName, name, shape] of hfGpt2TensorList(config)) {
    const p = params[name];
    if (p === undefined) {
      // Without biases, the course has no bias tensors; HF's layers have them: write zeros.
      if (!config.bias && name.endsWith(".bias")) {
        out[hfName] = { dtype: "F32", shape, data: new Float32Array(shape.reduce((n, d) => n * d, 1)) };
        continue;
      }
      throw new Error(`${where}: parameter "${name}" is missing (expected shape [${shape}])`);
    }
    if (!(p instanceof tf.Tensor)) throw new Error(`${where}: parameter "${name}" must be a tf.Tensor, got ${typeof p}`);
    if (!sameShape(p.shape, shape)) throw new Error(`${where}: parameter "${name}" has shape [${p.shape}], expected [${shape}]`);
    if (p.dtype !== "float32") throw new Error(`${where}: parameter "${name}" has dtype ${p.dtype}, expected float32`);
    out[hfName] = { dtype: "F32", shape, data: Float32Array.from(p.dataSync() as Float32Array) };
    used.add(name);
  }
  for (const name of Object.keys(params)) {
    if (!used.has(name)) throw new Error(`${where}: parameter "${name}" is not part of a GPT-2 model with this config`);
  }
  return out;
}

export interface HfGpt2ConfigOptions {
  /** Id of the beginning-of-text token; default 50256 when vocabSize is GPT-2's 50257, else null. */
  bosTokenId?: number | null;
  /** Id of the end-of-text token; same default. */
  eosTokenId?: number | null;
}

/**
 * The config.json of GPT2LMHeadModel for this model: GPT2Config's fields, with the course's
 * sizes, GPT-2's fixed choices (tanh GELU "gelu_new", LayerNorm ε 1e-5, MLP width 4C) and
 * the dropout on embeddings, residual branches and attention.
 */
export function hfGpt2Config(config: HfGpt2ModelConfig, opts: HfGpt2ConfigOptions = {}): Record<string, unknown> {
  checkModelConfig(config, "hfGpt2Config");
  const gpt2Vocab = config.vocabSize === GPT2_VOCAB_SIZE;
  const bos = opts.bosTokenId !== undefined ? opts.bosTokenId : gpt2Vocab ? GPT2_END_OF_TEXT_ID : null;
  const eos = opts.eosTokenId !== undefined ? opts.eosTokenId : gpt2Vocab ? GPT2_END_OF_TEXT_ID : null;
  for (const [field, id] of [["bosTokenId", bos], ["eosTokenId", eos]] as const) {
    if (id !== null && !(Number.isInteger(id) && id >= 0 && id < config.vocabSize)) {
      throw new Error(`hfGpt2Config: ${field} must be null or an integer in [0, ${config.vocabSize}), got ${String(id)}`);
    }
  }
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: config.vocabSize,
    n_positions: config.blockSize,
    n_ctx: config.blockSize,
    n_embd: config.nEmbd,
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_inner: null,
    activation_function: "gelu_new",
    resid_pdrop: config.dropout,
    embd_pdrop: config.dropout,
    attn_pdrop: config.dropout,
    layer_norm_epsilon: 1e-5,
    initializer_range: 0.02,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    summary_type: "cls_index",
    summary_use_proj: true,
    summary_activation: null,
    summary_proj_to_labels: true,
    summary_first_dropout: 0.1,
    bos_token_id: bos,
    eos_token_id: eos,
    tie_word_embeddings: isTied(config),
    use_cache: true,
    torch_dtype: "float32",
  };
}

/** A course model config from a GPT-2 config.json object; `source` names it in errors. */
export function courseConfigFromHfGpt2(configJson: unknown, source = "config.json"): HfGpt2ModelConfig {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (configJson === null || typeof configJson !== "object" || Array.isArray(configJson)) fail(`expected a JSON object, got ${JSON.stringify(configJson)}`);
  const c = configJson as Record<string, unknown>;
  if (c.model_type !== undefined && c.model_type !== "gpt2") fail(`model_type must be "gpt2", got ${JSON.stringify(c.model_type)}`);
  const int = (field: string, fallback?: string): number => {
    let v = c[field];
    if (v === undefined && fallback !== undefined) v = c[fallback];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) fail(`field "${field}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const vocabSize = int("vocab_size");
  const blockSize = int("n_positions", "n_ctx");
  const nEmbd = int("n_embd");
  const nLayer = int("n_layer");
  const nHead = int("n_head");
  if (nEmbd % nHead !== 0) fail(`n_embd ${nEmbd} is not divisible by n_head ${nHead}`);
  const act = c.activation_function ?? "gelu_new";
  if (act !== "gelu_new" && act !== "gelu_pytorch_tanh") fail(`activation_function must be "gelu_new" (GPT-2's tanh GELU, the course's), got ${JSON.stringify(act)}`);
  if (c.n_inner !== undefined && c.n_inner !== null && c.n_inner !== 4 * nEmbd) fail(`n_inner must be null or ${4 * nEmbd} (4 × n_embd), got ${JSON.stringify(c.n_inner)}`);
  if (c.layer_norm_epsilon !== undefined && c.layer_norm_epsilon !== 1e-5) fail(`layer_norm_epsilon must be 1e-5 (the course's LayerNorm), got ${JSON.stringify(c.layer_norm_epsilon)}`);
  for (const flag of ["scale_attn_by_inverse_layer_idx", "add_cross_attention"]) {
    if (c[flag] === true) fail(`${flag} true is not supported by the course's GPT`);
  }
  if (c.scale_attn_weights === false) fail("scale_attn_weights false is not supported by the course's GPT");
  const drop = c.resid_pdrop ?? 0.1; // GPT2Config's default
  if (typeof drop !== "number" || !(drop >= 0 && drop < 1)) fail(`field "resid_pdrop" must be a number in [0, 1), got ${JSON.stringify(drop)}`);
  const tie = c.tie_word_embeddings ?? true;
  if (typeof tie !== "boolean") fail(`field "tie_word_embeddings" must be true or false, got ${JSON.stringify(tie)}`);
  return { vocabSize, blockSize, nLayer, nHead, nEmbd, dropout: drop as number, bias: true, tiedHead: tie as boolean };
}

/** Causal-mask buffers of old GPT-2 checkpoints: constants, not parameters. */
const MASK_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;

export interface FromHfGpt2Result {
  /** The course's parameters (trainable variables, float32): dispose them when done. */
  params: Record<string, tf.Variable>;
  config: HfGpt2ModelConfig;
}

/** A float tensor of a checkpoint as float32 values (F16, BF16, F64 converted). */
export function toFloat32(t: SafeTensor, what: string): Float32Array {
  switch (t.dtype) {
    case "F32":
      return t.data as Float32Array;
    case "F64":
      return Float32Array.from(t.data as Float64Array);
    case "F16":
      return Float32Array.from(t.data as Uint16Array, f16ToNumber);
    case "BF16":
      return Float32Array.from(t.data as Uint16Array, bf16ToNumber);
    default:
      throw new Error(`${what} has dtype ${t.dtype}, expected a float type (F32, F16, BF16 or F64)`);
  }
}

/**
 * The course's parameters and config from GPT2LMHeadModel's checkpoint tensors and its
 * config.json object. Accepts names with or without `transformer.`, skips the attention
 * mask buffers, ignores a stored lm_head.weight when the head is tied; F16, BF16 and F64
 * tensors are converted to float32. `source` and `configSource` name the inputs in errors.
 */
export function fromHfGpt2(tensors: SafeTensors, configJson: unknown, source = HF_WEIGHTS_FILE, configSource = HF_CONFIG_FILE): FromHfGpt2Result {
  const config = courseConfigFromHfGpt2(configJson, configSource);
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (tensors === null || typeof tensors !== "object") fail(`expected a record of tensors, got ${String(tensors)}`);
  // Normalize names to the course's (without "transformer.").
  const byCourseName = new Map<string, [string, SafeTensor]>();
  for (const [name, t] of Object.entries(tensors)) {
    const course = name.startsWith(HF_GPT2_PREFIX) ? name.slice(HF_GPT2_PREFIX.length) : name;
    const other = byCourseName.get(course);
    if (other !== undefined) fail(`tensor "${name}" and tensor "${other[0]}" are the same parameter, stored twice`);
    byCourseName.set(course, [name, t]);
  }
  // Checked before the tensor list is built: config.json may declare a billion layers.
  const layersHeld = [...byCourseName.keys()].filter((n) => /^h\.\d+\.ln_1\.weight$/.test(n)).length;
  if (config.nLayer > layersHeld) fail(`${configSource} declares n_layer ${config.nLayer}, but the weights hold ${layersHeld} layers`);
  const expected = hfGpt2TensorList(config);
  const expectedNames = new Set(expected.map(([, n]) => n));
  for (const [course, [name]] of byCourseName) {
    if (expectedNames.has(course) || MASK_BUFFER.test(course)) continue;
    if (course === "lm_head.weight" && isTied(config)) continue; // tied: it is wte.weight
    fail(`unexpected tensor "${name}" (not a parameter of GPT2LMHeadModel with n_layer ${config.nLayer}, tie_word_embeddings ${isTied(config)})`);
  }
  // Check everything before creating any variable, so an error leaks nothing.
  const data: Array<[string, number[], Float32Array]> = [];
  for (const [hfName, course, shape] of expected) {
    const entry = byCourseName.get(course);
    if (entry === undefined) fail(`tensor "${hfName}" is missing (expected shape [${shape}])`);
    const [name, t] = entry!;
    if (!Array.isArray(t.shape) || !sameShape(t.shape, shape)) fail(`tensor "${name}" has shape [${t.shape}], expected [${shape}]`);
    data.push([course, shape, toFloat32(t, `${source}: tensor "${name}"`)]);
  }
  const params: Record<string, tf.Variable> = {};
  for (const [course, shape, values] of data) {
    const init = tf.tensor(values, shape, "float32");
    params[course] = tf.variable(init, true, undefined, "float32");
    init.dispose();
  }
  return { params, config };
}

export interface ExportHfGpt2Options extends HfGpt2ConfigOptions {
  /**
   * Other files to write into the directory, by file name: the tokenizer's (tokenizer.json,
   * vocab.json, merges.txt, tokenizer_config.json, …), a generation_config.json…
   */
  tokenizerFiles?: Record<string, string | Uint8Array>;
}

/**
 * Write `dir/config.json` and `dir/model.safetensors` (plus the given tokenizer files), each
 * atomically, so that transformers' `GPT2LMHeadModel.from_pretrained(dir)` loads the model.
 * Returns the paths written.
 */
export function exportHfGpt2(dir: string, params: Record<string, tf.Tensor>, config: HfGpt2ModelConfig, opts: ExportHfGpt2Options = {}): string[] {
  checkTokenizerFiles(opts.tokenizerFiles ?? {}, "exportHfGpt2");
  return writeHfModelDir(dir, toHfGpt2(params, config), hfGpt2Config(config, opts), opts.tokenizerFiles ?? {});
}

/** Tokenizer files to write beside the weights: plain file names, string or bytes. */
export function checkTokenizerFiles(files: Record<string, unknown>, who: string): void {
  for (const [name, content] of Object.entries(files)) {
    if (name !== path.basename(name) || name === "" || name === "." || name === ".." || name.includes("\\")) {
      throw new Error(`${who}: tokenizer file name "${name}" must be a plain file name (no directories)`);
    }
    if (name === HF_CONFIG_FILE || name === HF_WEIGHTS_FILE) throw new Error(`${who}: tokenizer file name "${name}" is written by ${who} itself`);
    if (typeof content !== "string" && !(content instanceof Uint8Array)) {
      throw new Error(`${who}: tokenizer file "${name}" must be a string or a Uint8Array, got ${typeof content}`);
    }
  }
}

/**
 * Write a Hugging Face model directory: model.safetensors, the tokenizer files, then
 * config.json (last: a directory with a config is complete), each atomically. Returns the paths.
 */
export function writeHfModelDir(dir: string, tensors: SafeTensors, hfConfig: Record<string, unknown>, files: Record<string, string | Uint8Array>): string[] {
  const bytes = encodeSafetensors(tensors, { format: "pt" }); // transformers requires format "pt"
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const write = (name: string, content: string | Uint8Array) => {
    const file = path.join(dir, name);
    writeFileAtomic(file, content);
    written.push(file);
  };
  write(HF_WEIGHTS_FILE, bytes);
  for (const [name, content] of Object.entries(files)) write(name, content);
  // The tokenizer of a model exported here before goes with it: loadModelDir prefers
  // tokenizer.course.json, so a stale one would decode these weights with the wrong vocabulary.
  for (const stale of TOKENIZER_FILE_NAMES) if (!(stale in files)) fs.rmSync(path.join(dir, stale), { force: true });
  write(HF_CONFIG_FILE, JSON.stringify(hfConfig, null, 2) + "\n");
  return written;
}

export interface ImportedHfGpt2 extends FromHfGpt2Result {
  /** The config.json object as read. */
  hfConfig: Record<string, unknown>;
  /** The safetensors "__metadata__" map. */
  metadata: Record<string, string>;
}

/** Read a GPT-2 model directory (config.json + model.safetensors) into course parameters. */
export function importHfGpt2(dir: string): ImportedHfGpt2 {
  const { hfConfig, tensors, metadata, configFile, weightsFile } = readHfModelDir(dir, (c, file) => courseConfigFromHfGpt2(c, file));
  const { params, config } = fromHfGpt2(tensors, hfConfig, weightsFile, configFile);
  return { params, config, hfConfig, metadata };
}

/** The config.json of a Hugging Face model directory, parsed (one line naming the file if it cannot be). */
export function readHfConfig(dir: string): { hfConfig: Record<string, unknown>; configFile: string } {
  const configFile = path.join(dir, HF_CONFIG_FILE);
  let text: string;
  try {
    text = fs.readFileSync(configFile, "utf8");
  } catch (err) {
    throw new Error(`${configFile}: cannot read the model config: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let hfConfig: unknown;
  try {
    hfConfig = JSON.parse(text);
  } catch (err) {
    throw new Error(`${configFile}: not valid JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  return { hfConfig: hfConfig as Record<string, unknown>, configFile }; // the model's reader checks its fields
}

/**
 * Read a Hugging Face model directory: config.json, checked by `checkConfig` first (a clear
 * error before reading a large file), then model.safetensors.
 */
export function readHfModelDir(dir: string, checkConfig: (hfConfig: unknown, configFile: string) => unknown) {
  const { hfConfig, configFile } = readHfConfig(dir);
  const weightsFile = path.join(dir, HF_WEIGHTS_FILE);
  checkConfig(hfConfig, configFile);
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(weightsFile);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === "ENOENT" && fs.existsSync(path.join(dir, "pytorch_model.bin")) ? " (only pytorch_model.bin is there: convert it to safetensors)" : "";
    throw new Error(`${weightsFile}: cannot read the weights: ${code ?? (err as Error).message}${hint}`);
  }
  const { tensors, metadata } = decodeSafetensors(bytes, weightsFile);
  return { hfConfig, tensors, metadata, configFile, weightsFile };
}

// ---------------------------------------------------------------------------------------
// A model directory with its tokenizer

/** A course tokenizer's file beside Hugging Face weights (it has no Hugging Face equivalent). */
export const COURSE_TOKENIZER_FILE = "tokenizer.course.json";

/** Every tokenizer file an export may write; one of an earlier export that this one does not write is removed. */
const TOKENIZER_FILE_NAMES = [COURSE_TOKENIZER_FILE, "vocab.json", "merges.txt"];

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

/**
 * The tokenizer files to ship next to the weights: GPT-2's own (vocab.json, merges.txt) for the
 * GPT-2 tokenizer, which Hugging Face's GPT2Tokenizer reads; the course's JSON
 * (COURSE_TOKENIZER_FILE) for the course's tokenizers, which loadModelDir reads.
 */
export function hfTokenizerFiles(tokenizer: Tokenizer): Record<string, string> {
  if (tokenizer.type === "gpt2") return gpt2TokenizerFiles(tokenizer as BPETokenizer);
  return { [COURSE_TOKENIZER_FILE]: JSON.stringify(tokenizerToJSON(tokenizer)) + "\n" };
}
