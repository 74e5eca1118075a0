/**
 * Rollouts: the policy answers a batch of prompts at once, and the answers are laid out
 * for teacher-forced scoring (policy log-probs, reference log-probs, values, reward).
 *
 * Batched sampling with a KV cache and prompts of different lengths: GPT-2 has no attention
 * mask for padding, so instead of padding prompts we walk ALL rows through the same
 * positions together. At position p a row whose prompt is longer than p is FED its own
 * prompt token (nothing sampled), a row past its prompt SAMPLES its next token, a finished
 * row is fed padding (which only its own later positions could see: causal attention, and
 * they are never used). Every row thus sees exactly its own prompt and answer, the cache
 * grows by one position per step for the whole batch, and the result equals sampling each
 * row alone with the same random draws.
 *
 * Layout for scoring ("response batch"): each row is prompt + response, right-padded to L;
 * inputs = seq[:, 0..L−2], targets = seq[:, 1..L−1] (position t predicts target t), and
 * mask[b, t] = 1 where target t is a response token. Per-token arrays of PPO (logp, values,
 * rewards, advantages) use this [B, L−1] target layout.
 */
import * as tf from "@tensorflow/tfjs";
import { createKVCache, disposeKVCache, GPTConfig, GPTParams, gptLastLogits } from "./gpt";
import { createRng, Rng, seedFor } from "../core/random";
import { defaultThreads, shardSizes } from "../core/backend";
import { sampleShardsOnThreads, type SampleShard } from "./samplingThreads";
import { sampleFromLogits, SamplingOptions } from "./sampling";

export interface BatchGenerateOptions extends SamplingOptions {
  /** Most tokens per response (also limited by the context: blockSize − prompt length). */
  maxNewTokens: number;
  /** End-of-turn token id: a row stops after generating it (it is kept in the response). */
  stopId?: number;
  /** Id fed to finished rows (never attended to by a live row). Default 0. */
  padId?: number;
  /** Seed when no rng is given. Default 0. */
  seed?: number;
  rng?: Rng;
  /** Random streams: "batch" (default), one for the batch; "row", one per row (see generateBatch). */
  streams?: "batch" | "row";
  /** Threads that sample the rows (lib/gpt/samplingThreads.ts): with "row" streams or temperature 0, default defaultThreads(); else 1. */
  threads?: number;
  /** With "row" streams or temperature 0, the rows a thread samples at once (the rest wait their turn). Default MAX_ROWS_AT_ONCE. */
  maxRowsAtOnce?: number;
}

export interface BatchGeneration {
  /** Prompts as used (cropped from the left to blockSize − 1 tokens when longer). */
  prompts: number[][];
  /** New tokens per row (the stop token included when reached). */
  responses: number[][];
  /** Whether each row stopped at stopId (false: cut off by maxNewTokens or the context). */
  ended: boolean[];
}

/**
 * Sample one response per prompt, all rows at once with one KV cache (see the top of the file).
 *
 * Random draws, `streams`: "batch" (the default), one stream for the whole batch — at each
 * step, rows in order, one draw per sampling row; "row", each row its own stream, seeded from
 * `rng` (one draw per row, in order), so a row's answer does not depend on the other rows.
 * With "row" streams or greedy decoding (temperature 0) the rows are split between `threads`
 * threads (lib/gpt/samplingThreads.ts; default defaultThreads(), 2 on a 2-core machine) and the
 * answers are the same with any number of threads; a "batch" stream is one thread's.
 */
export function generateBatch(params: GPTParams, config: GPTConfig, prompts: readonly number[][], opts: BatchGenerateOptions): BatchGeneration {
  const { maxNewTokens } = opts;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new Error(`generateBatch: maxNewTokens must be an integer >= 1, got ${maxNewTokens}`);
  if (prompts.length === 0) throw new Error("generateBatch: no prompts");
  if (config.blockSize < 2) throw new Error("generateBatch: blockSize must be at least 2");
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`generateBatch: prompt ${i} is empty; give at least one token`);
  });
  const splittable = opts.streams === "row" || opts.temperature === 0;
  const threads = opts.threads ?? (splittable ? defaultThreads() : 1);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`generateBatch: threads must be an integer >= 1, got ${threads}`);
  if (threads > 1 && !splittable) throw new Error(`generateBatch: sampling on ${threads} threads needs streams: "row" (one random stream per row) or temperature 0`);
  const rng = opts.rng ?? createRng(opts.seed ?? 0);
  const rowSeeds = opts.streams === "row" ? prompts.map(() => seedFor(rng)) : undefined;
  const sizes = shardSizes(prompts.length, threads);
  if (sizes.length === 1) return generateRows(params, config, prompts, { ...opts, rng, rowSeeds });
  const shards: SampleShard[] = [];
  let start = 0;
  for (const n of sizes) {
    shards.push({ prompts: prompts.slice(start, start + n), rowSeeds: rowSeeds?.slice(start, start + n) });
    start += n;
  }
  const { rng: _r, threads: _t, seed: _s, ...options } = opts;
  const answers = sampleShardsOnThreads(params, config, shards, options, (shard) => generateRows(params, config, shard.prompts, { ...opts, rng, rowSeeds: shard.rowSeeds }));
  return { prompts: croppedPrompts(prompts, config), responses: answers.flatMap((a) => a.responses), ended: answers.flatMap((a) => a.ended) };
}

/** Prompts as sampling uses them: cropped from the left to blockSize − 1 tokens. */
function croppedPrompts(prompts: readonly number[][], config: GPTConfig): number[][] {
  return prompts.map((p) => (p.length > config.blockSize - 1 ? p.slice(p.length - (config.blockSize - 1)) : [...p]));
}

/**
 * Rows one thread samples at once, at most: every row holds its own KV cache and logits, and a
 * few thousand rows of the course's base model overflow a wasm thread's 4 GiB (measured: 2,560
 * rows crashed, 960 did not). Rows with their own random stream, or greedy ones, are sampled in
 * chunks of this many, which gives the same answers as all at once.
 */
export const MAX_ROWS_AT_ONCE = 256;

/**
 * generateBatch's work on one thread, for checked prompts (a worker of lib/gpt/samplingThreads.ts
 * calls it for its shard): row r draws from its own stream when `rowSeeds` are given, else every row from `rng`.
 * Rows that do not share a stream go opts.maxRowsAtOnce at a time.
 */
export function generateRows(params: GPTParams, config: GPTConfig, prompts: readonly number[][], opts: BatchGenerateOptions & { rowSeeds?: number[] }): BatchGeneration {
  const chunk = opts.maxRowsAtOnce ?? MAX_ROWS_AT_ONCE;
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`generateRows: maxRowsAtOnce must be an integer >= 1, got ${chunk}`);
  const independent = opts.rowSeeds !== undefined || opts.temperature === 0;
  if (!independent || prompts.length <= chunk) return generateRowsAtOnce(params, config, prompts, opts);
  const out: BatchGeneration = { prompts: [], responses: [], ended: [] };
  for (let i = 0; i < prompts.length; i += chunk) {
    const part = generateRowsAtOnce(params, config, prompts.slice(i, i + chunk), { ...opts, rowSeeds: opts.rowSeeds?.slice(i, i + chunk) });
    out.prompts.push(...part.prompts);
    out.responses.push(...part.responses);
    out.ended.push(...part.ended);
  }
  return out;
}

function generateRowsAtOnce(params: GPTParams, config: GPTConfig, prompts: readonly number[][], opts: BatchGenerateOptions & { rowSeeds?: number[] }): BatchGeneration {
  const { maxNewTokens, stopId, padId = 0 } = opts;
  const rng = opts.rng ?? createRng(opts.seed ?? 0);
  const rowRngs = opts.rowSeeds?.map((s) => createRng(s));
  const b = prompts.length;
  const ps = croppedPrompts(prompts, config);
  const budget = ps.map((p) => Math.min(maxNewTokens, config.blockSize - p.length));
  const responses: number[][] = ps.map(() => []);
  const ended = ps.map(() => false);
  const done = ps.map(() => false);
  const minLen = Math.min(...ps.map((p) => p.length));
  const cache = createKVCache(config);
  try {
    let logits = lastLogits(params, config, ps.map((p) => p.slice(0, minLen)), cache); // [B·V] of position minLen − 1
    const v = config.vocabSize;
    for (let pos = minLen; ; pos++) {
      const next: number[] = new Array(b);
      for (let r = 0; r < b; r++) {
        if (pos < ps[r].length) { next[r] = ps[r][pos]; continue; } // still feeding its prompt
        if (done[r]) { next[r] = padId; continue; }
        const id = sampleFromLogits(logits.subarray(r * v, (r + 1) * v), opts, rowRngs ? rowRngs[r] : rng);
        responses[r].push(id);
        next[r] = id;
        if (id === stopId) { ended[r] = true; done[r] = true; }
        if (responses[r].length >= budget[r]) done[r] = true;
      }
      if (done.every((d) => d)) break;
      logits = lastLogits(params, config, next.map((id) => [id]), cache);
    }
  } finally {
    disposeKVCache(cache);
  }
  return { prompts: ps, responses, ended };
}

function lastLogits(params: GPTParams, config: GPTConfig, rows: number[][], cache: ReturnType<typeof createKVCache>): Float32Array {
  const t = tf.tidy(() => gptLastLogits(params, config, tf.tensor2d(rows, [rows.length, rows[0].length], "int32"), { kvCache: cache })); // [B, V]
  const out = t.dataSync() as Float32Array;
  t.dispose();
  return out;
}

/** prompt + response rows laid out for teacher-forced scoring (see the top of the file). */
export interface ResponseBatch {
  /** Rows B and target positions T = L − 1. */
  batch: number;
  length: number;
  /** [B][T] input ids (seq[0..L−2]) and target ids (seq[1..L−1]), right-padded with padId. */
  inputs: number[][];
  targets: number[][];
  /** [B][T] 1 where target t is a response token. */
  mask: number[][];
  /** Tokens of each full sequence (prompt + response, after cropping). */
  lengths: number[];
  /** Prompt tokens kept per row. */
  promptLengths: number[];
  /** Response tokens kept per row. */
  responseLengths: number[];
}

/**
 * Lay out prompt + response pairs. A pair longer than blockSize loses tokens from the START
 * of its prompt first (at least one prompt token is kept), then from the END of its response.
 */
export function responseBatch(prompts: readonly number[][], responses: readonly number[][], blockSize: number, padId = 0): ResponseBatch {
  if (prompts.length !== responses.length) throw new Error(`responseBatch: ${prompts.length} prompts but ${responses.length} responses`);
  if (prompts.length === 0) throw new Error("responseBatch: empty batch");
  const rows = prompts.map((p, i) => {
    if (p.length === 0) throw new Error(`responseBatch: prompt ${i} is empty`);
    if (responses[i].length === 0) throw new Error(`responseBatch: response ${i} is empty`);
    const resp = responses[i].slice(0, blockSize - 1);
    const keepPrompt = Math.min(p.length, blockSize - resp.length);
    return { prompt: p.slice(p.length - keepPrompt), resp };
  });
  const len = Math.max(...rows.map((r) => r.prompt.length + r.resp.length));
  const t = len - 1;
  const inputs: number[][] = [], targets: number[][] = [], mask: number[][] = [];
  for (const { prompt, resp } of rows) {
    const seq = [...prompt, ...resp];
    while (seq.length < len) seq.push(padId);
    inputs.push(seq.slice(0, t));
    targets.push(seq.slice(1));
    // target j is token j + 1: a response token when prompt.length ≤ j + 1 < prompt.length + resp.length
    mask.push(Array.from({ length: t }, (_, j) => (j + 1 >= prompt.length && j + 1 < prompt.length + resp.length ? 1 : 0)));
  }
  return {
    batch: rows.length, length: t, inputs, targets, mask,
    lengths: rows.map((r) => r.prompt.length + r.resp.length),
    promptLengths: rows.map((r) => r.prompt.length),
    responseLengths: rows.map((r) => r.resp.length),
  };
}

/** Rows [B][T] of numbers → a [B, T] tensor. */
export function rowsToTensor(rows: readonly number[][], dtype: "int32" | "float32"): tf.Tensor2D {
  return tf.tensor2d(rows as number[][], [rows.length, rows[0].length], dtype);
}
