/**
 * The course's GPT with chapter 10's options ⇄ Hugging Face transformers' LlamaForCausalLM
 * (a directory with config.json + model.safetensors that `LlamaForCausalLM.from_pretrained(dir)`
 * loads). Requires RMSNorm, SwiGLU and RoPE (what Llama is); any number of key/value heads.
 *
 * HF's linear layers store W as [out, in] (y = x·Wᵀ), the course's as [in, out] (y = x·W), so
 * every matrix is transposed; the course's one q|k|v matrix is cut into three:
 *
 *   course                          HF checkpoint                                  shape (HF)
 *   wte.weight                      model.embed_tokens.weight                      [V, C]
 *   h.{i}.ln_1.weight               model.layers.{i}.input_layernorm.weight        [C]
 *   h.{i}.attn.c_attn.weight        model.layers.{i}.self_attn.q_proj.weight       [H·D, C]   columns 0..C
 *     [C, C + 2·G·D]                model.layers.{i}.self_attn.k_proj.weight       [G·D, C]   then G·D
 *                                   model.layers.{i}.self_attn.v_proj.weight       [G·D, C]   then G·D
 *   h.{i}.attn.c_proj.weight        model.layers.{i}.self_attn.o_proj.weight       [C, C]
 *   h.{i}.ln_2.weight               model.layers.{i}.post_attention_layernorm.weight [C]
 *   h.{i}.mlp.c_gate.weight         model.layers.{i}.mlp.gate_proj.weight          [F, C]
 *   h.{i}.mlp.c_fc.weight           model.layers.{i}.mlp.up_proj.weight            [F, C]
 *   h.{i}.mlp.c_proj.weight         model.layers.{i}.mlp.down_proj.weight          [C, F]
 *   ln_f.weight                     model.norm.weight                              [C]
 *   lm_head.weight (untied only)    lm_head.weight                                 [V, C]
 * With `bias: true`, the same names with .bias (HF's attention_bias and mlp_bias).
 *
 * Conventions followed, Hugging Face's:
 *  - RoPE pairs dimension i with i + D/2 of each head ("rotate_half", as GPT-NeoX), which is what
 *    lib/attention/positional.ts does, so q and k need no permutation. (Meta's original Llama
 *    checkpoints pair 2i with 2i + 1; HF's conversion script permutes q_proj and k_proj rows.)
 *  - Query head h reads key/value head ⌊h / (H/G)⌋ (repeat_kv), as the course's grouped attention.
 *  - RMSNorm ε 1e-5 and θ = ropeBase (rope_theta); no rope_scaling.
 */
import * as tf from "@tensorflow/tfjs";
import type { GPTConfig } from "../gpt/gpt";
import { gptParameterShapes, mlpHiddenSize } from "../gpt/gpt";
import type { SafeTensors } from "../core/safetensors";
import { checkTokenizerFiles, HF_WEIGHTS_FILE, HF_CONFIG_FILE, readHfModelDir, sameShape, toFloat32, writeHfModelDir } from "./hfGpt2";

/** The config has Llama's block (RMSNorm, SwiGLU, RoPE): it can be written as LlamaForCausalLM. */
export function isLlamaLayout(config: GPTConfig): boolean {
  return notLlama(config) === undefined;
}

/** Why a course config cannot be written as Llama, or undefined. */
function notLlama(config: GPTConfig): string | undefined {
  const missing = [config.norm !== "rmsnorm" && "norm: \"rmsnorm\"", config.mlp !== "swiglu" && "mlp: \"swiglu\"", config.positions !== "rope" && "positions: \"rope\""].filter(Boolean);
  return missing.length ? `Llama's layout needs ${missing.join(", ")} (this model is GPT-2-like: export it as hf-gpt2)` : undefined;
}

/** [HF name, course name, slice of the course tensor's columns or undefined, HF shape], in HF's state-dict order. */
export function hfLlamaTensorList(config: GPTConfig): Array<[hfName: string, courseName: string, columns: [number, number] | undefined, shape: number[]]> {
  const why = notLlama(config);
  if (why) throw new Error(`hfLlamaTensorList: ${why}`);
  const { vocabSize: V, nLayer: L, nEmbd: C, nHead: H, bias } = config;
  const D = C / H, G = config.nKvHead ?? H, F = mlpHiddenSize(config);
  const out: Array<[string, string, [number, number] | undefined, number[]]> = [["model.embed_tokens.weight", "wte.weight", undefined, [V, C]]];
  for (let i = 0; i < L; i++) {
    const hf = `model.layers.${i}`, h = `h.${i}`;
    out.push([`${hf}.input_layernorm.weight`, `${h}.ln_1.weight`, undefined, [C]]);
    const qkv: Array<[string, [number, number]]> = [["q_proj", [0, C]], ["k_proj", [C, C + G * D]], ["v_proj", [C + G * D, C + 2 * G * D]]];
    for (const [name, cols] of qkv) {
      out.push([`${hf}.self_attn.${name}.weight`, `${h}.attn.c_attn.weight`, cols, [cols[1] - cols[0], C]]);
      if (bias) out.push([`${hf}.self_attn.${name}.bias`, `${h}.attn.c_attn.bias`, cols, [cols[1] - cols[0]]]);
    }
    out.push([`${hf}.self_attn.o_proj.weight`, `${h}.attn.c_proj.weight`, undefined, [C, C]]);
    if (bias) out.push([`${hf}.self_attn.o_proj.bias`, `${h}.attn.c_proj.bias`, undefined, [C]]);
    out.push([`${hf}.post_attention_layernorm.weight`, `${h}.ln_2.weight`, undefined, [C]]);
    for (const [name, course, shape] of [["gate_proj", "c_gate", [F, C]], ["up_proj", "c_fc", [F, C]], ["down_proj", "c_proj", [C, F]]] as const) {
      out.push([`${hf}.mlp.${name}.weight`, `${h}.mlp.${course}.weight`, undefined, [...shape]]);
      if (bias) out.push([`${hf}.mlp.${name}.bias`, `${h}.mlp.${course}.bias`, undefined, [shape[0]]]);
    }
  }
  out.push(["model.norm.weight", "ln_f.weight", undefined, [C]]);
  if (config.tiedHead === false) out.push(["lm_head.weight", "lm_head.weight", undefined, [V, C]]);
  return out;
}

/** A course [in, out] matrix (or vector) cut to `cols` and put in HF's [out, in] orientation. */
function toHfTensor(p: tf.Tensor, cols: [number, number] | undefined, courseName: string): Float32Array {
  return tf.tidy(() => {
    let t = p;
    if (cols) t = p.rank === 2 ? tf.slice(p, [0, cols[0]], [-1, cols[1] - cols[0]]) : tf.slice(p, [cols[0]], [cols[1] - cols[0]]);
    // Embeddings and lm_head are [V, C] on both sides; linear weights are transposed.
    const linear = t.rank === 2 && courseName !== "wte.weight" && courseName !== "lm_head.weight";
    return Float32Array.from((linear ? tf.transpose(t) : t).dataSync() as Float32Array);
  });
}

/** The course's parameters as LlamaForCausalLM's checkpoint tensors (F32, HF names and orientation). */
export function toHfLlama(params: Record<string, tf.Tensor>, config: GPTConfig): SafeTensors {
  const out: SafeTensors = {};
  const expected = new Map(gptParameterShapes(config));
  for (const [name, shape] of expected) {
    const p = params[name];
    if (p === undefined) throw new Error(`toHfLlama: parameter "${name}" is missing (expected shape [${shape}])`);
    if (!sameShape(p.shape, shape)) throw new Error(`toHfLlama: parameter "${name}" has shape [${p.shape}], expected [${shape}]`);
  }
  const extra = Object.keys(params).find((n) => !expected.has(n));
  if (extra !== undefined) throw new Error(`toHfLlama: parameter "${extra}" is not part of this model`);
  for (const [hfName, course, cols, shape] of hfLlamaTensorList(config)) out[hfName] = { dtype: "F32", shape, data: toHfTensor(params[course], cols, course) };
  return out;
}

/** LlamaForCausalLM's config.json for this model (LlamaConfig's fields). */
export function hfLlamaConfig(config: GPTConfig): Record<string, unknown> {
  const why = notLlama(config);
  if (why) throw new Error(`hfLlamaConfig: ${why}`);
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: config.vocabSize,
    hidden_size: config.nEmbd,
    intermediate_size: mlpHiddenSize(config),
    num_hidden_layers: config.nLayer,
    num_attention_heads: config.nHead,
    num_key_value_heads: config.nKvHead ?? config.nHead,
    head_dim: config.nEmbd / config.nHead,
    hidden_act: "silu",
    max_position_embeddings: config.blockSize,
    rms_norm_eps: 1e-5,
    rope_theta: config.ropeBase ?? 10000,
    rope_scaling: null,
    attention_bias: config.bias,
    mlp_bias: config.bias,
    attention_dropout: 0,
    tie_word_embeddings: config.tiedHead !== false,
    initializer_range: 0.02,
    pretraining_tp: 1,
    use_cache: true,
    bos_token_id: null,
    eos_token_id: null,
    torch_dtype: "float32",
  };
}

/** The course config of a LlamaForCausalLM config.json object; one line naming the field otherwise. */
export function courseConfigFromHfLlama(configJson: unknown, source = HF_CONFIG_FILE): GPTConfig {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (configJson === null || typeof configJson !== "object" || Array.isArray(configJson)) fail(`expected a JSON object, got ${JSON.stringify(configJson)}`);
  const c = configJson as Record<string, unknown>;
  if (c.model_type !== "llama") fail(`model_type must be "llama", got ${JSON.stringify(c.model_type)}`);
  const int = (field: string): number => {
    const v = c[field];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) fail(`field "${field}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const nEmbd = int("hidden_size"), nHead = int("num_attention_heads");
  const nKvHead = c.num_key_value_heads === undefined || c.num_key_value_heads === null ? nHead : int("num_key_value_heads");
  if (nEmbd % nHead !== 0) fail(`hidden_size ${nEmbd} is not divisible by num_attention_heads ${nHead}`);
  if (nHead % nKvHead !== 0) fail(`num_attention_heads ${nHead} is not divisible by num_key_value_heads ${nKvHead}`);
  if (c.head_dim !== undefined && c.head_dim !== null && c.head_dim !== nEmbd / nHead) fail(`head_dim must be hidden_size / num_attention_heads = ${nEmbd / nHead}, got ${JSON.stringify(c.head_dim)}`);
  if ((c.hidden_act ?? "silu") !== "silu") fail(`hidden_act must be "silu" (SwiGLU), got ${JSON.stringify(c.hidden_act)}`);
  if (c.rms_norm_eps !== undefined && c.rms_norm_eps !== 1e-5) fail(`rms_norm_eps must be 1e-5 (the course's RMSNorm), got ${JSON.stringify(c.rms_norm_eps)}`);
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) fail(`rope_scaling must be null (the course's RoPE has no scaling), got ${JSON.stringify(c.rope_scaling)}`);
  const theta = c.rope_theta ?? 10000;
  if (typeof theta !== "number" || !(theta > 1)) fail(`field "rope_theta" must be a number > 1, got ${JSON.stringify(theta)}`);
  const bias = c.attention_bias ?? false;
  if (typeof bias !== "boolean" || (c.mlp_bias ?? false) !== bias) fail(`attention_bias and mlp_bias must be the same true or false (the course has one bias setting), got ${JSON.stringify(c.attention_bias)} and ${JSON.stringify(c.mlp_bias)}`);
  const tie = c.tie_word_embeddings ?? false; // LlamaConfig's default
  if (typeof tie !== "boolean") fail(`field "tie_word_embeddings" must be true or false, got ${JSON.stringify(tie)}`);
  return {
    vocabSize: int("vocab_size"), blockSize: int("max_position_embeddings"), nLayer: int("num_hidden_layers"), nHead, nEmbd,
    dropout: 0, bias: bias as boolean, tiedHead: tie as boolean, norm: "rmsnorm", mlp: "swiglu", mlpHidden: int("intermediate_size"), positions: "rope",
    ropeBase: theta as number, nKvHead,
  };
}

/**
 * The course's parameters from LlamaForCausalLM's checkpoint tensors and config.json object:
 * q, k, v joined into one matrix, every linear weight transposed; a stored lm_head.weight of a
 * tied model is ignored. `source` and `configSource` name the inputs in errors.
 */
export function fromHfLlama(tensors: SafeTensors, configJson: unknown, source = HF_WEIGHTS_FILE, configSource = HF_CONFIG_FILE): { params: Record<string, tf.Variable>; config: GPTConfig } {
  const config = courseConfigFromHfLlama(configJson, configSource);
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  const layersHeld = Object.keys(tensors).filter((n) => /^model\.layers\.\d+\.input_layernorm\.weight$/.test(n)).length;
  if (config.nLayer > layersHeld) fail(`${configSource} declares num_hidden_layers ${config.nLayer}, but the weights hold ${layersHeld} layers`);
  const list = hfLlamaTensorList(config);
  const known = new Set(list.map(([n]) => n));
  for (const name of Object.keys(tensors)) {
    if (known.has(name) || (name === "lm_head.weight" && config.tiedHead !== false) || /\.rotary_emb\.inv_freq$/.test(name)) continue;
    fail(`unexpected tensor "${name}" (not a parameter of LlamaForCausalLM with num_hidden_layers ${config.nLayer})`);
  }
  const pieces = new Map<string, tf.Tensor[]>();
  try {
    for (const [hfName, course, , shape] of list) {
      const t = tensors[hfName];
      if (t === undefined) fail(`tensor "${hfName}" is missing (expected shape [${shape}])`);
      if (!Array.isArray(t.shape) || !sameShape(t.shape, shape)) fail(`tensor "${hfName}" has shape [${t.shape}], expected [${shape}]`);
      const values = tf.tensor(toFloat32(t, `${source}: tensor "${hfName}"`), shape, "float32");
      const linear = shape.length === 2 && course !== "wte.weight" && course !== "lm_head.weight";
      const piece = linear ? tf.transpose(values) : values;
      if (piece !== values) values.dispose();
      pieces.set(course, [...(pieces.get(course) ?? []), piece]); // q, k, v come in column order: joined below
    }
    const params: Record<string, tf.Variable> = {};
    for (const [course, parts] of pieces) {
      const joined = parts.length === 1 ? parts[0] : tf.concat(parts, parts[0].rank - 1);
      params[course] = tf.variable(joined, true, undefined, "float32");
      if (joined !== parts[0]) joined.dispose();
    }
    return { params, config };
  } finally {
    for (const parts of pieces.values()) tf.dispose(parts);
  }
}

/** Write `dir` as LlamaForCausalLM: config.json, model.safetensors and the tokenizer files. Returns the paths. */
export function exportHfLlama(dir: string, params: Record<string, tf.Tensor>, config: GPTConfig, opts: { tokenizerFiles?: Record<string, string | Uint8Array> } = {}): string[] {
  checkTokenizerFiles(opts.tokenizerFiles ?? {}, "exportHfLlama");
  return writeHfModelDir(dir, toHfLlama(params, config), hfLlamaConfig(config), opts.tokenizerFiles ?? {});
}

/** Read a Llama model directory (config.json + model.safetensors) into course parameters. */
export function importHfLlama(dir: string): { params: Record<string, tf.Variable>; config: GPTConfig } {
  const { hfConfig, tensors, configFile, weightsFile } = readHfModelDir(dir, (c, file) => courseConfigFromHfLlama(c, file));
  return fromHfLlama(tensors, hfConfig, weightsFile, configFile);
}
