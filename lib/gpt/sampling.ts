/**
 * Generating text with a GPT: feed the prompt, turn the last position's logits into a
 * probability distribution, draw the next token, append it, repeat.
 *
 *   logits [V] ──÷ temperature──► keep top-k ──► keep top-p (nucleus) ──► softmax ──► draw
 *
 * temperature < 1 sharpens the distribution, > 1 flattens it, 0 means "always the most
 * likely token" (greedy decoding, deterministic). top-k keeps the k most likely tokens;
 * top-p keeps the smallest set of most likely tokens whose probabilities add up to ≥ p.
 *
 * KV cache: without one, every new token re-runs the model over the whole context
 * (T positions → O(T²) work per token for attention, O(T) for everything else). The
 * keys and values of past positions never change (causal attention: a position only
 * looks back), so we keep them per layer (lib/gpt/gpt.ts `KVCache`) and run each new token
 * alone: one position through the model, attending to the cached keys/values.
 *
 * Past the context: GPT-2's positions are learned absolute embeddings for 0..blockSize-1,
 * so a cache cannot "slide" (every cached key was computed at its old position). When the
 * sequence reaches blockSize, generation continues as nanoGPT does without a cache: each
 * further token is computed from the last blockSize tokens, recomputed from scratch
 * (slower, and the output is identical with or without `useKvCache`).
 */
import * as tf from "@tensorflow/tfjs";
import { createDecoder, Decoder } from "./decoder";
import { createKVCache, disposeKVCache, GPTConfig, GPTParams, gptLastLogits, KVCache } from "./gpt";
import { createRng, Rng } from "../core/random";
import { Tokenizer } from "../tokens/tokenizer";
import { checkSampling, sampleFromLogits, type SamplingOptions } from "./nextToken";

export * from "./nextToken";

export interface GenerateOptions extends SamplingOptions {
  /** How many tokens to generate at most. */
  maxNewTokens: number;
  /** Stop after any of these token sequences has been generated (it is included in the result). */
  stop?: number[][];
  /** Seed of the sampling (ignored when rng is given). Default 0. */
  seed?: number;
  /** Generator to draw from (continues its stream). */
  rng?: Rng;
  /** Reuse past keys/values (default true). Greedy output is the same either way. */
  useKvCache?: boolean;
  /**
   * Who computes the cached steps: "js" the course's small inference engine (lib/gpt/decoder.ts,
   * plain TypeScript, no per-operation overhead), "tfjs" gptForward with its KV cache.
   * Default "auto": js for models up to 50M parameters on the wasm/cpu backends, else tfjs.
   */
  engine?: "auto" | "js" | "tfjs";
  /** Called with each new token id and its index (0-based); return false to stop. */
  onToken?: (id: number, step: number) => void | boolean;
}

/**
 * Continue `promptIds` (one sequence, at least one id) with up to maxNewTokens sampled
 * tokens; returns the NEW ids only (prompt not included). Stops early after a `stop`
 * sequence (kept at the end of the result, so callers see why it stopped) or when onToken
 * returns false. A prompt longer than blockSize is cropped to its last blockSize tokens.
 */
export function generate(params: GPTParams, config: GPTConfig, promptIds: readonly number[], opts: GenerateOptions): number[] {
  const { maxNewTokens, stop = [], useKvCache = true } = opts;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new Error(`generate: maxNewTokens must be an integer >= 0, got ${maxNewTokens}`);
  if (promptIds.length === 0) throw new Error("generate: the prompt must contain at least one token");
  promptIds.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
      throw new Error(`generate: prompt token ${i} is ${id}, outside the vocabulary 0..${config.vocabSize - 1}`);
    }
  });
  for (const s of stop) if (!Array.isArray(s) || s.length === 0) throw new Error("generate: each stop sequence must be a non-empty array of token ids");
  checkSampling(opts);
  const rng = opts.rng ?? createRng(opts.seed ?? 0);
  const seq = [...promptIds];
  const out: number[] = [];
  let decoder: Decoder | null = useKvCache && engineFor(opts.engine, params) === "js" ? createDecoder(params, config) : null;
  let cache: KVCache | null = useKvCache && decoder === null ? createKVCache(config) : null;
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      if (decoder && seq.length <= config.blockSize) {
        let logits: Float32Array | undefined;
        while (decoder.length < seq.length) logits = decoder.step(seq[decoder.length]); // the prompt at first, then the newest token
        const id = sampleFromLogits(logits!, opts, rng);
        seq.push(id);
        out.push(id);
        if (opts.onToken?.(id, step) === false) break;
        if (stop.some((s) => endsWith(out, s))) break;
        continue;
      }
      decoder = null; // past the context: sliding window, no cache
      let input: number[];
      let opt: { kvCache?: KVCache } = {};
      if (cache && seq.length <= config.blockSize) {
        input = seq.slice(cache.length); // the prompt at first, then only the newest token
        opt = { kvCache: cache };
      } else {
        if (cache) { disposeKVCache(cache); cache = null; } // past the context: sliding window, no cache
        input = seq.slice(-config.blockSize);
      }
      const logitsT = tf.tidy(() => gptLastLogits(params, config, tf.tensor2d([input], [1, input.length], "int32"), opt)); // [1, V]
      const logits = logitsT.dataSync();
      logitsT.dispose();
      const id = sampleFromLogits(logits, opts, rng);
      seq.push(id);
      out.push(id);
      const cont = opts.onToken?.(id, step);
      if (cont === false) break;
      if (stop.some((s) => endsWith(out, s))) break;
    }
  } finally {
    if (cache) disposeKVCache(cache);
  }
  return out;
}

/** Parameters below which the JavaScript decoder beats tfjs for one-token steps (measured: see decoder.ts). */
const JS_ENGINE_MAX_PARAMS = 50_000_000;

function engineFor(engine: GenerateOptions["engine"], params: GPTParams): "js" | "tfjs" {
  if (engine === "js" || engine === "tfjs") return engine;
  if (engine !== undefined && engine !== "auto") throw new Error(`generate: engine must be "auto", "js" or "tfjs", got ${JSON.stringify(engine)}`);
  const backend = tf.getBackend();
  const size = Object.values(params).reduce((n, p) => n + p.size, 0);
  return (backend === "wasm" || backend === "cpu") && size <= JS_ENGINE_MAX_PARAMS ? "js" : "tfjs";
}

function endsWith(xs: number[], tail: number[]): boolean {
  if (tail.length > xs.length) return false;
  for (let i = 0; i < tail.length; i++) if (xs[xs.length - tail.length + i] !== tail[i]) return false;
  return true;
}

export interface TextGenerateOptions extends Omit<GenerateOptions, "stop" | "onToken"> {
  /** Stop strings (encoded with the tokenizer) and/or token-id sequences; removed from the returned text. */
  stop?: Array<string | number[]>;
  /** Called with each new piece of text as it is generated (a final stop sequence is streamed too; the returned text drops it). */
  onText?: (text: string) => void;
}

/**
 * Encode `prompt`, generate, decode: returns the generated text (without the prompt and
 * without a final stop sequence). A prompt the tokenizer cannot encode (e.g. a character
 * the char tokenizer never saw) is reported as such.
 */
export function textGenerate(
  params: GPTParams, config: GPTConfig, tokenizer: Tokenizer, prompt: string, opts: TextGenerateOptions,
): string {
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new Error(`textGenerate: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${config.vocabSize}`);
  }
  let ids: number[];
  try {
    ids = tokenizer.encode(prompt);
  } catch (e) {
    throw new Error(`textGenerate: cannot encode the prompt: ${(e as Error).message}`);
  }
  if (ids.length === 0) throw new Error("textGenerate: the prompt is empty; give at least one token of context");
  const stop = (opts.stop ?? []).map((s) => (typeof s === "string" ? tokenizer.encode(s) : s));
  const { onText, ...rest } = opts;
  // Stream the text as it grows (decoding the whole output each time: one token may be
  // half a UTF-8 character for a byte-level BPE, the next completes it).
  const sofar: number[] = [];
  let shown = "";
  const out = generate(params, config, ids, {
    ...rest, stop,
    onToken: onText
      ? (id) => {
        sofar.push(id);
        const text = tokenizer.decode(sofar);
        if (text.length > shown.length && !text.endsWith("\uFFFD")) { onText(text.slice(shown.length)); shown = text; }
      }
      : undefined,
  });
  if (onText) { // flush what was held back (a text that really ends in U+FFFD)
    const text = tokenizer.decode(sofar);
    if (text.length > shown.length) onText(text.slice(shown.length));
  }
  const hit = stop.find((s) => endsWith(out, s));
  return tokenizer.decode(hit ? out.slice(0, out.length - hit.length) : out);
}
