/**
 * The chat template of chapter 06: special tokens mark whose turn it is,
 *
 *   <|user|>Who is Stubb?<|end|><|assistant|>The second mate.<|end|>
 *
 * and encodeChat turns a conversation into ids and a loss mask. Apart from sft.ts (which
 * re-exports it) because it needs no TensorFlow.js: the site's live widgets put questions to
 * the chat models in the browser with this very code.
 */
import type { Tokenizer } from "../tokens/tokenizer";

export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
}

/** The special tokens of the template, in the order they are appended to the tokenizer. */
export const CHAT_TOKENS = { user: "<|user|>", assistant: "<|assistant|>", end: "<|end|>" } as const;
/** The three chat tokens, in the order chatTokenizer appends them. */
export const CHAT_TOKEN_NAMES: readonly string[] = [CHAT_TOKENS.user, CHAT_TOKENS.assistant, CHAT_TOKENS.end];

/**
 * The base tokenizer with the chat tokens appended (a NEW tokenizer; ids vocabSize,
 * vocabSize + 1, vocabSize + 2). A tokenizer that already has all three (a fine-tuned
 * model's) is returned as is; one with only some of them is refused.
 */
export function chatTokenizer(base: Tokenizer): Tokenizer {
  const have = CHAT_TOKEN_NAMES.filter((n) => n in base.specialTokens);
  if (have.length === CHAT_TOKEN_NAMES.length) return base;
  if (have.length > 0) {
    throw new Error(`chatTokenizer: the tokenizer has ${have.join(", ")} but not ${CHAT_TOKEN_NAMES.filter((n) => !have.includes(n)).join(", ")}; it was made for another chat template`);
  }
  return base.addSpecialTokens(CHAT_TOKEN_NAMES);
}

/** Ids of the three chat tokens (throws when the tokenizer lacks them). */
export function chatTokenIds(tokenizer: Tokenizer): { user: number; assistant: number; end: number } {
  const get = (n: string) => {
    const id = tokenizer.specialTokens[n];
    if (id === undefined) throw new Error(`the tokenizer has no ${n} token: use chatTokenizer(tokenizer) first`);
    return id;
  };
  return { user: get(CHAT_TOKENS.user), assistant: get(CHAT_TOKENS.assistant), end: get(CHAT_TOKENS.end) };
}

export interface RenderOptions {
  /** End with "<|assistant|>": the prompt that asks the model for the next reply. */
  addGenerationPrompt?: boolean;
}

/** The conversation as text: "<|user|>Q<|end|><|assistant|>A<|end|>…" (+ "<|assistant|>"). */
export function renderChat(messages: readonly ChatMessage[], opts: RenderOptions = {}): string {
  let s = "";
  for (const m of messages) s += (m.role === "user" ? CHAT_TOKENS.user : CHAT_TOKENS.assistant) + m.content + CHAT_TOKENS.end;
  if (opts.addGenerationPrompt) s += CHAT_TOKENS.assistant;
  return s;
}

export interface EncodedChat {
  /** Token ids of the rendered conversation (at most blockSize + 1: inputs and targets). */
  ids: number[];
  /** 1 where ids[i] is the assistant's (its content and its <|end|>), 0 elsewhere. */
  mask: number[];
  /** The conversation was longer and was cut at the end. */
  truncated: boolean;
}

/**
 * Encode a conversation with the template (segment by segment: the content is always
 * encoded as plain text, so a message that happens to contain "<|end|>" cannot fake a turn).
 * Training uses x = ids[0..n−2], y = ids[1..n−1] and the loss mask mask[1..n−1]: so at most
 * blockSize + 1 ids are kept; a longer conversation is cut (truncated = true).
 * With addGenerationPrompt, the ids end with <|assistant|> and nothing is cut (a prompt).
 */
export function encodeChat(tokenizer: Tokenizer, messages: readonly ChatMessage[], blockSize: number, opts: RenderOptions = {}): EncodedChat {
  const t = chatTokenIds(tokenizer);
  const ids: number[] = [];
  const mask: number[] = [];
  const push = (xs: number[], m: number) => {
    for (const x of xs) {
      ids.push(x);
      mask.push(m);
    }
  };
  messages.forEach((msg, i) => {
    let content: number[];
    try {
      content = tokenizer.encode(msg.content);
    } catch (e) {
      throw new Error(`messages[${i}]: ${(e as Error).message}`);
    }
    if (msg.role === "user") {
      push([t.user], 0);
      push(content, 0);
      push([t.end], 0);
    } else {
      push([t.assistant], 0); // given, not predicted: the template says whose turn it is
      push(content, 1);
      push([t.end], 1); // learning to STOP is part of the answer
    }
  });
  if (opts.addGenerationPrompt) {
    push([t.assistant], 0);
    return { ids, mask, truncated: false };
  }
  const limit = blockSize + 1;
  const truncated = ids.length > limit;
  return { ids: ids.slice(0, limit), mask: mask.slice(0, limit), truncated };
}
