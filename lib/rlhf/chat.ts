/**
 * The chat format RLHF works in, shared by notebooks 07–09 and the rank / reward / ppo / dpo
 * CLIs: the SFT data's questions as prompts, the codec between text and the SFT model's token
 * ids, K sampled answers per prompt, rankings by the simulated labeller, and saving a policy.
 * The methods themselves live in their own files (rewardModel.ts, ppo.ts, dpo.ts; evaluate.ts
 * for the honest evaluation):
 *
 *   SFT data (single-turn questions + reference answers) ── rlhfPrompts ──► prompts
 *   SFT model ── sampleResponses (K per prompt) ──► labeller / a person ──► preference JSONL
 *   preferences ── trainRewardModel (Bradley–Terry on every pair) ──► reward model
 *   SFT model + reward model ── runPPO ──► PPO policy;  SFT + preferences ── trainDPO ──► DPO policy
 *   policy vs SFT on held-out prompts ── evaluatePolicy ──► win-rate by the TRUE rule, RM score, KL
 *
 * Text conventions: a prompt is the user's question; the model sees it through the chat
 * template as "<|user|>Q<|end|><|assistant|>". A response is the decoded text of the sampled
 * tokens, INCLUDING the final "<|end|>" when the model ended its turn (the labeller's "ended"
 * criterion reads it; encodeResponse turns it back into the end token).
 */
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { saveCheckpoint } from "../pretrain/checkpoint";
import { projectPath } from "../core/paths";
import type { GPTConfig, GPTParams } from "../gpt/gpt";
import { plainAnswer } from "../finetune/sftData";
import { simulatedPreference } from "./labeller";
import { appendPreference, type PreferenceRecord } from "./preferences";
import { loadPretrained, type PretrainedModel } from "../pretrain/pretrain";
import { createRng } from "../core/random";
import { generateBatch } from "../gpt/rollout";
import { chatTokenIds, encodeChat, type SFTExample } from "../finetune/sft";
import type { Tokenizer } from "../tokens/tokenizer";

// ---------------------------------------------------------------------------------------
// Prompts and the chat format

/** A question to answer, with the data set's reference answer (the labeller's "correct"). */
export interface RLHFPrompt {
  id: string;
  kind: string;
  prompt: string;
  reference?: string;
}

/**
 * The single-turn examples of an SFT data set as prompts (multi-turn ones are skipped), the
 * reference without a polite closing: the labeller's "correct" asks for the answer itself.
 */
export function rlhfPrompts(examples: readonly SFTExample[]): RLHFPrompt[] {
  return examples
    .filter((e) => e.messages.length === 2)
    .map((e) => ({ id: e.id, kind: e.kind, prompt: e.messages[0].content, reference: plainAnswer(e.messages[1].content) }));
}

/** How text meets token ids in the chat format of the SFT model. */
export interface ChatCodec {
  tokenizer: Tokenizer;
  blockSize: number;
  /** Id of "<|end|>": generation stops there; also used as padding. */
  endId: number;
  padId: number;
  /** "<|user|>prompt<|end|><|assistant|>" as ids. */
  encodePrompt(prompt: string): number[];
  /** A response's text (special tokens written as text, e.g. a final "<|end|>") as ids. */
  encodeResponse(response: string): number[];
  decodeResponse(ids: readonly number[]): string;
}

export function chatCodec(tokenizer: Tokenizer, blockSize: number): ChatCodec {
  const { end } = chatTokenIds(tokenizer);
  return {
    tokenizer, blockSize, endId: end, padId: end,
    encodePrompt: (p) => encodeChat(tokenizer, [{ role: "user", content: p }], blockSize, { addGenerationPrompt: true }).ids,
    encodeResponse: (r) => tokenizer.encode(r, { allowSpecial: true }),
    decodeResponse: (ids) => tokenizer.decode(ids),
  };
}

/**
 * One line refusing a reward model where a policy belongs (sampling, chatting, PPO's or DPO's
 * start): it has the language model's weights too, so it would load, and answer, as if it were one.
 */
export function refuseRewardModel(params: Record<string, unknown>, dir: string): void {
  if ("score.weight" in params) {
    throw new Error(`${projectPath(dir)}: a reward model (it has a score head), not a policy to answer with: give the SFT model (notebook 06, npm run sft) or a PPO or DPO policy`);
  }
}

/** A fine-tuned chat model from a checkpoint (SFT, PPO or DPO output); refuses one without the chat tokens, and a reward model. */
export function loadChatModel(dir: string): PretrainedModel & { codec: ChatCodec } {
  const m = loadPretrained(dir);
  try {
    refuseRewardModel(m.params, dir);
    return { ...m, codec: chatCodec(m.tokenizer, m.config.blockSize) };
  } catch (e) {
    tf.dispose(Object.values(m.params));
    if ("score.weight" in m.params) throw e;
    throw new Error(`${dir}: not a chat model (${(e as Error).message}); fine-tune it first (notebook 06 or npm run sft)`);
  }
}

// ---------------------------------------------------------------------------------------
// Steps 1–2: responses, rankings

export interface ResponseSampleOptions {
  /** Responses per prompt. Default 1. */
  k?: number;
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  seed?: number;
  /** Rows generated together (one KV cache). Default 64. */
  batchSize?: number;
  /** Random streams and threads of generateBatch (lib/gpt/rollout.ts): default one stream, one thread. */
  streams?: "batch" | "row";
}

/** K sampled responses per prompt (text, "<|end|>" kept when the turn ended): [prompt][k]. */
export function sampleResponses(params: GPTParams, config: GPTConfig, codec: ChatCodec, prompts: readonly string[], opts: ResponseSampleOptions): string[][] {
  const k = opts.k ?? 1;
  const rows = prompts.flatMap((p) => Array.from({ length: k }, () => codec.encodePrompt(p)));
  const rng = createRng(opts.seed ?? 0);
  const bs = opts.batchSize ?? 64;
  const texts: string[] = [];
  for (let i = 0; i < rows.length; i += bs) {
    const g = generateBatch(params, config, rows.slice(i, i + bs), {
      maxNewTokens: opts.maxNewTokens, stopId: codec.endId, padId: codec.padId, temperature: opts.temperature ?? 1, topK: opts.topK, rng, streams: opts.streams,
    });
    texts.push(...g.responses.map((r) => codec.decodeResponse(r)));
  }
  return prompts.map((_, i) => texts.slice(i * k, (i + 1) * k));
}

/**
 * Steps 1–2 with the simulated labeller: K responses per prompt, ranked by the true rule,
 * appended to `file` (when given) one record at a time, as a human ranking session would.
 */
export function collectSimulatedPreferences(
  params: GPTParams, config: GPTConfig, codec: ChatCodec, prompts: readonly RLHFPrompt[], opts: ResponseSampleOptions & { file?: string },
): PreferenceRecord[] {
  const responses = sampleResponses(params, config, codec, prompts.map((p) => p.prompt), { ...opts, k: opts.k ?? 4 });
  const time = new Date().toISOString();
  return prompts.map((p, i) => {
    const rec = simulatedPreference(p.prompt, responses[i], p.reference, { id: p.id, time });
    if (opts.file !== undefined) appendPreference(opts.file, rec);
    return rec;
  });
}

/** Save a policy (PPO or DPO) as a checkpoint loadPretrained / loadChatModel read (a value head rides along). */
export function savePolicy(dir: string, params: GPTParams, config: GPTConfig, tokenizer: Tokenizer, step: number, extra: Record<string, unknown>): void {
  saveCheckpoint(dir, { params, config, tokenizer, step, extra });
}

/** The `extra` notes a checkpoint was saved with (e.g. {ppo: {seconds, …}}), without loading its tensors; {} when none. */
export function checkpointNotes(dir: string): Record<string, unknown> {
  const file = path.join(dir, "model.json");
  let json: { extra?: Record<string, unknown> };
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: cannot read the checkpoint (${(e as Error).message})`);
  }
  return json.extra ?? {};
}
