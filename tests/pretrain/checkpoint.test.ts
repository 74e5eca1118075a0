import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { assignParams, checkpointExists, CheckpointData, disposeCheckpoint, loadCheckpoint, saveCheckpoint } from "../../lib/pretrain/checkpoint";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { AdamW, Params } from "../../lib/core/optim";
import { createRng } from "../../lib/core/random";

const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe("checkpoints", () => {
  let root: string;
  before(async () => {
    await initBackend({ quiet: true });
    root = fs.mkdtempSync(path.join(os.tmpdir(), "ckpt-test-"));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  /** A small "model" with an optimizer that has taken a step, and everything a checkpoint holds. */
  function sample(seed: number): { params: Params; opt: AdamW; data: CheckpointData } {
    const params: Params = {
      "wte.weight": tf.variable(tf.randomNormal([5, 3], 0, 1, "float32", seed)),
      "ln_f.bias": tf.variable(tf.randomNormal([3], 0, 1, "float32", seed + 1)),
    };
    const opt = new AdamW(params, { lr: 0.01 });
    tf.tidy(() => opt.step({ "wte.weight": tf.onesLike(params["wte.weight"]), "ln_f.bias": tf.onesLike(params["ln_f.bias"]) }));
    const rng = createRng(seed);
    rng.next();
    const data: CheckpointData = {
      params: { ...params, counts: tf.tensor1d([1, -2, 2 ** 30], "int32") },
      optimizer: opt.optimizerState(),
      config: { nLayer: 2, nEmbd: 3, name: `seed ${seed}` },
      tokenizer: CharTokenizer.fromText("hello world"),
      step: 100 + seed,
      rng: rng.state(),
      losses: { train: [[0, 4.2], [1, 1 / 3]], eval: [[0, 4.1, 4.3]] },
      extra: { note: "ü ✓" },
    };
    return { params, opt, data };
  }
  const free = (s: ReturnType<typeof sample>) => {
    s.opt.dispose();
    tf.dispose([...Object.values(s.data.params), ...Object.values(s.data.optimizer!.tensors)]);
  };

  function assertSame(dir: string, data: CheckpointData) {
    const ck = loadCheckpoint(dir);
    assert.equal(ck.step, data.step);
    assert.deepEqual(ck.config, data.config);
    assert.deepEqual(ck.rng, data.rng);
    assert.deepEqual(ck.losses, data.losses);
    assert.deepEqual(ck.extra, data.extra);
    assert.equal(ck.backend, tf.getBackend());
    assert.deepEqual(ck.tokenizer!.toJSON(), (data.tokenizer as CharTokenizer).toJSON());
    assert.deepEqual(Object.keys(ck.params), Object.keys(data.params));
    for (const [name, t] of Object.entries(data.params)) {
      assert.deepEqual(ck.params[name].shape, t.shape, name);
      assert.equal(ck.params[name].dtype, t.dtype, name);
      assert.deepEqual(values(ck.params[name]), values(t), name); // bit for bit
    }
    assert.equal(ck.optimizer!.step, data.optimizer!.step);
    for (const [name, t] of Object.entries(data.optimizer!.tensors)) assert.deepEqual(values(ck.optimizer!.tensors[name]), values(t), name);
    disposeCheckpoint(ck);
  }

  it("round-trips params, optimizer state, config, tokenizer, step, RNG and losses exactly", () => {
    const dir = path.join(root, "roundtrip");
    assert.equal(checkpointExists(dir), false);
    const s = sample(1);
    const before = tf.memory().numTensors;
    saveCheckpoint(dir, s.data);
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(fs.readdirSync(dir).sort(), ["model.json", "optimizer.bin", "weights.bin"]);
    assert.deepEqual(fs.readdirSync(root), ["roundtrip"]); // no temporary left behind
    const meta = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
    assert.equal(meta.format, "llm-course-checkpoint");
    assert.equal(meta.version, 1);
    assert.deepEqual(meta.weights.tensors[1], { name: "ln_f.bias", shape: [3], dtype: "float32", offset: 60, byteLength: 12 });
    assert.equal(fs.statSync(path.join(dir, "weights.bin")).size, 15 * 4 + 3 * 4 + 3 * 4);
    // Little-endian float32: the first 4 bytes are wte.weight[0][0].
    const first = fs.readFileSync(path.join(dir, "weights.bin")).readFloatLE(0);
    assert.equal(first, s.params["wte.weight"].dataSync()[0]);
    assertSame(dir, s.data);
    assert.equal(checkpointExists(dir), true);
    free(s);
  });

  it("a crash in the middle of a save leaves the previous checkpoint intact", () => {
    const dir = path.join(root, "crash");
    const a = sample(2);
    saveCheckpoint(dir, a.data);
    const b = sample(3);
    const written: string[] = [];
    assert.throws(
      () =>
        saveCheckpoint(dir, b.data, {
          afterWrite: (file) => {
            written.push(path.basename(file));
            if (written.length === 2) throw new Error("simulated crash");
          },
        }),
      /simulated crash/,
    );
    assert.deepEqual(written, ["weights.bin", "optimizer.bin"]); // new weights were on disk, in the temporary dir
    assertSame(dir, a.data);
    // A real crash leaves <dir>.tmp behind: the next save clears it and succeeds.
    fs.mkdirSync(`${dir}.tmp`);
    fs.writeFileSync(path.join(`${dir}.tmp`, "weights.bin"), "half");
    saveCheckpoint(dir, b.data);
    assertSame(dir, b.data);
    assert.equal(fs.existsSync(`${dir}.tmp`), false);
    // A crash between the two renames of the swap leaves only <dir>.old: still loadable, and recovered.
    fs.renameSync(dir, `${dir}.old`);
    assert.equal(checkpointExists(dir), true);
    assertSame(dir, b.data);
    saveCheckpoint(dir, a.data);
    assertSame(dir, a.data);
    assert.equal(fs.existsSync(`${dir}.old`), false);
    free(a);
    free(b);
  });

  it("gives one-line errors naming the file and the field", () => {
    const dir = path.join(root, "errors");
    const s = sample(4);
    saveCheckpoint(dir, s.data);
    const metaFile = path.join(dir, "model.json");
    const weights = path.join(dir, "weights.bin");
    const good = fs.readFileSync(metaFile, "utf8");
    const goodBin = fs.readFileSync(weights);
    const oneLine = (re: RegExp) => (err: unknown) => {
      const msg = (err as Error).message;
      assert.ok(!msg.includes("\n"), msg);
      assert.match(msg, re);
      return true;
    };
    const withMeta = (edit: (m: any) => void, re: RegExp) => {
      const m = JSON.parse(good);
      edit(m);
      fs.writeFileSync(metaFile, JSON.stringify(m));
      assert.throws(() => loadCheckpoint(dir), oneLine(re));
      fs.writeFileSync(metaFile, good);
    };

    assert.throws(() => loadCheckpoint(path.join(root, "nope")), oneLine(/nope: no checkpoint here \(directory does not exist\)$/));
    fs.renameSync(weights, weights + ".x");
    assert.throws(() => loadCheckpoint(dir), oneLine(/weights\.bin: cannot read \(missing\); field "weights\.file" of .*model\.json names it$/));
    fs.renameSync(weights + ".x", weights);
    fs.writeFileSync(weights, goodBin.subarray(0, 50));
    assert.throws(() => loadCheckpoint(dir), oneLine(/weights\.bin: truncated: 50 bytes, but field "weights\.byteLength" of .*model\.json says 84$/));
    const flipped = Buffer.from(goodBin);
    flipped[7] ^= 1;
    fs.writeFileSync(weights, flipped);
    assert.throws(() => loadCheckpoint(dir), oneLine(/weights\.bin: corrupted: its SHA-256 differs from field "weights\.sha256"/));
    // A diverged run's NaN weights (the manifest without its checksum, as a tool other than ours might write).
    const nan = Buffer.from(goodBin);
    nan.writeFloatLE(NaN, 8);
    fs.writeFileSync(weights, nan);
    withMeta((m) => delete m.weights.sha256, /weights\.bin: tensor "wte\.weight" holds NaN at element 2: the run that saved it diverged; train again \(a lower learning rate\) or load an earlier checkpoint$/);
    fs.writeFileSync(weights, goodBin);
    fs.unlinkSync(metaFile);
    assert.throws(() => loadCheckpoint(dir), oneLine(/model\.json: cannot read \(missing\)$/));
    fs.writeFileSync(metaFile, "{ not json");
    assert.throws(() => loadCheckpoint(dir), oneLine(/model\.json: not valid JSON/));
    fs.writeFileSync(metaFile, good);

    withMeta((m) => (m.weights.tensors[0].shape = [5, 4]), /model\.json: field "weights\.tensors\[0\]\.byteLength" must be 80 \(4 bytes × 20 elements of shape \[5,4\], tensor "wte\.weight"\), got 60$/);
    withMeta((m) => (m.weights.tensors[1].offset = 80), /field "weights\.tensors\[1\]\.offset" must be at most 72 .*got 80$/);
    withMeta((m) => (m.weights.tensors[1].dtype = "float16"), /field "weights\.tensors\[1\]\.dtype" must be "float32" or "int32", got "float16"$/);
    withMeta((m) => (m.version = 2), /model\.json: field "version" must be 1 \(the only format this code reads\), got 2$/);
    withMeta((m) => delete m.step, /model\.json: field "step" must be an integer >= 0/);
    withMeta((m) => (m.optimizer.tensors = "x"), /field "optimizer\.tensors" must be an array/);
    withMeta((m) => (m.weights.file = "../x.bin"), /field "weights\.file" must be a file name inside the checkpoint directory/);

    // Loading into a model of another shape.
    const ck = loadCheckpoint(dir);
    const wrong: Params = { "wte.weight": tf.variable(tf.zeros([4, 3])) };
    assert.throws(() => assignParams(wrong, ck.params, dir), oneLine(/errors: parameter "wte\.weight" has shape \[5,3\], the model expects \[4,3\]$/));
    const fewer: Params = { "wte.weight": tf.variable(tf.zeros([5, 3])) };
    assert.throws(() => assignParams(fewer, ck.params, dir), oneLine(/parameter "ln_f\.bias" is not in the model$/));
    delete (ck.params as Record<string, tf.Tensor>).counts;
    assignParams({ ...fewer, "ln_f.bias": s.params["ln_f.bias"] }, ck.params, dir);
    assert.deepEqual(values(fewer["wte.weight"]), values(s.params["wte.weight"]));
    tf.dispose([wrong["wte.weight"], fewer["wte.weight"]]);
    disposeCheckpoint(ck);

    // Never replaces a directory that is not a checkpoint.
    const other = path.join(root, "not-a-checkpoint");
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, "precious.txt"), "keep me");
    assert.throws(() => saveCheckpoint(other, s.data), oneLine(/not a checkpoint directory \(no model\.json\) and not empty; refusing to replace it$/));
    assert.equal(fs.readFileSync(path.join(other, "precious.txt"), "utf8"), "keep me");
    free(s);
  });
});
