import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../../lib/core/backend";
import { CharTokenizer } from "../../../lib/tokens/charTokenizer";
import { saveCheckpoint } from "../../../lib/pretrain/checkpoint";
import { gptConfig, initGPT } from "../../../lib/gpt/gpt";
import { gpt2Tokenizer } from "../../../lib/tokens/gpt2Tokenizer";
import { hfGpt2TensorList, importHfGpt2 } from "../../../lib/pretrain/hfGpt2";
import { loadTokenizer } from "../../../lib/tokens/tokenizerFiles";
import { COURSE_TOKENIZER_FILE, gpt2TokenizerFiles } from "../../../lib/pretrain/hfGpt2";
import { main } from "../../../lib/tools/cli/export";

describe("export CLI (Hugging Face GPT-2 layout)", () => {
  let dir: string;
  before(async () => {
    await initBackend({ quiet: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "export-test-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes exactly GPT-2's tensor names and shapes, and imports back bit-identical", async () => {
    const tokenizer = CharTokenizer.fromText("hello world");
    const config = gptConfig("tiny", { vocabSize: tokenizer.vocabSize });
    const params = initGPT(config, { seed: 3 });
    const ckpt = path.join(dir, "ckpt");
    saveCheckpoint(ckpt, { params, config, tokenizer, step: 5 });
    const out = path.join(dir, "hf");
    const lines: string[] = [];
    assert.equal(await main(["--checkpoint", ckpt, "--out", out], (l) => lines.push(l), (l) => assert.fail(l)), 0);
    const summary = JSON.parse(lines[lines.length - 1]);
    assert.equal(summary.format, "hf-gpt2");
    assert.deepEqual(fs.readdirSync(out).sort(), ["config.json", "model.safetensors", COURSE_TOKENIZER_FILE].sort());

    const imported = importHfGpt2(out);
    const expected = hfGpt2TensorList(config).map(([, course, shape]) => [course, shape]);
    assert.deepEqual(Object.keys(imported.params).sort(), expected.map(([n]) => n as string).sort());
    for (const [name, shape] of expected) {
      const a = imported.params[name as string];
      assert.deepEqual(a.shape, shape, name as string);
      assert.deepEqual(Array.from(a.dataSync()), Array.from(params[name as string].dataSync()), `${name} bit-identical`);
    }
    // The same logits follow from the same weights; the tokenizer file round-trips.
    assert.equal(loadTokenizer(path.join(out, COURSE_TOKENIZER_FILE)).decode(tokenizer.encode("hello")), "hello");
    tf.dispose([...Object.values(params), ...Object.values(imported.params)]);
  });

  it("writes GPT-2's vocab.json and merges.txt for a GPT-2-tokenizer model", () => {
    const files = gpt2TokenizerFiles(gpt2Tokenizer());
    const vocab = JSON.parse(files["vocab.json"]);
    assert.equal(Object.keys(vocab).length, 50257);
    // Known ids of GPT-2's vocabulary: "!" is 0, " the" is 262, <|endoftext|> is 50256.
    assert.equal(vocab["!"], 0);
    assert.equal(vocab["Ġthe"], 262);
    assert.equal(vocab["<|endoftext|>"], 50256);
    const lines = files["merges.txt"].trimEnd().split("\n");
    assert.equal(lines[0], "#version: 0.2");
    assert.equal(lines.length, 1 + 50000);
    assert.equal(lines[1], "Ġ t"); // GPT-2's first merge
  });

  it("fails with one line on bad flags or a missing checkpoint", async () => {
    const errs: string[] = [];
    assert.equal(await main(["--format", "onnx", "--out", dir], () => {}, (l) => errs.push(l)), 2);
    assert.match(errs[0], /--format must be hf-gpt2/);
    errs.length = 0;
    assert.equal(await main(["--checkpoint", path.join(dir, "nope"), "--out", path.join(dir, "o")], () => {}, (l) => errs.push(l)), 2);
    assert.match(errs[0], /^export: cannot load the checkpoint: .*nope/);
    assert.ok(!fs.existsSync(path.join(dir, "o")), "nothing written");
  });

  it("an --out that holds a model is replaced only with --force, stale tokenizer files included; an unusable --out is one line", async () => {
    const ckpt = path.join(dir, "ckpt2");
    const tokenizer = CharTokenizer.fromText("abc");
    const config = gptConfig("tiny", { vocabSize: tokenizer.vocabSize });
    const params = initGPT(config, { seed: 1 });
    saveCheckpoint(ckpt, { params, config, tokenizer, step: 1 });
    tf.dispose(Object.values(params));
    const out = path.join(dir, "hf2");
    fs.mkdirSync(out);
    // What an earlier export of a GPT-2-tokenizer model left: loadModelDir would prefer a stale
    // tokenizer.course.json, HF a stale vocab.json.
    fs.writeFileSync(path.join(out, "config.json"), "{}");
    fs.writeFileSync(path.join(out, "vocab.json"), "{}");
    fs.writeFileSync(path.join(out, "merges.txt"), "#version: 0.2\n");
    const run = async (...argv: string[]) => {
      const errs: string[] = [];
      const code = await main(argv, () => {}, (l) => errs.push(l));
      return { code, errs };
    };
    const refused = await run("--checkpoint", ckpt, "--out", out);
    assert.equal(refused.code, 2);
    assert.match(refused.errs[0], /^export: --out .*hf2 already holds a model \(config\.json\): replace it with --force, or give another --out/);
    assert.equal(fs.readFileSync(path.join(out, "config.json"), "utf8"), "{}", "untouched");
    assert.equal((await run("--checkpoint", ckpt, "--out", out, "--force")).code, 0);
    assert.deepEqual(fs.readdirSync(out).sort(), ["config.json", "model.safetensors", COURSE_TOKENIZER_FILE].sort(), "the old model's tokenizer files are gone");

    const file = path.join(dir, "a-file");
    fs.writeFileSync(file, "x");
    assert.match((await run("--checkpoint", ckpt, "--out", file)).errs[0], /^export: --out .*a-file is a file, expected a directory/);
    assert.match((await run("--checkpoint", ckpt, "--out", path.join(file, "sub"))).errs[0], /^export: --out .*a-file\/sub: cannot write there \(a file stands where a folder should be\)/);
    assert.match((await run("--checkpoint", ckpt, "--out", ckpt)).errs[0], /^export: --out is the same directory as --checkpoint \(.*ckpt2\); give another --out/);
  });
});
