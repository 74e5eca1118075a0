/**
 * Tokenizers turn text into a list of integer ids (and back). Every tokenizer of the course
 * (word, character, byte-level BPE, GPT-2) implements this one interface, so a model, a
 * training loop or a notebook cell never needs to know which one it was given.
 *
 * Special tokens (`<bos>`, `<|endoftext|>`, the chat markers of the fine-tuning chapter…) are
 * whole tokens with names. Later chapters add some to a tokenizer that a model was already
 * trained with, so `addSpecialTokens` only ever APPENDS ids at the end of the vocabulary: every
 * existing id, and therefore every row of a pretrained embedding matrix, keeps its meaning.
 *
 * This file holds what every tokenizer shares (the interface, special tokens, the checks of
 * their JSON); each kind lives in its own file, and tokenizerFiles.ts reads and writes any of them.
 */
export interface Tokenizer {
  /** Which kind of tokenizer this is; also the `type` field of its JSON form. */
  readonly type: TokenizerType;
  /** Number of ids: valid ids are 0 … vocabSize − 1 (special tokens included). */
  readonly vocabSize: number;
  /** Special tokens by name → id. */
  readonly specialTokens: Readonly<Record<string, number>>;
  /** Text → ids. Special-token names in the text are plain text unless `allowSpecial` says otherwise. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Ids → text. Throws on an id outside the vocabulary. */
  decode(ids: readonly number[]): string;
  /** A readable string for one id (a word, a character, GPT-2's "Ġthe", a special token's name). */
  idToToken(id: number): string;
  /** The id of a display string as given by `idToToken`, or undefined. */
  tokenToId(token: string): number | undefined;
  /**
   * A NEW tokenizer with these special tokens appended at ids vocabSize, vocabSize + 1, …
   * (names it already has keep their id and are not added twice). The original is unchanged,
   * so a notebook can keep using the pretraining tokenizer next to the chat one.
   */
  addSpecialTokens(names: readonly string[]): Tokenizer;
  /** Everything needed to rebuild the tokenizer (see `tokenizerFromJSON`). */
  toJSON(): TokenizerJSON;
}

export type TokenizerType = "word" | "char" | "bpe" | "gpt2";

export interface EncodeOptions {
  /**
   * Which special tokens written in the text become their single id, as in tiktoken's
   * `allowedSpecial`: `true` (all), a list of names, or `false`/absent (none: "<bos>" in the text
   * is then just the characters <, b, o, s, >). The default is "none" because text from users must
   * not be able to forge control tokens.
   */
  allowSpecial?: boolean | readonly string[];
  /**
   * Byte-level tokenizers only. A JS string can hold a lone surrogate (half of a character, e.g.
   * after slicing inside an emoji); UTF-8 has no bytes for it. "error" (the default) refuses the
   * text in one line naming where; "replace" encodes it as U+FFFD "�", as TextEncoder and
   * tiktoken do, so it decodes to "�".
   */
  loneSurrogates?: "error" | "replace";
}

/** Index of the first lone surrogate in `text`, or -1 (well-formed UTF-16). */
export function loneSurrogateIndex(text: string): number {
  const m = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(text);
  return m === null ? -1 : m.index;
}

/** The JSON form of any tokenizer: an object with a `type` field and the fields of that type. */
export interface TokenizerJSON {
  type: TokenizerType;
  version: number;
  specialTokens: Record<string, number>;
  [field: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// Special tokens: shared by every tokenizer

/**
 * Cut text into plain-text pieces and special tokens. Returns strings (to be encoded normally)
 * and numbers (ids of special tokens found in the text and allowed). When two allowed names
 * could match at the same place, the longer one wins ("<|im_start|>" before "<|im").
 */
export function splitOnSpecialTokens(
  text: string,
  specialTokens: Readonly<Record<string, number>>,
  allowSpecial: EncodeOptions["allowSpecial"],
): Array<string | number> {
  const allowed = allowedSpecialNames(specialTokens, allowSpecial);
  if (allowed.length === 0) return text === "" ? [] : [text];
  const alternatives = [...allowed].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const re = new RegExp(alternatives.join("|"), "g");
  const parts: Array<string | number> = [];
  let start = 0;
  for (const m of text.matchAll(re)) {
    if (m.index! > start) parts.push(text.slice(start, m.index));
    parts.push(specialTokens[m[0]]);
    start = m.index! + m[0].length;
  }
  if (start < text.length) parts.push(text.slice(start));
  return parts;
}

function allowedSpecialNames(
  specialTokens: Readonly<Record<string, number>>,
  allowSpecial: EncodeOptions["allowSpecial"],
): string[] {
  if (!allowSpecial) return [];
  if (allowSpecial === true) return Object.keys(specialTokens);
  for (const name of allowSpecial) {
    if (!(name in specialTokens)) {
      throw new Error(`encode: allowSpecial names "${name}", which is not a special token of this tokenizer`);
    }
  }
  return [...allowSpecial];
}

/**
 * The special-token table after appending `names` from id `nextId` on. Names already present
 * keep their id; a name listed twice is added once. Empty names are refused (they would match
 * everywhere in the text).
 */
export function appendSpecialTokens(
  existing: Readonly<Record<string, number>>,
  names: readonly string[],
  nextId: number,
): Record<string, number> {
  const result: Record<string, number> = { ...existing };
  for (const name of names) {
    if (typeof name !== "string" || name === "") {
      throw new Error(`addSpecialTokens: special token names must be non-empty strings, got ${JSON.stringify(name)}`);
    }
    if (!(name in result)) result[name] = nextId++;
  }
  return result;
}

function escapeRegExp(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
}

/** Throw a clear error for an id outside 0 … vocabSize − 1 (shared by every `decode`). */
export function checkTokenId(id: number, vocabSize: number, where: string): void {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new Error(`${where}: id ${id} is not in the vocabulary (valid ids are 0…${vocabSize - 1})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading JSON fields with errors that say which field is wrong

export function expectJSONObject(value: unknown, source: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${source}: expected a JSON object with a "type" field, got ${describeJSONValue(value)}`);
  }
  return value as Record<string, unknown>;
}

export function readJSONField<T>(
  obj: Record<string, unknown>,
  field: string,
  source: string,
  check: (v: unknown) => v is T,
  expected: string,
): T {
  const v = obj[field];
  if (!check(v)) throw new Error(`${source}: field "${field}" must be ${expected}, got ${describeJSONValue(v)}`);
  return v;
}

/** The `version` field: all formats are at version 1; a newer file gives a clear error. */
export function checkFormatVersion(obj: Record<string, unknown>, source: string): void {
  const v = obj.version;
  if (v !== 1) throw new Error(`${source}: field "version" must be 1 (the only format this code reads), got ${describeJSONValue(v)}`);
}

/** The `specialTokens` field: an object of name → non-negative integer id, ids all different. */
export function readSpecialTokens(obj: Record<string, unknown>, source: string): Record<string, number> {
  const raw = obj.specialTokens;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${source}: field "specialTokens" must be an object of name → id, got ${describeJSONValue(raw)}`);
  }
  const result: Record<string, number> = {};
  const seen = new Map<number, string>();
  for (const [name, id] of Object.entries(raw as Record<string, unknown>)) {
    if (name === "") throw new Error(`${source}: field "specialTokens" has an empty name`);
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) {
      throw new Error(`${source}: field "specialTokens.${name}" must be a non-negative integer id, got ${describeJSONValue(id)}`);
    }
    if (seen.has(id)) {
      throw new Error(`${source}: field "specialTokens.${name}" reuses id ${id} of "${seen.get(id)}"`);
    }
    seen.set(id, name);
    result[name] = id;
  }
  return result;
}

/**
 * Special tokens beyond a base vocabulary of `baseSize` must be exactly baseSize, baseSize + 1, …
 * (that is how `addSpecialTokens` creates them); returns them in id order.
 */
export function checkAppendedSpecials(
  specials: Record<string, number>,
  baseSize: number,
  source: string,
): string[] {
  const appended = Object.entries(specials)
    .filter(([, id]) => id >= baseSize)
    .sort((a, b) => a[1] - b[1]);
  appended.forEach(([name, id], i) => {
    if (id !== baseSize + i) {
      throw new Error(
        `${source}: field "specialTokens.${name}" has id ${id}; special tokens after the ${baseSize} ` +
          `base ids must be numbered ${baseSize}, ${baseSize + 1}, … without gaps`,
      );
    }
  });
  return appended.map(([name]) => name);
}

export function describeJSONValue(v: unknown): string {
  if (v === undefined) return "nothing (field missing)";
  const s = JSON.stringify(v);
  if (Array.isArray(v) && s.length > 40) return `an array of ${v.length}`;
  return s.length > 40 ? s.slice(0, 37) + "…" : s;
}

export const isJSONBoolean = (v: unknown): v is boolean => typeof v === "boolean";
export const isJSONStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");
