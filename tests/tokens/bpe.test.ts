import assert from "node:assert/strict";
import seedrandom from "seedrandom";
import {
  BPEMergeRecord,
  BPETokenizer,
  BYTE_TO_UNICODE,
  BytePairEncoder,
  GPT2_PATTERN,
  bytesToDisplay,
  displayToBytes,
  trainBPE,
} from "../../lib/tokens/bpe";
import { tokenizerFromJSON } from "../../lib/tokens/tokenizerFiles";
import { mobyDickText } from "../../lib/tokens/corpus";

// ---------------------------------------------------------------------------------------------
// References: the textbook algorithms, slow and obvious, to check the fast ones against.

/** Training by recounting every pair of every pre-token occurrence after each merge. */
function naiveTrain(text: string, numMerges: number, pattern: string | null): Array<[number, number, number]> {
  const pieces = pattern === null ? (text === "" ? [] : [text]) : text.match(new RegExp(pattern, "gu")) ?? [];
  let words = pieces.map((p) => Array.from(Buffer.from(p, "utf8")));
  const merges: Array<[number, number, number]> = [];
  for (let r = 0; r < numMerges; r++) {
    const counts = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) counts.set(`${w[i]},${w[i + 1]}`, (counts.get(`${w[i]},${w[i + 1]}`) ?? 0) + 1);
    let best: [number, number, number] | undefined;
    for (const [k, c] of counts) {
      const [a, b] = k.split(",").map(Number);
      if (!best || c > best[2] || (c === best[2] && (a < best[0] || (a === best[0] && b < best[1])))) best = [a, b, c];
    }
    if (!best) break;
    const [a, b] = best;
    words = words.map((w) => replacePair(w, a, b, 256 + r));
    merges.push(best);
  }
  return merges;
}

/** Encoding by applying every merge, in order, to every pre-token. */
function naiveEncode(text: string, merges: ReadonlyArray<readonly [number, number]>, pattern: string | null): number[] {
  const pieces = pattern === null ? (text === "" ? [] : [text]) : text.match(new RegExp(pattern, "gu")) ?? [];
  return pieces.flatMap((p) => {
    let ids = Array.from(Buffer.from(p, "utf8"));
    merges.forEach(([a, b], r) => (ids = replacePair(ids, a, b, 256 + r)));
    return ids;
  });
}

function replacePair(w: number[], a: number, b: number, id: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < w.length; i++) {
    if (w[i] === a && w[i + 1] === b) {
      out.push(id);
      i++;
    } else out.push(w[i]);
  }
  return out;
}

/** Random text over a small alphabet (many repeats, ties and overlaps like "aaaa"). */
function randomText(rng: () => number, alphabet: string[], maxLen: number): string {
  let s = "";
  const len = Math.floor(rng() * maxLen);
  for (let i = 0; i < len; i++) s += alphabet[Math.floor(rng() * alphabet.length)];
  return s;
}

const SMALL_ALPHABET = ["a", "a", "b", "c", " ", " ", "aa", "ab", ".", "\n", "é", "🐋", "'s", "1"];
const WIDE_ALPHABET = [...SMALL_ALPHABET, "the ", "The", "  ", "\t", "中文", "👍🏽", "e\u0301", "\u00a0", "!?", "42", "\r\n"];

/** JS strings may hold lone surrogates; UTF-8 cannot, so they become U+FFFD (like TextEncoder). */
const wellFormed = (s: string): string =>
  s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");

describe("byte-level BPE: training", () => {
  it('learns the textbook example "aaabdaaabac": aa, then ab, then (aa)(ab)', () => {
    const { tokenizer, merges } = trainBPE("aaabdaaabac", { numMerges: 3, pattern: null });
    assert.deepEqual(
      merges.map((m) => [m.left, m.right, m.id, m.count, m.token]),
      [
        [97, 97, 256, 4, "aa"], // "aaa" holds the pair (a, a) twice: counted naively, as in minbpe
        [97, 98, 257, 2, "ab"], // tie with (aa, a) = (256, 97): the smaller ids win
        [256, 257, 258, 2, "aaab"],
      ],
    );
    assert.deepEqual(tokenizer.encode("aaabdaaabac"), [258, 100, 258, 97, 99]);
    assert.deepEqual(tokenizer.merges, [[97, 97], [97, 98], [256, 257]]);
  });

  it("gives exactly the merges (and counts) of recounting everything after each merge", () => {
    const rng = seedrandom("bpe-train");
    for (let n = 0; n < 120; n++) {
      const text = randomText(rng, n % 2 ? SMALL_ALPHABET : WIDE_ALPHABET, 400);
      const pattern = n % 3 === 0 ? null : GPT2_PATTERN;
      const { merges } = trainBPE(text, { numMerges: 40, pattern });
      const got = merges.map((m) => [m.left, m.right, m.count]);
      assert.deepEqual(got, naiveTrain(text, 40, pattern), `text #${n} ${JSON.stringify(text.slice(0, 60))}`);
    }
  });

  it("gives the same merges as the reference on real text", () => {
    const text = mobyDickText().slice(200000, 206000);
    const { merges } = trainBPE(text, { numMerges: 60 });
    assert.deepEqual(merges.map((m) => [m.left, m.right, m.count]), naiveTrain(text, 60, GPT2_PATTERN));
    assert.deepEqual(merges.slice(0, 3).map((m) => m.token), ["Ġt", "he", "Ġa"]); // " t", "he": English
  });

  it("reaches the requested vocabSize (bytes + merges + specials) and reports merges through onMerge", () => {
    const seen: BPEMergeRecord[] = [];
    const text = mobyDickText().slice(0, 20000);
    const { tokenizer, merges } = trainBPE(text, { vocabSize: 300, specialTokens: ["<|endoftext|>"], onMerge: (m) => seen.push(m) });
    assert.equal(tokenizer.vocabSize, 300);
    assert.equal(merges.length, 43);
    assert.deepEqual(seen, merges);
    assert.deepEqual(merges.map((m) => m.rank), Array.from({ length: 43 }, (_, i) => i));
    assert.deepEqual(tokenizer.specialTokens, { "<|endoftext|>": 299 });
    assert.ok(merges.every((m, i) => i === 0 || m.count <= merges[i - 1].count), "counts never grow");
  });

  it("stops when no pair is left, and honours minFrequency", () => {
    // "ab ab": (a,b); then (ab, " ") and (" ", ab) tie and the smaller left id wins; then one token.
    assert.deepEqual(trainBPE("ab ab", { numMerges: 100, pattern: null }).merges.map((m) => m.token), ["ab", "Ġab", "abĠab"]);
    assert.equal(trainBPE("", { numMerges: 10 }).merges.length, 0);
    assert.equal(trainBPE("ab", { numMerges: 1e9 }).tokenizer.vocabSize, 257); // a huge request is fine
    const { merges } = trainBPE("aaaa bbb", { numMerges: 10, minFrequency: 2, pattern: null });
    assert.deepEqual(merges.map((m) => m.token), ["aa", "bb"]); // then every pair occurs once
    assert.throws(() => trainBPE("x", {}), /trainBPE: give vocabSize \(at least 256 \+ the special tokens\) or numMerges/);
    assert.throws(() => trainBPE("x", { vocabSize: 100 }), /trainBPE: give vocabSize/);
  });
});

describe("byte-level BPE: encoding", () => {
  const corpus = mobyDickText().slice(0, 50000);
  const { tokenizer } = trainBPE(corpus, { numMerges: 400 });

  it("equals applying every merge in order (the definition), on random and real text", () => {
    const rng = seedrandom("bpe-encode");
    for (let n = 0; n < 400; n++) {
      const text = randomText(rng, WIDE_ALPHABET, 60);
      assert.deepEqual(tokenizer.encode(text), naiveEncode(text, tokenizer.merges, GPT2_PATTERN), JSON.stringify(text));
    }
    const real = mobyDickText().slice(100000, 110000);
    assert.deepEqual(tokenizer.encode(real), naiveEncode(real, tokenizer.merges, GPT2_PATTERN));
  });

  it("decode(encode(s)) === s for every well-formed string: emoji, accents, CJK, whitespace runs, empty", () => {
    const rng = seedrandom("bpe-roundtrip");
    const pick = (): string => {
      const r = rng();
      if (r < 0.1) return String.fromCodePoint(0x10000 + Math.floor(rng() * 0xfffff)); // any astral code point
      if (r < 0.2) {
        const cp = Math.floor(rng() * 0xfffe);
        return cp >= 0xd800 && cp <= 0xdfff ? "x" : String.fromCodePoint(cp); // any BMP character
      }
      return WIDE_ALPHABET[Math.floor(rng() * WIDE_ALPHABET.length)];
    };
    for (let n = 0; n < 2000; n++) {
      let s = "";
      const len = Math.floor(rng() * 40);
      for (let i = 0; i < len; i++) s += pick();
      assert.equal(tokenizer.decode(tokenizer.encode(s)), s, JSON.stringify(s));
    }
    assert.deepEqual(tokenizer.encode(""), []);
    assert.equal(tokenizer.decode([]), "");
    for (const s of ["naïve café", "東京タワー", "👨‍👩‍👧 🇫🇷", "   \n\n\t\t  x  ", "\u0000\u0001\u007f"]) {
      assert.equal(tokenizer.decode(tokenizer.encode(s)), s);
    }
  });

  it("refuses a lone surrogate in one line naming where, or, when asked, encodes it as U+FFFD (its UTF-8 stand-in)", () => {
    const replace = { loneSurrogates: "replace" } as const;
    for (const s of ["a\uD800b", "\uDC00", "🐋".slice(0, 1), "x" + "🐋".slice(1)]) {
      assert.deepEqual(tokenizer.encode(s, replace), tokenizer.encode(wellFormed(s)));
      assert.equal(tokenizer.decode(tokenizer.encode(s, replace)), wellFormed(s));
      assert.throws(() => tokenizer.encode(s), /lone surrogate/);
    }
    assert.equal(tokenizer.decode(tokenizer.encode("a\uD800b", replace)), "a\uFFFDb");
    assert.throws(
      () => tokenizer.encode("ok 🐋".slice(0, 4)),
      (e: Error) => e.message === 'BPETokenizer.encode: the text has a lone surrogate U+D83D at index 3 (half of a character, as when a string is cut inside an emoji), which UTF-8 cannot encode; expected well-formed text, or { loneSurrogates: "replace" } to encode it as U+FFFD',
    );
    assert.deepEqual(tokenizer.encode("ok 🐋"), tokenizer.encode("ok 🐋", replace), "a whole surrogate pair is a character");
  });

  it("decodes a character cut between ids as U+FFFD, and decodeBytes gives the exact bytes", () => {
    const ids = tokenizer.encode("🐋"); // no merge covers these 4 bytes in English text
    assert.deepEqual(ids, [0xf0, 0x9f, 0x90, 0x8b]);
    assert.equal(tokenizer.decode(ids.slice(0, 2)), "\uFFFD");
    assert.deepEqual(Array.from(tokenizer.decodeBytes(ids.slice(0, 2))), [0xf0, 0x9f]);
    assert.throws(() => tokenizer.decode([tokenizer.vocabSize]), /BPETokenizer\.decode: id 656 is not in the vocabulary/);
  });

  it("without pre-tokenisation, merges may cross word boundaries", () => {
    const text = "the cat the hat the mat ".repeat(20);
    const plain = trainBPE(text, { numMerges: 20, pattern: null }).tokenizer;
    const pre = trainBPE(text, { numMerges: 20 }).tokenizer;
    const vocab = (t: BPETokenizer) => Array.from({ length: t.vocabSize }, (_, id) => t.idToToken(id));
    // A letter followed by a space ("theĠ") only exists when merges may cross word boundaries.
    assert.ok(vocab(plain).some((tok) => /[a-z]Ġ/.test(tok)));
    assert.ok(!vocab(pre).some((tok) => /[a-z]Ġ/.test(tok)));
    assert.deepEqual(plain.encode("the cat ").map((id) => plain.idToToken(id)), ["theĠ", "c", "atĠ"]);
    assert.deepEqual(pre.encode("the cat ").map((id) => pre.idToToken(id)), ["the", "Ġcat", "Ġ"]);
    assert.deepEqual(pre.preTokenize("the cat "), ["the", " cat", " "]);
    assert.deepEqual(plain.preTokenize("the cat "), ["the cat "]);
  });
});

describe("byte-level BPE: display, special tokens, JSON", () => {
  const { tokenizer } = trainBPE(mobyDickText().slice(0, 20000), { numMerges: 100, specialTokens: ["<|endoftext|>"] });

  it("uses GPT-2's byte → printable character table", () => {
    assert.equal(new Set(BYTE_TO_UNICODE).size, 256);
    assert.equal(BYTE_TO_UNICODE[0x20], "Ġ");
    assert.equal(BYTE_TO_UNICODE[0x0a], "Ċ");
    assert.equal(BYTE_TO_UNICODE[0x41], "A");
    assert.equal(BYTE_TO_UNICODE[0xe9], "é");
    assert.equal(BYTE_TO_UNICODE[0], "Ā");
    assert.equal(bytesToDisplay(Buffer.from(" the\n")), "ĠtheĊ");
    assert.deepEqual(Array.from(displayToBytes("ĠtheĊ")!), Array.from(Buffer.from(" the\n")));
    assert.equal(displayToBytes("🐋"), undefined);
  });

  it("idToToken and tokenToId are inverse over the whole vocabulary", () => {
    for (let id = 0; id < tokenizer.vocabSize; id++) assert.equal(tokenizer.tokenToId(tokenizer.idToToken(id)), id);
    assert.equal(tokenizer.idToToken(tokenizer.vocabSize - 1), "<|endoftext|>");
    assert.deepEqual(tokenizer.encode(" the").map((id) => tokenizer.idToToken(id)), ["Ġthe"]);
  });

  it("encodes special tokens atomically only when allowed", () => {
    const eot = tokenizer.specialTokens["<|endoftext|>"];
    const withSpecial = tokenizer.encode("a<|endoftext|>b", { allowSpecial: true });
    assert.deepEqual(withSpecial, [...tokenizer.encode("a"), eot, ...tokenizer.encode("b")]);
    const plain = tokenizer.encode("a<|endoftext|>b");
    assert.ok(!plain.includes(eot));
    assert.equal(tokenizer.decode(plain), "a<|endoftext|>b");
    assert.equal(tokenizer.decode(withSpecial), "a<|endoftext|>b");
  });

  it("appends special tokens without changing any existing id", () => {
    const chat = tokenizer.addSpecialTokens(["<|im_start|>", "<|im_end|>"]);
    assert.equal(chat.vocabSize, tokenizer.vocabSize + 2);
    assert.equal(chat.specialTokens["<|im_start|>"], tokenizer.vocabSize);
    const text = "Call me Ishmael.<|endoftext|>";
    assert.deepEqual(chat.encode(text, { allowSpecial: true }), tokenizer.encode(text, { allowSpecial: true }));
    // The longest name wins where names overlap.
    const overlap = chat.addSpecialTokens(["<|im"]);
    assert.deepEqual(overlap.encode("<|im_start|><|im", { allowSpecial: true }), [chat.specialTokens["<|im_start|>"], chat.vocabSize]);
    assert.throws(() => chat.encode("x", { allowSpecial: ["<bos>"] }), /allowSpecial names "<bos>", which is not a special token/);
    assert.throws(() => chat.addSpecialTokens([""]), /special token names must be non-empty strings/);
  });

  it("round-trips through JSON, and names the field of broken JSON", () => {
    const json = JSON.parse(JSON.stringify(tokenizer));
    assert.equal(json.type, "bpe");
    assert.equal(json.pattern, GPT2_PATTERN);
    const back = tokenizerFromJSON(json) as BPETokenizer;
    assert.deepEqual(back.toJSON(), tokenizer.toJSON());
    const sample = mobyDickText().slice(50000, 52000);
    assert.deepEqual(back.encode(sample), tokenizer.encode(sample));

    const merges = [...json.merges];
    merges[3] = [5, 400];
    assert.throws(() => tokenizerFromJSON({ ...json, merges }, "bpe.json"), /bpe\.json: field "merges\[3\]" must be a pair of ids below 259, got \[5,400\]/);
    merges[3] = json.merges[1];
    assert.throws(() => tokenizerFromJSON({ ...json, merges }, "bpe.json"), /bpe\.json: field "merges\[3\]" repeats merges\[1\]/);
    assert.throws(() => tokenizerFromJSON({ ...json, pattern: "(" }, "bpe.json"), /bpe\.json: field "pattern" must be null or the exact text of a known split pattern \(gpt2\), got "\("/);
    assert.equal((tokenizerFromJSON({ ...json, pattern: null }) as BPETokenizer).encoder.pattern, null);
    assert.throws(() => new BytePairEncoder([], "("), /field "pattern" is not a valid regular expression/, "code may pass its own pattern; it is still checked");
    assert.throws(() => tokenizerFromJSON({ ...json, merges: "x" }, "bpe.json"), /bpe\.json: field "merges" must be an array/);
    assert.throws(
      () => tokenizerFromJSON({ ...json, specialTokens: { "<|endoftext|>": 3 } }, "bpe.json"),
      /bpe\.json: field "specialTokens\.<\|endoftext\|>" is 3, which is a byte\/merge id/,
    );
  });
  it("refuses a file whose pattern could backtrack for hours, or whose merges would take gigabytes, before running or allocating them", () => {
    const json = JSON.parse(JSON.stringify(tokenizer));
    const start = Date.now();
    // A classic catastrophic pattern: on "aaaa…b" it backtracks exponentially. The file is refused, nothing is run.
    assert.throws(() => tokenizerFromJSON({ ...json, pattern: "(a+)+$" }, "evil.json"), /^Error: evil\.json: field "pattern" must be null or the exact text of a known split pattern/);
    // Every merge doubles the previous token: 40 merges of a 1-byte token would be 2^40 bytes.
    const doubling = Array.from({ length: 40 }, (_, i) => (i === 0 ? [97, 97] : [255 + i, 255 + i]));
    assert.throws(() => tokenizerFromJSON({ ...json, merges: doubling, specialTokens: {} }, "bomb.json"),
      /^Error: bomb\.json: field "merges\[\d+\]": the vocabulary's tokens would take more than 64 MB together \(token \d+ alone is \d+ bytes\)$/);
    assert.ok(Date.now() - start < 5000, "refused at once");
  });
});
