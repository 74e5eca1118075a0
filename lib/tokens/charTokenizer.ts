import {
  EncodeOptions,
  Tokenizer,
  TokenizerJSON,
  appendSpecialTokens,
  checkAppendedSpecials,
  checkTokenId,
  checkFormatVersion,
  isJSONBoolean,
  isJSONStringArray,
  readJSONField,
  readSpecialTokens,
  splitOnSpecialTokens,
} from "./tokenizer";

/**
 * The character tokenizer of char-rnn and nanoGPT's Shakespeare model: the vocabulary is the
 * sorted set of distinct characters of the corpus, and each character is its own token.
 *
 * "Character" means Unicode code point: an emoji outside the Basic Multilingual Plane such as 🐋
 * (two UTF-16 code units in a JS string) is ONE character, not two. Characters are sorted by code
 * point, so "\n" and " " come first, then punctuation, digits, capitals, small letters…
 *
 * nanoGPT's model has no unknown token: a character that was not in the corpus cannot be encoded.
 * By default `encode` throws an error naming the character and its position. With `{ unk: true }`
 * an `<unk>` special token is added and unknown characters map to it.
 *
 * A JS string may hold a lone surrogate (half of a broken emoji); it is kept as a character of
 * its own, so decode(encode(s)) === s for every string whose characters are in the vocabulary.
 */
export interface CharTokenizerOptions {
  /** Map characters missing from the vocabulary to an `<unk>` token instead of throwing (default false). */
  unk?: boolean;
  /** Special tokens to append after the characters (e.g. ["<|endoftext|>"]). */
  specialTokens?: readonly string[];
}

export const CHAR_UNK = "<unk>";

export class CharTokenizer implements Tokenizer {
  readonly type = "char" as const;
  readonly specialTokens: Readonly<Record<string, number>>;
  private readonly ids = new Map<string, number>();
  private readonly names: string[];

  private constructor(
    /** The characters, by id. */
    readonly chars: readonly string[],
    specialTokens: Record<string, number>,
    /** Whether unknown characters map to `<unk>` instead of throwing. */
    readonly unk: boolean,
  ) {
    this.specialTokens = Object.freeze({ ...specialTokens });
    chars.forEach((c, id) => this.ids.set(c, id));
    this.names = [...chars];
    for (const [name, id] of Object.entries(specialTokens)) this.names[id] = name;
  }

  /** Vocabulary = sorted distinct characters of `text`, then `<unk>` (if asked) and other specials. */
  static fromText(text: string, options: CharTokenizerOptions = {}): CharTokenizer {
    const distinct = [...new Set(Array.from(text))];
    distinct.sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    const names = [...(options.unk ? [CHAR_UNK] : []), ...(options.specialTokens ?? [])];
    return new CharTokenizer(distinct, appendSpecialTokens({}, names, distinct.length), options.unk ?? false);
  }

  get vocabSize(): number {
    return this.names.length;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    let position = 0; // in characters (code points) from the start of `text`, for error messages
    for (const part of splitOnSpecialTokens(text, this.specialTokens, options.allowSpecial)) {
      if (typeof part === "number") {
        out.push(part);
        position += Array.from(this.names[part]).length;
        continue;
      }
      for (const ch of part) {
        const id = this.ids.get(ch);
        if (id !== undefined) out.push(id);
        else if (this.unk) out.push(this.specialTokens[CHAR_UNK]);
        else {
          const code = "U+" + ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
          throw new Error(
            `CharTokenizer.encode: character ${JSON.stringify(ch)} (${code}) at position ${position} is not in ` +
              `the vocabulary of ${this.chars.length} characters (build it from a text that contains it, or use { unk: true })`,
          );
        }
        position++;
      }
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    let text = "";
    for (const id of ids) {
      checkTokenId(id, this.vocabSize, "CharTokenizer.decode");
      text += this.names[id];
    }
    return text;
  }

  idToToken(id: number): string {
    checkTokenId(id, this.vocabSize, "CharTokenizer.idToToken");
    return this.names[id];
  }

  tokenToId(token: string): number | undefined {
    return this.specialTokens[token] ?? this.ids.get(token);
  }

  addSpecialTokens(names: readonly string[]): CharTokenizer {
    return new CharTokenizer(this.chars, appendSpecialTokens(this.specialTokens, names, this.vocabSize), this.unk);
  }

  toJSON(): TokenizerJSON {
    return { type: "char", version: 1, unk: this.unk, chars: [...this.chars], specialTokens: { ...this.specialTokens } };
  }

  static fromJSON(obj: Record<string, unknown>, source: string): CharTokenizer {
    checkFormatVersion(obj, source);
    const unk = readJSONField(obj, "unk", source, isJSONBoolean, "true or false");
    const chars = readJSONField(obj, "chars", source, isJSONStringArray, "an array of single characters");
    const seen = new Set<string>();
    chars.forEach((c, i) => {
      if (Array.from(c).length !== 1) throw new Error(`${source}: field "chars[${i}]" must be one character, got ${JSON.stringify(c)}`);
      if (seen.has(c)) throw new Error(`${source}: field "chars[${i}]" repeats ${JSON.stringify(c)}`);
      seen.add(c);
    });
    const specials = readSpecialTokens(obj, source);
    for (const [name, id] of Object.entries(specials)) {
      if (id < chars.length) throw new Error(`${source}: field "specialTokens.${name}" is ${id}, which is a character's id`);
    }
    checkAppendedSpecials(specials, chars.length, source);
    if (unk && !(CHAR_UNK in specials)) throw new Error(`${source}: field "unk" is true but "specialTokens" has no "${CHAR_UNK}"`);
    return new CharTokenizer(chars, specials, unk);
  }
}
