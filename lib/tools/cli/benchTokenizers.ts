#!/usr/bin/env node
import { getEncoding } from "js-tiktoken";
import { mobyDickText } from "../../tokens/corpus";
import { trainBPE } from "../../tokens/bpe";
import { gpt2Tokenizer } from "../../tokens/gpt2Tokenizer";
import { CharTokenizer } from "../../tokens/charTokenizer";
import { WordTokenizer } from "../../tokens/wordTokenizer";
import { Command, runAsScript, commandMain } from "./cli";

/**
 * Tokenizer benchmark on Moby-Dick (~1.2 M characters). Prints one JSON object:
 *  - seconds to train N byte-level BPE merges (default 3000; `--merges N`),
 *  - seconds and tokens/second to encode the whole book with that BPE, with our GPT-2 encoder
 *    and with js-tiktoken's (the reference), and whether both GPT-2 encoders agree,
 *  - compression: characters per token for each tokenizer (word and char included).
 * Each encode starts with an empty cache (plus one GPT-2 run with a warm cache). Times are wall
 * clock ("seconds") and CPU time ("cpuSeconds"). Run: node lib/dist/tools/cli/benchTokenizers.js
 */

/** Wall-clock seconds, and CPU seconds (user + system), which mean more on a busy machine. */
function timed<T>(f: () => T): { value: T; seconds: number; cpuSeconds: number } {
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const value = f();
  const used = process.cpuUsage(cpu);
  return { value, seconds: Number(process.hrtime.bigint() - start) / 1e9, cpuSeconds: (used.user + used.system) / 1e6 };
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

const BENCH_TOKENIZERS: Command<{ merges: number }> = {
  name: "bench-tokenizers",
  summary: "Time BPE training and encoding Moby-Dick with each tokenizer (ours and js-tiktoken's GPT-2); prints one JSON object.",
  options: {
    merges: { kind: "integer", value: "N", min: 0, expected: "a non-negative integer", default: 3000, help: "BPE merges to train" },
  },
  async run(args, { out }) {
    const numMerges = args.merges;
    const text = mobyDickText();
    const encodeStats = (ids: number[], seconds: number, cpuSeconds: number) => ({
      seconds: round(seconds),
      cpuSeconds: round(cpuSeconds),
      tokens: ids.length,
      tokensPerSecond: Math.round(ids.length / seconds),
      charsPerToken: round(text.length / ids.length),
    });

    const training = timed(() => trainBPE(text, { numMerges }));
    const bpe = training.value.tokenizer;
    const bpeEncode = timed(() => bpe.encode(text));

    const gpt2Build = timed(() => gpt2Tokenizer());
    const gpt2 = gpt2Build.value;
    const ownEncode = timed(() => gpt2.encode(text));
    const ownEncodeWarm = timed(() => gpt2.encode(text));

    const tiktokenBuild = timed(() => getEncoding("gpt2"));
    const tiktoken = tiktokenBuild.value;
    const refEncode = timed(() => tiktoken.encode(text, [], []));
    const same = refEncode.value.length === ownEncode.value.length && refEncode.value.every((id, k) => id === ownEncode.value[k]);

    const word = WordTokenizer.fromText(text);
    const char = CharTokenizer.fromText(text);

    const report = {
      corpus: "moby-dick",
      characters: text.length,
      bytes: Buffer.byteLength(text, "utf8"),
      train: {
        merges: training.value.merges.length,
        seconds: round(training.seconds),
        cpuSeconds: round(training.cpuSeconds),
        vocabSize: bpe.vocabSize,
        firstMerges: training.value.merges.slice(0, 10).map((m) => m.token),
      },
      encode: {
        trainedBPE: { ...encodeStats(bpeEncode.value, bpeEncode.seconds, bpeEncode.cpuSeconds), roundTrip: bpe.decode(bpeEncode.value) === text },
        gpt2Own: {
          buildSeconds: round(gpt2Build.seconds),
          buildCpuSeconds: round(gpt2Build.cpuSeconds),
          ...encodeStats(ownEncode.value, ownEncode.seconds, ownEncode.cpuSeconds),
          warmCacheSeconds: round(ownEncodeWarm.seconds),
          roundTrip: gpt2.decode(ownEncode.value) === text,
        },
        gpt2JsTiktoken: {
          buildSeconds: round(tiktokenBuild.seconds),
          buildCpuSeconds: round(tiktokenBuild.cpuSeconds),
          ...encodeStats(refEncode.value, refEncode.seconds, refEncode.cpuSeconds),
        },
        gpt2IdsIdentical: same,
      },
      charsPerToken: {
        char: round(text.length / char.encode(text).length),
        word: round(text.length / word.encode(text).length),
        [`bpe${bpe.vocabSize}`]: round(text.length / bpeEncode.value.length),
        gpt2: round(text.length / ownEncode.value.length),
      },
      vocabSizes: { char: char.vocabSize, word: word.vocabSize, bpe: bpe.vocabSize, gpt2: gpt2.vocabSize },
    };
    out(JSON.stringify(report, null, 2));
  },
};

export const main = commandMain(BENCH_TOKENIZERS);

if (require.main === module) runAsScript(main);
