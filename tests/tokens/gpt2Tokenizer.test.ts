import assert from "node:assert/strict";
import seedrandom from "seedrandom";
import { getEncoding } from "js-tiktoken";
import { GPT2_PATTERN } from "../../lib/tokens/bpe";
import { GPT2_END_OF_TEXT_ID, gpt2Tokenizer, loadGPT2Ranks } from "../../lib/tokens/gpt2Tokenizer";
import { tokenizerFromJSON } from "../../lib/tokens/tokenizerFiles";
import { mobyDickText } from "../../lib/tokens/corpus";

// js-tiktoken is the reference: our encoder (lib/tokens/bpe.ts, fed with merges recovered from the
// ranks) must give exactly its ids.
const reference = getEncoding("gpt2");
const refPlain = (s: string): number[] => reference.encode(s, [], []); // special names as plain text
const refAll = (s: string): number[] => reference.encode(s, "all");

/** JS strings may hold lone surrogates; UTF-8 cannot, so they become U+FFFD. */
const wellFormed = (s: string): string =>
  s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");

// --- a seeded generator of awkward strings ------------------------------------------------------
const WORDS = ["the", "The", "THE", "hello", "world", "Ishmael", "whale", "I", "a", "GPT", "tokenizer", "don", "can",
  "naïve", "café", "Straße", "résumé", "Ærøskøbing", "東京", "中文", "日本語です", "한국어", "Привет", "مرحبا", "שלום", "ελληνικά", "ﬁne"];
const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "’s", "'", "''", "'x"];
const PUNCT = [".", ",", "!", "?", ";", ":", "-", "--", "—", "...", "(", ")", '"', "`", "@", "#", "$", "%", "&", "*", "/",
  "\\", "[", "]", "{", "}", "<", ">", "|", "~", "^", "_", "+", "=", "¿", "«»", "…"];
const SPACES = [" ", " ", " ", "  ", "   ", "\n", "\n\n", "\t", "\t\t", " \n", "\r\n", "\u00a0", "\u3000", "\u2003", " \t ", "\v", "\f", "\u2028"];
const EMOJI = ["🐋", "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "🤖", "e\u0301", "a\u0308", "\u200b", "\u0000", "\u007f"];
const SPECIAL_BITS = ["<|endoftext|>", "<|endoftext", "endoftext|>", "<|"];

function generator(seed: string): () => string {
  const rng = seedrandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
  const piece = (): string => {
    const r = rng();
    if (r < 0.3) return pick(WORDS);
    if (r < 0.4) return pick(CONTRACTIONS);
    if (r < 0.5) return String(Math.floor(rng() * 10 ** (1 + Math.floor(rng() * 8)))) + (rng() < 0.2 ? ".5" : "");
    if (r < 0.62) return pick(PUNCT);
    if (r < 0.8) return pick(SPACES);
    if (r < 0.88) return pick(EMOJI);
    if (r < 0.9) return pick(SPECIAL_BITS);
    if (r < 0.95) return String.fromCodePoint(Math.floor(rng() * 0xd7ff)); // any BMP character below the surrogates
    return String.fromCodePoint(0x10000 + Math.floor(rng() * 0x2ffff)); // astral planes 1–3
  };
  return () => {
    let s = "";
    const n = Math.floor(rng() * 25);
    for (let i = 0; i < n; i++) s += piece() + (rng() < 0.5 ? " " : "");
    return s;
  };
}

describe("GPT-2 tokenizer (own BPE encoder vs js-tiktoken)", function () {
  this.timeout(120000);
  const gpt2 = gpt2Tokenizer();

  it("uses GPT-2's pre-tokenisation regex and vocabulary size", () => {
    assert.equal(GPT2_PATTERN, loadGPT2Ranks().pat_str);
    assert.equal(gpt2.vocabSize, 50257);
    assert.deepEqual(gpt2.specialTokens, { "<|endoftext|>": 50256 });
    assert.equal(GPT2_END_OF_TEXT_ID, 50256);
    assert.equal(gpt2.merges.length, 50000);
    assert.equal(gpt2Tokenizer(), gpt2, "built once and shared");
  });

  it("gives GPT-2's known ids", () => {
    assert.deepEqual(gpt2.encode("Hello world"), [15496, 995]);
    assert.deepEqual(gpt2.encode(" the"), [262]);
    assert.equal(gpt2.idToToken(262), "Ġthe");
    assert.equal(gpt2.tokenToId("Ġthe"), 262);
    assert.equal(gpt2.idToToken(198), "Ċ");
    assert.deepEqual(gpt2.encode("<|endoftext|>", { allowSpecial: true }), [50256]);
    assert.deepEqual(gpt2.encode("I'll"), [40, 1183]);
    // \s+(?!\S): a run of spaces leaves its last space to the next word.
    assert.deepEqual(gpt2.preTokenize("     x"), ["    ", " x"]);
    assert.deepEqual(gpt2.preTokenize("it's 2024!\n\n"), ["it", "'s", " 2024", "!", "\n\n"]);
  });

  it("matches js-tiktoken on 5000 generated strings, and decodes back to the input", () => {
    const next = generator("gpt2-property");
    let checked = 0;
    let tokens = 0;
    for (let n = 0; n < 5000; n++) {
      const s = next();
      const ids = gpt2.encode(s);
      assert.deepEqual(ids, refPlain(s), `string #${n}: ${JSON.stringify(s)}`);
      assert.deepEqual(gpt2.encode(s, { allowSpecial: true }), refAll(s), `string #${n} with specials: ${JSON.stringify(s)}`);
      assert.equal(gpt2.decode(ids), s, `decode #${n}: ${JSON.stringify(s)}`);
      assert.equal(gpt2.decode(ids), reference.decode(ids));
      checked++;
      tokens += ids.length;
    }
    assert.equal(checked, 5000);
    assert.ok(tokens > 100000, `a meaningful amount of text (${tokens} tokens)`);
  });

  it("matches js-tiktoken on strings with lone surrogates when asked to replace them (both encode them as U+FFFD); refuses them by default", () => {
    const next = generator("gpt2-surrogates");
    const rng = seedrandom("where");
    for (let n = 0; n < 500; n++) {
      let s = next();
      const at = Math.floor(rng() * (s.length + 1));
      s = s.slice(0, at) + (rng() < 0.5 ? "\uD83D" : "\uDC0B") + s.slice(at);
      assert.deepEqual(gpt2.encode(s, { loneSurrogates: "replace" }), refPlain(s), JSON.stringify(s));
      assert.equal(gpt2.decode(gpt2.encode(s, { loneSurrogates: "replace" })), wellFormed(s));
      assert.throws(() => gpt2.encode(s), /^Error: GPT-2 tokenizer\.encode: the text has a lone surrogate U\+D[89A-F][0-9A-F]{2} at index \d+ /);
    }
  });

  it("matches js-tiktoken on 300 000 characters of Moby-Dick", () => {
    const text = mobyDickText().slice(0, 300000);
    const ids = gpt2.encode(text);
    assert.deepEqual(ids, refPlain(text));
    assert.equal(gpt2.decode(ids), text);
  });

  it("adds chat tokens after <|endoftext|> without touching GPT-2's ids, and serialises compactly", () => {
    const chat = gpt2.addSpecialTokens(["<|im_start|>", "<|im_end|>"]);
    assert.deepEqual(chat.specialTokens, { "<|endoftext|>": 50256, "<|im_start|>": 50257, "<|im_end|>": 50258 });
    assert.equal(chat.vocabSize, 50259);
    assert.equal(gpt2.vocabSize, 50257, "GPT-2 itself is unchanged");
    const text = "<|im_start|>user\nHi there<|im_end|>";
    assert.deepEqual(chat.encode(text, { allowSpecial: true }), [50257, ...gpt2.encode("user\nHi there"), 50258]);
    assert.deepEqual(chat.encode(text), gpt2.encode(text));

    const json = JSON.parse(JSON.stringify(chat));
    assert.deepEqual(json, { type: "gpt2", version: 1, specialTokens: chat.specialTokens });
    const back = tokenizerFromJSON(json);
    assert.deepEqual(back.encode(text, { allowSpecial: true }), chat.encode(text, { allowSpecial: true }));
    assert.throws(
      () => tokenizerFromJSON({ ...json, specialTokens: { "<|endoftext|>": 50256, "<|im_end|>": 50260 } }, "chat.json"),
      /chat\.json: field "specialTokens\.<\|im_end\|>" has id 50260; special tokens after the 50257 base ids must be numbered 50257/,
    );
    assert.throws(
      () => tokenizerFromJSON({ ...json, specialTokens: { "<|endoftext|>": 7 } }, "chat.json"),
      /chat\.json: field "specialTokens\.<\|endoftext\|>" is 7 but the tokenizer numbers it 50256/,
    );
  });
});
