import {
  EncodeOptions,
  loneSurrogateIndex,
  Tokenizer,
  TokenizerJSON,
  appendSpecialTokens,
  checkAppendedSpecials,
  checkTokenId,
  checkFormatVersion,
  describeJSONValue,
  readSpecialTokens,
  splitOnSpecialTokens,
} from "./tokenizer";

/**
 * Byte-level Byte Pair Encoding (BPE), the tokenizer family of GPT-2 and its successors.
 *
 * Text is first turned into UTF-8 bytes, so the 256 possible bytes are the starting vocabulary
 * and NOTHING is ever unknown: an emoji, a Chinese character or a typo is just a few bytes.
 * Training then repeats one step: find the pair of adjacent tokens that occurs most often in the
 * corpus and make it a new token ("merge" it). The list of merges, in order, IS the tokenizer.
 * Encoding replays the merges on new text: in each word, keep merging the pair that was learned
 * earliest, until no learned pair is left.
 *
 * Before any of this the text is cut into "pre-tokens" (words with their leading space,
 * numbers, punctuation runs, whitespace) by a regular expression, GPT-2's by default. Merges
 * never cross pre-token boundaries, so " dog." cannot become one token with the full stop, and
 * training only needs each distinct word and its count instead of the whole text.
 *
 * Strings and bytes: a JS string is UTF-16 and may contain a lone surrogate (half of an emoji,
 * e.g. after slicing a string in the middle of "🐋"). A lone surrogate is not a character and has
 * no UTF-8 bytes: encode refuses it by default, or, with { loneSurrogates: "replace" } (as TextEncoder
 * and tiktoken do), encodes it as U+FFFD "�" (bytes EF BF BD). decode(encode(s)) === s for every
 * well-formed string.
 */

/** GPT-2's pre-tokenisation regex (used with flags "gu"): contractions, letters, numbers, other, spaces. */
export const GPT2_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/**
 * A pair of ids (a, b) is used as a Map key in one number, a * stride + b, with stride = the
 * number of ids. (Numbers, not strings like "a,b": V8 hashes small integers far faster, which
 * makes encoding and training several times quicker.)
 */
const pairKey = (a: number, b: number, stride: number): number => a * stride + b;

const utf8Encoder = new TextEncoder();
// Not fatal: a list of ids that cuts a character in the middle decodes to "�" there, as in tiktoken.
const utf8Decoder = new TextDecoder("utf-8");

// ---------------------------------------------------------------------------------------------
// Readable token strings

/**
 * GPT-2's byte → printable character table. Bytes that are printable Latin-1 characters stand
 * for themselves; the others (controls, space, …) are shifted to code points 256+ so that a
 * token's bytes always display as visible characters: " the" shows as "Ġthe", "\n" as "Ċ".
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b); // ! … ~
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b); // ¡ … ¬
  for (let b = 0xae; b <= 0xff; b++) printable.push(b); // ® … ÿ
  const table: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + shifted++);
  }
  return table;
})();

const UNICODE_TO_BYTE = new Map(BYTE_TO_UNICODE.map((ch, b) => [ch, b]));

/** The readable form of some bytes, GPT-2 style ("Ġthe"). */
export function bytesToDisplay(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += BYTE_TO_UNICODE[b];
  return s;
}

/** Inverse of `bytesToDisplay`, or undefined if a character is not in the table. */
export function displayToBytes(display: string): Uint8Array | undefined {
  const bytes: number[] = [];
  for (const ch of display) {
    const b = UNICODE_TO_BYTE.get(ch);
    if (b === undefined) return undefined;
    bytes.push(b);
  }
  return Uint8Array.from(bytes);
}

// ---------------------------------------------------------------------------------------------
// The encoder: merges + pre-tokenisation

/**
 * The split patterns a tokenizer FILE may carry, by name. A file's pattern is run as a regular
 * expression on every text, so an arbitrary one could backtrack for hours on a short input; a
 * loaded file must name one of these by its exact text (code that builds a tokenizer may pass
 * any pattern it likes).
 */
export const KNOWN_SPLIT_PATTERNS: Readonly<Record<string, string>> = { gpt2: GPT2_PATTERN };

/**
 * Upper bound on the bytes of all tokens of a vocabulary together. GPT-2's 50,257 tokens take
 * about 0.3 MB; a merge list in which every merge doubles the previous token would reach
 * gigabytes in a few dozen lines of a file.
 */
export const MAX_VOCABULARY_BYTES = 64 * 1024 * 1024;

/**
 * The BPE model without special tokens: ids 0–255 are the single bytes, id 256 + i is the token
 * made by merge i. `byteIds` says which id each byte value has: the identity for the tokenizers
 * we train; GPT-2 numbers its bytes in a different order (printable ones first).
 */
export class BytePairEncoder {
  /** merges[i] = [left id, right id]; it creates id 256 + i. */
  readonly merges: ReadonlyArray<readonly [number, number]>;
  /** Byte value → id. */
  readonly byteIds: readonly number[];
  /** The pre-tokenisation regex source (flags "gu"), or null to treat the text as one piece. */
  readonly pattern: string | null;
  /** The bytes of every token, by id. */
  readonly tokenBytes: readonly Uint8Array[];
  private readonly mergeRank = new Map<number, number>();
  private readonly cache = new Map<string, number[]>();

  constructor(
    merges: ReadonlyArray<readonly [number, number]>,
    pattern: string | null = GPT2_PATTERN,
    byteIds: readonly number[] = IDENTITY_BYTES,
    source = "BytePairEncoder",
  ) {
    if (byteIds.length !== 256 || new Set(byteIds).size !== 256 || byteIds.some((id) => !(id >= 0 && id < 256))) {
      throw new Error(`${source}: field "byteIds" must be the 256 ids 0…255 in some order`);
    }
    if (pattern !== null) {
      try {
        new RegExp(pattern, "gu");
      } catch (err) {
        throw new Error(`${source}: field "pattern" is not a valid regular expression (${(err as Error).message})`);
      }
    }
    const tokenBytes: Uint8Array[] = [];
    byteIds.forEach((id, b) => (tokenBytes[id] = Uint8Array.of(b)));
    let totalBytes = 256;
    merges.forEach((pair, i) => {
      const id = 256 + i;
      if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((x) => Number.isInteger(x) && x >= 0 && x < id)) {
        throw new Error(`${source}: field "merges[${i}]" must be a pair of ids below ${id}, got ${describeJSONValue(pair)}`);
      }
      const key = pairKey(pair[0], pair[1], 256 + merges.length);
      if (this.mergeRank.has(key)) {
        throw new Error(`${source}: field "merges[${i}]" repeats merges[${this.mergeRank.get(key)}] ${JSON.stringify(pair)}`);
      }
      this.mergeRank.set(key, i);
      const left = tokenBytes[pair[0]];
      const right = tokenBytes[pair[1]];
      totalBytes += left.length + right.length; // checked before the token is allocated
      if (totalBytes > MAX_VOCABULARY_BYTES) {
        throw new Error(`${source}: field "merges[${i}]": the vocabulary's tokens would take more than ${MAX_VOCABULARY_BYTES / 1024 / 1024} MB together (token ${id} alone is ${left.length + right.length} bytes)`);
      }
      const bytes = new Uint8Array(left.length + right.length);
      bytes.set(left);
      bytes.set(right, left.length);
      tokenBytes[id] = bytes;
    });
    this.merges = merges.map(([a, b]) => [a, b] as const);
    this.byteIds = [...byteIds];
    this.pattern = pattern;
    this.tokenBytes = tokenBytes;
  }

  /** Number of ids: 256 bytes + one per merge. */
  get size(): number {
    return 256 + this.merges.length;
  }

  /** Cut text into pre-tokens (merges never cross their boundaries). */
  preTokenize(text: string): string[] {
    if (this.pattern === null) return text === "" ? [] : [text];
    return text.match(new RegExp(this.pattern, "gu")) ?? [];
  }

  /** Encode text that contains no special tokens. */
  encodeOrdinary(text: string): number[] {
    const out: number[] = [];
    for (const piece of this.preTokenize(text)) {
      for (const id of this.encodePiece(piece)) out.push(id);
    }
    return out;
  }

  /** Encode one pre-token, remembering the answer: in real text the same words come back all the time. */
  encodePiece(piece: string): readonly number[] {
    const cached = this.cache.get(piece);
    if (cached) return cached;
    const ids = this.bpe(utf8Encoder.encode(piece));
    if (piece.length <= 64) {
      if (this.cache.size >= 100_000) this.cache.clear(); // bound memory on endless streams of new words
      this.cache.set(piece, ids);
    }
    return ids;
  }

  /**
   * The BPE algorithm on one pre-token: start from its bytes; while some adjacent pair is a
   * learned merge, apply the EARLIEST learned one (lowest rank) everywhere in the word.
   */
  bpe(bytes: Uint8Array): number[] {
    let ids = Array.from(bytes, (b) => this.byteIds[b]);
    while (ids.length >= 2) {
      let bestRank = Infinity;
      for (let i = 0; i + 1 < ids.length; i++) {
        const rank = this.mergeRank.get(pairKey(ids[i], ids[i + 1], this.size));
        if (rank !== undefined && rank < bestRank) bestRank = rank;
      }
      if (bestRank === Infinity) break; // no learned pair left
      const [a, b] = this.merges[bestRank];
      ids = mergePair(ids, a, b, 256 + bestRank);
    }
    return ids;
  }

  /** The bytes of a list of ids (all below `size`). */
  decodeBytes(ids: readonly number[]): Uint8Array {
    return concatBytes(ids.map((id) => this.tokenBytes[id]));
  }
}

/** Byte arrays joined into one (by hand, not Buffer.concat: the tokenizers run in the browser too). */
function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const IDENTITY_BYTES: readonly number[] = Array.from({ length: 256 }, (_, b) => b);

/** Replace every occurrence of the pair (a, b) in `ids`, left to right, by `id`. */
export function mergePair(ids: readonly number[], a: number, b: number, id: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
      out.push(id);
      i++;
    } else {
      out.push(ids[i]);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The tokenizer: encoder + special tokens

export class BPETokenizer implements Tokenizer {
  readonly specialTokens: Readonly<Record<string, number>>;
  private readonly specialNames = new Map<number, string>();
  private displayIndex: Map<string, number> | undefined;

  /**
   * Usually made by `trainBPE`, `gpt2Tokenizer()` or `tokenizerFromJSON`. Special tokens take
   * the ids after the encoder's (`encoder.size`, `encoder.size + 1`, …).
   * `type` "gpt2" only changes the JSON form: GPT-2's 50 000 merges are not copied into every
   * checkpoint but rebuilt from js-tiktoken's ranks.
   */
  constructor(
    readonly encoder: BytePairEncoder,
    specialTokens: Record<string, number> = {},
    readonly type: "bpe" | "gpt2" = "bpe",
  ) {
    checkAppendedSpecials(specialTokens, encoder.size, "BPETokenizer");
    for (const [name, id] of Object.entries(specialTokens)) {
      if (id < encoder.size) throw new Error(`BPETokenizer: special token "${name}" has id ${id}, which is a byte/merge id`);
      this.specialNames.set(id, name);
    }
    this.specialTokens = Object.freeze({ ...specialTokens });
  }

  get vocabSize(): number {
    return this.encoder.size + this.specialNames.size;
  }

  /** The merges in the order they were learned; merge i made id 256 + i. */
  get merges(): ReadonlyArray<readonly [number, number]> {
    return this.encoder.merges;
  }

  /** The pre-tokens of a text (for display: how the regex cuts it before any merge). */
  preTokenize(text: string): string[] {
    return this.encoder.preTokenize(text);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (options.loneSurrogates !== "replace") {
      const at = loneSurrogateIndex(text);
      if (at >= 0) {
        const unit = text.charCodeAt(at).toString(16).toUpperCase();
        throw new Error(
          `${this.type === "gpt2" ? "GPT-2 tokenizer" : "BPETokenizer"}.encode: the text has a lone surrogate U+${unit} at index ${at} (half of a character, as when a string is cut inside an emoji), which UTF-8 cannot encode; expected well-formed text, or { loneSurrogates: "replace" } to encode it as U+FFFD`,
        );
      }
    }
    const out: number[] = [];
    for (const part of splitOnSpecialTokens(text, this.specialTokens, options.allowSpecial)) {
      if (typeof part === "number") out.push(part);
      else for (const id of this.encoder.encodeOrdinary(part)) out.push(id);
    }
    return out;
  }

  /** The UTF-8 bytes of some ids (special tokens give the bytes of their name). */
  decodeBytes(ids: readonly number[]): Uint8Array {
    const chunks: Uint8Array[] = [];
    let run: number[] = [];
    for (const id of ids) {
      checkTokenId(id, this.vocabSize, "BPETokenizer.decode");
      const name = this.specialNames.get(id);
      if (name === undefined) {
        run.push(id);
        continue;
      }
      chunks.push(this.encoder.decodeBytes(run), utf8Encoder.encode(name));
      run = [];
    }
    chunks.push(this.encoder.decodeBytes(run));
    return chunks.length === 1 ? chunks[0] : concatBytes(chunks);
  }

  /** Ids → text. Bytes that do not form valid UTF-8 (a character cut between ids) become "�". */
  decode(ids: readonly number[]): string {
    return utf8Decoder.decode(this.decodeBytes(ids));
  }

  /** GPT-2-style readable form of a token's bytes ("Ġthe"), or a special token's name. */
  idToToken(id: number): string {
    checkTokenId(id, this.vocabSize, "BPETokenizer.idToToken");
    return this.specialNames.get(id) ?? bytesToDisplay(this.encoder.tokenBytes[id]);
  }

  tokenToId(token: string): number | undefined {
    if (token in this.specialTokens) return this.specialTokens[token];
    if (!this.displayIndex) {
      this.displayIndex = new Map(this.encoder.tokenBytes.map((bytes, id) => [bytesToDisplay(bytes), id]));
    }
    return this.displayIndex.get(token);
  }

  addSpecialTokens(names: readonly string[]): BPETokenizer {
    return new BPETokenizer(this.encoder, appendSpecialTokens(this.specialTokens, names, this.vocabSize), this.type);
  }

  toJSON(): TokenizerJSON {
    if (this.type === "gpt2") return { type: "gpt2", version: 1, specialTokens: { ...this.specialTokens } };
    const json: TokenizerJSON = {
      type: "bpe",
      version: 1,
      pattern: this.encoder.pattern,
      merges: this.encoder.merges.map(([a, b]) => [a, b]),
      specialTokens: { ...this.specialTokens },
    };
    if (this.encoder.byteIds.some((id, b) => id !== b)) json.byteIds = [...this.encoder.byteIds];
    return json;
  }

  static fromJSON(obj: Record<string, unknown>, source: string): BPETokenizer {
    checkFormatVersion(obj, source);
    const pattern = obj.pattern;
    if (pattern !== null && !Object.values(KNOWN_SPLIT_PATTERNS).includes(pattern as string)) {
      const names = Object.keys(KNOWN_SPLIT_PATTERNS).join(", ");
      throw new Error(`${source}: field "pattern" must be null or the exact text of a known split pattern (${names}), got ${describeJSONValue(pattern)}`);
    }
    if (!Array.isArray(obj.merges)) throw new Error(`${source}: field "merges" must be an array of [left, right] id pairs, got ${describeJSONValue(obj.merges)}`);
    const byteIds = obj.byteIds ?? IDENTITY_BYTES;
    if (!Array.isArray(byteIds)) throw new Error(`${source}: field "byteIds" must be an array of 256 ids, got ${describeJSONValue(byteIds)}`);
    const encoder = new BytePairEncoder(obj.merges as [number, number][], pattern as string | null, byteIds as number[], source);
    const specials = readSpecialTokens(obj, source);
    for (const [name, id] of Object.entries(specials)) {
      if (id < encoder.size) throw new Error(`${source}: field "specialTokens.${name}" is ${id}, which is a byte/merge id (below ${encoder.size})`);
    }
    checkAppendedSpecials(specials, encoder.size, source);
    return new BPETokenizer(encoder, specials, "bpe");
  }
}

// ---------------------------------------------------------------------------------------------
// Training

export interface TrainBPEOptions {
  /**
   * Size of the final vocabulary: 256 bytes + merges + special tokens. Give this or `numMerges`.
   * Training stops earlier if no pair is left (every word already one token).
   */
  vocabSize?: number;
  /** Number of merges to learn (instead of `vocabSize`). */
  numMerges?: number;
  /** Pre-tokenisation regex source (flags "gu"); default GPT-2's; null: no pre-tokenisation. */
  pattern?: string | null;
  /** Stop when the best pair occurs fewer times than this (default 1). */
  minFrequency?: number;
  /** Special tokens appended after the merges (e.g. ["<|endoftext|>"]). */
  specialTokens?: readonly string[];
  /** Called after every merge, e.g. to print the first ones or plot the vocabulary growing. */
  onMerge?: (merge: BPEMergeRecord) => void;
}

/** One learned merge, for display. */
export interface BPEMergeRecord {
  /** 0 for the first merge learned. */
  rank: number;
  left: number;
  right: number;
  /** The new token's id (256 + rank). */
  id: number;
  /** How many times the pair occurred in the corpus when it was chosen. */
  count: number;
  /** Readable form of the new token ("Ġthe"). */
  token: string;
}

export interface BPETrainingResult {
  tokenizer: BPETokenizer;
  merges: BPEMergeRecord[];
}

/**
 * Learn byte-level BPE merges from a text.
 *
 * The most frequent adjacent pair wins; ties go to the pair with the smallest (left, right) ids,
 * so training is deterministic. Pairs are counted naively, so "aaa" counts the pair (a, a) twice
 * (as in minbpe); a merge then replaces occurrences left to right.
 *
 * Made fast in two ways (the result is the same as recounting everything after each merge, which
 * the tests check):
 *  1. Work on distinct pre-tokens with their counts, not on the text: Moby-Dick's 1.2 million
 *     characters are ~20 000 distinct words.
 *  2. After merging (a, b), only the words that contain (a, b) change; we update the pair counts
 *     of those words only, and find the next best pair with a priority queue instead of a scan.
 *
 * Without pre-tokenisation (`pattern: null`) the whole text is one word, which every merge must
 * rescan: fine for a chapter (~100 000 characters), slow for a whole book.
 */
export function trainBPE(text: string, options: TrainBPEOptions = {}): BPETrainingResult {
  const pattern = options.pattern === undefined ? GPT2_PATTERN : options.pattern;
  const specialNames = options.specialTokens ?? [];
  const numMerges = options.numMerges ?? (options.vocabSize ?? NaN) - 256 - new Set(specialNames).size;
  if (!Number.isInteger(numMerges) || numMerges < 0) {
    throw new Error(
      `trainBPE: give vocabSize (at least 256 + the special tokens) or numMerges (≥ 0); got vocabSize ${options.vocabSize}, numMerges ${options.numMerges}`,
    );
  }
  const minFrequency = options.minFrequency ?? 1;

  // 1. Distinct pre-tokens as byte sequences, with their counts.
  const wordCounts = new Map<string, number>();
  const pieces = pattern === null ? (text === "" ? [] : [text]) : text.match(new RegExp(pattern, "gu")) ?? [];
  for (const piece of pieces) wordCounts.set(piece, (wordCounts.get(piece) ?? 0) + 1);
  const words: number[][] = [];
  const freqs: number[] = [];
  for (const [piece, count] of wordCounts) {
    words.push(Array.from(utf8Encoder.encode(piece)));
    freqs.push(count);
  }

  // 2. Count every adjacent pair, and remember which words contain it. Each merge shortens some
  // word by at least one token, which bounds how many merges are possible.
  const possibleMerges = words.reduce((n, word) => n + Math.max(0, word.length - 1), 0);
  const stride = 256 + Math.min(numMerges, possibleMerges);
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const notePair = (key: number, w: number): void => {
    let set = pairWords.get(key);
    if (!set) pairWords.set(key, (set = new Set()));
    set.add(w);
  };
  words.forEach((word, w) => {
    for (let i = 0; i + 1 < word.length; i++) {
      const key = pairKey(word[i], word[i + 1], stride);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + freqs[w]);
      notePair(key, w);
    }
  });
  const queue = new PairQueue();
  for (const [key, count] of pairCounts) queue.push(count, key);

  // 3. Merge, merge, merge.
  const tokenBytes: Uint8Array[] = Array.from({ length: 256 }, (_, b) => Uint8Array.of(b));
  const merges: [number, number][] = [];
  const records: BPEMergeRecord[] = [];
  while (merges.length < Math.min(numMerges, possibleMerges)) {
    const best = queue.popBest(pairCounts);
    if (!best || best.count < minFrequency) break;
    const a = Math.floor(best.key / stride);
    const b = best.key % stride;
    const id = 256 + merges.length;

    // Rewrite the words that contain (a, b), and collect how pair counts change. Only pairs
    // next to a merge change: in "x a b y" → "x Z y", the pairs (x,a) (a,b) (b,y) go and
    // (x,Z) (Z,y) come; pairs elsewhere in the word are the same before and after.
    const delta = new Map<number, number>();
    const change = (key: number, d: number): void => void delta.set(key, (delta.get(key) ?? 0) + d);
    for (const w of pairWords.get(best.key) ?? []) {
      const word = words[w];
      const merged = mergePair(word, a, b, id);
      if (merged.length === word.length) continue; // the pair left this word in an earlier merge
      const f = freqs[w];
      // Old positions covered by a merge, found by the same left-to-right scan as mergePair.
      const covered = new Uint8Array(word.length);
      for (let i = 0; i + 1 < word.length; i++) {
        if (word[i] === a && word[i + 1] === b) covered[i] = covered[++i] = 1;
      }
      for (let i = 0; i + 1 < word.length; i++) {
        if (covered[i] || covered[i + 1]) change(pairKey(word[i], word[i + 1], stride), -f);
      }
      for (let i = 0; i + 1 < merged.length; i++) {
        if (merged[i] === id || merged[i + 1] === id) {
          const key = pairKey(merged[i], merged[i + 1], stride);
          change(key, f);
          notePair(key, w);
        }
      }
      words[w] = merged;
    }
    for (const [key, d] of delta) {
      if (d === 0) continue;
      const count = (pairCounts.get(key) ?? 0) + d;
      if (count > 0) {
        pairCounts.set(key, count);
        queue.push(count, key);
      } else {
        pairCounts.delete(key);
      }
    }
    pairCounts.delete(best.key);
    pairWords.delete(best.key);

    merges.push([a, b]);
    const bytes = new Uint8Array(tokenBytes[a].length + tokenBytes[b].length);
    bytes.set(tokenBytes[a]);
    bytes.set(tokenBytes[b], tokenBytes[a].length);
    tokenBytes.push(bytes);
    const record: BPEMergeRecord = { rank: merges.length - 1, left: a, right: b, id, count: best.count, token: bytesToDisplay(bytes) };
    records.push(record);
    options.onMerge?.(record);
  }

  const encoder = new BytePairEncoder(merges, pattern);
  const tokenizer = new BPETokenizer(encoder, appendSpecialTokens({}, specialNames, encoder.size));
  return { tokenizer, merges: records };
}

/**
 * A max-priority queue of (count, pair key): highest count first, then smallest key, i.e. the
 * smallest (left, right). Counts change all the time; instead of updating entries in place we
 * push a new entry and, when popping, skip entries whose count is no longer the pair's count.
 */
class PairQueue {
  private counts: number[] = [];
  private keys: number[] = [];

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Pop the best entry that is still up to date, or undefined if none is left. */
  popBest(current: Map<number, number>): { count: number; key: number } | undefined {
    while (this.counts.length > 0) {
      const count = this.counts[0];
      const key = this.keys[0];
      this.removeTop();
      if (current.get(key) === count) return { count, key };
    }
    return undefined;
  }

  private removeTop(): void {
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length === 0) return;
    this.counts[0] = lastCount;
    this.keys[0] = lastKey;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let top = i;
      if (l < this.counts.length && this.before(l, top)) top = l;
      if (r < this.counts.length && this.before(r, top)) top = r;
      if (top === i) return;
      this.swap(i, top);
      i = top;
    }
  }

  private before(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
}
