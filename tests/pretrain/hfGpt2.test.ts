import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import {
  HfGpt2ModelConfig,
  courseConfigFromHfGpt2,
  exportHfGpt2,
  fromHfGpt2,
  hfGpt2Config,
  hfGpt2TensorList,
  importHfGpt2,
  toHfGpt2,
} from "../../lib/pretrain/hfGpt2";
import { SafeTensors, encodeSafetensors, loadSafetensors } from "../../lib/core/safetensors";

const V = 11;
const T = 7;
const C = 8;
const TINY: HfGpt2ModelConfig = { vocabSize: V, blockSize: T, nLayer: 2, nHead: 2, nEmbd: C, dropout: 0, bias: true, tiedHead: true };

/** GPT2LMHeadModel's state dict for TINY (n_layer 2, n_embd 8, vocab 11, n_positions 7), written out by hand. */
const HF_TINY: Array<[string, number[]]> = [
  ["transformer.wte.weight", [11, 8]],
  ["transformer.wpe.weight", [7, 8]],
  ["transformer.h.0.ln_1.weight", [8]],
  ["transformer.h.0.ln_1.bias", [8]],
  ["transformer.h.0.attn.c_attn.weight", [8, 24]],
  ["transformer.h.0.attn.c_attn.bias", [24]],
  ["transformer.h.0.attn.c_proj.weight", [8, 8]],
  ["transformer.h.0.attn.c_proj.bias", [8]],
  ["transformer.h.0.ln_2.weight", [8]],
  ["transformer.h.0.ln_2.bias", [8]],
  ["transformer.h.0.mlp.c_fc.weight", [8, 32]],
  ["transformer.h.0.mlp.c_fc.bias", [32]],
  ["transformer.h.0.mlp.c_proj.weight", [32, 8]],
  ["transformer.h.0.mlp.c_proj.bias", [8]],
  ["transformer.h.1.ln_1.weight", [8]],
  ["transformer.h.1.ln_1.bias", [8]],
  ["transformer.h.1.attn.c_attn.weight", [8, 24]],
  ["transformer.h.1.attn.c_attn.bias", [24]],
  ["transformer.h.1.attn.c_proj.weight", [8, 8]],
  ["transformer.h.1.attn.c_proj.bias", [8]],
  ["transformer.h.1.ln_2.weight", [8]],
  ["transformer.h.1.ln_2.bias", [8]],
  ["transformer.h.1.mlp.c_fc.weight", [8, 32]],
  ["transformer.h.1.mlp.c_fc.bias", [32]],
  ["transformer.h.1.mlp.c_proj.weight", [32, 8]],
  ["transformer.h.1.mlp.c_proj.bias", [8]],
  ["transformer.ln_f.weight", [8]],
  ["transformer.ln_f.bias", [8]],
];
const strip = (n: string) => n.replace(/^transformer\./, "");

/** Random course parameters for a config (names = HF names without "transformer."). */
function randomParams(config: HfGpt2ModelConfig, seed: number): Record<string, tf.Variable> {
  const params: Record<string, tf.Variable> = {};
  hfGpt2TensorList(config).forEach(([, name, shape], i) => {
    if (!config.bias && name.endsWith(".bias")) return;
    params[name] = tf.variable(tf.randomNormal(shape, 0, 1, "float32", seed + i));
  });
  return params;
}
const bits = (t: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from(t.dataSync() as Float32Array).buffer));
const dispose = (p: Record<string, tf.Tensor>) => Object.values(p).forEach((t) => t.dispose());

describe("Hugging Face GPT-2 export/import", () => {
  let root: string;
  before(async () => {
    await initBackend({ quiet: true });
    root = fs.mkdtempSync(path.join(os.tmpdir(), "hfgpt2-test-"));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("a config.json declaring far more layers than the weights hold is refused at once, before the tensor list is built", () => {
    const dir = path.join(root, "huge-layers");
    exportHfGpt2(dir, randomParams(TINY, 2), TINY);
    const cfgFile = path.join(dir, "config.json");
    fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, "utf8")), n_layer: 1_000_000_000 }));
    const t0 = Date.now();
    assert.throws(() => importHfGpt2(dir), /declares n_layer 1000000000, but the weights hold 2 layers$/);
    assert.ok(Date.now() - t0 < 5000, "refused at once");
  });

  it("lists exactly GPT2LMHeadModel's tensors, in its order", () => {
    assert.deepEqual(hfGpt2TensorList(TINY), HF_TINY.map(([n, s]) => [n, strip(n), s]));
    assert.deepEqual(hfGpt2TensorList({ ...TINY, tiedHead: false }).slice(-1), [["lm_head.weight", "lm_head.weight", [11, 8]]]);
  });

  it("writes config.json + model.safetensors (+ tokenizer files) that import back bit-identical", () => {
    const dir = path.join(root, "tiny");
    const params = randomParams(TINY, 1);
    const vocab = '{"a":0}';
    const merges = Uint8Array.from([35, 118, 10]);
    const written = exportHfGpt2(dir, params, TINY, { tokenizerFiles: { "vocab.json": vocab, "merges.txt": merges } });
    assert.deepEqual(written, ["model.safetensors", "vocab.json", "merges.txt", "config.json"].map((f) => path.join(dir, f)));
    assert.deepEqual(fs.readdirSync(dir).sort(), ["config.json", "merges.txt", "model.safetensors", "vocab.json"]);
    assert.equal(fs.readFileSync(path.join(dir, "vocab.json"), "utf8"), vocab);
    assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(dir, "merges.txt"))), merges);

    // The checkpoint: exactly HF's names and shapes, F32, format "pt".
    const { tensors, metadata } = loadSafetensors(path.join(dir, "model.safetensors"));
    assert.deepEqual(metadata, { format: "pt" });
    assert.deepEqual(Object.entries(tensors).map(([n, t]) => [n, t.shape]), HF_TINY);
    assert.ok(Object.values(tensors).every((t) => t.dtype === "F32"));

    const hf = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
    assert.deepEqual(hf, hfGpt2Config(TINY));
    assert.deepEqual(
      [hf.architectures, hf.model_type, hf.vocab_size, hf.n_positions, hf.n_embd, hf.n_layer, hf.n_head, hf.n_inner, hf.activation_function, hf.layer_norm_epsilon, hf.tie_word_embeddings, hf.bos_token_id, hf.eos_token_id, hf.resid_pdrop],
      [["GPT2LMHeadModel"], "gpt2", 11, 7, 8, 2, 2, null, "gelu_new", 1e-5, true, null, null, 0],
    );

    const before = tf.memory().numTensors;
    const back = importHfGpt2(dir);
    assert.equal(tf.memory().numTensors, before + HF_TINY.length);
    assert.deepEqual(back.config, TINY);
    assert.deepEqual(back.metadata, { format: "pt" });
    assert.deepEqual(Object.keys(back.params), Object.keys(params));
    for (const name of Object.keys(params)) {
      assert.ok(back.params[name] instanceof tf.Variable, name);
      assert.deepEqual(back.params[name].shape, params[name].shape, name);
      assert.deepEqual(bits(back.params[name]), bits(params[name]), name);
    }
    dispose(back.params);
    dispose(params);
  });

  it("GPT-2's vocabulary gets its <|endoftext|> id as bos/eos; others can be given", () => {
    const gpt2 = hfGpt2Config({ ...TINY, vocabSize: 50257, dropout: 0.1 });
    assert.deepEqual([gpt2.bos_token_id, gpt2.eos_token_id, gpt2.embd_pdrop, gpt2.attn_pdrop, gpt2.resid_pdrop], [50256, 50256, 0.1, 0.1, 0.1]);
    const own = hfGpt2Config(TINY, { bosTokenId: 0, eosTokenId: 10 });
    assert.deepEqual([own.bos_token_id, own.eos_token_id], [0, 10]);
    assert.throws(() => hfGpt2Config(TINY, { eosTokenId: 11 }), { message: "hfGpt2Config: eosTokenId must be null or an integer in [0, 11), got 11" });
  });

  it("an untied head is stored as lm_head.weight and comes back", () => {
    const config = { ...TINY, tiedHead: false };
    const params = randomParams(config, 2);
    const tensors = toHfGpt2(params, config);
    assert.deepEqual(Object.keys(tensors), [...HF_TINY.map(([n]) => n), "lm_head.weight"]);
    assert.equal(hfGpt2Config(config).tie_word_embeddings, false);
    const back = fromHfGpt2(tensors, hfGpt2Config(config));
    assert.deepEqual(back.config, config);
    assert.deepEqual(bits(back.params["lm_head.weight"]), bits(params["lm_head.weight"]));
    dispose(back.params);
    dispose(params);
  });

  it("a model without biases is exported with zero biases (HF's GPT-2 always has them)", () => {
    const config = { ...TINY, bias: false };
    const params = randomParams(config, 3);
    assert.equal("h.0.ln_1.bias" in params, false);
    const tensors = toHfGpt2(params, config);
    assert.deepEqual(Object.entries(tensors).map(([n, t]) => [n, t.shape]), HF_TINY);
    assert.deepEqual(tensors["transformer.h.1.mlp.c_fc.bias"].data, new Float32Array(32));
    const back = fromHfGpt2(tensors, hfGpt2Config(config));
    assert.deepEqual(back.config, { ...config, bias: true });
    dispose(back.params);
    dispose(params);
  });

  it("imports the original gpt2 upload's layout: no transformer. prefix, attn.bias / masked_bias buffers, F16 and a stored tied head", () => {
    const dir = path.join(root, "legacy");
    fs.mkdirSync(dir);
    const tensors: SafeTensors = {};
    const values = new Map<string, Float32Array>();
    HF_TINY.forEach(([name, shape], i) => {
      const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, j) => (i * 1000 + j) / 8);
      values.set(strip(name), data);
      tensors[strip(name)] = { dtype: "F32", shape, data };
    });
    for (const i of [0, 1]) {
      tensors[`h.${i}.attn.bias`] = { dtype: "F32", shape: [1, 1, T, T], data: new Float32Array(T * T).fill(1) };
      tensors[`h.${i}.attn.masked_bias`] = { dtype: "F32", shape: [], data: Float32Array.from([-1e4]) };
    }
    // One tensor in half precision: bit patterns of -1, -0.5, 0, 0.125, 1.5, 2, 1000, 65504.
    values.set("ln_f.weight", Float32Array.from([-1, -0.5, 0, 0.125, 1.5, 2, 1000, 65504]));
    tensors["ln_f.weight"] = { dtype: "F16", shape: [8], data: Uint16Array.from([0xbc00, 0xb800, 0, 0x3000, 0x3e00, 0x4000, 0x63d0, 0x7bff]) };
    tensors["lm_head.weight"] = { dtype: "F32", shape: [V, C], data: values.get("wte.weight")! };
    fs.writeFileSync(path.join(dir, "model.safetensors"), encodeSafetensors(tensors, { format: "pt" }));
    // The config.json of the gpt2 upload, sizes changed: n_ctx, no n_inner, extra task fields.
    const legacy = {
      activation_function: "gelu_new", architectures: ["GPT2LMHeadModel"], attn_pdrop: 0.1, bos_token_id: 50256, embd_pdrop: 0.1, eos_token_id: 50256,
      initializer_range: 0.02, layer_norm_epsilon: 1e-5, model_type: "gpt2", n_ctx: T, n_embd: C, n_head: 2, n_layer: 2, resid_pdrop: 0.1,
      task_specific_params: { "text-generation": { do_sample: true, max_length: 50 } }, vocab_size: V,
    };
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(legacy));
    const back = importHfGpt2(dir);
    assert.deepEqual(back.config, { ...TINY, dropout: 0.1 });
    assert.deepEqual(Object.keys(back.params), HF_TINY.map(([n]) => strip(n)));
    for (const [name, data] of values) assert.deepEqual(back.params[name].dataSync(), data, name);
    dispose(back.params);
  });

  describe("clear errors", () => {
    let params: Record<string, tf.Variable>;
    let tensors: SafeTensors;
    const hf = () => hfGpt2Config(TINY);
    before(() => {
      params = randomParams(TINY, 4);
      tensors = toHfGpt2(params, TINY);
    });
    after(() => dispose(params));
    const without = (name: string) => Object.fromEntries(Object.entries(tensors).filter(([n]) => n !== name));
    const expectError = (f: () => unknown, message: string) => {
      const before = tf.memory().numTensors;
      assert.throws(f, (err: Error) => (assert.equal(err.message, message), true));
      assert.equal(tf.memory().numTensors, before, "no tensor leaked");
    };

    it("a missing tensor", () =>
      expectError(() => fromHfGpt2(without("transformer.h.1.mlp.c_fc.bias"), hf()), 'model.safetensors: tensor "transformer.h.1.mlp.c_fc.bias" is missing (expected shape [32])'));
    it("a wrong shape", () =>
      expectError(
        () => fromHfGpt2({ ...tensors, "transformer.h.0.attn.c_attn.weight": { dtype: "F32", shape: [24, 8], data: new Float32Array(192) } }, hf()),
        'model.safetensors: tensor "transformer.h.0.attn.c_attn.weight" has shape [24,8], expected [8,24]',
      ));
    it("a tensor of another model", () =>
      expectError(
        () => fromHfGpt2({ ...tensors, "transformer.h.2.ln_1.weight": { dtype: "F32", shape: [8], data: new Float32Array(8) } }, hf()),
        'model.safetensors: unexpected tensor "transformer.h.2.ln_1.weight" (not a parameter of GPT2LMHeadModel with n_layer 2, tie_word_embeddings true)',
      ));
    it("the same tensor with and without the prefix", () =>
      expectError(() => fromHfGpt2({ ...tensors, "wte.weight": tensors["transformer.wte.weight"] }, hf()), 'model.safetensors: tensor "wte.weight" and tensor "transformer.wte.weight" are the same parameter, stored twice'));
    it("an integer tensor", () =>
      expectError(
        () => fromHfGpt2({ ...tensors, "transformer.ln_f.bias": { dtype: "I32", shape: [8], data: new Int32Array(8) } }, hf()),
        'model.safetensors: tensor "transformer.ln_f.bias" has dtype I32, expected a float type (F32, F16, BF16 or F64)',
      ));
    it("a config.json the course's GPT cannot run", () => {
      expectError(() => fromHfGpt2(tensors, { ...hf(), n_embd: undefined }), 'config.json: field "n_embd" must be a positive integer, got undefined');
      expectError(() => fromHfGpt2(tensors, { ...hf(), activation_function: "relu" }), 'config.json: activation_function must be "gelu_new" (GPT-2\'s tanh GELU, the course\'s), got "relu"');
      expectError(() => fromHfGpt2(tensors, { ...hf(), n_inner: 64 }), "config.json: n_inner must be null or 32 (4 × n_embd), got 64");
      expectError(() => fromHfGpt2(tensors, { ...hf(), model_type: "llama" }), 'config.json: model_type must be "gpt2", got "llama"');
      expectError(() => fromHfGpt2(tensors, { ...hf(), n_head: 3 }), "config.json: n_embd 8 is not divisible by n_head 3");
      assert.deepEqual(courseConfigFromHfGpt2({ vocab_size: 5, n_positions: 4, n_embd: 4, n_layer: 1, n_head: 1 }), {
        vocabSize: 5, blockSize: 4, nLayer: 1, nHead: 1, nEmbd: 4, dropout: 0.1, bias: true, tiedHead: true,
      });
    });
    it("export: missing, misshapen or extra parameters", () => {
      const { ["h.0.ln_2.weight"]: _dropped, ...missing } = params;
      assert.throws(() => toHfGpt2(missing, TINY), { message: 'toHfGpt2: parameter "h.0.ln_2.weight" is missing (expected shape [8])' });
      const wrong = tf.zeros([8, 8]);
      assert.throws(() => toHfGpt2({ ...params, "h.0.mlp.c_fc.weight": wrong }, TINY), { message: 'toHfGpt2: parameter "h.0.mlp.c_fc.weight" has shape [8,8], expected [8,32]' });
      assert.throws(() => toHfGpt2({ ...params, "lm_head.weight": wrong }, TINY), { message: 'toHfGpt2: parameter "lm_head.weight" is not part of a GPT-2 model with this config' });
      wrong.dispose();
      const dir = path.join(root, "bad-tok");
      assert.throws(() => exportHfGpt2(dir, params, TINY, { tokenizerFiles: { "../x.json": "{}" } }), { message: 'exportHfGpt2: tokenizer file name "../x.json" must be a plain file name (no directories)' });
      assert.throws(() => exportHfGpt2(dir, params, TINY, { tokenizerFiles: { "config.json": "{}" } }), { message: 'exportHfGpt2: tokenizer file name "config.json" is written by exportHfGpt2 itself' });
      assert.equal(fs.existsSync(dir), false);
    });
    it("import: missing files name the path", () => {
      const dir = path.join(root, "empty");
      fs.mkdirSync(dir);
      const configFile = path.join(dir, "config.json");
      assert.throws(() => importHfGpt2(dir), { message: `${configFile}: cannot read the model config: ENOENT` });
      fs.writeFileSync(configFile, "{nope");
      assert.throws(() => importHfGpt2(dir), (err: Error) => err.message.startsWith(`${configFile}: not valid JSON: `));
      fs.writeFileSync(configFile, JSON.stringify(hf()));
      assert.throws(() => importHfGpt2(dir), { message: `${path.join(dir, "model.safetensors")}: cannot read the weights: ENOENT` });
      fs.writeFileSync(path.join(dir, "model.safetensors"), encodeSafetensors(without("transformer.wpe.weight")));
      assert.throws(() => importHfGpt2(dir), { message: `${path.join(dir, "model.safetensors")}: tensor "transformer.wpe.weight" is missing (expected shape [7,8])` });
    });
  });
});

