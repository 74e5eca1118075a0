#!/usr/bin/env node
/**
 * Rank the model's answers yourself: steps 1–2 of RLHF with a real person.
 *
 *   node lib/dist/tools/cli/rank.js [--checkpoint build/artifacts/sft] [--out FILE] [--k 3] [--name alice]
 *
 * For each question (drawn from the SFT training data) the model samples K answers, shown
 * numbered 1..K. Type their order, best first ("2 1 3"), and press Enter: the ranking is
 * appended to the preference file at once (one line, fsync'd: lib/rlhf/preferences.ts
 * appendPreference), so stopping at any moment loses nothing already ranked. "s" skips a
 * question, "q" or Ctrl-D (end of input) stops. The file has the same format as the simulated
 * labeller's (rankedBy "human:<name>"): train a reward model on it with
 * `npm run reward -- --prefs FILE`, or DPO with `npm run dpo -- --prefs FILE`.
 */
import * as readline from "readline";
import { simulatedRanking } from "../../rlhf/labeller";
import { appendPreference, readPreferences } from "../../rlhf/preferences";
import { disposeParams } from "../../pretrain/pretrain";
import { createRng } from "../../core/random";
import { loadChatModel, sampleResponses } from "../../rlhf/chat";
import { Command, Env, loadOrFail, jsonOption, Options, optionParser, interactiveMain, runAsScript, checkWritable } from "./cli";
import { loadPrompts, RLHF_OPTIONS, rlhfDefaults } from "./rlhfCli";

const RANK_OPTIONS: Options = {
  checkpoint: RLHF_OPTIONS.checkpoint,
  out: { kind: "string", value: "FILE", default: (env: Env) => rlhfDefaults(env).humanPreferences, help: "where rankings are appended (kept apart from the simulated labeller's; same format, rankedBy \"human:NAME\")" },
  k: { kind: "integer", value: "K", min: 2, default: 3, help: "answers per question" },
  prompts: { kind: "integer", value: "N", min: 1, default: 20, help: "questions to rank" },
  name: {
    kind: "string", value: "NAME", default: (env: Env) => env.USER || "anonymous", help: "who ranks",
    check: (n: string, flag) => (/^\S+$/.test(n) ? undefined : `${flag} must be one word without spaces, got "${n}"`),
  },
  data: { ...RLHF_OPTIONS.data, help: "where the questions come from" },
  temperature: { kind: "number", value: "T", min: 0, default: 1, help: "sampling temperature" },
  "max-new-tokens": { ...RLHF_OPTIONS["max-new-tokens"], default: 32, defaultText: undefined },
  seed: RLHF_OPTIONS.seed,
  json: jsonOption("{ranked, skipped, file, records}"),
};

export interface RankArgs {
  checkpoint: string;
  out: string;
  k: number;
  prompts: number;
  name: string;
  data: string;
  temperature: number;
  maxNewTokens: number;
  seed: number;
  json: boolean;
  help: boolean;
}

export const parseRankArgs: (argv: readonly string[], env?: Env) => RankArgs = optionParser({ options: RANK_OPTIONS });

/**
 * A typed ranking "2 1 3" (1-based, best first; spaces or commas) → 0-based indices, or an
 * error message saying what is wrong.
 */
export function parseRanking(line: string, k: number): number[] | string {
  const parts = line.trim().split(/[\s,]+/).filter((x) => x !== "");
  if (parts.length !== k) return `give all ${k} answer numbers in order, best first (e.g. "${Array.from({ length: k }, (_, i) => k - i).join(" ")}")`;
  const out: number[] = [];
  for (const p of parts) {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > k) return `"${p}" is not an answer number 1..${k}`;
    if (out.includes(n - 1)) return `answer ${n} appears twice`;
    out.push(n - 1);
  }
  return out;
}

/** The command reads the rankings from `input` (a terminal, or lines piped in by a test). */
function rankCommand(input: NodeJS.ReadableStream): Command<RankArgs> {
  return {
    name: "rank",
    summary: `Rank K sampled answers per question (best first, e.g. "2 1 3"); each ranking is appended to --out at once.
"s" skips a question, "q" or Ctrl-D stops. Then: npm run reward -- --prefs FILE.`,
    options: RANK_OPTIONS,
    backend: "announce",
    async run(args, { write, err }) {
      checkWritable(args.out, "--out", "file"); // before the first ranking, not at its save
      const model = loadOrFail("the checkpoint", () => loadChatModel(args.checkpoint));
      let ranked = 0, skipped = 0;
      try {
        const { params, config, codec } = model;
        const prompts = createRng(args.seed).shuffle([...loadPrompts(args.data).train]).slice(0, args.prompts);
        const interactive = (input as NodeJS.ReadStream).isTTY === true;
        const rl = readline.createInterface({ input, terminal: false });
        const lines = rl[Symbol.asyncIterator]();
        const readLine = async (): Promise<string | null> => {
          if (interactive) write("> ");
          const r = await lines.next();
          return r.done ? null : r.value;
        };
        const rankedBy = `human:${args.name}`;
        write(`Ranking answers of ${args.checkpoint} as ${rankedBy}; each ranking is appended to ${args.out}. "s" skips, "q" or Ctrl-D stops.\n`);
        let stop = false;
        for (let i = 0; i < prompts.length && !stop; i++) {
          const p = prompts[i];
          const responses = sampleResponses(params, config, codec, [p.prompt], {
            k: args.k, maxNewTokens: args.maxNewTokens, temperature: args.temperature, seed: args.seed * 100003 + i,
          })[0];
          write(`\nQuestion ${i + 1}/${prompts.length}: ${p.prompt}\n`);
          responses.forEach((r, j) => write(`  ${j + 1}. ${JSON.stringify(r)}\n`));
          write(`Your ranking, best first (e.g. "${Array.from({ length: args.k }, (_, j) => j + 1).join(" ")}"):\n`);
          for (;;) {
            const line = await readLine();
            if (line === null || /^\s*q(uit)?\s*$/i.test(line)) { stop = true; break; }
            if (/^\s*s(kip)?\s*$/i.test(line)) { skipped++; break; }
            const ranking = parseRanking(line, args.k);
            if (typeof ranking === "string") { write(`  ${ranking}; try again ("s" skips, "q" stops)\n`); continue; }
            const removed = appendPreference(args.out, {
              prompt: p.prompt, responses, ranking, rankedBy, id: p.id, time: new Date().toISOString(), reference: p.reference,
            });
            if (removed > 0) err(`warning: removed ${removed} bytes of an interrupted earlier append from ${args.out}`);
            ranked++;
            const rule = simulatedRanking(p.prompt, responses, p.reference);
            write(`  saved. (The simulated labeller would say ${rule.map((x) => x + 1).join(" ")}.)\n`);
            break;
          }
        }
        rl.close();
        const records = readPreferences(args.out).records.length;
        write(`\n${ranked} ranked, ${skipped} skipped; ${records} rankings in ${args.out}\n`);
        return { json: { ranked, skipped, file: args.out, records }, lines: [] };
      } finally {
        disposeParams(model.params);
      }
    },
  };
}

export const main = interactiveMain(rankCommand);

if (require.main === module) runAsScript(main);
