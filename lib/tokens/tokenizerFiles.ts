/**
 * Tokenizers to and from files: the JSON form of any of the course's tokenizers, rebuilt by its
 * `type` ("word", "char", "bpe", "gpt2"). Apart from tokenizer.ts because it needs every kind,
 * while each kind needs tokenizer.ts's shared parts.
 */
import * as fs from "fs";
import { writeFileAtomic } from "../core/atomic";
import { BPETokenizer } from "./bpe";
import { CharTokenizer } from "./charTokenizer";
import { gpt2Tokenizer } from "./gpt2Tokenizer";
import {
  checkAppendedSpecials, checkFormatVersion, expectJSONObject, readSpecialTokens, Tokenizer, TokenizerJSON,
} from "./tokenizer";
import { WordTokenizer } from "./wordTokenizer";

/** The JSON-ready form of a tokenizer (same as `tokenizer.toJSON()`). */
export function tokenizerToJSON(tokenizer: Tokenizer): TokenizerJSON {
  return tokenizer.toJSON();
}

/**
 * Rebuild a tokenizer from its JSON form, dispatching on `type`. `source` names where the JSON
 * came from, for error messages ("model/tokenizer.json: field "merges[3]" …").
 */
export function tokenizerFromJSON(json: unknown, source = "tokenizer JSON"): Tokenizer {
  const obj = expectJSONObject(json, source);
  const type = obj.type;
  switch (type) {
    case "word":
      return WordTokenizer.fromJSON(obj, source);
    case "char":
      return CharTokenizer.fromJSON(obj, source);
    case "bpe":
      return BPETokenizer.fromJSON(obj, source);
    case "gpt2": {
      checkFormatVersion(obj, source);
      const specials = readSpecialTokens(obj, source);
      const base = gpt2Tokenizer();
      // GPT-2's own <|endoftext|> is 50256; anything added later comes after, without gaps.
      const added = checkAppendedSpecials(specials, base.vocabSize, source);
      const t = base.addSpecialTokens(added);
      checkSameSpecials(t.specialTokens, specials, source);
      return t;
    }
    default:
      throw new Error(
        `${source}: field "type" is ${JSON.stringify(type)}; expected one of "word", "char", "bpe", "gpt2"`,
      );
  }
}

/** Write a tokenizer as JSON (atomically: a crash never leaves half a file). */
export function saveTokenizer(tokenizer: Tokenizer, file: string): void {
  writeFileAtomic(file, JSON.stringify(tokenizer.toJSON()) + "\n");
}

/** Read a tokenizer written by `saveTokenizer`; errors name the file (and the field at fault). */
export function loadTokenizer(file: string): Tokenizer {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : String(code ?? err);
    throw new Error(`${file}: cannot read tokenizer file (${why})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message.replace(/\r?\n/g, "\\n")})`);
  }
  return tokenizerFromJSON(json, file);
}

function checkSameSpecials(got: Readonly<Record<string, number>>, want: Record<string, number>, source: string): void {
  for (const [name, id] of Object.entries(want)) {
    if (got[name] !== id) {
      throw new Error(`${source}: field "specialTokens.${name}" is ${id} but the tokenizer numbers it ${got[name]}`);
    }
  }
}
