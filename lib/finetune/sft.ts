/**
 * Supervised fine-tuning (SFT): from a base model that continues text to an assistant that
 * answers, by training on (question, answer) conversations (chapter 06).
 *
 *   conversation [{user, "Who is Stubb?"}, {assistant, "The second mate."}]
 *     │  chat template: special tokens mark the turns
 *     ▼
 *   <|user|>Who is Stubb?<|end|><|assistant|>The second mate.<|end|>
 *     │  encodeChat: ids + mask (1 on the assistant's tokens and its <|end|>)
 *     ▼
 *   x = ids[0..n−2], y = ids[1..n−1], loss mask = mask[1..n−1]   padded to the batch's longest
 *     │  gptLoss(…, { mask }): only the assistant's tokens are learned
 *     ▼
 *   fine-tuned GPT: full (every weight) or LoRA (low-rank adapters, lib/finetune/lora.ts)
 *
 * The special tokens are appended to the base tokenizer (ids V, V+1, V+2) and the embedding
 * table grows by as many rows, initialised to the mean of the existing rows; every old row
 * is kept bit for bit, so the base model's behaviour on plain text is unchanged.
 * With a character tokenizer a special token costs ONE position of the 64-token context.
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { defaultTrainingThreads, stepMemoryLimitBytes } from "../core/backend";
import { readRegularFile } from "../core/atomic";
import { saveCheckpoint, LossHistory } from "../pretrain/checkpoint";
import { checkTrainingStepFits, copyParams, countParameters, GPTConfig, GPTParams, gptLoss, isDecayed, validateConfig } from "../gpt/gpt";
import { createLoRA, disposeLoRA, LoRA, LoRAOptions, loraWeights, mergeLoRA } from "./lora";
import { cosineSchedule } from "../core/schedule";
import { EvalInfo, ProgressMode, StepInfo, train as train_ } from "../pretrain/trainer";
import type { Rng } from "../core/random";
import { generate } from "../gpt/sampling";
import { generateBatch } from "../gpt/rollout";
import { normalizeAnswer } from "./sftData";
import type { Tokenizer } from "../tokens/tokenizer";
import type { Split } from "../pretrain/batches";
import { splitPrefix, withPrefix, type ShardLossFn, type ShardLossSpec } from "../pretrain/dataParallel";

export * from "./sftData";
export * from "./chatTemplate";
import { CHAT_TOKEN_NAMES, type ChatMessage, chatTokenIds, chatTokenizer, encodeChat, type EncodedChat } from "./chatTemplate";

// ---------------------------------------------------------------------------------------
// Data

export interface SFTExample {
  id: string;
  kind: string;
  messages: ChatMessage[];
}

const sources = new WeakMap<SFTExample, string>();

/** "file:line" an example was read from (loadSFTData), for error messages; undefined otherwise. */
export function exampleSource(ex: SFTExample): string | undefined {
  return sources.get(ex);
}

/**
 * Check one parsed JSON value against the schema {id, kind, messages: [{role, content}…]}:
 * messages alternate user / assistant, start with the user, end with the assistant (the
 * reference answer). Throws `${where}: …` naming the first bad field.
 */
export function validateSFTExample(value: unknown, where: string): SFTExample {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (value === null || typeof value !== "object" || Array.isArray(value)) fail(`expected a JSON object {id, kind, messages}, got ${JSON.stringify(value)?.slice(0, 40)}`);
  const o = value as Record<string, unknown>;
  if (typeof o.id !== "string" || o.id === "") fail(`field "id" must be a non-empty string, got ${describe(o.id)}`);
  if (typeof o.kind !== "string" || o.kind === "") fail(`field "kind" must be a non-empty string, got ${describe(o.kind)}`);
  if (!Array.isArray(o.messages) || o.messages.length < 2) fail(`field "messages" must be an array of at least 2 messages, got ${describe(o.messages)}`);
  const messages = o.messages as unknown[];
  const out: ChatMessage[] = messages.map((m, i) => {
    if (m === null || typeof m !== "object" || Array.isArray(m)) fail(`messages[${i}] must be an object {role, content}, got ${describe(m)}`);
    const mm = m as Record<string, unknown>;
    const want = i % 2 === 0 ? "user" : "assistant";
    if (mm.role !== "user" && mm.role !== "assistant") fail(`messages[${i}].role must be "user" or "assistant", got ${describe(mm.role)}`);
    if (mm.role !== want) fail(`messages[${i}].role must be "${want}" (turns alternate, starting with the user), got "${mm.role}"`);
    if (typeof mm.content !== "string") fail(`messages[${i}].content must be a string, got ${describe(mm.content)}`);
    return { role: mm.role as ChatMessage["role"], content: mm.content as string };
  });
  if (out[out.length - 1].role !== "assistant") fail(`the last message must be the assistant's answer`);
  return { id: o.id as string, kind: o.kind as string, messages: out };
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing (field missing)";
  const s = JSON.stringify(v);
  return s.length > 40 ? s.slice(0, 37) + "…" : s;
}

/**
 * Read a JSONL file of examples (one JSON object a line; blank lines skipped), validating each:
 * a bad line throws one line "FILE:LINE: what is wrong".
 */
export function loadSFTData(file: string): SFTExample[] {
  const text = readRegularFile(file, "a JSONL file of conversations").toString("utf8");
  const out: SFTExample[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${file}:${i + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
    }
    const ex = validateSFTExample(json, where);
    sources.set(ex, where);
    out.push(ex);
  });
  if (out.length === 0) throw new Error(`${file}: no examples (the file is empty)`);
  return out;
}

/** Write examples as JSONL (the format loadSFTData reads). */
export function saveSFTData(file: string, examples: readonly SFTExample[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, examples.map((e) => JSON.stringify({ id: e.id, kind: e.kind, messages: e.messages })).join("\n") + "\n");
}

// ---------------------------------------------------------------------------------------
// The chat template: lib/finetune/chatTemplate.ts (no TensorFlow.js there: the site's widgets use it too)

/** The prompt of a question or a conversation ending with the user's turn. */
function promptMessages(q: string | readonly ChatMessage[]): ChatMessage[] {
  if (typeof q === "string") return [{ role: "user", content: q }];
  const msgs = [...q];
  if (msgs.length && msgs[msgs.length - 1].role === "assistant") msgs.pop(); // drop a reference answer
  return msgs;
}

// ---------------------------------------------------------------------------------------
// Model: growing the vocabulary

/**
 * A copy of the parameters with the embedding table (and an untied head) grown to
 * `newVocab` rows: rows 0…V−1 are the old ones, bit for bit; new rows = mean of the old rows
 * (a "typical token": the model's outputs do not jump, and the new tokens start neither
 * favoured nor forbidden). Returns NEW variables and the new config (the old ones are kept).
 */
export function growVocabulary(params: GPTParams, config: GPTConfig, newVocab: number): { params: GPTParams; config: GPTConfig } {
  const V = config.vocabSize;
  if (!Number.isInteger(newVocab) || newVocab < V) throw new Error(`growVocabulary: new vocabulary ${newVocab} is smaller than the model's ${V}`);
  const out: GPTParams = {};
  for (const [name, p] of Object.entries(params)) {
    if ((name === "wte.weight" || name === "lm_head.weight") && newVocab > V) {
      const grown = tf.tidy(() => {
        const mean = tf.mean(p, 0, true); // [1, C]
        return tf.concat([p, tf.tile(mean, [newVocab - V, 1])], 0);
      });
      out[name] = tf.variable(grown, true, undefined, "float32");
      grown.dispose();
    } else out[name] = tf.variable(p.clone(), true, undefined, "float32");
  }
  const grownConfig = { ...config, vocabSize: newVocab };
  validateConfig(grownConfig);
  return { params: out, config: grownConfig };
}

/**
 * A copy of the parameters with a longer context: wpe grown to `blockSize` rows, the new rows
 * set to the mean of the old ones (positions the model never trained on: they must be learned
 * by fine-tuning). For the smoke-test model, whose context of 8 tokens holds no conversation.
 */
export function growContext(params: GPTParams, config: GPTConfig, blockSize: number): { params: GPTParams; config: GPTConfig } {
  const T = config.blockSize;
  if (!Number.isInteger(blockSize) || blockSize < T) throw new Error(`growContext: new context ${blockSize} is shorter than the model's ${T}`);
  const out: GPTParams = {};
  for (const [name, p] of Object.entries(params)) {
    const t = name === "wpe.weight" && blockSize > T ? tf.tidy(() => tf.concat([p, tf.tile(tf.mean(p, 0, true), [blockSize - T, 1])], 0)) : p.clone();
    out[name] = tf.variable(t, true, undefined, "float32");
    t.dispose();
  }
  const grown = { ...config, blockSize };
  validateConfig(grown);
  return { params: out, config: grown };
}

export interface ChatModel {
  params: GPTParams;
  config: GPTConfig;
  tokenizer: Tokenizer;
}

/**
 * A model ready for the chat template: its tokenizer with CHAT_TOKENS and the embeddings grown
 * to match (new variables; the given params are not touched). A model already fine-tuned (its
 * tokenizer has the tokens, its vocabulary matches) is copied as is. `blockSize`: also grow
 * the context (growContext; the smoke-test model's 8 tokens are too few for a conversation).
 */
export function prepareChatModel(model: ChatModel, opts: { blockSize?: number } = {}): ChatModel {
  const tokenizer = chatTokenizer(model.tokenizer);
  if (tokenizer.vocabSize < model.config.vocabSize && tokenizer !== model.tokenizer) {
    throw new Error(`prepareChatModel: the model has ${model.config.vocabSize} tokens but its tokenizer only ${model.tokenizer.vocabSize}: the new chat tokens would reuse ids the model already has`);
  }
  if (tokenizer === model.tokenizer && tokenizer.vocabSize !== model.config.vocabSize) {
    throw new Error(`prepareChatModel: the tokenizer has the chat tokens (${tokenizer.vocabSize} ids) but the model ${model.config.vocabSize} embedding rows; the checkpoint's tokenizer does not match its weights`);
  }
  const grown = growVocabulary(model.params, model.config, tokenizer.vocabSize);
  if (opts.blockSize === undefined || opts.blockSize === grown.config.blockSize) return { ...grown, tokenizer };
  try {
    const longer = growContext(grown.params, grown.config, opts.blockSize);
    return { ...longer, tokenizer };
  } finally {
    tf.dispose(Object.values(grown.params));
  }
}

// ---------------------------------------------------------------------------------------
// Batches

export interface SFTBatch {
  x: tf.Tensor2D;
  y: tf.Tensor2D;
  /** [B, T] 1 where y is an assistant token (counts in the loss). */
  mask: tf.Tensor2D;
}

export interface EncodedSet {
  items: EncodedChat[];
  /** How many examples were cut to fit the context. */
  truncated: number;
  /** Where they are from ("file:line" or id). */
  truncatedIds: string[];
}

/**
 * Encode a data set for training; an example the tokenizer cannot encode throws naming its
 * file and line (or id); a too long one is cut and counted (never dropped silently).
 */
export function encodeSFTData(tokenizer: Tokenizer, examples: readonly SFTExample[], blockSize: number): EncodedSet {
  const items: EncodedChat[] = [];
  const truncatedIds: string[] = [];
  for (const ex of examples) {
    let e: EncodedChat;
    try {
      e = encodeChat(tokenizer, ex.messages, blockSize);
    } catch (err) {
      throw new Error(`${exampleSource(ex) ?? `example "${ex.id}"`}: ${(err as Error).message}`);
    }
    if (e.truncated) truncatedIds.push(exampleSource(ex) ?? ex.id);
    items.push(e);
  }
  return { items, truncated: truncatedIds.length, truncatedIds };
}

/**
 * A batch of encoded conversations, right-padded to the longest (positions after the end have
 * mask 0, and causal attention never lets a real token see them).
 */
export function sftBatch(items: readonly EncodedChat[], padId: number): SFTBatch {
  const T = Math.max(1, ...items.map((e) => e.ids.length - 1));
  const B = items.length;
  const x = new Int32Array(B * T).fill(padId);
  const y = new Int32Array(B * T).fill(padId);
  const m = new Float32Array(B * T);
  items.forEach((e, b) => {
    for (let t = 0; t + 1 < e.ids.length; t++) {
      x[b * T + t] = e.ids[t];
      y[b * T + t] = e.ids[t + 1];
      m[b * T + t] = e.mask[t + 1];
    }
  });
  return { x: tf.tensor2d(x, [B, T], "int32"), y: tf.tensor2d(y, [B, T], "int32"), mask: tf.tensor2d(m, [B, T], "float32") };
}

/**
 * Packing: rows of up to `limit` tokens filled with whole conversations drawn at random, one
 * after the other (the mask still covers only the assistants' tokens). Short conversations
 * then share a row instead of each padding one: more answer tokens per step for the same
 * compute. A later conversation in a row sees the earlier ones as context (the usual
 * compromise of packing; the model learns to answer the LAST question).
 */
export function packRows(set: readonly EncodedChat[], rows: number, limit: number, rng: Rng): EncodedChat[] {
  const out: EncodedChat[] = [];
  let next = set[rng.int(set.length)];
  for (let r = 0; r < rows; r++) {
    const ids: number[] = [];
    const mask: number[] = [];
    do {
      ids.push(...next.ids);
      mask.push(...next.mask);
      next = set[rng.int(set.length)];
    } while (ids.length + next.ids.length <= limit);
    out.push({ ids: ids.slice(0, limit), mask: mask.slice(0, limit), truncated: false });
  }
  return out;
}

/**
 * getBatch for lib/pretrain/trainer: B random examples of the split (drawn with the trainer's RNG),
 * padded; with `pack`, B rows of blockSize + 1 tokens packed with conversations (packRows).
 */
export function sftBatcher(
  train: EncodedSet, val: EncodedSet, batchSize: number, padId: number, pack?: { blockSize: number },
): (split: Split, rng: Rng) => SFTBatch {
  return (split, rng) => {
    const set = split === "train" ? train.items : val.items;
    if (pack) return sftBatch(packRows(set, batchSize, pack.blockSize + 1, rng), padId);
    const pick = Array.from({ length: batchSize }, () => set[rng.int(set.length)]);
    return sftBatch(pick, padId);
  };
}

/** Masked loss of a batch: only the assistant's tokens count. */
export function sftLoss(params: GPTParams | Record<string, tf.Tensor>, config: GPTConfig, batch: SFTBatch): tf.Scalar {
  return gptLoss(params as GPTParams, config, batch.x, batch.y, { mask: batch.mask });
}

/** The frozen model's weights go beside LoRA's adapters under this prefix in a data-parallel step. */
export const LORA_BASE_PREFIX = "base/";

/**
 * SFT's masked loss of the adapters over the frozen model, the function a data-parallel worker
 * computes (lib/pretrain/dataParallel.ts): adapters under their names, the frozen weights under
 * LORA_BASE_PREFIX. Options: { config, lora } (the LoRA's settings, without its variables).
 */
export const loraShardLoss: ShardLossFn = (params, batch, options) => {
  const { config, lora } = options as { config: GPTConfig; lora: Omit<LoRA, "params"> };
  const { prefixed: base, rest: adapters } = splitPrefix(params as GPTParams, LORA_BASE_PREFIX);
  return sftLoss(loraWeights(base, { ...lora, params: adapters }), config, batch as unknown as SFTBatch);
};

/** loraShardLoss as data parallelism names it (a worker loads it from this module). */
export function loraLossSpec(config: GPTConfig, lora: LoRA): ShardLossSpec {
  const { rank, alpha, scale, targets, newTokens } = lora;
  return { module: __filename, name: "loraShardLoss", options: { config, lora: { rank, alpha, scale, targets, newTokens } } };
}

// ---------------------------------------------------------------------------------------
// Generating replies

export interface AnswerOptions {
  /** Most tokens of the reply (default: what fits in the context, at most 48). */
  maxNewTokens?: number;
  /** 0 (default) = greedy. */
  temperature?: number;
  topK?: number;
  seed?: number;
  /** Streamed text of the reply as it is generated (not the final <|end|>). */
  onText?: (text: string) => void;
}

export interface Reply {
  text: string;
  /** The reply ended with <|end|> (and not because it ran out of tokens). */
  endsProperly: boolean;
  ids: number[];
}

/**
 * The model's reply to a question (or to a conversation; a final assistant message is taken
 * as the reference and dropped): render the prompt with the template, generate until
 * <|end|>. A conversation longer than the context keeps its most recent tokens.
 */
export function generateReply(params: GPTParams | Record<string, tf.Tensor>, config: GPTConfig, tokenizer: Tokenizer, question: string | readonly ChatMessage[], opts: AnswerOptions = {}): Reply {
  const end = chatTokenIds(tokenizer).end;
  const maxNew = opts.maxNewTokens ?? 48;
  const prompt = replyPrompt(tokenizer, config, question, maxNew);
  const fit = Math.max(1, Math.min(maxNew, config.blockSize - prompt.length));
  const out = generate(params as GPTParams, config, prompt, {
    maxNewTokens: fit, temperature: opts.temperature ?? 0, topK: opts.topK, seed: opts.seed ?? 0, stop: [[end]],
    onToken: opts.onText
      ? (id) => {
        if (id === end) return;
        const piece = tokenizer.decode([id]);
        opts.onText!(piece);
      }
      : undefined,
  });
  return replyOf(tokenizer, out, end);
}

/**
 * The prompt of a reply: the conversation with the chat template, ending with the assistant's
 * tag. Prompt + reply stay inside the context (the KV cache then never has to slide): a prompt
 * that leaves less than min(maxNewTokens, 16) positions for the reply keeps its last tokens.
 */
function replyPrompt(tokenizer: Tokenizer, config: GPTConfig, question: string | readonly ChatMessage[], maxNewTokens: number): number[] {
  const prompt = encodeChat(tokenizer, promptMessages(question), config.blockSize, { addGenerationPrompt: true }).ids;
  const room = config.blockSize - Math.min(maxNewTokens, 16, config.blockSize - 1);
  return prompt.length > room ? prompt.slice(prompt.length - room) : prompt;
}

function replyOf(tokenizer: Tokenizer, out: number[], end: number): Reply {
  const endsProperly = out.length > 0 && out[out.length - 1] === end;
  const ids = endsProperly ? out.slice(0, -1) : out;
  return { text: tokenizer.decode(ids), endsProperly, ids };
}

/** The generated assistant reply (text only; see generateReply). */
export function answer(params: GPTParams | Record<string, tf.Tensor>, config: GPTConfig, tokenizer: Tokenizer, question: string | readonly ChatMessage[], opts: AnswerOptions = {}): string {
  return generateReply(params, config, tokenizer, question, opts).text;
}

// ---------------------------------------------------------------------------------------
// Evaluation

export interface SFTEvalRow {
  id: string;
  kind: string;
  question: string;
  reference: string;
  reply: string;
  exact: boolean;
  endsProperly: boolean;
}

export interface SFTEvalResult {
  /** Fraction of replies equal to the reference after normalizeAnswer. */
  exactMatch: number;
  /** Fraction of replies that ended with <|end|>. */
  endsProperly: number;
  n: number;
  /** Per kind ("fact", "transform", "chat"): exact match and count. */
  byKind: Record<string, { exactMatch: number; n: number }>;
  rows: SFTEvalRow[];
}

/** Questions answered together by evaluateSFT (one KV cache; large batches keep the cores busy). */
const EVAL_BATCH = 128;

/** Greedy replies to every example's last question, scored against its reference answer. */
export function evaluateSFT(
  params: GPTParams | Record<string, tf.Tensor>, config: GPTConfig, tokenizer: Tokenizer, examples: readonly SFTExample[],
  opts: { maxNewTokens?: number; limit?: number } = {},
): SFTEvalResult {
  const list = opts.limit !== undefined ? examples.slice(0, opts.limit) : examples;
  const maxNew = opts.maxNewTokens ?? 40;
  const end = chatTokenIds(tokenizer).end;
  // Greedy replies (as generateReply gives them), many questions at once on every thread.
  const prompts = list.map((ex) => {
    try {
      return replyPrompt(tokenizer, config, ex.messages, maxNew);
    } catch (e) {
      throw new Error(`${exampleSource(ex) ?? `example "${ex.id}"`}: ${(e as Error).message}`);
    }
  });
  const replies: Reply[] = [];
  for (let i = 0; i < prompts.length; i += EVAL_BATCH) {
    const g = generateBatch(params as GPTParams, config, prompts.slice(i, i + EVAL_BATCH), { maxNewTokens: maxNew, stopId: end, padId: end, temperature: 0 });
    replies.push(...g.responses.map((out) => replyOf(tokenizer, out, end)));
  }
  const rows: SFTEvalRow[] = [];
  for (const [i, ex] of list.entries()) {
    const ref = ex.messages[ex.messages.length - 1].content;
    const r = replies[i];
    rows.push({
      id: ex.id, kind: ex.kind, question: ex.messages[ex.messages.length - 2].content, reference: ref, reply: r.text,
      exact: normalizeAnswer(r.text) === normalizeAnswer(ref), endsProperly: r.endsProperly,
    });
  }
  const n = rows.length;
  const frac = (f: (r: SFTEvalRow) => boolean, rs = rows) => (rs.length ? rs.filter(f).length / rs.length : 0);
  const byKind: SFTEvalResult["byKind"] = {};
  for (const kind of [...new Set(rows.map((r) => r.kind))].sort()) {
    const rs = rows.filter((r) => r.kind === kind);
    byKind[kind] = { exactMatch: frac((r) => r.exact, rs), n: rs.length };
  }
  return { exactMatch: frac((r) => r.exact), endsProperly: frac((r) => r.endsProperly), n, byKind, rows };
}

// ---------------------------------------------------------------------------------------
// Defaults shared by the notebook and the CLI

/**
 * The split files beside a training file: `val.jsonl` and `test.jsonl` in its folder. Both must
 * exist: without them an evaluation would run on the training questions and call them held out.
 */
export function sftSplitFiles(trainFile: string): { train: string; val: string; test: string } {
  const dir = path.dirname(trainFile);
  const missing = ["val.jsonl", "test.jsonl"].filter((n) => !fs.existsSync(path.join(dir, n)));
  if (missing.length > 0) {
    throw new Error(`${path.join(dir, missing[0])}: no such file; the held-out questions go beside ${path.basename(trainFile)} as val.jsonl and test.jsonl (the course's: data/sft/, written by lib/tools/cli/makeSftData.ts)`);
  }
  return { train: trainFile, val: path.join(dir, "val.jsonl"), test: path.join(dir, "test.jsonl") };
}

// ---------------------------------------------------------------------------------------
// Fine-tuning

export interface FinetuneOptions {
  /** A model with the chat tokens (prepareChatModel). Its params are NOT changed: a copy trains. */
  model: ChatModel;
  train: readonly SFTExample[];
  val: readonly SFTExample[];
  /** LoRA rank (or options); none: full fine-tuning of every weight. */
  lora?: number | LoRAOptions;
  maxIters: number;
  /** Rows per batch (default 16). */
  batchSize?: number;
  /** Threads sharing each batch (lib/pretrain/dataParallel.ts; default: defaultTrainingThreads()). */
  threads?: number;
  /** Pack several conversations per row (packRows) instead of one padded conversation per row. Default false. */
  pack?: boolean;
  /** Peak learning rate (default 3e-3 full, 5e-3 LoRA). */
  lr?: number;
  /** Warm-up steps (default maxIters / 10). */
  warmup?: number;
  /** AdamW weight decay (default 0.1 full on the matrices, 0 LoRA). */
  weightDecay?: number;
  evalInterval?: number;
  evalIters?: number;
  seed?: number;
  /** Save the fine-tuned (merged) model here, in the checkpoint format loadPretrained reads. */
  outDir?: string;
  chart?: boolean;
  chartTitle?: string;
  progress?: ProgressMode;
  log?: (line: string) => void;
  onStep?: (info: StepInfo) => void;
  onEval?: (info: EvalInfo) => void;
}

export interface FinetuneSummary {
  mode: "full" | "lora";
  rank: number | null;
  /** Numbers that train (LoRA: the adapters and the new token rows). */
  trainableParams: number;
  /** Numbers of the model. */
  totalParams: number;
  iterations: number;
  trainLoss: number;
  valLoss: number;
  seconds: number;
  msPerStep: number;
  trainExamples: number;
  /** Training examples cut to fit the context (with a warning). */
  truncated: number;
  checkpoint: string | null;
}

export interface FinetuneResult extends ChatModel {
  summary: FinetuneSummary;
  history: LossHistory;
}

/** Fine-tune a chat model on conversations (full or LoRA; see the top of the file). */
export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  const t0 = performance.now();
  const { model } = opts;
  const { config, tokenizer } = model;
  const log = opts.log ?? ((l: string) => console.log(l));
  const loraOpts: LoRAOptions | undefined = opts.lora === undefined ? undefined : typeof opts.lora === "number" ? { rank: opts.lora } : opts.lora;
  const batchSize = opts.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`finetune: batchSize must be a positive integer, got ${batchSize}`);
  checkTrainingStepFits(config, batchSize, opts.threads ?? defaultTrainingThreads(), "finetune", `batch size ${batchSize}`, stepMemoryLimitBytes());
  const train = encodeSFTData(tokenizer, opts.train, config.blockSize);
  const val = encodeSFTData(tokenizer, opts.val, config.blockSize);
  for (const [name, set] of [["training", train], ["validation", val]] as const) {
    if (set.truncated > 0) {
      log(`warning: ${set.truncated} ${name} example(s) longer than the context (${config.blockSize + 1} tokens) were cut at the end: ${set.truncatedIds.slice(0, 3).join(", ")}${set.truncated > 3 ? ", …" : ""}`);
    }
  }
  const padId = chatTokenIds(tokenizer).end;
  const getBatch = sftBatcher(train, val, batchSize, padId, opts.pack ? { blockSize: config.blockSize } : undefined);
  const maxIters = opts.maxIters;
  const warmup = opts.warmup ?? Math.floor(maxIters / 10);
  const seed = opts.seed ?? 1337;
  const newTokens = CHAT_TOKEN_NAMES.length;

  // The weights that train: a copy of the model (full), or adapters beside the frozen model.
  const full: GPTParams | undefined = loraOpts ? undefined : copyParams(model.params);
  const lora: LoRA | undefined = loraOpts ? createLoRA(model.params, config, { trainNewTokens: newTokens, seed, ...loraOpts }) : undefined;
  const trainable = full ?? lora!.params;
  const lr = opts.lr ?? (lora ? 5e-3 : 3e-3);
  try {
    const weights = () => (lora ? loraWeights(model.params, lora) : full!);
    const summary = await train_({
      params: trainable,
      lossFn: (batch: SFTBatch) => sftLoss(weights(), config, batch),
      // The batch {x, y, mask} split across threads, the same masked loss: full fine-tuning's
      // workers copy the weights every step; LoRA's copy the frozen model once and the adapters every step.
      dataParallel: full
        ? { threads: opts.threads, loss: { builtin: "gpt", options: { config } } }
        : { threads: opts.threads, loss: loraLossSpec(config, lora!), frozen: withPrefix(LORA_BASE_PREFIX, model.params) },
      getBatch,
      optimizer: { lr, beta1: 0.9, beta2: 0.99, weightDecay: opts.weightDecay ?? (lora ? 0 : 0.1), decay: isDecayed },
      schedule: cosineSchedule(lr, Math.max(1, maxIters), { warmupIters: Math.min(warmup, maxIters), minLr: lr / 10, decayIters: Math.max(1, maxIters) }),
      maxIters,
      evalInterval: opts.evalInterval ?? Math.max(1, Math.round(maxIters / 8)),
      evalIters: opts.evalIters ?? 10,
      gradClip: 1.0,
      seed,
      chart: opts.chart,
      chartTitle: opts.chartTitle ?? (lora ? `SFT with LoRA (rank ${lora.rank})` : "SFT (full fine-tuning)"),
      progress: opts.progress,
      log,
      onStep: opts.onStep,
      onEval: opts.onEval,
    });
    const params = lora ? mergeLoRA(model.params, lora) : full!;
    const summaryOut: FinetuneSummary = {
      mode: lora ? "lora" : "full",
      rank: lora ? lora.rank : null,
      trainableParams: countParameters(trainable),
      totalParams: countParameters(model.params),
      iterations: summary.step,
      trainLoss: summary.trainLoss,
      valLoss: summary.valLoss,
      seconds: 0,
      msPerStep: summary.msPerStep,
      trainExamples: opts.train.length,
      truncated: train.truncated,
      checkpoint: opts.outDir === undefined ? null : path.resolve(opts.outDir),
    };
    if (opts.outDir !== undefined) {
      saveCheckpoint(opts.outDir, {
        params, config, tokenizer, step: summary.step, losses: summary.history,
        extra: { sft: { mode: summaryOut.mode, rank: summaryOut.rank, lr, batchSize, maxIters, seed, trainExamples: opts.train.length } },
      });
    }
    summaryOut.seconds = (performance.now() - t0) / 1000;
    return { params, config, tokenizer, summary: summaryOut, history: summary.history };
  } catch (e) {
    if (full) tf.dispose(Object.values(full));
    throw e;
  } finally {
    if (lora) disposeLoRA(lora);
  }
}
