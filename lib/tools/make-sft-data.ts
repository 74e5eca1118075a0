#!/usr/bin/env node
/**
 * Write the course's SFT data set (lib/sftData.ts) to data/sft/{train,val,test}.jsonl.
 * Deterministic: the same seed writes the same bytes.
 *
 *   node lib/dist/tools/make-sft-data.js [--seed N] [--out DIR] [--check-chars]
 *
 * Every character must be one of Moby-Dick's (the pretrained char tokenizer knows no other)
 * and every example must fit the 64-token context with the chat tokens: both are checked.
 */
import * as path from "path";
import { parseArgs } from "util";
import { loadCorpus } from "../corpus";
import { dataDir, projectPath } from "../paths";
import { makeSFTData } from "../sftData";
import { saveSFTData, SFTExample } from "../sft";

/** Tokens of an example rendered with 1-token chat markers (char model: one per character). */
export function templateLength(ex: SFTExample): number {
  return ex.messages.reduce((n, m) => n + Array.from(m.content).length + 2, 0);
}

export async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { seed: { type: "string" }, out: { type: "string" }, context: { type: "string" } } });
  const seed = values.seed === undefined ? 1337 : Number(values.seed);
  const out = path.resolve(values.out ?? path.join(dataDir, "sft"));
  const context = Number(values.context ?? 64);
  const splits = makeSFTData(seed);
  const chars = new Set(Array.from(await loadCorpus("moby-dick")));
  for (const [name, list] of Object.entries(splits)) {
    for (const ex of list as SFTExample[]) {
      for (const m of ex.messages) {
        for (const ch of m.content) if (!chars.has(ch)) throw new Error(`${name} ${ex.id}: character ${JSON.stringify(ch)} does not occur in Moby-Dick`);
      }
      const n = templateLength(ex);
      if (n > context + 1) throw new Error(`${name} ${ex.id}: ${n} tokens with the template, more than the context + 1 (${context + 1})`);
    }
  }
  for (const [name, list] of Object.entries(splits)) saveSFTData(path.join(out, `${name}.jsonl`), list as SFTExample[]);
  const count = (l: SFTExample[], k: string) => l.filter((e) => e.kind === k).length;
  for (const [name, list] of Object.entries(splits) as Array<[string, SFTExample[]]>) {
    console.log(`${projectPath(path.join(out, name + ".jsonl"))}: ${list.length} examples (fact ${count(list, "fact")}, transform ${count(list, "transform")}, chat ${count(list, "chat")}), longest ${Math.max(...list.map(templateLength))} tokens`);
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((c) => (process.exitCode = c), (e) => {
    console.error(`make-sft-data: ${(e as Error).message}`);
    process.exitCode = 1;
  });
}
