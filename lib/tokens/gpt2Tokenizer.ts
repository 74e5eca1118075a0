import { BPETokenizer, BytePairEncoder, GPT2_PATTERN } from "./bpe";

/**
 * GPT-2's tokenizer, rebuilt on the course's own BPE encoder (lib/tokens/bpe.ts).
 *
 * OpenAI published GPT-2's vocabulary as 50 257 tokens. js-tiktoken ships it offline (in
 * `js-tiktoken/ranks/gpt2`) as "ranks": each token's bytes (base64) with a number, the rank,
 * which is also its id. Ranks 0–255 are the single bytes; rank r ≥ 256 is the token created by
 * merge number r − 256; 50256 is `<|endoftext|>`.
 *
 * The ranks do not say WHICH two tokens were merged into each token, so we recover it the way
 * minbpe does: run BPE on the token's own bytes using only the merges learned before it; that
 * stops with exactly two pieces, the pair that was merged. Then our encoder (pre-tokenise with
 * GPT-2's regex, apply merges earliest first) gives the same ids as js-tiktoken, which the tests
 * check on thousands of strings.
 */

export const GPT2_END_OF_TEXT = "<|endoftext|>";
export const GPT2_END_OF_TEXT_ID = 50256;
export const GPT2_VOCAB_SIZE = 50257;

/** The format of js-tiktoken's rank files. */
interface TiktokenRanksFile {
  pat_str: string;
  special_tokens: Record<string, number>;
  /** Lines "<name> <first rank> <base64 token> <base64 token> …": consecutive ranks from the first. */
  bpe_ranks: string;
}

/** GPT-2's ranks as shipped by js-tiktoken (read through its package exports). */
export function loadGPT2Ranks(): TiktokenRanksFile {
  // `require`, not `import`: the file is only reachable through package.json "exports", which
  // TypeScript's node10 module resolution does not read.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const data = require("js-tiktoken/ranks/gpt2") as TiktokenRanksFile;
  return data;
}

/**
 * Turn tiktoken ranks into what our encoder needs: which id each byte has, and the merges in
 * order (merges[i] = the two ids that make token 256 + i).
 */
export function mergesFromRanks(bpeRanks: string): { byteIds: number[]; merges: [number, number][] } {
  // Tokens as "binary strings" (one char per byte, via latin1) so they can be Map keys.
  const rankOf = new Map<string, number>();
  const tokens: string[] = [];
  for (const line of bpeRanks.split("\n")) {
    if (line === "") continue;
    const [, first, ...encoded] = line.split(" ");
    const offset = Number.parseInt(first, 10);
    encoded.forEach((b64, i) => {
      const token = Buffer.from(b64, "base64").toString("latin1");
      rankOf.set(token, offset + i);
      tokens[offset + i] = token;
    });
  }
  for (let r = 0; r < tokens.length; r++) {
    if (tokens[r] === undefined) throw new Error(`GPT-2 ranks: no token has rank ${r}`);
  }

  const byteIds: number[] = [];
  for (let b = 0; b < 256; b++) {
    const id = rankOf.get(String.fromCharCode(b));
    if (id === undefined || id >= 256) throw new Error(`GPT-2 ranks: byte ${b} is not among ranks 0–255`);
    byteIds[b] = id;
  }

  const merges: [number, number][] = [];
  for (let rank = 256; rank < tokens.length; rank++) {
    const [left, right] = splitLastMerge(tokens[rank], rank, rankOf);
    merges.push([rankOf.get(left)!, rankOf.get(right)!]);
  }
  return { byteIds, merges };
}

/** BPE on a token's bytes with only the merges of rank below `rank`: the two pieces left were merged. */
function splitLastMerge(token: string, rank: number, rankOf: Map<string, number>): [string, string] {
  let parts = Array.from(token); // latin1 chars: one per byte
  for (;;) {
    let best = -1;
    let bestRank = rank;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = rankOf.get(parts[i] + parts[i + 1]);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) break;
    parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
  }
  if (parts.length !== 2) throw new Error(`GPT-2 ranks: token of rank ${rank} does not split into two earlier tokens`);
  return [parts[0], parts[1]];
}

let cached: BPETokenizer | undefined;

/**
 * GPT-2's tokenizer (50 257 ids, `<|endoftext|>` = 50256). Built once (~0.5 s) and shared; it is
 * immutable (`addSpecialTokens` returns a new tokenizer).
 */
export function gpt2Tokenizer(): BPETokenizer {
  if (!cached) {
    const ranks = loadGPT2Ranks();
    const { byteIds, merges } = mergesFromRanks(ranks.bpe_ranks);
    const encoder = new BytePairEncoder(merges, GPT2_PATTERN, byteIds, "GPT-2 ranks");
    cached = new BPETokenizer(encoder, { [GPT2_END_OF_TEXT]: GPT2_END_OF_TEXT_ID }, "gpt2");
    if (cached.vocabSize !== GPT2_VOCAB_SIZE) throw new Error(`GPT-2 ranks: expected ${GPT2_VOCAB_SIZE} ids, got ${cached.vocabSize}`);
  }
  return cached;
}
