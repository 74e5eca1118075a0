#!/usr/bin/env node
/**
 * Chat with a fine-tuned model in the terminal.
 *
 *   node lib/dist/tools/chat.js --checkpoint build/artifacts/sft [--temperature T] [--seed S]
 *
 * Each line you type is a user turn; the reply streams until the model writes <|end|>. The
 * conversation is kept (the model sees the previous turns) as long as it fits the context;
 * older turns are dropped first. "/reset" forgets the conversation; Ctrl-D (end of input) quits.
 */
import * as readline from "readline";
import { initBackend } from "../backend";
import { artifactPath } from "../paths";
import { disposeParams, loadPretrained, PretrainedModel } from "../pretrain";
import { CHAT_TOKENS, ChatMessage, encodeChat, generateReply } from "../sft";

const USAGE = `Usage: chat [--checkpoint DIR] [--temperature T] [--seed S] [--max-tokens N]
  Chat with a fine-tuned GPT (default checkpoint: ${artifactPath("sft")}, written by \`npm run sft\`).
  Type a message and press Enter; the reply stops at the end-of-turn token. /reset forgets the
  conversation, Ctrl-D quits. Default temperature 0 (greedy).`;

export class UsageError extends Error {}

export interface ChatArgs {
  checkpoint: string;
  temperature: number;
  seed: number;
  maxTokens: number;
  help: boolean;
}

export function parseChatArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ChatArgs {
  const args: ChatArgs = { checkpoint: artifactPath("sft", env), temperature: 0, seed: 0, maxTokens: 48, help: false };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const num = (i: number, flag: string, int: boolean, min: number): number => {
    const v = value(i, flag);
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) {
      throw new UsageError(`${flag} must be ${int ? "an integer" : "a number"} >= ${min}, got "${v}"`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--checkpoint": args.checkpoint = value(i++, a); break;
      case "--temperature": args.temperature = num(i++, a, false, 0); break;
      case "--seed": args.seed = num(i++, a, true, 0); break;
      case "--max-tokens": args.maxTokens = num(i++, a, true, 1); break;
      case "-h":
      case "--help": args.help = true; break;
      default:
        throw new UsageError(a.startsWith("-") ? `unknown option ${a}` : `unexpected argument "${a}"`);
    }
  }
  return args;
}

/** Drop the oldest turns until the prompt leaves room for a reply. */
export function fitHistory(model: Pick<PretrainedModel, "config" | "tokenizer">, history: ChatMessage[], reserve: number): ChatMessage[] {
  let h = history;
  const room = model.config.blockSize - reserve;
  while (h.length > 1 && encodeChat(model.tokenizer, h, model.config.blockSize, { addGenerationPrompt: true }).ids.length > room) h = h.slice(2);
  return h;
}

export async function main(
  argv: readonly string[],
  input: NodeJS.ReadableStream = process.stdin,
  out: (text: string) => void = (t) => process.stdout.write(t),
  err: (line: string) => void = (l) => process.stderr.write(l + "\n"),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let args: ChatArgs;
  try {
    args = parseChatArgs(argv, env);
  } catch (e) {
    err(`chat: ${(e as Error).message} (see --help)`);
    return 2;
  }
  if (args.help) {
    out(USAGE + "\n");
    return 0;
  }
  await initBackend({ quiet: true });
  let model: PretrainedModel;
  try {
    model = loadPretrained(args.checkpoint);
  } catch (e) {
    err(`chat: cannot load the checkpoint: ${(e as Error).message}`);
    return 2;
  }
  try {
    const missing = Object.values(CHAT_TOKENS).filter((n) => !(n in model.tokenizer.specialTokens));
    if (missing.length > 0) {
      err(`chat: ${args.checkpoint} is not a chat model (its tokenizer has no ${missing.join(", ")}); fine-tune it first: npm run sft -- --checkpoint ${args.checkpoint}`);
      return 2;
    }
    const interactive = (input as NodeJS.ReadStream).isTTY === true;
    const rl = readline.createInterface({ input, terminal: interactive, output: interactive ? process.stdout : undefined });
    err(`chat with ${model.dir} (${model.config.nLayer} layers, context ${model.config.blockSize} tokens). /reset forgets, Ctrl-D quits.`);
    let history: ChatMessage[] = [];
    const prompt = () => { if (interactive) out("you> "); };
    prompt();
    for await (const raw of rl) {
      const line = raw.trim();
      if (line === "") { prompt(); continue; }
      if (line === "/reset") {
        history = [];
        err("(conversation forgotten)");
        prompt();
        continue;
      }
      const candidate = [...history, { role: "user" as const, content: line }];
      let fitted: ChatMessage[];
      try {
        encodeChat(model.tokenizer, candidate.slice(-1), model.config.blockSize);
        fitted = fitHistory(model, candidate, Math.min(args.maxTokens, 24));
      } catch (e) {
        err(`chat: cannot encode that message: ${(e as Error).message.replace(/^messages\[\d+\]: /, "")}`);
        prompt();
        continue;
      }
      out("bot> ");
      const reply = generateReply(model.params, model.config, model.tokenizer, fitted, {
        maxNewTokens: args.maxTokens, temperature: args.temperature, seed: args.seed + history.length, onText: (t) => out(t),
      });
      out(reply.endsProperly ? "\n" : " […]\n");
      history = [...fitted, { role: "assistant", content: reply.text }];
      prompt();
    }
    if (interactive) out("\n");
    return 0;
  } finally {
    disposeParams(model.params);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
