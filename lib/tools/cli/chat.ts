#!/usr/bin/env node
/**
 * Chat with a fine-tuned model in the terminal.
 *
 *   node lib/dist/tools/cli/chat.js --checkpoint build/artifacts/sft [--temperature T] [--seed S]
 *
 * Each line you type is a user turn; the reply streams until the model writes <|end|>. The
 * conversation is kept (the model sees the previous turns) as long as it fits the context;
 * older turns are dropped first. "/reset" forgets the conversation; Ctrl-D (end of input) quits.
 */
import * as readline from "readline";
import { artifactPath } from "../../core/paths";
import { disposeParams, loadPretrained, PretrainedModel } from "../../pretrain/pretrain";
import { CHAT_TOKENS, ChatMessage, encodeChat, generateReply } from "../../finetune/sft";
import { Command, Env, fail, loadOrFail, Options, optionParser, interactiveMain, runAsScript } from "./cli";

const CHAT_OPTIONS: Options = {
  checkpoint: { kind: "string", value: "DIR", default: (env: Env) => artifactPath("sft", env), help: "a fine-tuned GPT (npm run sft)" },
  temperature: { kind: "number", value: "T", min: 0, default: 0, help: "0 = greedy" },
  seed: { kind: "integer", value: "S", min: 0, default: 0, help: "random seed" },
  "max-tokens": { kind: "integer", value: "N", min: 1, default: 48, help: "longest reply" },
};


export interface ChatArgs {
  checkpoint: string;
  temperature: number;
  seed: number;
  maxTokens: number;
  help: boolean;
}

export const parseChatArgs: (argv: readonly string[], env?: Env) => ChatArgs = optionParser({ options: CHAT_OPTIONS });

/** Drop the oldest turns until the prompt leaves room for a reply. */
export function fitHistory(model: Pick<PretrainedModel, "config" | "tokenizer">, history: ChatMessage[], reserve: number): ChatMessage[] {
  let h = history;
  const room = model.config.blockSize - reserve;
  while (h.length > 1 && encodeChat(model.tokenizer, h, model.config.blockSize, { addGenerationPrompt: true }).ids.length > room) h = h.slice(2);
  return h;
}

/** The conversation is read from `input` (a terminal, or lines piped in by a test). */
function chatCommand(input: NodeJS.ReadableStream): Command<ChatArgs> {
  return {
    name: "chat",
    summary: `Chat with a fine-tuned GPT. Type a message and press Enter; the reply stops at the end-of-turn token.
/reset forgets the conversation, Ctrl-D quits.`,
    options: CHAT_OPTIONS,
    backend: "quiet",
    async run(args, { write, err }) {
      const model = loadOrFail("the checkpoint", () => loadPretrained(args.checkpoint));
      try {
        const missing = Object.values(CHAT_TOKENS).filter((n) => !(n in model.tokenizer.specialTokens));
        if (missing.length > 0) {
          fail(`${args.checkpoint} is not a chat model (its tokenizer has no ${missing.join(", ")}); fine-tune it first: npm run sft -- --checkpoint ${args.checkpoint}`);
        }
        const interactive = (input as NodeJS.ReadStream).isTTY === true;
        const rl = readline.createInterface({ input, terminal: interactive, output: interactive ? process.stdout : undefined });
        err(`chat with ${model.dir} (${model.config.nLayer} layers, context ${model.config.blockSize} tokens). /reset forgets, Ctrl-D quits.`);
        let history: ChatMessage[] = [];
        const prompt = () => { if (interactive) write("you> "); };
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
          write("bot> ");
          const reply = generateReply(model.params, model.config, model.tokenizer, fitted, {
            maxNewTokens: args.maxTokens, temperature: args.temperature, seed: args.seed + history.length, onText: (t) => write(t),
          });
          write(reply.endsProperly ? "\n" : " […]\n");
          history = [...fitted, { role: "assistant", content: reply.text }];
          prompt();
        }
        if (interactive) write("\n");
      } finally {
        disposeParams(model.params);
      }
    },
  };
}

export const main = interactiveMain(chatCommand);

if (require.main === module) runAsScript(main);
