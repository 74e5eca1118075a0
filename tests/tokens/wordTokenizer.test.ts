import assert from "node:assert/strict";
import { WordTokenizer, splitWords } from "../../lib/tokens/wordTokenizer";
import { tokenizerFromJSON } from "../../lib/tokens/tokenizerFiles";

// A tiny corpus where the table can be worked out by hand:
//   learning ×3, "." ×3, i ×2, love ×2, machine ×2, deep ×1, fun ×1, is ×1
// Sorted by count (desc), ties alphabetically: ".", learning, i, love, machine, deep, fun, is.
const CORPUS = "I love machine learning. I love deep learning. Machine learning is fun.";

describe("WordTokenizer", () => {
  const tok = WordTokenizer.fromText(CORPUS);

  it("builds the vocabulary table: specials 0–3, then words by frequency, ties alphabetical", () => {
    assert.deepEqual(tok.vocabularyTable(), [
      { id: 0, token: "<unk>", count: 0 },
      { id: 1, token: "<pad>", count: 0 },
      { id: 2, token: "<bos>", count: 0 },
      { id: 3, token: "<eos>", count: 0 },
      { id: 4, token: ".", count: 3 },
      { id: 5, token: "learning", count: 3 },
      { id: 6, token: "i", count: 2 },
      { id: 7, token: "love", count: 2 },
      { id: 8, token: "machine", count: 2 },
      { id: 9, token: "deep", count: 1 },
      { id: 10, token: "fun", count: 1 },
      { id: 11, token: "is", count: 1 },
    ]);
    assert.equal(tok.vocabSize, 12);
    assert.deepEqual(tok.vocabularyTable(3).map((r) => r.token), ["<unk>", "<pad>", "<bos>"]);
    assert.deepEqual(tok.specialTokens, { "<unk>": 0, "<pad>": 1, "<bos>": 2, "<eos>": 3 });
  });

  it('reproduces the lesson: "I love machine learning" → ids read off the table', () => {
    assert.deepEqual(tok.encode("I love machine learning"), [6, 7, 8, 5]);
    assert.equal(tok.decode([6, 7, 8, 5]), "i love machine learning");
  });

  it("maps unknown words to <unk>", () => {
    assert.deepEqual(tok.encode("I love quantum learning!"), [6, 7, 0, 5, 0]);
    assert.equal(tok.decode(tok.encode("I love quantum learning")), "i love <unk> learning");
  });

  it("splits words and punctuation as documented", () => {
    assert.deepEqual(splitWords("Don't stop—the whale's 2 eyes, (it said)!", false), [
      "Don't", "stop", "—", "the", "whale's", "2", "eyes", ",", "(", "it", "said", ")", "!",
    ]);
    assert.deepEqual(splitWords("Café NAÏVE"), ["café", "naïve"]);
    assert.deepEqual(splitWords("  \n\t "), []);
  });

  it("decodes without spaces before closing punctuation or after opening brackets", () => {
    const t = WordTokenizer.fromText("( hello ) , world .");
    assert.equal(t.decode(t.encode("(hello), world.")), "(hello), world.");
  });

  it("applies minFrequency and maxSize cut-offs", () => {
    const min2 = WordTokenizer.fromText(CORPUS, { minFrequency: 2 });
    assert.deepEqual(min2.vocabularyTable().slice(4).map((r) => r.token), [".", "learning", "i", "love", "machine"]);
    const max6 = WordTokenizer.fromText(CORPUS, { maxSize: 6 });
    assert.equal(max6.vocabSize, 6);
    assert.deepEqual(max6.encode("machine learning"), [0, 5]);
    assert.throws(() => WordTokenizer.fromText(CORPUS, { maxSize: 3 }), /maxSize must be at least 4/);
  });

  it("keeps case when lowercase is false", () => {
    const t = WordTokenizer.fromText("The the THE", { lowercase: false });
    assert.deepEqual(t.vocabularyTable().slice(4).map((r) => r.token), ["THE", "The", "the"]);
    assert.deepEqual(t.encode("the The tHe"), [6, 5, 0]);
  });

  it("encodes special tokens only when allowed", () => {
    assert.deepEqual(tok.encode("<bos> I love <eos>", { allowSpecial: true }), [2, 6, 7, 3]);
    assert.deepEqual(tok.encode("<bos> I", { allowSpecial: ["<eos>"] }), [0, 0, 0, 6]); // "<", "bos", ">", "i"
    assert.deepEqual(tok.encode("<bos> I"), [0, 0, 0, 6]);
  });

  it("appends special tokens without changing existing ids", () => {
    const chat = tok.addSpecialTokens(["<|user|>", "<|assistant|>", "<bos>"]);
    assert.equal(chat.vocabSize, 14);
    assert.equal(chat.specialTokens["<|user|>"], 12);
    assert.equal(chat.specialTokens["<|assistant|>"], 13);
    assert.equal(chat.specialTokens["<bos>"], 2);
    assert.deepEqual(chat.encode("<|user|> I love learning", { allowSpecial: true }), [12, 6, 7, 5]);
    assert.equal(chat.idToToken(13), "<|assistant|>");
    assert.equal(tok.vocabSize, 12, "the original is unchanged");
    for (let id = 0; id < tok.vocabSize; id++) assert.equal(chat.idToToken(id), tok.idToToken(id));
  });

  it("maps tokens to ids and back", () => {
    for (let id = 0; id < tok.vocabSize; id++) assert.equal(tok.tokenToId(tok.idToToken(id)), id);
    assert.equal(tok.tokenToId("quantum"), undefined);
    assert.throws(() => tok.decode([12]), /WordTokenizer\.decode: id 12 is not in the vocabulary \(valid ids are 0…11\)/);
  });

  it("round-trips through JSON", () => {
    const chat = tok.addSpecialTokens(["<sep>"]);
    const back = tokenizerFromJSON(JSON.parse(JSON.stringify(chat)));
    assert.deepEqual(back.toJSON(), chat.toJSON());
    assert.deepEqual(back.encode("<sep> i love fun", { allowSpecial: true }), [12, 6, 7, 10]);
  });

  it("rejects broken JSON with the field named", () => {
    const json = tok.toJSON();
    assert.throws(() => tokenizerFromJSON({ ...json, counts: [1] }, "w.json"), /^Error: w\.json: field "counts" has 1 entries but "tokens" has 12$/);
    assert.throws(() => tokenizerFromJSON({ ...json, lowercase: "yes" }, "w.json"), /w\.json: field "lowercase" must be true or false/);
    const tokens = [...(json.tokens as string[])];
    tokens[2] = "<start>";
    assert.throws(() => tokenizerFromJSON({ ...json, tokens }, "w.json"), /w\.json: field "tokens\[2\]" must be the special token "<bos>"/);
    tokens[2] = "<bos>";
    tokens[9] = "love";
    assert.throws(() => tokenizerFromJSON({ ...json, tokens }, "w.json"), /w\.json: field "tokens\[9\]" repeats "love"/);
  });
});
