#!/usr/bin/env node
/**
 * Rank the model's answers yourself: steps 1–2 of RLHF with a real person.
 *
 *   node lib/dist/tools/rank.js [--checkpoint build/artifacts/sft] [--out FILE] [--k 3] [--name alice]
 *
 * For each question (drawn from the SFT training data) the model samples K answers, shown
 * numbered 1..K. Type their order, best first ("2 1 3"), and press Enter: the ranking is
 * appended to the preference file at once (one line, fsync'd: lib/preferences.ts
 * appendPreference), so stopping at any moment loses nothing already ranked. "s" skips a
 * question, "q" or Ctrl-D (end of input) stops. The file has the same format as the simulated
 * labeller's (rankedBy "human:<name>"): train a reward model on it with
 * `npm run reward -- --prefs FILE`, or DPO with `npm run dpo -- --prefs FILE`.
 */
import * as readline from "readline";
import { initBackend } from "../backend";
import { simulatedRanking } from "../labeller";
import { appendPreference, readPreferences } from "../preferences";
import { disposeParams } from "../pretrain";
import { createRng } from "../random";
import { loadChatModel, sampleResponses } from "../rlhf";
import { ArgReader, loadPrompts, rel, rlhfDefaults, UsageError } from "./rlhfCli";

const D = rlhfDefaults();
const USAGE = `Usage: rank [--checkpoint DIR] [--out FILE] [--k K] [--prompts N] [--name NAME] [--data FILE]
            [--temperature T] [--max-new-tokens N] [--seed S] [--json]
  Rank K sampled answers per question (best first, e.g. "2 1 3"); each ranking is appended to --out at once.
  "s" skips a question, "q" or Ctrl-D stops. Defaults: --checkpoint ${rel(D.sft)}, --out ${rel(D.humanPreferences)}
  (kept apart from the simulated labeller's ${rel(D.preferences)}; same format, rankedBy "human:NAME"),
  --k 3, --prompts 20, --name $USER, --temperature 1, questions from ${rel(D.data)}.
  --json: the last line of stdout is {ranked, skipped, file, records}. Then: npm run reward -- --prefs FILE.`;

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

export function parseRankArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): RankArgs {
  const d = rlhfDefaults(env);
  const args: RankArgs = {
    checkpoint: d.sft, out: d.humanPreferences, k: 3, prompts: 20, name: env.USER || "anonymous", data: d.data,
    temperature: 1, maxNewTokens: 32, seed: 0, json: false, help: false,
  };
  const r = new ArgReader(argv);
  for (let a = r.next(); a !== undefined; a = r.next()) {
    switch (a) {
      case "--checkpoint": args.checkpoint = r.value(a); break;
      case "--out": args.out = r.value(a); break;
      case "--k": args.k = r.int(a, 2); break;
      case "--prompts": args.prompts = r.int(a, 1); break;
      case "--name": {
        const n = r.value(a);
        if (!/^\S+$/.test(n)) throw new UsageError(`--name must be one word without spaces, got "${n}"`);
        args.name = n;
        break;
      }
      case "--data": args.data = r.value(a); break;
      case "--temperature": args.temperature = r.num(a, 0); break;
      case "--max-new-tokens": args.maxNewTokens = r.int(a, 1); break;
      case "--seed": args.seed = r.int(a, 0); break;
      case "--json": args.json = true; break;
      case "-h": case "--help": args.help = true; break;
      default: throw new UsageError(a.startsWith("-") ? `unknown option ${a}` : `unexpected argument "${a}"`);
    }
  }
  return args;
}

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

export async function main(
  argv: readonly string[],
  input: NodeJS.ReadableStream = process.stdin,
  write: (text: string) => void = (t) => process.stdout.write(t),
  err: (line: string) => void = (l) => process.stderr.write(l + "\n"),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let args: RankArgs;
  try {
    args = parseRankArgs(argv, env);
  } catch (e) {
    err(`rank: ${(e as Error).message} (see --help)`);
    return 2;
  }
  if (args.help) {
    write(USAGE + "\n");
    return 0;
  }
  let model: ReturnType<typeof loadChatModel> | undefined;
  let ranked = 0, skipped = 0;
  try {
    const info = await initBackend({ quiet: true });
    err(info.line);
    try {
      model = loadChatModel(args.checkpoint);
    } catch (e) {
      err(`rank: cannot load the checkpoint: ${(e as Error).message}`);
      return 2;
    }
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
    if (args.json) write(JSON.stringify({ ranked, skipped, file: args.out, records }) + "\n");
    return 0;
  } catch (e) {
    err(`rank: ${String((e as Error).message ?? e).split("\n")[0]}`);
    return 1;
  } finally {
    if (model) disposeParams(model.params);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
