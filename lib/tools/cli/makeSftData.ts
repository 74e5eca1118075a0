#!/usr/bin/env node
/**
 * Write the course's SFT data set (lib/finetune/sftData.ts) to data/sft/{train,val,test}.jsonl.
 * Deterministic: the same seed writes the same bytes.
 *
 *   node lib/dist/tools/cli/makeSftData.js [--seed N] [--out DIR] [--check-chars]
 *
 * Every character must be one of Moby-Dick's (the pretrained char tokenizer knows no other)
 * and every example must fit the 64-token context with the chat tokens: both are checked.
 */
import * as path from "path";
import { loadCorpus } from "../../tokens/corpus";
import { dataDir, projectPath } from "../../core/paths";
import { makeSFTData } from "../../finetune/sftData";
import { saveSFTData, SFTExample } from "../../finetune/sft";
import { Command, runAsScript, commandMain } from "./cli";

/** Tokens of an example rendered with 1-token chat markers (char model: one per character). */
export function templateLength(ex: SFTExample): number {
  return ex.messages.reduce((n, m) => n + Array.from(m.content).length + 2, 0);
}

interface MakeArgs {
  seed: number;
  out: string;
  context: number;
}

const MAKE: Command<MakeArgs> = {
  name: "make-sft-data",
  summary: "Write the course's SFT data set (lib/finetune/sftData.ts) as train/val/test JSONL; the same seed writes the same bytes.",
  options: {
    seed: { kind: "integer", value: "N", min: 0, default: 1337, help: "the data's seed" },
    out: { kind: "string", value: "DIR", default: path.join(dataDir, "sft"), help: "where the three files go" },
    context: { kind: "integer", value: "N", min: 1, default: 64, help: "every example must fit this many tokens with the chat template" },
  },
  async run(args, { out }) {
    const dir = path.resolve(args.out);
    const splits = makeSFTData(args.seed);
    const chars = new Set(Array.from(await loadCorpus("moby-dick")));
    for (const [name, list] of Object.entries(splits)) {
      for (const ex of list as SFTExample[]) {
        for (const m of ex.messages) {
          for (const ch of m.content) if (!chars.has(ch)) throw new Error(`${name} ${ex.id}: character ${JSON.stringify(ch)} does not occur in Moby-Dick`);
        }
        const n = templateLength(ex);
        if (n > args.context + 1) throw new Error(`${name} ${ex.id}: ${n} tokens with the template, more than the args.context + 1 (${args.context + 1})`);
      }
    }
    for (const [name, list] of Object.entries(splits)) saveSFTData(path.join(dir, `${name}.jsonl`), list as SFTExample[]);
    const count = (l: SFTExample[], k: string) => l.filter((e) => e.kind === k).length;
    for (const [name, list] of Object.entries(splits) as Array<[string, SFTExample[]]>) {
      out(`${projectPath(path.join(dir, name + ".jsonl"))}: ${list.length} examples (fact ${count(list, "fact")}, transform ${count(list, "transform")}, chat ${count(list, "chat")}), longest ${Math.max(...list.map(templateLength))} tokens`);
    }
  },
};

export const main = commandMain(MAKE);

if (require.main === module) runAsScript(main);
