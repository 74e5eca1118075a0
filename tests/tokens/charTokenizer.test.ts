import assert from "node:assert/strict";
import seedrandom from "seedrandom";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { tokenizerFromJSON } from "../../lib/tokens/tokenizerFiles";

describe("CharTokenizer", () => {
  it("uses the sorted distinct characters of the corpus", () => {
    const t = CharTokenizer.fromText("hello world");
    assert.deepEqual(t.chars, [" ", "d", "e", "h", "l", "o", "r", "w"]);
    assert.equal(t.vocabSize, 8);
    assert.deepEqual(t.encode("hello"), [3, 2, 4, 4, 5]);
    assert.equal(t.decode([7, 5, 6, 4, 1]), "world");
  });

  it("treats an astral character (emoji) as one character and sorts by code point, not UTF-16 unit", () => {
    // "\uFFFD" is U+FFFD; 🐋 is U+1F40B but starts with the UTF-16 unit 0xD83D < 0xFFFD.
    const t = CharTokenizer.fromText("z🐋\uFFFDa🐋");
    assert.deepEqual(t.chars, ["a", "z", "\uFFFD", "🐋"]);
    assert.deepEqual(t.encode("🐋a"), [3, 0]);
    assert.equal(t.idToToken(3), "🐋");
    assert.equal(t.tokenToId("🐋"), 3);
  });

  it("decode(encode(s)) === s for random strings over the vocabulary, lone surrogates included", () => {
    // A lone low surrogate anywhere; a lone high surrogate only at the end (before a low one it
    // would form a real astral character, which is a different character).
    const alphabet = Array.from("ab \n\tÉé中😀👍🏽").concat(["\uDC00"]);
    const t = CharTokenizer.fromText(alphabet.join("") + "\uD800");
    assert.equal(t.vocabSize, alphabet.length + 1);
    const rng = seedrandom("char");
    for (let n = 0; n < 500; n++) {
      let s = "";
      const len = Math.floor(rng() * 30);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rng() * alphabet.length)];
      if (rng() < 0.2) s += "\uD800";
      const ids = t.encode(s);
      assert.equal(t.decode(ids), s);
      assert.equal(ids.length, Array.from(s).length);
    }
  });

  it("by default refuses unknown characters, naming the character and its position", () => {
    const t = CharTokenizer.fromText("abc");
    assert.throws(
      () => t.encode("ab🐋c"),
      /^Error: CharTokenizer\.encode: character "🐋" \(U\+1F40B\) at position 2 is not in the vocabulary of 3 characters/,
    );
  });

  it("maps unknown characters to <unk> when asked", () => {
    const t = CharTokenizer.fromText("abc", { unk: true });
    assert.deepEqual(t.specialTokens, { "<unk>": 3 });
    assert.deepEqual(t.encode("a🐋d"), [0, 3, 3]);
    assert.equal(t.decode([0, 3]), "a<unk>");
  });

  it("appends special tokens after the characters and encodes them only when allowed", () => {
    const t = CharTokenizer.fromText("ab<>", { specialTokens: ["<|endoftext|>"] });
    assert.equal(t.specialTokens["<|endoftext|>"], 4);
    assert.deepEqual(t.encode("a<|endoftext|>b", { allowSpecial: true }), [2, 4, 3]);
    assert.throws(() => t.encode("a<|endoftext|>b"), /character "\|" \(U\+007C\) at position 2/);
    const more = t.addSpecialTokens(["<pad>"]);
    assert.deepEqual(more.specialTokens, { "<|endoftext|>": 4, "<pad>": 5 });
    assert.deepEqual(more.encode("ab"), t.encode("ab"));
    assert.equal(t.vocabSize, 5);
    assert.equal(more.vocabSize, 6);
  });

  it("round-trips through JSON and rejects broken JSON with the field named", () => {
    const t = CharTokenizer.fromText("hello 🐋", { unk: true, specialTokens: ["<eos>"] });
    const back = tokenizerFromJSON(JSON.parse(JSON.stringify(t)));
    assert.deepEqual(back.toJSON(), t.toJSON());
    assert.deepEqual(back.encode("hole 🐋!<eos>", { allowSpecial: true }), t.encode("hole 🐋!<eos>", { allowSpecial: true }));
    const json = t.toJSON();
    assert.throws(() => tokenizerFromJSON({ ...json, chars: ["a", "bc"] }, "c.json"), /c\.json: field "chars\[1\]" must be one character, got "bc"/);
    assert.throws(() => tokenizerFromJSON({ ...json, chars: ["a", "a"] }, "c.json"), /c\.json: field "chars\[1\]" repeats "a"/);
    assert.throws(
      () => tokenizerFromJSON({ ...json, specialTokens: { "<unk>": 6, "<eos>": 8 } }, "c.json"),
      /c\.json: field "specialTokens\.<eos>" has id 8; special tokens after the 6 base ids must be numbered 6, 7, …/,
    );
    assert.throws(() => tokenizerFromJSON({ ...json, version: 2 }, "c.json"), /c\.json: field "version" must be 1/);
  });
});
