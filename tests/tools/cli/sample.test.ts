import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { initBackend } from "../../../lib/core/backend";
import { CharTokenizer } from "../../../lib/tokens/charTokenizer";
import { gptConfig, initGPT } from "../../../lib/gpt/gpt";
import { GPT2_VOCAB_SIZE, gpt2Tokenizer } from "../../../lib/tokens/gpt2Tokenizer";
import { exportHfGpt2 } from "../../../lib/pretrain/hfGpt2";
import { disposeParams } from "../../../lib/pretrain/pretrain";
import { textGenerate } from "../../../lib/gpt/sampling";
import { hfTokenizerFiles } from "../../../lib/pretrain/hfGpt2";
import { loadModelDir } from "../../../lib/pretrain/modelDir";
import { main } from "../../../lib/tools/cli/sample";

async function runSample(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, (t) => (out += t), (l) => (err += l + "\n"), {});
  return { code, out, err };
}

describe("sample CLI on a Hugging Face GPT-2 directory", function () {
  this.timeout(120_000);
  let dir: string;
  before(async () => {
    await initBackend({ quiet: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "hf-sample-"));
  });

  it("loads GPT-2's layout with GPT-2's vocabulary and tokenizer, and generates what the course model generates", async () => {
    // GPT-2 small's vocabulary and layout, tiny widths (the real 124M weights cannot be downloaded here).
    const config = gptConfig("gpt2", { nLayer: 1, nHead: 2, nEmbd: 8, blockSize: 32 });
    const params = initGPT(config, { seed: 4 });
    const out = path.join(dir, "gpt2-layout");
    exportHfGpt2(out, params, config, { tokenizerFiles: hfTokenizerFiles(gpt2Tokenizer()) });
    const model = loadModelDir(out);
    assert.equal(model.tokenizer.type, "gpt2");
    assert.equal(model.config.vocabSize, GPT2_VOCAB_SIZE);
    const expected = textGenerate(params, config, gpt2Tokenizer(), "Call me Ishmael.", { maxNewTokens: 6, temperature: 0 });
    disposeParams(model.params);
    const r = await runSample(["--checkpoint", out, "--prompt", "Call me Ishmael.", "--tokens", "6", "--temperature", "0"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `Call me Ishmael.${expected}\n`);
    assert.match(r.err, /6 tokens in/);
    disposeParams(params);
  });

  it("uses the course tokenizer file an export wrote; refuses a model whose tokenizer it cannot tell", async () => {
    const tok = CharTokenizer.fromText("abc def");
    const config = gptConfig("tiny", { vocabSize: tok.vocabSize });
    const params = initGPT(config, { seed: 1 });
    const out = path.join(dir, "char");
    exportHfGpt2(out, params, config, { tokenizerFiles: hfTokenizerFiles(tok) });
    const r = await runSample(["--checkpoint", out, "--prompt", "abc", "--tokens", "3", "--temperature", "0"]);
    assert.equal(r.code, 0, r.err);
    assert.ok(r.out.startsWith("abc"));
    const bare = path.join(dir, "bare");
    exportHfGpt2(bare, params, config);
    const bad = await runSample(["--checkpoint", bare, "--prompt", "abc"]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /which tokenizer goes with this model/);
    // Weights without their config.json: named as such, not as a missing course checkpoint.
    fs.rmSync(path.join(bare, "config.json"));
    const noConfig = await runSample(["--checkpoint", bare, "--prompt", "abc"]);
    assert.equal(noConfig.code, 2);
    assert.match(noConfig.err, /bare: model\.safetensors without config\.json: a Hugging Face model directory needs its config\.json beside the weights/);
    disposeParams(params);
  });
});
