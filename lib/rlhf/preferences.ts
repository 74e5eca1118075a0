/**
 * Human (or simulated) preferences: the data RLHF learns from.
 *
 * For one prompt the model gives K responses; someone ranks them, best first. One ranking
 * of K responses says more than one comparison: it implies K·(K−1)/2 pairs "i beats j"
 * (InstructGPT, Ouyang et al. 2022, §3.5: all pairs of a ranking train the reward model).
 *
 * The preference file is JSONL, one record per line:
 *   {"prompt": "Who is Ahab?", "responses": ["The captain.", "A whale."], "ranking": [0, 1],
 *    "rankedBy": "simulated:correct>ended>concise>polite-v1", "id": "p17", "time": "2026-…"}
 * `ranking` lists indices of `responses`, best first (a permutation of 0..K−1).
 * `rankedBy` is "simulated:<rule name>" (lib/rlhf/labeller) or "human:<name>" (npm run rank), so
 * both ways of labelling write the same file and can be told apart.
 *
 * Appends survive a kill: a ranking session can be interrupted (Ctrl-C, a crash, a power
 * cut) at any moment. Each record is written as ONE complete line by ONE write() on a file
 * opened with O_APPEND, then fsync'd. If the process dies in the middle, at worst the file
 * ends with a partial line without its "\n" (a torn write): readers ignore it (and count
 * it), and the next append first cuts it off, so the new record never glues onto garbage.
 * A last line without "\n" that IS a valid record (a file edited by hand, written by another
 * tool) is not torn: readers keep it, and the next append ends it with "\n" before adding.
 * Every record that was complete before stays readable.
 */
import * as fs from "fs";
import * as path from "path";
import { readRegularFile } from "../core/atomic";

export interface PreferenceRecord {
  /** The prompt (the user's turn, as shown to the ranker). */
  prompt: string;
  /** The K ≥ 2 responses that were compared. */
  responses: string[];
  /** Indices of `responses`, best first: a permutation of 0..K−1. */
  ranking: number[];
  /** Who ranked: "simulated:<rule name>" or "human:<name>". */
  rankedBy: string;
  /** Optional identifier (e.g. the SFT example the prompt came from). */
  id?: string;
  /** Optional ISO-8601 time of the ranking. */
  time?: string;
  /** Optional reference answer of the prompt (for the simulated labeller's correctness rule). */
  reference?: string;
}

/** One comparison implied by a ranking: response `chosen` was preferred to `rejected`. */
export interface PreferencePair {
  chosen: number;
  rejected: number;
}

const RANKED_BY = /^(simulated|human):\S.*$/;

/**
 * Check a parsed value is a PreferenceRecord; throws a one-line error starting with `where`
 * (e.g. "prefs.jsonl:12") and naming the field and what was expected.
 */
export function validatePreference(value: unknown, where = "preference"): PreferenceRecord {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${where}: expected a JSON object {prompt, responses, ranking, rankedBy}, got ${describe(value)}`);
  }
  const r = value as Record<string, unknown>;
  if (typeof r.prompt !== "string") throw new Error(`${where}: field "prompt" must be a string, got ${describe(r.prompt)}`);
  if (!Array.isArray(r.responses) || r.responses.length < 2) {
    throw new Error(`${where}: field "responses" must be an array of at least 2 strings, got ${describe(r.responses)}`);
  }
  r.responses.forEach((s, i) => {
    if (typeof s !== "string") throw new Error(`${where}: field "responses[${i}]" must be a string, got ${describe(s)}`);
  });
  const k = r.responses.length;
  if (!Array.isArray(r.ranking) || r.ranking.length !== k) {
    throw new Error(`${where}: field "ranking" must be an array of ${k} indices (one per response, best first), got ${describe(r.ranking)}`);
  }
  const seen = new Set<number>();
  r.ranking.forEach((x, i) => {
    if (typeof x !== "number" || !Number.isInteger(x) || x < 0 || x >= k) {
      throw new Error(`${where}: field "ranking[${i}]" must be an integer in 0..${k - 1}, got ${describe(x)}`);
    }
    if (seen.has(x)) throw new Error(`${where}: field "ranking" must list each response once, ${x} appears twice`);
    seen.add(x);
  });
  if (typeof r.rankedBy !== "string" || !RANKED_BY.test(r.rankedBy)) {
    throw new Error(`${where}: field "rankedBy" must be "simulated:<rule>" or "human:<name>", got ${describe(r.rankedBy)}`);
  }
  for (const key of ["id", "time", "reference"] as const) {
    if (r[key] !== undefined && typeof r[key] !== "string") {
      throw new Error(`${where}: field "${key}" must be a string when present, got ${describe(r[key])}`);
    }
  }
  return r as unknown as PreferenceRecord;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Every (chosen, rejected) pair implied by a ranking, best first: K·(K−1)/2 pairs, in the
 * order (r0 > r1), (r0 > r2), …, (r1 > r2), … e.g. [2, 0, 1] → 2>0, 2>1, 0>1.
 */
export function rankingToPairs(ranking: readonly number[]): PreferencePair[] {
  const pairs: PreferencePair[] = [];
  for (let i = 0; i < ranking.length; i++) {
    for (let j = i + 1; j < ranking.length; j++) pairs.push({ chosen: ranking[i], rejected: ranking[j] });
  }
  return pairs;
}

/** A comparison as text, ready to be tokenized for the reward model or DPO. */
export interface TextPair {
  prompt: string;
  chosen: string;
  rejected: string;
  /** Index of the record it came from (to split train/val by prompt, not by pair). */
  record: number;
}

/** All pairs of all records, as texts. */
export function preferencePairs(records: readonly PreferenceRecord[]): TextPair[] {
  const out: TextPair[] = [];
  records.forEach((rec, record) => {
    for (const { chosen, rejected } of rankingToPairs(rec.ranking)) {
      out.push({ prompt: rec.prompt, chosen: rec.responses[chosen], rejected: rec.responses[rejected], record });
    }
  });
  return out;
}

export interface PreferenceFile {
  records: PreferenceRecord[];
  /** A final partial line (no "\n": a write interrupted by a kill) that was ignored, or null. */
  tornTail: string | null;
  /** Human-readable warnings (the torn tail), one line each. */
  warnings: string[];
}

/**
 * Read a preference file. A missing file is empty. A complete line that is not a valid
 * record throws (file:line and the field); a final line without "\n" is a torn write: it is
 * ignored and reported in `tornTail`/`warnings`, never an error.
 */
export function readPreferences(file: string): PreferenceFile {
  if (!fs.existsSync(file)) return { records: [], tornTail: null, warnings: [] };
  const text = readRegularFile(file, "a JSONL file of rankings").toString("utf8");
  const lines = text.split("\n");
  // After split, the last element is what follows the last "\n": "" for a well-formed file.
  const tail = lines.pop() as string;
  const records: PreferenceRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
    }
    records.push(validatePreference(value, where));
  });
  // A last line without "\n" is torn only if it is not a record (a kill mid-write leaves a prefix).
  const tailRecord = tail.trim() === "" ? undefined : asRecord(tail);
  if (tailRecord !== undefined) records.push(tailRecord);
  const torn = tail.length > 0 && tailRecord === undefined ? tail : null;
  const warnings = torn === null ? [] : [`${file}:${lines.length + 1}: ignored an incomplete last line of ${Buffer.byteLength(torn)} bytes (an interrupted append); the next append removes it`];
  return { records, tornTail: torn, warnings };
}

/** The record a line holds, or undefined when it is not valid JSON or not a valid record. */
function asRecord(line: string): PreferenceRecord | undefined {
  try {
    return validatePreference(JSON.parse(line), "");
  } catch {
    return undefined;
  }
}

/**
 * Cut a torn final line (bytes after the last "\n" that are not a valid record) off the file;
 * a final line that is a valid record only gets its missing "\n". Returns the number of bytes
 * removed (0 when the file ends with "\n" or a complete record, is empty or does not exist).
 */
export function repairPreferenceFile(file: string): number {
  if (!fs.existsSync(file)) return 0;
  const size = fs.statSync(file).size;
  if (size === 0) return 0;
  const fd = fs.openSync(file, "r+");
  try {
    // Scan backwards in chunks for the last "\n"; records are short, so one chunk usually does.
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = fs.readSync(fd, chunk, 0, end - start, start);
      const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (nl >= 0) return cutTail(fd, start + nl + 1, size);
      end = start;
    }
    return cutTail(fd, 0, size); // no "\n" at all: the whole file is one line
  } finally {
    fs.closeSync(fd);
  }
}

/** Bytes [keep, size) of an open file: kept with a "\n" added if they are a record, else cut off. The bytes removed. */
function cutTail(fd: number, keep: number, size: number): number {
  if (keep >= size) return 0;
  const tail = Buffer.alloc(size - keep);
  fs.readSync(fd, tail, 0, tail.length, keep);
  if (asRecord(tail.toString("utf8")) !== undefined) {
    fs.writeSync(fd, "\n", size);
    fs.fsyncSync(fd);
    return 0;
  }
  fs.ftruncateSync(fd, keep);
  fs.fsyncSync(fd);
  return size - keep;
}

/**
 * Append one record (validated first) as one line: repair a torn tail, then ONE write of the
 * whole line on an O_APPEND descriptor, then fsync. Returns the bytes of torn tail removed.
 * Meant for one writer at a time (a ranking session), not for concurrent writers.
 */
export function appendPreference(file: string, record: PreferenceRecord): number {
  validatePreference(record, `appendPreference(${file})`);
  const line = Buffer.from(JSON.stringify(record) + "\n", "utf8");
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const removed = repairPreferenceFile(file);
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o644);
  try {
    let off = 0;
    // writeSync may write fewer bytes than asked (rare on files); finish the line.
    while (off < line.length) off += fs.writeSync(fd, line, off, line.length - off);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return removed;
}
