import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { embeddingFromPretrained, loadWordVectors } from "../../lib/embeddings/pretrainedEmbeddings";
import { WordTokenizer } from "../../lib/tokens/wordTokenizer";

describe("pre-trained embeddings", () => {
  let dir: string;
  const write = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    return f;
  };
  before(async () => {
    await initBackend({ quiet: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vectors-"));
  });
  after(() => fs.rmSync(dir, { recursive: true }));

  it("reads the GloVe format", () => {
    const f = write("glove.txt", "the 0.5 -1 2\nwhale 1e-1 0 3.25\n\n");
    const v = loadWordVectors(f);
    assert.equal(v.format, "glove");
    assert.equal(v.dim, 3);
    assert.deepEqual(v.words, ["the", "whale"]);
    assert.deepEqual(Array.from(v.vectors[1]), [Math.fround(0.1), 0, 3.25]);
    assert.equal(v.index.get("whale"), 1);
    assert.deepEqual(loadWordVectors(f, { limit: 1 }).words, ["the"]);
  });

  it("reads the word2vec text format (header `count dim`), CRLF and trailing spaces too", () => {
    const f = write("w2v.vec", "2 2\r\nsea 1 2 \r\nship -3 4\r\n");
    const v = loadWordVectors(f, { expectedDim: 2 });
    assert.equal(v.format, "word2vec");
    assert.deepEqual(v.words, ["sea", "ship"]);
    assert.deepEqual(Array.from(v.vectors[1]), [-3, 4]);
  });

  it("names file and line for malformed input", () => {
    assert.throws(() => loadWordVectors(write("a.txt", "a 1 2\nb 1\n")), /a\.txt:2: word "b" has 1 numbers, expected 2/);
    assert.throws(() => loadWordVectors(write("b.txt", "a 1 2\nb 1 x\n")), /b\.txt:2: value 2 of word "b" is not a number: "x"/);
    assert.throws(() => loadWordVectors(write("c.txt", "a 1 2\n"), { expectedDim: 3 }), /c\.txt:1: word "a" has 2 numbers, expected 3/);
    assert.throws(() => loadWordVectors(write("d.vec", "3 2\na 1 2\nb 3 4\n")), /d\.vec:1: header says 3 words, the file has 2/);
    assert.throws(() => loadWordVectors(write("e.vec", "1 4\na 1 2\n")), /e\.vec:2: word "a" has 2 numbers, expected 4/);
    assert.throws(() => loadWordVectors(write("f.vec", "1 2\na 1 2\n"), { expectedDim: 5 }), /f\.vec:1: header says dimension 2, expected 5/);
    assert.throws(() => loadWordVectors(write("g.txt", "\n\n")), /g\.txt: no word vectors found/);
    assert.throws(() => loadWordVectors(path.join(dir, "missing.txt")), /missing\.txt does not exist/);
  });

  it("builds an embedding table: known rows copied, the others random, coverage reported", () => {
    const v = loadWordVectors(write("h.txt", "whale 1 2\nsea 3 4\nthe 5 6\n"));
    const emb = embeddingFromPretrained(v, ["sea", "kraken", "Whale"], { trainable: false, seed: 1 });
    assert.equal(emb.table.trainable, false);
    assert.deepEqual(emb.table.shape, [3, 2]);
    const rows = emb.table.arraySync() as number[][];
    assert.deepEqual(rows[0], [3, 4]);
    assert.deepEqual(rows[2], [1, 2]); // found through its lowercase form
    assert.ok(rows[1].every((x) => Number.isFinite(x) && x !== 0));
    assert.equal(emb.found, 2);
    assert.ok(Math.abs(emb.coverage - 2 / 3) < 1e-12);
    assert.deepEqual(emb.missing, ["kraken"]);
    emb.table.dispose();
    // From a tokenizer: ids follow the tokenizer's table (4 special tokens first).
    const tok = WordTokenizer.fromText("the sea the whale");
    const before = tf.memory().numTensors;
    const e2 = embeddingFromPretrained(v, tok);
    assert.equal(e2.table.trainable, true);
    assert.deepEqual(e2.table.shape, [tok.vocabSize, 2]);
    assert.deepEqual((e2.table.arraySync() as number[][])[tok.tokenToId("sea")!], [3, 4]);
    assert.deepEqual(e2.missing, ["<unk>", "<pad>", "<bos>", "<eos>"]);
    e2.table.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});
