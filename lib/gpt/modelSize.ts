/**
 * "How large is large": parameter counts, memory and training compute of real LLMs,
 * computed from their architecture rather than copied from press releases.
 *
 * Every model here is a decoder-only Transformer: a token embedding, `nLayers` identical blocks
 * (attention + MLP, each preceded by a norm), a final norm, and an output head that maps back to
 * the vocabulary. The configs differ in a handful of design choices, which is all the arithmetic
 * below needs to know.
 */

import { type GPTConfig, kvHeads, mlpHiddenSize } from "./gpt";

export type NormType = "layernorm" | "rmsnorm";
export type PositionType = "learned" | "rope";

export interface ModelConfig {
  name: string;
  /** Number of distinct tokens. */
  vocabSize: number;
  /** Longest sequence the model reads at once (tokens). */
  contextLength: number;
  nLayers: number;
  /** Query heads. */
  nHeads: number;
  /** Key/value heads: equal to nHeads for classic multi-head attention, fewer for grouped-query attention (GQA). */
  nKVHeads: number;
  /** Width of the residual stream (d_model). */
  dModel: number;
  /** Hidden width of the MLP (d_ff). */
  dFF: number;
  /** True when the output head reuses the token-embedding matrix (no separate parameters). */
  tiedEmbeddings: boolean;
  /** Gated MLP (SwiGLU): gate, up and down matrices (3) instead of up and down (2). */
  gatedMLP: boolean;
  /** LayerNorm has a weight and a bias per channel (the bias only when `bias` is set); RMSNorm only a weight. */
  norm: NormType;
  /** Do the linear layers (attention and MLP) have bias vectors? */
  bias: boolean;
  /** Learned position embeddings are a parameter matrix; RoPE rotates queries and keys and has none. */
  positions: PositionType;
  /**
   * Mixture of experts: each layer holds `total` MLPs ("experts") and a router (a d × total
   * matrix) that sends each token through `active` of them. Absent for a dense model.
   */
  experts?: { total: number; active: number };
  /** Tokens seen in pretraining, or null when not published. */
  trainingTokens: number | null;
  /** Where the token count comes from. */
  trainingTokensNote: string;
  /** Where the architecture comes from. */
  source: string;
}

/** GPT-2 small: Radford et al. 2019, "Language Models are Unsupervised Multitask Learners"; Hugging Face `gpt2` config. */
export const GPT2_SMALL: ModelConfig = {
  name: "GPT-2 small",
  vocabSize: 50257,
  contextLength: 1024,
  nLayers: 12,
  nHeads: 12,
  nKVHeads: 12,
  dModel: 768,
  dFF: 3072,
  tiedEmbeddings: true,
  gatedMLP: false,
  norm: "layernorm",
  bias: true,
  positions: "learned",
  // OpenAI never published GPT-2's token count (WebText is ~40 GB of text, ~8M documents).
  // We use the open reproduction: llm.c trained GPT-2 (124M) on 10B tokens of FineWeb (Karpathy, 2024).
  trainingTokens: 10e9,
  trainingTokensNote: "not published by OpenAI; 10B = llm.c reproduction (FineWeb)",
  source: "Radford et al. 2019; Hugging Face config gpt2",
};

/** GPT-2 XL (1.5B): same design as GPT-2 small, wider and deeper. */
export const GPT2_XL: ModelConfig = {
  ...GPT2_SMALL,
  name: "GPT-2 XL",
  nLayers: 48,
  nHeads: 25,
  nKVHeads: 25,
  dModel: 1600,
  dFF: 6400,
  // llm.c's GPT-2 (1.5B) reproduction trained on 32B tokens of FineWeb-EDU (Karpathy, 2024).
  trainingTokens: 32e9,
  trainingTokensNote: "not published by OpenAI; 32B = llm.c reproduction (FineWeb-Edu)",
  source: "Radford et al. 2019; Hugging Face config gpt2-xl",
};

/** GPT-3 175B: Brown et al. 2020, "Language Models are Few-Shot Learners", Table 2.1; 300B training tokens (Table D.1). */
export const GPT3_175B: ModelConfig = {
  name: "GPT-3 175B",
  vocabSize: 50257,
  contextLength: 2048,
  nLayers: 96,
  nHeads: 96,
  nKVHeads: 96,
  dModel: 12288,
  dFF: 4 * 12288,
  tiedEmbeddings: true, // "the same model and architecture as GPT-2"
  gatedMLP: false,
  norm: "layernorm",
  bias: true,
  positions: "learned",
  trainingTokens: 300e9,
  trainingTokensNote: "300B (Brown et al. 2020)",
  source: "Brown et al. 2020, Table 2.1",
};

/** Llama 3 8B: Meta's model card and `config.json` of Meta-Llama-3-8B; "over 15T tokens" of pretraining. */
export const LLAMA3_8B: ModelConfig = {
  name: "Llama 3 8B",
  vocabSize: 128256,
  contextLength: 8192,
  nLayers: 32,
  nHeads: 32,
  nKVHeads: 8,
  dModel: 4096,
  dFF: 14336,
  tiedEmbeddings: false,
  gatedMLP: true,
  norm: "rmsnorm",
  bias: false,
  positions: "rope",
  trainingTokens: 15e12,
  trainingTokensNote: "15T+ (Meta model card)",
  source: "Meta-Llama-3-8B config.json",
};

/** Llama 3 70B: same family, 80 layers of width 8192. */
export const LLAMA3_70B: ModelConfig = {
  ...LLAMA3_8B,
  name: "Llama 3 70B",
  nLayers: 80,
  nHeads: 64,
  nKVHeads: 8,
  dModel: 8192,
  dFF: 28672,
  source: "Meta-Llama-3-70B config.json",
};

/**
 * Llama 3.2 1B (text): Meta's model card and `config.json` of Llama-3.2-1B; pretrained on "up to
 * 9T tokens". Narrower and shallower than Llama 3 8B, and its head is tied to the embedding.
 * (Llama 3.2 11B and 90B are the vision models: Llama 3.1 8B and 70B with an image encoder.)
 */
export const LLAMA32_1B: ModelConfig = {
  ...LLAMA3_8B,
  name: "Llama 3.2 1B",
  contextLength: 131072,
  nLayers: 16,
  nHeads: 32,
  nKVHeads: 8,
  dModel: 2048,
  dFF: 8192,
  tiedEmbeddings: true,
  trainingTokens: 9e12,
  trainingTokensNote: "up to 9T (Meta model card)",
  source: "Llama-3.2-1B config.json",
};

/** Llama 3.2 3B (text): `config.json` of Llama-3.2-3B. */
export const LLAMA32_3B: ModelConfig = {
  ...LLAMA32_1B,
  name: "Llama 3.2 3B",
  nLayers: 28,
  nHeads: 24,
  nKVHeads: 8,
  dModel: 3072,
  dFF: 8192,
  source: "Llama-3.2-3B config.json",
};

/**
 * Mixtral 8x7B: Jiang et al. 2024 and its `config.json`: eight SwiGLU experts per layer, two used
 * per token. Its training data size was not published.
 */
export const MIXTRAL_8X7B: ModelConfig = {
  ...LLAMA3_8B,
  name: "Mixtral 8x7B (MoE)",
  vocabSize: 32000,
  contextLength: 32768,
  nLayers: 32,
  nHeads: 32,
  nKVHeads: 8,
  dModel: 4096,
  dFF: 14336,
  experts: { total: 8, active: 2 },
  trainingTokens: null,
  trainingTokensNote: "not published",
  source: "Mixtral-8x7B-v0.1 config.json",
};

/** The models of the size table, smallest first. */
export const MODEL_CONFIGS: readonly ModelConfig[] = [GPT2_SMALL, LLAMA32_1B, GPT2_XL, LLAMA32_3B, LLAMA3_8B, MIXTRAL_8X7B, LLAMA3_70B, GPT3_175B];

/**
 * Chinchilla's rule of thumb (Hoffmann et al. 2022): for a fixed training budget, the loss is
 * lowest with about 20 training tokens per parameter.
 */
export const CHINCHILLA_TOKENS_PER_PARAMETER = 20;

export interface ParameterBreakdown {
  /** Token embedding matrix (vocabSize × dModel). */
  tokenEmbedding: number;
  /** Learned position embeddings (contextLength × dModel), 0 with RoPE. */
  positionEmbedding: number;
  /** All layers: query, key, value and output projections (+ biases). */
  attention: number;
  /** All layers: MLP matrices (+ biases). */
  mlp: number;
  /** Two norms per layer plus the final norm. */
  norms: number;
  /** Output head (dModel × vocabSize), 0 when tied to the token embedding. */
  head: number;
  /** Mixture of experts: the routers (dModel × experts per layer); 0 for a dense model. */
  router: number;
  total: number;
  /** Parameters used for one token: total for a dense model; a MoE uses only its active experts. */
  active: number;
}

function checkConfig(c: ModelConfig): void {
  const ints: (keyof ModelConfig)[] = ["vocabSize", "contextLength", "nLayers", "nHeads", "nKVHeads", "dModel", "dFF"];
  for (const k of ints) {
    const v = c[k];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
      throw new Error(`model config "${c.name}": ${String(k)} must be a positive integer, got ${String(v)}`);
    }
  }
  if (c.dModel % c.nHeads !== 0) {
    throw new Error(`model config "${c.name}": dModel ${c.dModel} is not divisible by nHeads ${c.nHeads}`);
  }
  if (c.nHeads % c.nKVHeads !== 0) {
    throw new Error(`model config "${c.name}": nHeads ${c.nHeads} is not a multiple of nKVHeads ${c.nKVHeads}`);
  }
  if (c.experts !== undefined) {
    const { total, active } = c.experts;
    if (!Number.isInteger(total) || !Number.isInteger(active) || active < 1 || active > total) {
      throw new Error(`model config "${c.name}": experts must be whole numbers with 1 ≤ active ≤ total, got ${active} of ${total}`);
    }
  }
}

/** Count the parameters of a config, part by part. */
export function parameterCount(c: ModelConfig): ParameterBreakdown {
  checkConfig(c);
  const d = c.dModel;
  const headDim = d / c.nHeads;
  const qWidth = c.nHeads * headDim; // = d
  const kvWidth = c.nKVHeads * headDim; // smaller than d with GQA: K and V are shared by groups of query heads
  const b = c.bias ? 1 : 0;

  const tokenEmbedding = c.vocabSize * d;
  const positionEmbedding = c.positions === "learned" ? c.contextLength * d : 0;

  // Per layer: Q, K, V projections d → width (+ bias), output projection qWidth → d (+ bias).
  const attentionPerLayer = d * qWidth + b * qWidth + 2 * (d * kvWidth + b * kvWidth) + qWidth * d + b * d;

  // Per layer: up (d → dFF) and down (dFF → d); a gated MLP adds a second "gate" matrix d → dFF.
  const upMatrices = c.gatedMLP ? 2 : 1;
  const mlpPerLayer = upMatrices * (d * c.dFF + b * c.dFF) + c.dFF * d + b * d;

  // LayerNorm: a scale and a shift per channel (no shift in a model without biases); RMSNorm: only a scale.
  const perNorm = (c.norm === "layernorm" && c.bias ? 2 : 1) * d;
  const norms = (2 * c.nLayers + 1) * perNorm;

  const head = c.tiedEmbeddings ? 0 : d * c.vocabSize; // no model here has a bias on its head

  // Mixture of experts: every expert is a full MLP, and a router scores the experts per token.
  const experts = c.experts ?? { total: 1, active: 1 };
  const router = c.experts ? c.nLayers * d * experts.total : 0;

  const attention = c.nLayers * attentionPerLayer;
  const mlp = c.nLayers * mlpPerLayer * experts.total;
  const total = tokenEmbedding + positionEmbedding + attention + mlp + norms + head + router;
  const active = total - c.nLayers * mlpPerLayer * (experts.total - experts.active);
  return { tokenEmbedding, positionEmbedding, attention, mlp, norms, head, router, total, active };
}

/**
 * The same description for one of the course's own GPTs (chapter 10's options included): the
 * counts here then equal gptParameterCount's, and a course model can sit in the tables beside
 * the real ones.
 */
export function modelConfigFromGPT(config: GPTConfig, name: string): ModelConfig {
  return {
    name, vocabSize: config.vocabSize, contextLength: config.blockSize, nLayers: config.nLayer, nHeads: config.nHead,
    nKVHeads: kvHeads(config), dModel: config.nEmbd, dFF: mlpHiddenSize(config), tiedEmbeddings: config.tiedHead !== false,
    gatedMLP: config.mlp === "swiglu", norm: config.norm ?? "layernorm", bias: config.bias, positions: config.positions ?? "learned",
    trainingTokens: null, trainingTokensNote: "the course's own model", source: "lib/gpt/gpt.ts",
  };
}

export type DType = "fp32" | "fp16" | "bf16" | "int8" | "int4";

/** Bytes per number for each storage type. */
export const BYTES_PER_PARAM: Readonly<Record<DType, number>> = {
  fp32: 4,
  fp16: 2,
  bf16: 2,
  int8: 1,
  int4: 0.5,
};

/**
 * Bytes the KV cache keeps per token of context while generating: a key and a value vector of
 * headDim numbers per key/value head, in every layer — 2 · nLayers · nKVHeads · headDim · bytes.
 * Grouped-query attention stores only the nKVHeads heads, which is why it was adopted:
 * Llama 3 8B (8 KV heads for 32 query heads) keeps 128 KiB per token in bf16 instead of 512 KiB.
 */
export function kvCacheBytesPerToken(c: ModelConfig, dtype: DType = "bf16"): number {
  checkConfig(c);
  return 2 * c.nLayers * c.nKVHeads * (c.dModel / c.nHeads) * BYTES_PER_PARAM[dtype];
}

/**
 * Bytes to hold `params` weights in `dtype`: what it takes just to load the model for inference
 * (activations and the KV cache come on top). int4 packs two weights per byte.
 */
export function memoryBytes(params: number, dtype: DType): number {
  const per = BYTES_PER_PARAM[dtype];
  if (per === undefined) throw new Error(`memoryBytes: unknown dtype "${dtype}", expected one of ${Object.keys(BYTES_PER_PARAM).join(", ")}`);
  if (!(params >= 0)) throw new Error(`memoryBytes: params must be a non-negative number, got ${params}`);
  return Math.ceil(params * per);
}

export interface TrainingMemory {
  weights: number;
  gradients: number;
  /** Adam's two moments (momentum and variance) and, in mixed precision, the fp32 master weights. */
  optimizer: number;
  total: number;
}

/**
 * Memory to train with Adam, per the convention of the ZeRO paper (Rajbhandari et al. 2020,
 * "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models", §3.1):
 *
 * - `"fp32"`: weights 4 + gradients 4 + Adam momentum 4 + variance 4 = 16 bytes per parameter.
 * - `"mixed"` (fp16/bf16 mixed precision): weights 2 + gradients 2 + fp32 master weights 4 +
 *   momentum 4 + variance 4 = 16 bytes per parameter too ("2Ψ + 2Ψ + 12Ψ").
 *
 * Both come to 16 bytes per parameter: mixed precision saves time and activation memory, not
 * optimizer-state memory. Activations (which grow with batch and context) are not included.
 */
export function trainingMemoryBytes(params: number, precision: "fp32" | "mixed" = "mixed"): TrainingMemory {
  if (!(params >= 0)) throw new Error(`trainingMemoryBytes: params must be a non-negative number, got ${params}`);
  if (precision === "fp32") {
    return { weights: 4 * params, gradients: 4 * params, optimizer: 8 * params, total: 16 * params };
  }
  if (precision === "mixed") {
    return { weights: 2 * params, gradients: 2 * params, optimizer: 12 * params, total: 16 * params };
  }
  throw new Error(`trainingMemoryBytes: precision must be "fp32" or "mixed", got "${String(precision)}"`);
}

/**
 * Training compute ≈ 6·N·D floating-point operations for N parameters and D tokens
 * (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", §2.1): each token costs
 * 2N in the forward pass (one multiply and one add per weight) and about 4N in the backward
 * pass (gradients with respect to activations and to weights). Attention's own quadratic term is
 * left out; it is small next to 6N until the context gets very long.
 */
export function trainingFlops(params: number, tokens: number): number {
  if (!(params >= 0) || !(tokens >= 0)) {
    throw new Error(`trainingFlops: params and tokens must be non-negative numbers, got ${params} and ${tokens}`);
  }
  return 6 * params * tokens;
}

export interface Hardware {
  name: string;
  /** Sustained (or peak, as stated) floating-point operations per second of one device. */
  flopsPerSecond: number;
  devices: number;
}

/**
 * Reference machines. The laptop figure is what TensorFlow.js's wasm backend reaches on a large
 * matrix product on this course's 2-core development machine (15–20 GFLOP/s); the A100 figure is
 * NVIDIA's datasheet peak for dense bf16 matrix math. Real training runs reach 30–50% of peak
 * ("model FLOPs utilization"), so GPU times below are lower bounds.
 */
export const HARDWARE = {
  laptop: { name: "this laptop (~20 GFLOP/s)", flopsPerSecond: 20e9, devices: 1 },
  a100: { name: "one A100 (312 TFLOP/s bf16 peak)", flopsPerSecond: 312e12, devices: 1 },
  cluster: { name: "1,024 A100s at peak", flopsPerSecond: 312e12, devices: 1024 },
} as const satisfies Record<string, Hardware>;

/** Seconds to perform `flops` operations on `hardware`, at a given fraction of its throughput (default 1 = peak). */
export function trainingSeconds(flops: number, hardware: Hardware, utilization = 1): number {
  if (!(utilization > 0 && utilization <= 1)) {
    throw new Error(`trainingSeconds: utilization must be in (0, 1], got ${utilization}`);
  }
  if (!(hardware.flopsPerSecond > 0) || !(hardware.devices > 0)) {
    throw new Error(`trainingSeconds: hardware "${hardware.name}" needs positive flopsPerSecond and devices`);
  }
  return flops / (hardware.flopsPerSecond * hardware.devices * utilization);
}

// ---------- formatting for tables ----------

/** 124439808 → "124.4M", 8030261248 → "8.03B": three significant digits, at least one decimal. */
export function formatCount(n: number): string {
  const units: [number, string][] = [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [size, suffix] of units) {
    if (Math.abs(n) >= size) return `${sig3(n / size)}${suffix}`;
  }
  return String(n);
}

/** Bytes in decimal units (1 GB = 10⁹ bytes, as disk and GPU makers count). */
export function formatBytes(bytes: number): string {
  const units: [number, string][] = [
    [1e12, "TB"],
    [1e9, "GB"],
    [1e6, "MB"],
    [1e3, "KB"],
  ];
  for (const [size, suffix] of units) {
    if (Math.abs(bytes) >= size) return `${sig3(bytes / size)} ${suffix}`;
  }
  return `${bytes} B`;
}

/** A duration in the largest sensible unit: "42 s", "3.5 hours", "12.0 days", "1.2 million years". */
export function formatDuration(seconds: number): string {
  const minute = 60;
  const hour = 60 * minute;
  const day = 24 * hour;
  const year = 365.25 * day;
  if (seconds < minute) return `${sig3(seconds)} s`;
  if (seconds < hour) return `${sig3(seconds / minute)} min`;
  if (seconds < day) return `${sig3(seconds / hour)} hours`;
  if (seconds < year) return `${sig3(seconds / day)} days`;
  const years = seconds / year;
  if (years < 1e3) return `${sig3(years)} years`;
  if (years < 1e6) return `${sig3(years / 1e3)} thousand years`;
  if (years < 1e9) return `${sig3(years / 1e6)} million years`;
  return `${sig3(years / 1e9)} billion years`;
}

/** 3.14e23 → "3.1e23". */
export function formatFlops(flops: number): string {
  return flops.toExponential(1).replace("e+", "e");
}

function sig3(x: number): string {
  const a = Math.abs(x);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : 2;
  return x.toFixed(digits);
}

/** One formatted row of the "how large is large" table. */
export type SizeRow = Record<string, string>;

/**
 * The "how large is large" table, one row per model, every figure computed here:
 * parameters, memory to hold the weights at four precisions, memory to train with Adam,
 * training tokens (and per parameter: Chinchilla's optimum is about 20), compute (6·N·D, N the
 * parameters a token uses), and how long that compute takes on this laptop and on a
 * cluster of 1,024 A100s, both at peak throughput.
 */
export function sizeTable(configs: readonly ModelConfig[] = MODEL_CONFIGS): SizeRow[] {
  return configs.map((c) => {
    const { total: n, active } = parameterCount(c);
    const tokens = c.trainingTokens;
    // Compute follows the parameters a token goes through (a MoE's active ones); memory holds them all.
    const flops = tokens === null ? null : trainingFlops(active, tokens);
    const na = "n/a";
    return {
      Model: c.name,
      Parameters: active === n ? formatCount(n) : `${formatCount(n)} (${formatCount(active)} active)`,
      "fp32 weights": formatBytes(memoryBytes(n, "fp32")),
      "fp16 weights": formatBytes(memoryBytes(n, "fp16")),
      "int8 weights": formatBytes(memoryBytes(n, "int8")),
      "int4 weights": formatBytes(memoryBytes(n, "int4")),
      "Adam training (16 B/param)": formatBytes(trainingMemoryBytes(n, "mixed").total),
      "KV cache, full context (bf16)": formatBytes(kvCacheBytesPerToken(c, "bf16") * c.contextLength),
      "Training tokens": tokens === null ? na : formatCount(tokens),
      "Tokens per parameter": tokens === null ? na : String(Math.round(tokens / n)),
      "Compute 6ND (FLOP)": flops === null ? na : formatFlops(flops),
      "This laptop": flops === null ? na : formatDuration(trainingSeconds(flops, HARDWARE.laptop)),
      "1,024 A100s": flops === null ? na : formatDuration(trainingSeconds(flops, HARDWARE.cluster)),
    };
  });
}

/** The design choices of each model side by side: the inputs of every count above. */
export function configTable(configs: readonly ModelConfig[] = MODEL_CONFIGS): SizeRow[] {
  return configs.map((c) => ({
    Model: c.name,
    Layers: String(c.nLayers),
    "d_model": String(c.dModel),
    Heads: c.nKVHeads === c.nHeads ? String(c.nHeads) : `${c.nHeads} (KV ${c.nKVHeads})`,
    "d_ff": String(c.dFF),
    Vocabulary: String(c.vocabSize),
    Context: String(c.contextLength),
    MLP: (c.gatedMLP ? "SwiGLU (3 matrices)" : "GELU (2 matrices)") + (c.experts ? `, ${c.experts.total} experts (${c.experts.active} per token)` : ""),
    Norm: c.norm === "layernorm" ? "LayerNorm" : "RMSNorm",
    Biases: c.bias ? "yes" : "no",
    Positions: c.positions === "learned" ? "learned" : "RoPE",
    "Output head": c.tiedEmbeddings ? "tied" : "separate",
  }));
}

/** Where the parameters are: each part as a count and a share of the total. */
export function breakdownTable(configs: readonly ModelConfig[] = MODEL_CONFIGS): SizeRow[] {
  return configs.map((c) => {
    const p = parameterCount(c);
    const part = (n: number) => (n === 0 ? "0" : `${formatCount(n)} (${((100 * n) / p.total).toFixed(1)}%)`);
    return {
      Model: c.name,
      Embeddings: part(p.tokenEmbedding + p.positionEmbedding),
      Attention: part(p.attention),
      MLP: part(p.mlp + p.router),
      Norms: part(p.norms),
      "Output head": part(p.head),
      Total: p.total.toLocaleString("en-US"),
    };
  });
}
