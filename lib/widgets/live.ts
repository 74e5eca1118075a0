/**
 * What the live widgets compute, on plain arrays: sampling with temperature, top-k and top-p,
 * the attention of every head for a text, a chat model's answer, the reward model's score.
 * One implementation for both sides: the notebook computes its build-time output with it (what
 * a page shows with scripts off) and the browser runs the same functions on the exported
 * models (lib/gpt/weightsFile.ts), through the course's own decoder (lib/gpt/decoder.ts).
 * No TensorFlow.js here, so the browser bundle does not need it.
 */
import { createDecoderFromWeights, type Decoder, type DecoderWeights } from "../gpt/decoder";
import type { GPTConfig } from "../gpt/config";
import type { GPTParams } from "../gpt/gpt";
import { sampleFromLogits, type SamplingOptions } from "../gpt/nextToken";
import { createRng, type Rng } from "../core/random";
import { CHAT_TOKEN_NAMES, CHAT_TOKENS, encodeChat } from "../finetune/chatTemplate";
import type { EncodeOptions, Tokenizer } from "../tokens/tokenizer";
import type { TokenizedRow } from "./views";

/** A model ready to run in a widget: weights as arrays, its config and tokenizer. */
export interface LiveModel {
  config: GPTConfig;
  tokenizer: Tokenizer;
  weights: DecoderWeights;
}

/** A LiveModel over a notebook's tfjs parameters (copied out once). */
export function liveModelFromParams(params: GPTParams, config: GPTConfig, tokenizer: Tokenizer): LiveModel {
  const weights: Record<string, Float32Array> = {};
  for (const [name, p] of Object.entries(params)) weights[name] = p.dataSync() as Float32Array;
  return { config, tokenizer, weights };
}

/** True when the model was fine-tuned to chat: its tokenizer has the chat template's tokens. */
export function isChatModel(model: LiveModel): boolean {
  const s = model.tokenizer.specialTokens;
  return CHAT_TOKEN_NAMES.every((name) => name in s);
}

/** True when the model has a reward model's scalar head. */
export function isRewardModel(model: LiveModel): boolean {
  return model.weights["score.weight"] !== undefined && model.weights["score.bias"] !== undefined;
}

export interface LiveSampleOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Stop after this token (included in the result). */
  stopId?: number;
  seed?: number | string;
  rng?: Rng;
}

/**
 * Sample token ids after `promptIds`, one per `next()` (so a page can draw each token as it
 * comes). The decoder's cache holds at most blockSize tokens: when it is full the last half is
 * fed again and sampling goes on, so each token still sees between blockSize/2 and blockSize
 * tokens of context at the cost of about one extra step per token (re-reading the whole window
 * for every token would cost blockSize steps per token).
 */
export function* sampleTokens(model: LiveModel, promptIds: readonly number[], opts: LiveSampleOptions): Generator<number, void, void> {
  if (promptIds.length === 0) throw new Error("sampleTokens: the prompt must contain at least one token");
  const { blockSize: T } = model.config;
  const rng = opts.rng ?? createRng(opts.seed ?? 0);
  const decoder = createDecoderFromWeights(model.weights, model.config);
  const seq = promptIds.slice(-T);
  let logits = feed(decoder, seq);
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const id = sampleFromLogits(logits, opts, rng);
    yield id;
    if (id === opts.stopId) return;
    seq.push(id);
    if (decoder.length === T) {
      decoder.reset();
      seq.splice(0, seq.length - Math.ceil(T / 2));
      logits = feed(decoder, seq);
    } else logits = decoder.step(id);
  }
}

/** Feed every token of `ids` the decoder has not seen yet; the logits after the last one. */
function feed(decoder: Decoder, ids: readonly number[]): Float32Array {
  let logits: Float32Array | undefined;
  while (decoder.length < ids.length) logits = decoder.step(ids[decoder.length]);
  if (!logits) throw new Error("feed: nothing to feed");
  return logits;
}

/** Attention weights for a text: weights[layer][head][query][key] (causal rows), on the first blockSize tokens. */
export function attentionForIds(model: LiveModel, ids: readonly number[]): number[][][][] {
  const { nLayer: L, nHead: H, blockSize: T } = model.config;
  const used = ids.slice(0, T);
  const decoder = createDecoderFromWeights(model.weights, model.config, { recordAttention: true });
  const maps = Array.from({ length: L }, () => Array.from({ length: H }, () => [] as number[][]));
  for (const id of used) {
    decoder.step(id);
    const q = decoder.length; // this query sees keys 0..q-1
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) {
      const row = decoder.attention!.subarray((l * H + h) * T, (l * H + h) * T + used.length);
      maps[l][h].push(Array.from(row, (v, k) => (k < q ? v : 0)));
    }
  }
  return maps;
}

/**
 * "<|user|>question<|end|><|assistant|>" as ids, as lib/rlhf/chat.ts's codec encodes a prompt
 * (the question as plain text: typing "<|end|>" cannot fake a turn).
 */
function chatTemplateIds(model: LiveModel, question: string): number[] {
  return encodeChat(model.tokenizer, [{ role: "user", content: question }], model.config.blockSize, { addGenerationPrompt: true }).ids;
}

/** The chat prompt of a question, cropped from the start to leave room for an answer. */
export function chatPromptIds(model: LiveModel, question: string, answerRoom: number): number[] {
  const ids = chatTemplateIds(model, question);
  return ids.slice(Math.max(0, ids.length - Math.max(1, model.config.blockSize - answerRoom)));
}

/** Ids of a base model's continuation prompt: the question as text followed by a new line (notebook 06's). */
export function basePromptIds(model: LiveModel, question: string): number[] {
  return model.tokenizer.encode(question + "\n");
}

/**
 * A model's answer to a question, as text. A chat model answers in the chat template and stops
 * at "<|end|>" (kept in the text, as the labeller reads it); a base model continues the text
 * "question\n" for all maxNewTokens (it has no notion of an answer, nor of stopping).
 */
export function answerQuestion(model: LiveModel, question: string, opts: Omit<LiveSampleOptions, "stopId">): string {
  if (isChatModel(model)) {
    const endId = model.tokenizer.specialTokens[CHAT_TOKENS.end];
    const ids = [...sampleTokens(model, chatPromptIds(model, question, opts.maxNewTokens), { ...opts, stopId: endId })];
    return model.tokenizer.decode(ids);
  }
  return model.tokenizer.decode([...sampleTokens(model, basePromptIds(model, question), opts)]);
}

/**
 * The reward model's score of an answer, as lib/rlhf/rewardModel.ts's rewardScores computes it:
 * the scalar head on the last token's hidden state, plus α · Σ log p(answer tokens) when the
 * model has "score.loglik". Prompt and answer are cropped as responseBatch crops them (the
 * answer to blockSize − 1 tokens, then the prompt from its start).
 */
export function rewardScore(model: LiveModel, question: string, answer: string): number {
  if (!isRewardModel(model)) throw new Error("rewardScore: the model has no reward head (score.weight, score.bias)");
  const T = model.config.blockSize;
  const response = model.tokenizer.encode(answer, { allowSpecial: true }).slice(0, T - 1);
  if (response.length === 0) throw new Error("rewardScore: the answer is empty");
  const full = chatTemplateIds(model, question);
  const prompt = full.slice(full.length - Math.min(full.length, T - response.length));
  const seq = [...prompt, ...response];
  const w = model.weights["score.weight"], b = model.weights["score.bias"][0];
  const alpha = model.weights["score.loglik"]?.[0];
  const decoder = createDecoderFromWeights(model.weights, model.config);
  let loglik = 0;
  for (let i = 0; i < seq.length; i++) {
    const logits = decoder.step(seq[i]);
    const next = i + 1;
    if (alpha !== undefined && next >= prompt.length && next < seq.length) loglik += logSoftmaxAt(logits, seq[next]);
  }
  let head = b;
  for (let c = 0; c < w.length; c++) head += decoder.hidden[c] * w[c];
  return alpha === undefined ? head : head + alpha * loglik;
}

function logSoftmaxAt(logits: Float32Array, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i] - max);
  return logits[id] - max - Math.log(z);
}

/**
 * How a tokenizer splits a text: its ids and each id's text. A tokenizer that cannot encode the
 * text (a character tokenizer meeting a character it never saw) gives a row with the reason.
 */
export function tokenizedRow(label: string, tokenizer: Tokenizer, text: string, opts: EncodeOptions = {}): TokenizedRow {
  try {
    const ids = tokenizer.encode(text, opts);
    return { label, ids, pieces: ids.map((id) => tokenizer.decode([id])) };
  } catch (err) {
    return { label, ids: [], pieces: [], error: (err as Error).message };
  }
}
