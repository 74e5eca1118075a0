import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Tokenizer, appendSpecialTokens, splitOnSpecialTokens } from "../../lib/tokens/tokenizer";
import { loadTokenizer, saveTokenizer, tokenizerFromJSON, tokenizerToJSON } from "../../lib/tokens/tokenizerFiles";
import { WordTokenizer } from "../../lib/tokens/wordTokenizer";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { trainBPE } from "../../lib/tokens/bpe";
import { gpt2Tokenizer } from "../../lib/tokens/gpt2Tokenizer";
import { mobyDickText } from "../../lib/tokens/corpus";

describe("Tokenizer: special tokens", () => {
  const specials = { "<|endoftext|>": 10, "<|im": 11, "<|im_start|>": 12 };

  it("cuts text at allowed special tokens, longest name first", () => {
    assert.deepEqual(splitOnSpecialTokens("a<|im_start|>b<|im<|endoftext|>", specials, true), ["a", 12, "b", 11, 10]);
    assert.deepEqual(splitOnSpecialTokens("<|endoftext|><|im_start|>", specials, ["<|endoftext|>"]), [10, "<|im_start|>"]);
    assert.deepEqual(splitOnSpecialTokens("a<|endoftext|>", specials, false), ["a<|endoftext|>"]);
    assert.deepEqual(splitOnSpecialTokens("a<|endoftext|>", specials, undefined), ["a<|endoftext|>"]);
    assert.deepEqual(splitOnSpecialTokens("", specials, true), []);
  });

  it("escapes regex characters in names", () => {
    assert.deepEqual(splitOnSpecialTokens("x[.*]y", { "[.*]": 5 }, true), ["x", 5, "y"]);
    assert.deepEqual(splitOnSpecialTokens("x[ab]y", { "[.*]": 5 }, true), ["x[ab]y"]);
  });

  it("appends new names from the next id, keeping existing ones", () => {
    assert.deepEqual(appendSpecialTokens({ a: 3 }, ["b", "a", "c", "b"], 4), { a: 3, b: 4, c: 5 });
  });
});

describe("Tokenizer: save and load", () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "tokenizers-"))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const corpus = mobyDickText().slice(0, 30000);
  const sample = "Call me Ishmael. Some years ago<|endoftext|> 🐋";
  const tokenizers: Record<string, () => Tokenizer> = {
    word: () => WordTokenizer.fromText(corpus).addSpecialTokens(["<|endoftext|>"]),
    char: () => CharTokenizer.fromText(corpus + "🐋<|>", { specialTokens: ["<|endoftext|>"] }),
    bpe: () => trainBPE(corpus, { numMerges: 200, specialTokens: ["<|endoftext|>"] }).tokenizer,
    gpt2: () => gpt2Tokenizer().addSpecialTokens(["<|pad|>"]),
  };

  for (const [type, make] of Object.entries(tokenizers)) {
    it(`round-trips a ${type} tokenizer through a file`, () => {
      const t = make();
      const file = path.join(dir, `${type}.json`);
      saveTokenizer(t, file);
      const back = loadTokenizer(file);
      assert.equal(back.type, type);
      assert.equal(back.vocabSize, t.vocabSize);
      assert.deepEqual(back.specialTokens, t.specialTokens);
      assert.deepEqual(tokenizerToJSON(back), tokenizerToJSON(t));
      for (const allowSpecial of [true, false]) {
        assert.deepEqual(back.encode(sample, { allowSpecial }), t.encode(sample, { allowSpecial }));
      }
      const ids = t.encode(sample, { allowSpecial: true });
      assert.equal(back.decode(ids), t.decode(ids));
    });
  }

  it("names the file in every error", () => {
    const missing = path.join(dir, "missing.json");
    assert.throws(() => loadTokenizer(missing), new RegExp(`^Error: ${escape(missing)}: cannot read tokenizer file \\(no such file\\)$`));
    assert.throws(() => loadTokenizer(dir), new RegExp(`^Error: ${escape(dir)}: cannot read tokenizer file \\(is a directory\\)$`));
    const bad = path.join(dir, "bad.json");
    fs.writeFileSync(bad, "{ not json");
    assert.throws(() => loadTokenizer(bad), new RegExp(`^Error: ${escape(bad)}: not valid JSON \\(`));
    fs.writeFileSync(bad, "[1, 2]");
    assert.throws(() => loadTokenizer(bad), new RegExp(`^Error: ${escape(bad)}: expected a JSON object with a "type" field, got \\[1,2\\]$`));
    fs.writeFileSync(bad, JSON.stringify({ type: "sentencepiece", version: 1, specialTokens: {} }));
    assert.throws(() => loadTokenizer(bad), new RegExp(`${escape(bad)}: field "type" is "sentencepiece"; expected one of "word", "char", "bpe", "gpt2"`));
    fs.writeFileSync(bad, JSON.stringify({ type: "bpe", version: 1, pattern: null, specialTokens: {} }));
    assert.throws(() => loadTokenizer(bad), new RegExp(`${escape(bad)}: field "merges" must be an array of \\[left, right\\] id pairs, got nothing \\(field missing\\)`));
    fs.writeFileSync(bad, JSON.stringify({ type: "char", version: 1, unk: false, chars: ["a"], specialTokens: { x: -1 } }));
    assert.throws(() => loadTokenizer(bad), new RegExp(`${escape(bad)}: field "specialTokens\\.x" must be a non-negative integer id, got -1`));
  });

  it("default source name in tokenizerFromJSON", () => {
    assert.throws(() => tokenizerFromJSON(null), /^Error: tokenizer JSON: expected a JSON object/);
  });
});

function escape(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}
