/**
 * Pretraining, wired end to end: text → tokenizer → token ids → 90/10 split → GPT → AdamW
 * with warm-up + cosine → checkpoint. One function, `pretrain`, used by notebook 05 and by
 * the CLI `lib/tools/cli/train.ts`; `loadPretrained` reads the checkpoint back for sampling and
 * for the later chapters (fine-tuning, reward model, PPO).
 *
 *   corpus ("moby-dick" | "shakespeare" | a file)
 *     │  tokenizer: "char" (one token per character, as nanoGPT's Shakespeare model)
 *     │             or "bpe" (byte-level BPE with a small vocabulary, trained on the TRAIN part)
 *     ▼
 *   ids ── first 90 % ──► train       random windows [B, T] + next tokens (lib/pretrain/batches)
 *       └─ last 10 %  ──► val         never trained on: the honest measure
 *     │
 *     ▼
 *   GPT (a preset, vocabSize = the tokenizer's) ── train() (lib/pretrain/trainer) ──► checkpoint
 *      AdamW β = (0.9, 0.99), weight decay 0.1 on the matrices (isDecayed), lr warm-up then
 *      cosine to minLr, gradients clipped to norm 1.0: nanoGPT's Shakespeare-char recipe.
 *
 * The checkpoint (lib/pretrain/checkpoint) holds the weights, AdamW's state, the RNG, the loss
 * history, the GPT config, the tokenizer and the run's settings (`extra.pretrain`), so
 * `resume: true` continues exactly, and `loadPretrained(dir)` needs nothing else.
 */
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { backendInfo, checkThreads, defaultTrainingThreads, describeMatmul, stepMemoryLimitBytes } from "../core/backend";
import { batcher, splitTokens } from "./batches";
import { trainBPE } from "../tokens/bpe";
import { CharTokenizer } from "../tokens/charTokenizer";
import { checkpointExists, disposeCheckpoint, LossHistory, loadCheckpoint } from "./checkpoint";
import { loadCorpus, trainValSplit } from "../tokens/corpus";
import {
  checkGPTParams, checkTrainingStepFits, countParameters, GPT_PRESETS, GPTConfig, gptConfig, gptLoss, GPTParams, GPTPresetName, initGPT,
  isDecayed, validateConfig,
} from "../gpt/gpt";
import { cosineSchedule } from "../core/schedule";
import { projectPath } from "../core/paths";
import { isSmoke } from "../core/smoke";
import type { Tokenizer } from "../tokens/tokenizer";
import { EvalInfo, ProgressMode, StepInfo, train } from "./trainer";

export type PretrainTokenizerKind = "char" | "bpe";

/** Default vocabulary of the "bpe" tokenizer: 256 bytes + 256 merges. */
export const PRETRAIN_BPE_VOCAB = 512;

// ---------------------------------------------------------------------------------------
// Data

export interface PretrainDataOptions {
  /** "moby-dick" (default), "shakespeare", or the path of a UTF-8 text file. */
  data?: string;
  /** The corpus itself (tests, a slice of a book); `data` then only names it. */
  text?: string;
  /** "char" (default) or "bpe". */
  tokenizer?: PretrainTokenizerKind;
  /** Vocabulary size of the BPE tokenizer (default 512). */
  bpeVocabSize?: number;
  /** Use this tokenizer instead of building one (e.g. the one of a checkpoint). */
  useTokenizer?: Tokenizer;
  /** Fraction of the tokens that trains (default 0.9). */
  trainFraction?: number;
}

/** A corpus ready for training: its tokenizer and its token ids, split. */
export interface PretrainData {
  /** Name of the corpus ("moby-dick", "shakespeare", a path, or "text"). */
  name: string;
  text: string;
  tokenizer: Tokenizer;
  /** Which kind of tokenizer ("char" | "bpe", or the type of a given one). */
  tokenizerKind: string;
  /** All token ids of the text. */
  ids: Int32Array;
  /** The first 90 %. */
  train: Int32Array;
  /** The last 10 %. */
  val: Int32Array;
}

/**
 * Load a corpus and tokenize it (see the top of the file). The char tokenizer's vocabulary
 * is every character of the whole text (as nanoGPT: a character seen only in the val part
 * must still be encodable); the BPE tokenizer is trained on the train part only.
 */
export async function preparePretrainData(opts: PretrainDataOptions = {}): Promise<PretrainData> {
  const name = opts.data ?? (opts.text !== undefined ? "text" : "moby-dick");
  const text = opts.text ?? (await loadCorpus(name));
  if (text.length === 0) throw new Error(`pretrain: the corpus "${name}" is empty`);
  const fraction = opts.trainFraction ?? 0.9;
  let tokenizer: Tokenizer;
  let kind: string;
  if (opts.useTokenizer !== undefined) {
    tokenizer = opts.useTokenizer;
    kind = tokenizer.type;
  } else {
    kind = opts.tokenizer ?? "char";
    if (kind === "char") tokenizer = CharTokenizer.fromText(text);
    else if (kind === "bpe") {
      const vocab = opts.bpeVocabSize ?? PRETRAIN_BPE_VOCAB;
      if (!Number.isInteger(vocab) || vocab < 256) throw new Error(`pretrain: bpeVocabSize must be an integer >= 256, got ${vocab}`);
      tokenizer = trainBPE(trainValSplit(text, fraction).train, { vocabSize: vocab }).tokenizer;
    } else throw new Error(`pretrain: tokenizer must be "char" or "bpe", got ${JSON.stringify(kind)}`);
  }
  let encoded: number[];
  try {
    encoded = tokenizer.encode(text);
  } catch (e) {
    throw new Error(`pretrain: the ${kind} tokenizer cannot encode the corpus "${name}": ${(e as Error).message}`);
  }
  const ids = Int32Array.from(encoded);
  const { train, val } = splitTokens(ids, fraction);
  return { name, text, tokenizer, tokenizerKind: kind, ids, train, val };
}

// ---------------------------------------------------------------------------------------
// Training

export interface PretrainOptions extends PretrainDataOptions {
  /** Data already prepared by preparePretrainData (skips loading and tokenizing). */
  prepared?: PretrainData;
  /** GPT preset (default "nanogpt-cpu"); vocabSize always comes from the tokenizer. */
  preset?: GPTPresetName;
  /** Fields of the preset to replace (blockSize, nLayer, dropout…). */
  overrides?: Partial<GPTConfig>;
  /** Train up to this step (counted from 0 over all resumed segments). Default 2000. */
  maxIters?: number;
  /**
   * Length of the learning-rate schedule (default maxIters). Set it to the final step when
   * training in segments (maxIters 200, 400, … with resume) so that every segment follows
   * the same warm-up + cosine curve as one uninterrupted run.
   */
  totalIters?: number;
  /** Sequences per batch (default 12). */
  batchSize?: number;
  /** Peak learning rate (default 1e-3). */
  lr?: number;
  /** Warm-up steps (default min(100, totalIters / 10)). */
  warmup?: number;
  /** Floor of the cosine (default lr / 10). */
  minLr?: number;
  /** AdamW decoupled weight decay on the matrices (default 0.1). */
  weightDecay?: number;
  /** AdamW β2 (default 0.99: small models, few steps; β1 is 0.9). */
  beta2?: number;
  /** Clip gradients to this global norm (default 1.0; 0: off). */
  gradClip?: number;
  /** Evaluate every this many steps (default totalIters / 8, as 250 of nanoGPT's 2000). */
  evalInterval?: number;
  /** Batches per split per evaluation (default 20). */
  evalIters?: number;
  /** Seed of the initialisation and of the training RNG (default 1337). */
  seed?: number;
  /**
   * Threads that share each batch (data parallelism, lib/pretrain/dataParallel.ts). Default
   * (defaultTrainingThreads): 1 where a BLAS splits each product across the cores, else 2 when
   * the machine has 2+ cores and the backend is wasm or cpu, else 1. Seeded runs repeat
   * exactly with the same number of threads (the float sums are ordered differently).
   */
  threads?: number;
  /**
   * Which parameters get weight decay (default isDecayed: matrices of the blocks, not biases,
   * LayerNorm or embeddings). nanoGPT's code decays every tensor of 2+ dimensions, embeddings
   * included: `(name, shape) => shape.length >= 2`.
   */
  decay?: (name: string, shape: number[]) => boolean;
  /** Checkpoint directory (none: no checkpoint). */
  outDir?: string;
  /** Save every this many steps too (default: only at the end of the call). */
  checkpointInterval?: number;
  /** Continue from the checkpoint in outDir if there is one (its tokenizer and config are used). */
  resume?: boolean;
  /** Live loss chart in a notebook (default true). */
  chart?: boolean;
  chartTitle?: string;
  /** Terminal progress (default "auto": a bar on a terminal, lines otherwise). */
  progress?: ProgressMode;
  logInterval?: number;
  log?: (line: string) => void;
  onStep?: (info: StepInfo) => void;
  /** Called after every evaluation, with the model as it is at that step (e.g. to sample from it). */
  onEval?: (info: EvalInfo, model: { params: GPTParams; config: GPTConfig; tokenizer: Tokenizer }) => void;
}

/** The numbers of a run, JSON-ready (the CLI prints this). */
export interface PretrainSummary {
  trainLoss: number;
  valLoss: number;
  /** exp(valLoss). */
  perplexity: number;
  trainPerplexity: number;
  /** Step reached (all segments). */
  iterations: number;
  /** Steps done by this call. */
  itersThisRun: number;
  /** Wall-clock seconds of this call (data preparation included). */
  seconds: number;
  msPerStep: number;
  /** Threads that shared each step's batch. */
  threads: number;
  backend: string;
  /** On wasm, what computed the matrix products (describeMatmul), e.g. "BLAS (OpenBLAS 0.3.21 (SkylakeX), 2 threads per product)". */
  matmul?: string;
  /** Checkpoint directory, or null when outDir was not given. */
  checkpoint: string | null;
  resumedFrom: string | null;
  data: string;
  tokenizer: string;
  vocabSize: number;
  parameters: number;
  trainTokens: number;
  valTokens: number;
  config: GPTConfig;
}

export interface PretrainResult {
  summary: PretrainSummary;
  /** The trained weights (variables: dispose them with disposeParams when done). */
  params: GPTParams;
  config: GPTConfig;
  tokenizer: Tokenizer;
  /** Every loss of the run from step 0 (resumed segments included). */
  history: LossHistory;
  data: PretrainData;
}

/** The settings that define a run, stored in checkpoints as `extra.pretrain`. */
export interface PretrainSettings {
  data: string;
  tokenizer: string;
  preset: string;
  batchSize: number;
  totalIters: number;
  lr: number;
  warmup: number;
  minLr: number;
  weightDecay: number;
  beta2: number;
  gradClip: number;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`pretrain: ${name} must be a positive integer, got ${v}`);
  return v;
}

function nonNegative(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) throw new Error(`pretrain: ${name} must be a finite number >= 0, got ${v}`);
  return v;
}

/** Train a GPT on a corpus (see the top of the file). */
export async function pretrain(opts: PretrainOptions = {}): Promise<PretrainResult> {
  const t0 = performance.now();
  const preset = opts.preset ?? "nanogpt-cpu";
  if (!(preset in GPT_PRESETS)) throw new Error(`pretrain: unknown preset "${preset}"; use one of: ${Object.keys(GPT_PRESETS).join(", ")}`);
  const maxIters = opts.maxIters ?? 2000;
  if (!Number.isInteger(maxIters) || maxIters < 0) throw new Error(`pretrain: maxIters must be an integer >= 0, got ${maxIters}`);
  const totalIters = opts.totalIters ?? maxIters;
  if (!Number.isInteger(totalIters) || totalIters < maxIters) {
    throw new Error(`pretrain: totalIters must be an integer >= maxIters (${maxIters}), got ${totalIters}`);
  }
  const batchSize = positiveInt("batchSize", opts.batchSize ?? 12);
  const lr = nonNegative("lr", opts.lr ?? 1e-3);
  const warmup = opts.warmup ?? Math.min(100, Math.floor(totalIters / 10));
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`pretrain: warmup must be an integer >= 0, got ${warmup}`);
  const minLr = nonNegative("minLr", opts.minLr ?? lr / 10);
  const weightDecay = nonNegative("weightDecay", opts.weightDecay ?? 0.1);
  const beta2 = nonNegative("beta2", opts.beta2 ?? 0.99);
  const gradClip = nonNegative("gradClip", opts.gradClip ?? 1.0);
  const evalInterval = positiveInt("evalInterval", opts.evalInterval ?? Math.max(1, Math.round(totalIters / 8)));
  const evalIters = opts.evalIters ?? 20;
  if (!Number.isInteger(evalIters) || evalIters < 0) throw new Error(`pretrain: evalIters must be an integer >= 0, got ${evalIters}`);
  const seed = opts.seed ?? 1337;
  const threads = opts.threads ?? defaultTrainingThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`pretrain: threads must be an integer >= 1, got ${threads}`);
  checkThreads(threads, "pretrain: threads");
  if (opts.resume && opts.outDir === undefined) throw new Error("pretrain: resume needs outDir (where the checkpoint is)");

  // On resume, the checkpoint's tokenizer and config win: ids and shapes must match the weights.
  let ckTokenizer: Tokenizer | undefined;
  let ckConfig: GPTConfig | undefined;
  let ckSettings: Partial<PretrainSettings> | undefined;
  if (opts.resume && opts.outDir !== undefined && checkpointExists(opts.outDir)) {
    const meta = readCheckpointMeta(opts.outDir);
    ckTokenizer = meta.tokenizer;
    ckConfig = meta.config;
    ckSettings = meta.settings;
  }

  let data: PretrainData;
  if (opts.prepared !== undefined) data = opts.prepared;
  else data = await preparePretrainData({ ...opts, useTokenizer: opts.useTokenizer ?? ckTokenizer });
  if (ckTokenizer !== undefined && JSON.stringify(ckTokenizer.toJSON()) !== JSON.stringify(data.tokenizer.toJSON())) {
    throw new Error(`pretrain: the checkpoint in ${opts.outDir} was trained with a different tokenizer; resume with the same data and tokenizer, or use another outDir`);
  }
  if (ckSettings?.tokenizer !== undefined && opts.tokenizer !== undefined && ckSettings.tokenizer !== opts.tokenizer && opts.useTokenizer === undefined) {
    throw new Error(`pretrain: the checkpoint in ${opts.outDir} uses the ${ckSettings.tokenizer} tokenizer, not ${opts.tokenizer}`);
  }

  if (ckSettings?.data !== undefined && ckSettings.data !== data.name) {
    throw new Error(`pretrain: the checkpoint in ${opts.outDir} was trained on "${ckSettings.data}", not "${data.name}"; resume with the same data, or use another outDir`);
  }

  const config = gptConfig(preset, { ...opts.overrides, vocabSize: data.tokenizer.vocabSize });
  if (ckConfig !== undefined && JSON.stringify(sortKeys(ckConfig)) !== JSON.stringify(sortKeys(config))) {
    throw new Error(`pretrain: the checkpoint in ${opts.outDir} has the model ${JSON.stringify(ckConfig)}, this run asks for ${JSON.stringify(config)}`);
  }
  checkTrainingStepFits(config, batchSize, threads, "pretrain", `batch size ${batchSize}`, stepMemoryLimitBytes());
  for (const [split, ids] of [["train", data.train], ["val", data.val]] as const) {
    if (ids.length < config.blockSize + 1) {
      throw new Error(`pretrain: the ${split} split has ${ids.length} tokens, fewer than blockSize + 1 = ${config.blockSize + 1}; use a longer text or a smaller blockSize`);
    }
  }

  const settings: PretrainSettings = {
    data: data.name, tokenizer: data.tokenizerKind, preset, batchSize, totalIters, lr, warmup, minLr, weightDecay, beta2, gradClip,
  };
  const params = initGPT(config, { seed });
  try {
    const getBatch = batcher(data.train, data.val, config.blockSize, batchSize);
    const summary = await train({
      params,
      lossFn: (batch, ctx) => gptLoss(params, config, batch.x, batch.y, { training: ctx.training, rng: ctx.rng }),
      // The same loss, split across threads when there are cores to spare (lib/pretrain/dataParallel.ts).
      dataParallel: { threads, loss: { builtin: "gpt", options: { config } } },
      getBatch,
      optimizer: { lr, beta1: 0.9, beta2, weightDecay, decay: opts.decay ?? isDecayed },
      schedule: cosineSchedule(lr, totalIters, { warmupIters: warmup, minLr, decayIters: totalIters }),
      maxIters,
      evalInterval,
      evalIters,
      gradClip,
      seed,
      checkpointDir: opts.outDir,
      checkpointInterval: opts.checkpointInterval,
      resume: opts.resume,
      modelConfig: config,
      tokenizer: data.tokenizer,
      extra: { pretrain: settings },
      chart: opts.chart,
      chartTitle: opts.chartTitle ?? `Pretraining on ${data.name} (${data.tokenizerKind} tokens, ${preset})`,
      progress: opts.progress,
      logInterval: opts.logInterval,
      log: opts.log,
      onStep: opts.onStep,
      onEval: opts.onEval === undefined ? undefined : (info) => opts.onEval!(info, { params, config, tokenizer: data.tokenizer }),
    });
    return {
      summary: {
        trainLoss: summary.trainLoss,
        valLoss: summary.valLoss,
        perplexity: summary.valPerplexity,
        trainPerplexity: summary.trainPerplexity,
        iterations: summary.step,
        itersThisRun: summary.iters,
        seconds: (performance.now() - t0) / 1000,
        msPerStep: summary.msPerStep,
        threads: summary.threads,
        backend: backendInfo()?.name ?? tf.getBackend(),
        matmul: describeMatmul(),
        checkpoint: opts.outDir === undefined ? null : path.resolve(opts.outDir),
        resumedFrom: summary.resumedFrom ?? null,
        data: data.name,
        tokenizer: data.tokenizerKind,
        vocabSize: config.vocabSize,
        parameters: countParameters(params),
        trainTokens: data.train.length,
        valTokens: data.val.length,
        config,
      },
      params,
      config,
      tokenizer: data.tokenizer,
      history: summary.history,
      data,
    };
  } catch (e) {
    disposeParams(params);
    throw e;
  }
}

/** Free a parameter record's tensors. */
export function disposeParams(params: Record<string, tf.Tensor>): void {
  tf.dispose(Object.values(params));
}

function sortKeys(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b)));
}

/** Tokenizer, config and settings of a checkpoint, without keeping its tensors. */
function readCheckpointMeta(dir: string): { tokenizer?: Tokenizer; config?: GPTConfig; settings?: Partial<PretrainSettings> } {
  const ck = loadCheckpoint(dir);
  try {
    const settings = (ck.extra?.pretrain ?? undefined) as Partial<PretrainSettings> | undefined;
    return { tokenizer: ck.tokenizer, config: ck.config as GPTConfig | undefined, settings };
  } finally {
    disposeCheckpoint(ck);
  }
}

// ---------------------------------------------------------------------------------------
// Loading

export interface PretrainedModel {
  params: GPTParams;
  config: GPTConfig;
  tokenizer: Tokenizer;
  /** Updates the model was trained for. */
  step: number;
  /** The directory read. */
  dir: string;
  losses?: LossHistory;
  /** The run's settings (data, tokenizer, preset, batch size…), when saved by pretrain. */
  settings?: Partial<PretrainSettings>;
  /** Backend that computed the weights. */
  backend: string;
}

/**
 * Read a GPT checkpoint (as written by pretrain) for sampling or further training: weights
 * as trainable variables, config, tokenizer. The optimizer's state is dropped (fine-tuning
 * starts its own). Errors are one line naming the directory or file and what is wrong.
 */
export function loadPretrained(dir: string): PretrainedModel {
  const ck = loadCheckpoint(dir);
  try {
    if (ck.smoke && !isSmoke()) {
      throw new Error(`${projectPath(ck.dir)}: made in smoke mode (COURSE_SMOKE=1, tiny sizes); full mode does not build on it: make it again without COURSE_SMOKE`);
    }
    if (ck.config === undefined) throw new Error(`${ck.dir}: the checkpoint has no model config; it was not written by pretrain`);
    const config = ck.config as GPTConfig;
    try {
      validateConfig(config);
    } catch (e) {
      throw new Error(`${ck.dir}: bad model config: ${(e as Error).message}`);
    }
    if (ck.tokenizer === undefined) throw new Error(`${ck.dir}: the checkpoint has no tokenizer; it was not written by pretrain`);
    if (ck.tokenizer.vocabSize > config.vocabSize) {
      throw new Error(`${ck.dir}: the tokenizer has ${ck.tokenizer.vocabSize} tokens but the model only ${config.vocabSize}`);
    }
    try {
      checkGPTParams(ck.params, config);
    } catch (e) {
      throw new Error(`${ck.dir}: ${(e as Error).message}`);
    }
    const params: GPTParams = {};
    for (const [name, t] of Object.entries(ck.params)) params[name] = tf.variable(t, true, undefined, "float32");
    const out: PretrainedModel = { params, config, tokenizer: ck.tokenizer, step: ck.step, dir: ck.dir, backend: ck.backend };
    if (ck.losses !== undefined) out.losses = ck.losses;
    const settings = ck.extra?.pretrain;
    if (settings !== null && typeof settings === "object") out.settings = settings as Partial<PretrainSettings>;
    return out;
  } finally {
    disposeCheckpoint(ck);
  }
}

// ---------------------------------------------------------------------------------------
// Held-out loss, measured the same way every time

export interface HeldOutLoss {
  /** Mean negative log-likelihood per predicted token, nats. */
  loss: number;
  /** Bits per token: loss / ln 2 (per character for a character tokenizer). */
  bits: number;
  windows: number;
  tokens: number;
}

/**
 * What counting alone achieves, the baselines a trained model must beat: the held-out loss
 * (nats per token) of a unigram model (how often each token occurs) and of a bigram model (how
 * often each token follows the previous one), both counted on `train` with add-one smoothing so
 * that no held-out token has probability 0. The bigram sees exactly one token of context, as a
 * GPT does at the first position of a window.
 */
export function countingBaselineLosses(train: ArrayLike<number>, val: ArrayLike<number>, vocabSize: number): { unigram: number; bigram: number } {
  if (!Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize > 65536) {
    throw new Error(`countingBaselineLosses: vocabSize must be an integer in 1..65536 (a ${vocabSize}² bigram table), got ${vocabSize}`);
  }
  if (val.length < 2) throw new Error(`countingBaselineLosses: need at least 2 held-out tokens, got ${val.length}`);
  const check = (ids: ArrayLike<number>, name: string) => {
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isInteger(ids[i]) || ids[i] < 0 || ids[i] >= vocabSize) throw new Error(`countingBaselineLosses: ${name}[${i}] is ${ids[i]}; expected an id in 0..${vocabSize - 1}`);
    }
  };
  check(train, "train");
  check(val, "val");
  const v = vocabSize;
  const uni = new Float64Array(v).fill(1);
  const bi = new Float64Array(v * v).fill(1);
  const rowSum = new Float64Array(v).fill(v);
  for (let i = 0; i < train.length; i++) uni[train[i]]++;
  for (let i = 1; i < train.length; i++) {
    bi[train[i - 1] * v + train[i]]++;
    rowSum[train[i - 1]]++;
  }
  const uniTotal = uni.reduce((a, b) => a + b, 0);
  let uniLoss = 0;
  let biLoss = 0;
  for (let i = 1; i < val.length; i++) {
    uniLoss -= Math.log(uni[val[i]] / uniTotal);
    biLoss -= Math.log(bi[val[i - 1] * v + val[i]] / rowSum[val[i - 1]]);
  }
  return { unigram: uniLoss / (val.length - 1), bigram: biLoss / (val.length - 1) };
}

/**
 * The loss on held-out ids, deterministic: consecutive windows of blockSize + 1 tokens that
 * overlap by one (every token after the first predicted exactly once, from 1 to blockSize
 * tokens of context, as in training), taken from the start; `maxWindows` stops early (a quick
 * check), else the whole sequence is used. Unlike the training loop's evaluation, which
 * averages random windows, this gives the same number on every run: the figure a model card
 * states and a test reproduces.
 */
export function heldOutLoss(
  params: GPTParams | Record<string, tf.Tensor>, config: GPTConfig, ids: Int32Array, opts: { maxWindows?: number; batchSize?: number } = {},
): HeldOutLoss {
  const T = config.blockSize;
  const available = Math.floor((ids.length - 1) / T);
  const windows = Math.min(available, opts.maxWindows ?? available);
  if (windows < 1) throw new Error(`heldOutLoss: need at least ${T + 1} tokens for one window of the model's context, got ${ids.length}`);
  const bs = opts.batchSize ?? 32;
  let sum = 0;
  for (let w0 = 0; w0 < windows; w0 += bs) {
    const n = Math.min(bs, windows - w0);
    const x = new Int32Array(n * T), y = new Int32Array(n * T);
    for (let b = 0; b < n; b++) {
      const s = (w0 + b) * T;
      x.set(ids.subarray(s, s + T), b * T);
      y.set(ids.subarray(s + 1, s + T + 1), b * T);
    }
    sum += tf.tidy(() => gptLoss(params as GPTParams, config, tf.tensor2d(x, [n, T], "int32"), tf.tensor2d(y, [n, T], "int32")).dataSync()[0]) * n;
  }
  const loss = sum / windows;
  return { loss, bits: loss / Math.LN2, windows, tokens: windows * T };
}
