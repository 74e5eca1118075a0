import {
  EncodeOptions,
  Tokenizer,
  TokenizerJSON,
  appendSpecialTokens,
  checkTokenId,
  checkFormatVersion,
  isJSONBoolean,
  isJSONStringArray,
  readJSONField,
  readSpecialTokens,
  splitOnSpecialTokens,
} from "./tokenizer";

/**
 * The word-level tokenizer: the "vocabulary table" of the lesson. Every distinct word of the
 * corpus gets a row (an id); a sentence becomes the list of its words' row numbers. Words not in
 * the table become `<unk>`. Simple, readable, and it shows why real models moved on: the table is
 * huge, yet any new word, typo or name is lost as `<unk>`.
 *
 * Word splitting (see `splitWords`): a word is a run of letters, marks and digits, possibly with
 * inner apostrophes ("don't", "whale's"); every other non-space character (punctuation, symbols,
 * emoji) is a token of its own; whitespace only separates. With `lowercase` (the default) "The"
 * and "the" share a row.
 */

/** Ids 0–3, in this order, in every word vocabulary. */
export const WORD_SPECIAL_TOKENS = ["<unk>", "<pad>", "<bos>", "<eos>"] as const;

export interface WordTokenizerOptions {
  /** Keep only words seen at least this many times (default 1: all words). */
  minFrequency?: number;
  /** At most this many ids in total, the 4 special tokens included (default: no limit). */
  maxSize?: number;
  /** Fold case before counting and encoding (default true). */
  lowercase?: boolean;
}

/** One row of the vocabulary table, for display. */
// A type alias, not an interface, so rows pass straight to showTable (interfaces have no
// implicit index signature).
export type VocabularyRow = {
  id: number;
  token: string;
  /** How often the word occurred in the corpus (0 for special tokens). */
  count: number;
};

const WORD_RE = /[\p{L}\p{M}\p{N}]+(?:['’][\p{L}\p{M}\p{N}]+)*|[^\s\p{L}\p{M}\p{N}]/gu;

/** Split text into words and punctuation, as the word tokenizer sees it. */
export function splitWords(text: string, lowercase = true): string[] {
  const words = text.match(WORD_RE) ?? [];
  return lowercase ? words.map((w) => w.toLowerCase()) : words;
}

export class WordTokenizer implements Tokenizer {
  readonly type = "word" as const;
  readonly specialTokens: Readonly<Record<string, number>>;
  private readonly ids = new Map<string, number>();

  private constructor(
    /** Token strings by id (special tokens by their name). */
    private readonly tokens: readonly string[],
    /** Corpus counts by id (0 for special tokens). */
    private readonly counts: readonly number[],
    specialTokens: Record<string, number>,
    readonly lowercase: boolean,
  ) {
    this.specialTokens = Object.freeze({ ...specialTokens });
    const specialIds = new Set(Object.values(specialTokens));
    tokens.forEach((t, id) => {
      if (!specialIds.has(id)) this.ids.set(t, id);
    });
  }

  /**
   * Build the table from a corpus: count words, keep those seen at least `minFrequency` times,
   * most frequent first (ties in alphabetical order, so the table is the same on every machine),
   * cut at `maxSize` ids. Ids 0–3 are `<unk>`, `<pad>`, `<bos>`, `<eos>`.
   */
  static fromText(text: string, options: WordTokenizerOptions = {}): WordTokenizer {
    const { minFrequency = 1, maxSize = Infinity, lowercase = true } = options;
    if (!(maxSize >= WORD_SPECIAL_TOKENS.length)) {
      throw new Error(`WordTokenizer.fromText: maxSize must be at least ${WORD_SPECIAL_TOKENS.length} (the special tokens), got ${maxSize}`);
    }
    const counts = new Map<string, number>();
    for (const w of splitWords(text, lowercase)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const rows = [...counts]
      .filter(([, c]) => c >= minFrequency)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, maxSize - WORD_SPECIAL_TOKENS.length);
    const specials: Record<string, number> = {};
    WORD_SPECIAL_TOKENS.forEach((name, id) => (specials[name] = id));
    return new WordTokenizer(
      [...WORD_SPECIAL_TOKENS, ...rows.map(([w]) => w)],
      [...WORD_SPECIAL_TOKENS.map(() => 0), ...rows.map(([, c]) => c)],
      specials,
      lowercase,
    );
  }

  get vocabSize(): number {
    return this.tokens.length;
  }

  /** Words → ids; unknown words → `<unk>` (id 0). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const unk = this.specialTokens["<unk>"];
    const out: number[] = [];
    for (const part of splitOnSpecialTokens(text, this.specialTokens, options.allowSpecial)) {
      if (typeof part === "number") out.push(part);
      else for (const w of splitWords(part, this.lowercase)) out.push(this.ids.get(w) ?? unk);
    }
    return out;
  }

  /**
   * Ids → text: words joined by spaces, without a space before closing punctuation or after
   * opening brackets. Not the original text: case, spacing and unknown words are lost.
   */
  decode(ids: readonly number[]): string {
    let text = "";
    let prev = "";
    for (const id of ids) {
      checkTokenId(id, this.vocabSize, "WordTokenizer.decode");
      const t = this.tokens[id];
      const glue = text === "" || /^[.,;:!?)\]}]$/.test(t) || /^[(\[{]$/.test(prev);
      text += (glue ? "" : " ") + t;
      prev = t;
    }
    return text;
  }

  idToToken(id: number): string {
    checkTokenId(id, this.vocabSize, "WordTokenizer.idToToken");
    return this.tokens[id];
  }

  tokenToId(token: string): number | undefined {
    return this.specialTokens[token] ?? this.ids.get(token);
  }

  /** The first `limit` rows of the vocabulary table (all rows by default). */
  vocabularyTable(limit = Infinity): VocabularyRow[] {
    const n = Math.min(limit, this.tokens.length);
    const rows: VocabularyRow[] = [];
    for (let id = 0; id < n; id++) rows.push({ id, token: this.tokens[id], count: this.counts[id] });
    return rows;
  }

  addSpecialTokens(names: readonly string[]): WordTokenizer {
    const specials = appendSpecialTokens(this.specialTokens, names, this.vocabSize);
    const added = Object.entries(specials)
      .filter(([, id]) => id >= this.vocabSize)
      .sort((a, b) => a[1] - b[1])
      .map(([name]) => name);
    return new WordTokenizer([...this.tokens, ...added], [...this.counts, ...added.map(() => 0)], specials, this.lowercase);
  }

  toJSON(): TokenizerJSON {
    return {
      type: "word",
      version: 1,
      lowercase: this.lowercase,
      tokens: [...this.tokens],
      counts: [...this.counts],
      specialTokens: { ...this.specialTokens },
    };
  }

  static fromJSON(obj: Record<string, unknown>, source: string): WordTokenizer {
    checkFormatVersion(obj, source);
    const lowercase = readJSONField(obj, "lowercase", source, isJSONBoolean, "true or false");
    const tokens = readJSONField(obj, "tokens", source, isJSONStringArray, "an array of strings (the table, by id)");
    const counts = readJSONField(
      obj,
      "counts",
      source,
      (v): v is number[] => Array.isArray(v) && v.every((c) => Number.isInteger(c) && c >= 0),
      "an array of counts",
    );
    if (counts.length !== tokens.length) {
      throw new Error(`${source}: field "counts" has ${counts.length} entries but "tokens" has ${tokens.length}`);
    }
    const specials = readSpecialTokens(obj, source);
    WORD_SPECIAL_TOKENS.forEach((name, id) => {
      if (specials[name] !== id) throw new Error(`${source}: field "specialTokens.${name}" must be ${id}, got ${specials[name]}`);
    });
    for (const [name, id] of Object.entries(specials)) {
      if (id >= tokens.length) throw new Error(`${source}: field "specialTokens.${name}" is ${id}, beyond the ${tokens.length} tokens`);
      if (tokens[id] !== name) throw new Error(`${source}: field "tokens[${id}]" must be the special token "${name}", got "${tokens[id]}"`);
    }
    const seen = new Set<string>();
    tokens.forEach((t, id) => {
      if (seen.has(t)) throw new Error(`${source}: field "tokens[${id}]" repeats "${t}"`);
      seen.add(t);
    });
    return new WordTokenizer(tokens, counts, specials, lowercase);
  }
}
