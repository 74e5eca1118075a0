import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { main } from "../../../lib/tools/cli/tokenize";
import { CharTokenizer } from "../../../lib/tokens/charTokenizer";
import { WordTokenizer } from "../../../lib/tokens/wordTokenizer";
import { loadTokenizer } from "../../../lib/tokens/tokenizerFiles";
import { mobyDickText } from "../../../lib/tokens/corpus";

/** Run the CLI in-process; returns exit code, stdout lines, stderr lines. */
async function run(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

describe("tokenize CLI", function () {
  this.timeout(60000);
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "tokenize-cli-"))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("prints GPT-2 tokens as JSON", async () => {
    const r = await run("--encoding", "gpt2", "Hello world");
    assert.equal(r.code, 0);
    assert.deepEqual(r.err, []);
    assert.deepEqual(JSON.parse(r.out[0]), { encoding: "gpt2", tokens: ["Hello", "Ġworld"], ids: [15496, 995], count: 2 });
  });

  it("encodes special tokens only with --allow-special", async () => {
    const withFlag = JSON.parse((await run("--encoding", "gpt2", "--allow-special", "a<|endoftext|>")).out[0]);
    assert.deepEqual(withFlag.ids, [64, 50256]);
    const without = JSON.parse((await run("--encoding", "gpt2", "a<|endoftext|>")).out[0]);
    assert.ok(!without.ids.includes(50256));
  });

  it("builds char and word tokenizers from Moby-Dick", async () => {
    const text = mobyDickText();
    const char = JSON.parse((await run("--encoding", "char", "Call me")).out[0]);
    assert.deepEqual(char.ids, CharTokenizer.fromText(text).encode("Call me"));
    assert.deepEqual(char.tokens, ["C", "a", "l", "l", " ", "m", "e"]);
    const word = JSON.parse((await run("--encoding", "word", "Call me Ishmael.")).out[0]);
    assert.deepEqual(word.ids, WordTokenizer.fromText(text).encode("Call me Ishmael."));
    assert.deepEqual(word.tokens, ["call", "me", "ishmael", "."]);
  });

  it("trains a BPE, saves it, and encodes with the saved file", async () => {
    const corpus = path.join(dir, "corpus.txt");
    fs.writeFileSync(corpus, "low lower lowest newer newest wider ".repeat(50));
    const out = path.join(dir, "bpe.json");
    const r = await run("--train", corpus, "--vocab-size", "270", "--out", out, "--special", "<|endoftext|>");
    assert.equal(r.code, 0, r.err.join("\n"));
    const summary = JSON.parse(r.out[0]);
    assert.equal(summary.merges, 13);
    assert.equal(summary.vocabSize, 270);
    assert.equal(loadTokenizer(out).vocabSize, 270);
    const enc = JSON.parse((await run("--encoding", out, " lowest")).out[0]);
    assert.equal(enc.encoding, out);
    assert.deepEqual(enc.tokens, ["Ġlowest"]);
    assert.equal(enc.count, 1);
  });

  it("fails with a one-line error and exit code 2 on bad input", async () => {
    const notJson = path.join(dir, "not-json");
    fs.writeFileSync(notJson, "x\ny\n");
    const cases: Array<[string[], RegExp]> = [
      [["--encoding", "gpt2"], /^tokenize: missing the text to tokenize/],
      [["Hello"], /^tokenize: missing --encoding gpt2\|char\|word\|FILE\.json/],
      [["--encoding", "bert", "Hello"], /^tokenize: unknown encoding "bert": expected gpt2, char, word or the path of a tokenizer JSON file/],
      [["--encoding"], /^tokenize: --encoding needs a value \(see --help\)$/],
      [["--encoding", "gpt2", "a", "b"], /^tokenize: expected one text argument, got 2/],
      [["--frobnicate"], /^tokenize: unknown option --frobnicate/],
      [["--encoding", dir, "x"], new RegExp(`^tokenize: ${dir.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: cannot read tokenizer file \\(is a directory\\)$`)],
      [["--train", "moby-dick", "--out", "x.json"], /^tokenize: --train needs exactly one of --vocab-size N or --num-merges N \(see --help\)$/],
      [["--train", "moby-dick", "--vocab-size", "-3", "--out", "x.json"], /^tokenize: --vocab-size must be a non-negative integer, got "-3" \(see --help\)$/],
      [["--train", path.join(dir, "nope.txt"), "--num-merges", "3", "--out", "x.json"], /^tokenize: .*nope\.txt/],
      // Raw errno messages (EEXIST, EISDIR) used to reach the user here.
      [["--train", "moby-dick", "--num-merges", "3", "--out", path.join(notJson, "x.json")], /^tokenize: --out .*not-json\/x\.json: cannot write there \(a file stands where a folder should be\) \(see --help\)$/],
      [["--train", "moby-dick", "--num-merges", "3", "--out", dir], /^tokenize: --out .* is not a regular file \(see --help\)$/],
      // JSON.parse's message quotes the text, newlines and all: still one line.
      [["--encoding", notJson, "x"], /^tokenize: .*not-json: not valid JSON \(Unexpected token .*\\n.*\)$/],
    ];
    for (const [argv, expected] of cases) {
      const r = await run(...argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.deepEqual(r.out, []);
      assert.equal(r.err.length, 1);
      assert.ok(!r.err[0].includes("\n"));
      assert.match(r.err[0], expected);
    }
  });

  it("prints usage with --help", async () => {
    const r = await run("--help");
    assert.equal(r.code, 0);
    assert.match(r.out[0], /^Usage:/);
  });
});
