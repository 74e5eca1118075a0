/**
 * LoRA, low-rank adaptation (Hu et al. 2021): fine-tune a frozen model by learning, for each
 * targeted weight matrix W [in, out], a low-rank correction
 *
 *   W' = W + s · A·B        A [in, r], B [r, out], s = alpha / r,   r ≪ in, out
 *
 * y = x·W' = x·W + s · (x·A)·B: the "unmerged" form, W untouched and the adapter beside it;
 * after training, A·B can be added into W once ("merged") and the model costs nothing more
 * at inference. B starts at zero, so the adapted model starts exactly as the base model; A
 * starts random (Kaiming-uniform as the reference implementation), so the gradient of B is
 * not zero. Only A and B train: r·(in + out) numbers per matrix instead of in·out.
 *
 * The targets are the four matrices of every block (attn.c_attn, attn.c_proj, mlp.c_fc,
 * mlp.c_proj) by default. New token rows of the embedding table (the chat tokens, which the
 * base model never saw) can train too: a small [k, C] variable replacing the last k rows of
 * wte, as PEFT's "trainable token indices" — without it the three chat tokens would stay
 * identical vectors.
 */
import * as tf from "@tensorflow/tfjs";
import type { GPTConfig, GPTParams } from "../gpt/gpt";
import { createRng, seedFor } from "../core/random";

export interface LoRAOptions {
  /** Rank r of the adapters. */
  rank: number;
  /** Scale numerator: s = alpha / r (default alpha = 2r, s = 2). */
  alpha?: number;
  /** Weight names to adapt (default: every block's attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj). */
  targets?: string[];
  /** Also train the last `trainNewTokens` rows of wte (the tokens added for the chat template). Default 0. */
  trainNewTokens?: number;
  /** Seed of A's initialisation. Default 0. */
  seed?: number;
}

export interface LoRA {
  rank: number;
  alpha: number;
  /** alpha / rank. */
  scale: number;
  targets: string[];
  /** The trainable variables: `${target}.lora_A` [in, r], `${target}.lora_B` [r, out], and `wte.new_rows` [k, C]. */
  params: Record<string, tf.Variable>;
  /** Number of trailing wte rows replaced by `wte.new_rows` (0: none). */
  newTokens: number;
}

/** The default targets: the four weight matrices of every block. */
export function loraTargets(config: GPTConfig): string[] {
  const out: string[] = [];
  for (let i = 0; i < config.nLayer; i++) {
    for (const m of ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]) out.push(`h.${i}.${m}.weight`);
  }
  return out;
}

/** Fresh adapters for `base` (B = 0: the adapted model equals the base model). */
export function createLoRA(base: GPTParams, config: GPTConfig, opts: LoRAOptions): LoRA {
  const r = opts.rank;
  if (!Number.isInteger(r) || r < 1) throw new Error(`createLoRA: rank must be a positive integer, got ${r}`);
  const alpha = opts.alpha ?? 2 * r;
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new Error(`createLoRA: alpha must be a positive number, got ${alpha}`);
  const targets = opts.targets ?? loraTargets(config);
  const rng = createRng(opts.seed ?? 0);
  const params: Record<string, tf.Variable> = {};
  for (const name of targets) {
    const w = base[name];
    if (w === undefined) throw new Error(`createLoRA: no parameter "${name}" to adapt`);
    if (w.rank !== 2) throw new Error(`createLoRA: "${name}" has shape [${w.shape}]; only matrices can be adapted`);
    const [nIn, nOut] = w.shape;
    if (r > Math.min(nIn, nOut)) throw new Error(`createLoRA: rank ${r} is larger than "${name}" [${w.shape}] allows`);
    const bound = Math.sqrt(6 / nIn) / Math.sqrt(6); // kaiming_uniform(a=√5): U(±1/√in)
    const a = tf.randomUniform([nIn, r], -bound, bound, "float32", seedFor(rng));
    params[`${name}.lora_A`] = tf.variable(a, true, undefined, "float32");
    a.dispose();
    params[`${name}.lora_B`] = tf.variable(tf.zeros([r, nOut]), true, undefined, "float32");
  }
  const k = opts.trainNewTokens ?? 0;
  if (!Number.isInteger(k) || k < 0 || k > config.vocabSize) throw new Error(`createLoRA: trainNewTokens must be an integer in 0..${config.vocabSize}, got ${k}`);
  if (k > 0) {
    const rows = tf.tidy(() => tf.slice(base["wte.weight"], [config.vocabSize - k, 0], [k, config.nEmbd]));
    params["wte.new_rows"] = tf.variable(rows, true, undefined, "float32");
    rows.dispose();
  }
  return { rank: r, alpha, scale: alpha / r, targets, params, newTokens: k };
}

/** Number of trainable numbers of the adapters. */
export function loraParameterCount(lora: LoRA): number {
  return Object.values(lora.params).reduce((n, p) => n + p.size, 0);
}

/**
 * The adapted weights as plain tensors: W + s·A·B for the targets (and wte with its new rows),
 * the base tensors themselves for everything else. Differentiable with respect to A, B and the
 * new rows: call it INSIDE the loss function, so the gradient flows to the adapters.
 */
export function loraWeights(base: GPTParams, lora: LoRA): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = { ...base };
  for (const name of lora.targets) {
    const a = lora.params[`${name}.lora_A`], b = lora.params[`${name}.lora_B`];
    out[name] = tf.add(base[name], tf.mul(tf.matMul(a, b), lora.scale));
  }
  const rows = lora.params["wte.new_rows"];
  if (rows !== undefined) {
    const wte = base["wte.weight"] as tf.Tensor2D;
    const [V, C] = wte.shape;
    out["wte.weight"] = tf.concat([tf.slice(wte, [0, 0], [V - lora.newTokens, C]), rows], 0);
  }
  return out;
}

/** A linear layer with an unmerged adapter: x·W + b + s·(x·A)·B (x [N, in]). */
export function loraLinear(x: tf.Tensor2D, w: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D, scale: number, bias?: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() => {
    let y = tf.add(tf.matMul(x, w), tf.mul(tf.matMul(tf.matMul(x, a), b), scale)) as tf.Tensor2D;
    if (bias) y = tf.add(y, bias);
    return y;
  });
}

/** Merge: new variables W + s·A·B (the base and the adapters are left as they are). */
export function mergeLoRA(base: GPTParams, lora: LoRA): GPTParams {
  const merged = tf.tidy(() => loraWeights(base, lora));
  const out: GPTParams = {};
  for (const [name, t] of Object.entries(merged)) {
    out[name] = tf.variable(t, true, undefined, "float32");
    if (t !== base[name]) t.dispose();
  }
  return out;
}

export function disposeLoRA(lora: LoRA): void {
  tf.dispose(Object.values(lora.params));
}
