import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { decodeSafetensors } from "../../lib/core/safetensors";
import { GPTConfig, gptConfig, gptForward, initGPT } from "../../lib/gpt/gpt";
import { saveCheckpoint } from "../../lib/pretrain/checkpoint";
import { exportHfGpt2, hfTokenizerFiles } from "../../lib/pretrain/hfGpt2";
import { courseConfigFromHfLlama, exportHfLlama, hfLlamaConfig, importHfLlama, toHfLlama } from "../../lib/pretrain/hfLlama";
import { loadModelDir } from "../../lib/pretrain/modelDir";
import { disposeParams } from "../../lib/pretrain/pretrain";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { main as exportMain } from "../../lib/tools/cli/export";
import { randomModel } from "../gpt/randomModel";


describe("Hugging Face Llama layout (LlamaForCausalLM)", function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    await initBackend({ quiet: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "hf-llama-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const llama = gptConfig("llama", { vocabSize: 13, blockSize: 16, nEmbd: 32, nHead: 4, nKvHead: 2, nLayer: 2 });

  it("names, shapes and orientation are LlamaForCausalLM's: q/k/v cut from c_attn and transposed", () => {
    const params = randomModel(llama, 1);
    const t = toHfLlama(params, llama);
    const D = 8, F = 88; // swigluHidden(32) = 8·⌈85.3/8⌉ = 88
    assert.deepEqual(t["model.layers.0.self_attn.q_proj.weight"].shape, [32, 32]);
    assert.deepEqual(t["model.layers.0.self_attn.k_proj.weight"].shape, [2 * D, 32]);
    assert.deepEqual(t["model.layers.0.self_attn.v_proj.weight"].shape, [2 * D, 32]);
    assert.deepEqual(t["model.layers.1.mlp.gate_proj.weight"].shape, [F, 32]);
    assert.deepEqual(t["model.layers.1.mlp.down_proj.weight"].shape, [32, F]);
    assert.ok(!("lm_head.weight" in t), "tied head: not stored");
    assert.ok(!Object.keys(t).some((n) => n.endsWith(".bias")), "the llama preset has no biases");
    // k_proj row j = column C + j of c_attn (y = x·W ⇔ y = x·Wᵀᵀ).
    const w = params["h.0.attn.c_attn.weight"].arraySync() as number[][];
    const k = t["model.layers.0.self_attn.k_proj.weight"].data as Float32Array;
    for (const [row, col] of [[0, 0], [3, 17], [15, 31]]) assert.equal(k[row * 32 + col], Math.fround(w[col][32 + row]));
    const c = hfLlamaConfig(llama);
    assert.deepEqual(
      [c.model_type, c.hidden_size, c.intermediate_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.hidden_act, c.rope_theta, c.tie_word_embeddings, c.attention_bias],
      ["llama", 32, F, 4, 2, 8, "silu", 10000, true, false],
    );
    disposeParams(params);
  });

  for (const [name, config] of [["llama preset", llama], ["biases, untied head, multi-query", { ...llama, bias: true, tiedHead: false, nKvHead: 1, ropeBase: 500000 }]] as const) {
    it(`export → import gives back the same weights and logits (${name}); loadModelDir reads it`, () => {
      const params = randomModel(config, 2);
      const out = path.join(dir, name.replace(/\W+/g, "-"));
      const tokenizer = CharTokenizer.fromText("abcdefghijklm");
      exportHfLlama(out, params, config, { tokenizerFiles: hfTokenizerFiles(tokenizer) });
      const back = importHfLlama(out);
      assert.deepEqual(back.config, { ...config, dropout: 0, mlpHidden: 88, ropeBase: config.ropeBase ?? 10000, nKvHead: config.nKvHead });
      for (const [n, p] of Object.entries(params)) assert.deepEqual(Array.from(back.params[n].dataSync()), Array.from(p.dataSync()), n);
      const idx = tf.tensor2d([[1, 5, 2, 9, 0, 12]], [1, 6], "int32");
      assert.deepEqual(Array.from(gptForward(back.params, back.config, idx).dataSync()), Array.from(gptForward(params, config, idx).dataSync()));
      const m = loadModelDir(out);
      assert.equal(m.backend, "hf-llama");
      assert.equal(m.tokenizer.decode(m.tokenizer.encode("cab")), "cab");
      disposeParams(m.params);
      disposeParams(back.params);
      disposeParams(params);
    });
  }

  it("refuses what Llama's layout cannot hold, and a config.json it cannot read, in one line", () => {
    const gpt2 = gptConfig("tiny");
    const p = initGPT(gpt2, { seed: 0 });
    assert.throws(() => exportHfLlama(path.join(dir, "x"), p, gpt2), /Llama's layout needs norm: "rmsnorm", mlp: "swiglu", positions: "rope" \(this model is GPT-2-like: export it as hf-gpt2\)/);
    const lp = initGPT(llama, { seed: 0 });
    assert.throws(() => exportHfGpt2(path.join(dir, "y"), lp, llama), /a model with RMSNorm, SwiGLU, RoPE, grouped-query attention is not GPT-2's layout; export it as Llama/);
    disposeParams(p);
    disposeParams(lp);
    const good = hfLlamaConfig(llama);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...good, model_type: "mistral" }, /^cfg: model_type must be "llama", got "mistral"$/],
      [{ ...good, hidden_act: "gelu" }, /hidden_act must be "silu"/],
      [{ ...good, rope_scaling: { rope_type: "llama3", factor: 8 } }, /rope_scaling must be null/],
      [{ ...good, num_key_value_heads: 3 }, /num_attention_heads 4 is not divisible by num_key_value_heads 3/],
      [{ ...good, rms_norm_eps: 1e-6 }, /rms_norm_eps must be 1e-5/],
      [{ ...good, attention_bias: true, mlp_bias: false }, /attention_bias and mlp_bias must be the same/],
    ];
    for (const [c, re] of cases) assert.throws(() => courseConfigFromHfLlama(c, "cfg"), (e: Error) => re.test(e.message) && !e.message.includes("\n"), JSON.stringify(c));
  });

  it("a config declaring more layers than the weights hold is refused before anything is built; export picks the layout by the model", async () => {
    const params = randomModel(llama, 3);
    const ck = path.join(dir, "ckpt");
    saveCheckpoint(ck, { params, config: llama, tokenizer: CharTokenizer.fromText("abcdefghijklm"), step: 1 });
    const out = path.join(dir, "cli");
    const lines: string[] = [];
    assert.equal(await exportMain(["--checkpoint", ck, "--out", out], (l) => lines.push(l), (l) => assert.fail(l)), 0);
    assert.equal(JSON.parse(lines[0]).format, "hf-llama");
    const errs: string[] = [];
    assert.equal(await exportMain(["--checkpoint", ck, "--out", path.join(dir, "cli2"), "--format", "hf-gpt2"], () => {}, (l) => errs.push(l)), 2);
    assert.match(errs[0], /^export: --format hf-gpt2: toHfGpt2: a model with RMSNorm/);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8"));
    fs.writeFileSync(path.join(out, "config.json"), JSON.stringify({ ...cfg, num_hidden_layers: 1_000_000_000 }));
    assert.throws(() => importHfLlama(out), /declares num_hidden_layers 1000000000, but the weights hold 2 layers/);
    const { tensors } = decodeSafetensors(fs.readFileSync(path.join(out, "model.safetensors")), "w");
    assert.equal(Object.keys(tensors).length, 1 + 2 * 9 + 1);
    disposeParams(params);
  });
});
