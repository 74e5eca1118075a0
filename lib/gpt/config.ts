/**
 * A GPT's configuration: the plain typed object that says what the model is made of (as
 * nanoGPT's GPTConfig), its presets, its checks, and the sizes that follow from it. Apart from
 * gpt.ts (which re-exports all of it) because it needs no TensorFlow.js: the course's decoder
 * and the site's live widgets read configs in the browser too.
 */

// ---------------------------------------------------------------------------------------
// Configuration

export interface GPTConfig {
  /** Number of token ids V (the tokenizer's vocabSize). */
  vocabSize: number;
  /** Context length: the most positions the model sees at once (size of wpe). */
  blockSize: number;
  /** Number of transformer blocks. */
  nLayer: number;
  /** Attention heads per block; nEmbd must be divisible by it. */
  nHead: number;
  /** Channels C of the residual stream. */
  nEmbd: number;
  /**
   * Dropout probability while training, in [0, 1): applied to the embeddings and to each
   * residual branch (attention and MLP outputs), as nanoGPT; nanoGPT also drops attention
   * weights, which lib/attention/attention's multiHeadAttention has no hook for.
   */
  dropout: number;
  /** Biases in the linear layers and LayerNorms (GPT-2: true). */
  bias: boolean;
  /** Output head shares wte (GPT-2: true). Default true. */
  tiedHead?: boolean;
  /** Normalisation before each sub-block and at the end. Default "layernorm" (GPT-2); Llama: "rmsnorm". */
  norm?: "layernorm" | "rmsnorm";
  /** The MLP. Default "gelu" (GPT-2: C → 4C → GELU → C); Llama: "swiglu". */
  mlp?: "gelu" | "swiglu";
  /** SwiGLU's hidden width F. Default swigluHidden(nEmbd). */
  mlpHidden?: number;
  /** How positions enter. Default "learned" (GPT-2's wpe table); Llama: "rope" (rotary, in attention). */
  positions?: "learned" | "rope";
  /** RoPE's base θ (frequencies base^(−2i/D)). Default 10000 (Llama 3 uses 500000 for long contexts). */
  ropeBase?: number;
  /** Key/value heads: nHead (default, multi-head), a divisor of it (grouped-query), or 1 (multi-query). */
  nKvHead?: number;
}

export type GPTPresetName = "gpt2" | "nanogpt-cpu" | "course-base" | "llama" | "tiny";

/**
 * Presets:
 *  - gpt2: GPT-2 small, 124M parameters (tied head, positional embeddings included).
 *  - nanogpt-cpu: nanoGPT's "train on a laptop CPU" Shakespeare-char model (vocab from the
 *    tokenizer: 65 for Tiny Shakespeare; pass `{ vocabSize: tokenizer.vocabSize }`).
 *  - course-base: the course's shipped base model (data/base-model): nanogpt-cpu made deeper
 *    and wider (6 layers, 6 heads, 192 channels, 2.7M parameters with Moby-Dick's characters),
 *    trained for longer than a lecture allows; chapters 06–09 start from it.
 *  - llama: nanogpt-cpu's size and budget with Llama's block: RMSNorm, SwiGLU, RoPE, 2 key/value
 *    heads for 4 query heads, no biases (chapter 10).
 *  - tiny: a smoke-test model that runs in milliseconds.
 */
export const GPT_PRESETS: Readonly<Record<GPTPresetName, Readonly<GPTConfig>>> = {
  gpt2: { vocabSize: 50257, blockSize: 1024, nLayer: 12, nHead: 12, nEmbd: 768, dropout: 0, bias: true, tiedHead: true },
  "nanogpt-cpu": { vocabSize: 65, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128, dropout: 0, bias: true, tiedHead: true },
  "course-base": { vocabSize: 65, blockSize: 64, nLayer: 6, nHead: 6, nEmbd: 192, dropout: 0, bias: true, tiedHead: true },
  llama: {
    vocabSize: 65, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128, dropout: 0, bias: false, tiedHead: true,
    norm: "rmsnorm", mlp: "swiglu", positions: "rope", nKvHead: 2,
  },
  tiny: { vocabSize: 16, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 16, dropout: 0, bias: true, tiedHead: true },
};

/** A preset with some fields replaced (e.g. `{ vocabSize: tok.vocabSize }`), validated. */
export function gptConfig(preset: GPTPresetName, overrides: Partial<GPTConfig> = {}): GPTConfig {
  const base = GPT_PRESETS[preset];
  if (base === undefined) {
    throw new Error(`gptConfig: unknown preset "${preset}"; use one of: ${Object.keys(GPT_PRESETS).join(", ")}`);
  }
  const config = { ...base, ...overrides };
  validateConfig(config);
  return config;
}

/** Throws a one-line error naming the first bad field. */
export function validateConfig(config: GPTConfig): void {
  const name = "GPTConfig";
  if (config === null || typeof config !== "object") throw new Error(`${name}: expected an object, got ${String(config)}`);
  for (const key of ["vocabSize", "blockSize", "nLayer", "nHead", "nEmbd"] as const) {
    const v = config[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
      throw new Error(`${name}: ${key} must be a positive integer, got ${String(v)}`);
    }
  }
  if (config.nEmbd % config.nHead !== 0) {
    throw new Error(`${name}: nEmbd ${config.nEmbd} is not divisible by nHead ${config.nHead}`);
  }
  const p = config.dropout;
  if (typeof p !== "number" || !(p >= 0 && p < 1)) throw new Error(`${name}: dropout must be in [0, 1), got ${String(p)}`);
  if (typeof config.bias !== "boolean") throw new Error(`${name}: bias must be true or false, got ${String(config.bias)}`);
  if (config.tiedHead !== undefined && typeof config.tiedHead !== "boolean") {
    throw new Error(`${name}: tiedHead must be true or false, got ${String(config.tiedHead)}`);
  }
  const choice = (key: "norm" | "mlp" | "positions", allowed: string[]) => {
    const v = config[key];
    if (v !== undefined && !allowed.includes(v)) throw new Error(`${name}: ${key} must be ${allowed.map((a) => `"${a}"`).join(" or ")}, got ${JSON.stringify(v)}`);
  };
  choice("norm", ["layernorm", "rmsnorm"]);
  choice("mlp", ["gelu", "swiglu"]);
  choice("positions", ["learned", "rope"]);
  const g = config.nKvHead;
  if (g !== undefined && (typeof g !== "number" || !Number.isInteger(g) || g < 1 || config.nHead % g !== 0)) {
    throw new Error(`${name}: nKvHead must be a positive integer dividing nHead ${config.nHead}, got ${String(g)}`);
  }
  const f = config.mlpHidden;
  if (f !== undefined && (typeof f !== "number" || !Number.isInteger(f) || f < 1)) throw new Error(`${name}: mlpHidden must be a positive integer, got ${String(f)}`);
  if (f !== undefined && config.mlp !== "swiglu") throw new Error(`${name}: mlpHidden is SwiGLU's hidden width; set mlp: "swiglu" too`);
  const base = config.ropeBase;
  if (base !== undefined && (typeof base !== "number" || !(base > 1) || !Number.isFinite(base))) throw new Error(`${name}: ropeBase must be a finite number > 1, got ${String(base)}`);
  if (config.positions === "rope" && (config.nEmbd / config.nHead) % 2 !== 0) {
    throw new Error(`${name}: RoPE rotates pairs of dimensions: the head size nEmbd / nHead = ${config.nEmbd / config.nHead} must be even`);
  }
}

export const isTied = (c: GPTConfig) => c.tiedHead !== false;
/** Key/value heads G (nHead unless grouped-query). */
export const kvHeads = (c: GPTConfig): number => c.nKvHead ?? c.nHead;
export const usesRope = (c: GPTConfig) => c.positions === "rope";
export const usesRms = (c: GPTConfig) => c.norm === "rmsnorm";
export const usesSwiglu = (c: GPTConfig) => c.mlp === "swiglu";

/**
 * SwiGLU's hidden width for C channels: two thirds of GPT-2's 4C (it has three matrices where
 * GELU's MLP has two, so the parameters stay 8C²), rounded up to a multiple of 8 as Llama
 * rounds to 256 (C = 128: 344; C = 4096: 10,928, where Llama's rounding gives 11,008).
 */
export function swigluHidden(nEmbd: number): number {
  return 8 * Math.ceil((8 * nEmbd) / 3 / 8);
}

/** The MLP's hidden width: 4C for GELU, mlpHidden or swigluHidden(C) for SwiGLU. */
export function mlpHiddenSize(config: GPTConfig): number {
  return usesSwiglu(config) ? config.mlpHidden ?? swigluHidden(config.nEmbd) : 4 * config.nEmbd;
}

