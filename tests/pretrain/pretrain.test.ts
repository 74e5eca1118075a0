import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { loadCheckpoint, disposeCheckpoint, saveCheckpoint } from "../../lib/pretrain/checkpoint";
import { gptConfig, initGPT } from "../../lib/gpt/gpt";
import { artifactsDir, repoRoot } from "../../lib/core/paths";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { countingBaselineLosses, disposeParams, loadPretrained, preparePretrainData, pretrain, PretrainOptions } from "../../lib/pretrain/pretrain";
import { textGenerate } from "../../lib/gpt/sampling";

// A tiny, very regular corpus: a small model learns it in a few dozen steps.
const TEXT = "the cat sat on the mat. the dog sat on the log. ".repeat(60);

const base = (extra: Partial<PretrainOptions> = {}): PretrainOptions => ({
  text: TEXT,
  data: "tiny-text",
  tokenizer: "char",
  preset: "tiny",
  maxIters: 80,
  batchSize: 8,
  lr: 1e-2,
  warmup: 4,
  evalInterval: 40,
  evalIters: 4,
  seed: 3,
  chart: false,
  progress: "none",
  ...extra,
});

describe("pretrain", function () {
  this.timeout(120000);
  let dir: string;
  before(async () => {
    await initBackend({ quiet: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pretrain-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("prepares the data: char vocabulary of the whole text, 90/10 split", async () => {
    const d = await preparePretrainData({ text: TEXT, tokenizer: "char" });
    assert.equal(d.name, "text");
    assert.equal(d.tokenizer.vocabSize, new Set(TEXT).size);
    assert.equal(d.ids.length, TEXT.length);
    assert.equal(d.train.length, Math.floor(TEXT.length * 0.9));
    assert.equal(d.train.length + d.val.length, d.ids.length);
    assert.equal(d.tokenizer.decode(Array.from(d.ids.slice(0, 12))), TEXT.slice(0, 12));
    const b = await preparePretrainData({ text: TEXT, tokenizer: "bpe", bpeVocabSize: 270 });
    assert.equal(b.tokenizer.type, "bpe");
    assert.equal(b.tokenizer.vocabSize, 270);
    assert.ok(b.ids.length < TEXT.length / 2, `BPE should compress this text, got ${b.ids.length} tokens`);
    await assert.rejects(preparePretrainData({ text: TEXT, tokenizer: "word" as never }), /tokenizer must be "char" or "bpe"/);
  });

  it("trains: the loss falls well below ln V, and the summary is complete", async () => {
    const r = await pretrain(base());
    try {
      const lnV = Math.log(r.config.vocabSize);
      const first = r.history.eval[0];
      assert.equal(first[0], 0);
      assert.ok(Math.abs(first[2] - lnV) < 0.3, `val loss at init ${first[2]} should be near ln V = ${lnV}`);
      assert.ok(r.summary.valLoss < lnV - 1, `val loss ${r.summary.valLoss} should fall well below ${lnV}`);
      assert.equal(r.summary.iterations, 80);
      assert.equal(r.summary.itersThisRun, 80);
      assert.equal(r.summary.checkpoint, null);
      assert.equal(r.summary.backend, tf.getBackend());
      assert.equal(r.summary.vocabSize, new Set(TEXT).size);
      assert.ok(Math.abs(r.summary.perplexity - Math.exp(r.summary.valLoss)) < 1e-9);
      assert.ok(r.summary.msPerStep > 0 && r.summary.seconds > 0);
      assert.equal(r.summary.parameters, Object.values(r.params).reduce((n, p) => n + p.size, 0));
    } finally {
      disposeParams(r.params);
    }
  });

  it("resumes exactly: two segments give the losses of one uninterrupted run", async () => {
    const one = await pretrain(base({ outDir: path.join(dir, "one") }));
    disposeParams(one.params);
    const segDir = path.join(dir, "seg");
    const a = await pretrain(base({ outDir: segDir, maxIters: 30, totalIters: 80, resume: true }));
    disposeParams(a.params);
    assert.equal(a.summary.iterations, 30);
    const b = await pretrain(base({ outDir: segDir, maxIters: 80, resume: true }));
    try {
      assert.equal(b.summary.resumedFrom, path.resolve(segDir));
      assert.equal(b.summary.itersThisRun, 50);
      assert.equal(b.history.train.length, 80);
      for (let i = 0; i < 80; i++) {
        assert.ok(Math.abs(b.history.train[i][1] - one.history.train[i][1]) < 1e-4, `step ${i}: ${b.history.train[i][1]} vs ${one.history.train[i][1]}`);
      }
      assert.ok(Math.abs(b.summary.valLoss - one.summary.valLoss) < 1e-4);
    } finally {
      disposeParams(b.params);
    }
  });

  it("refuses to resume with another tokenizer or model", async () => {
    const segDir = path.join(dir, "seg");
    await assert.rejects(pretrain(base({ outDir: segDir, resume: true, tokenizer: "bpe", bpeVocabSize: 270 })), /uses the char tokenizer, not bpe/);
    await assert.rejects(pretrain(base({ outDir: segDir, resume: true, overrides: { nEmbd: 32 } })), /has the model .* this run asks for/);
    await assert.rejects(pretrain(base({ outDir: segDir, resume: true, data: "other" })), /trained on "tiny-text", not "other"/);
  });

  it("saves a checkpoint that loadPretrained reads back and samples from", async () => {
    const m = loadPretrained(path.join(dir, "one"));
    try {
      assert.equal(m.step, 80);
      assert.equal(m.config.vocabSize, m.tokenizer.vocabSize);
      assert.equal(m.settings?.tokenizer, "char");
      assert.equal(m.settings?.preset, "tiny");
      assert.ok(Object.values(m.params).every((p) => p instanceof tf.Variable && p.trainable));
      const text = textGenerate(m.params, m.config, m.tokenizer, "the c", { maxNewTokens: 30, temperature: 0 });
      assert.equal(text.length, 30);
      // Greedy decoding after training: words of the corpus (the last one may be cut off).
      const words = ("the c" + text).split(/[ .]+/).slice(0, -1);
      assert.ok(words.every((w) => ["the", "cat", "sat", "on", "mat", "dog", "log"].includes(w)), text);
      // The checkpoint keeps AdamW's state for resuming, and the run's settings.
      const ck = loadCheckpoint(path.join(dir, "one"));
      assert.ok(ck.optimizer !== undefined);
      assert.equal((ck.extra?.pretrain as { batchSize: number }).batchSize, 8);
      disposeCheckpoint(ck);
    } finally {
      disposeParams(m.params);
    }
  });

  it("trains with the BPE tokenizer too", async () => {
    const r = await pretrain(base({ tokenizer: "bpe", bpeVocabSize: 280, maxIters: 30 }));
    try {
      assert.equal(r.config.vocabSize, r.tokenizer.vocabSize); // training stops early: no pair left to merge
      assert.ok(r.config.vocabSize > 256);
      assert.equal(r.summary.tokenizer, "bpe");
      assert.ok(r.summary.valLoss < Math.log(r.config.vocabSize) - 1, `val loss ${r.summary.valLoss}`);
    } finally {
      disposeParams(r.params);
    }
  });

  it("reports problems in one line", async () => {
    assert.throws(() => loadPretrained(path.join(dir, "nope")), /no checkpoint here/);
    const trunc = path.join(dir, "trunc");
    fs.cpSync(path.join(dir, "one"), trunc, { recursive: true });
    const w = path.join(trunc, "weights.bin");
    fs.truncateSync(w, fs.statSync(w).size - 10);
    assert.throws(() => loadPretrained(trunc), /weights\.bin/);
    await assert.rejects(pretrain(base({ text: "short text" })), /fewer than blockSize \+ 1/);
    await assert.rejects(pretrain(base({ preset: "huge" as never })), /unknown preset "huge"/);
    await assert.rejects(pretrain(base({ resume: true })), /resume needs outDir/);
    await assert.rejects(pretrain(base({ maxIters: 10, totalIters: 5 })), /totalIters must be an integer >= maxIters/);
    await assert.rejects(pretrain(base({ batchSize: 0 })), /batchSize must be a positive integer/);
  });
});

describe("loading a checkpoint whose config was edited", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("a model.json declaring a billion layers is refused at once with one line, before anything is allocated for them", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "huge-config-"));
    try {
      const config = gptConfig("tiny");
      const params = initGPT(config, { seed: 1 });
      saveCheckpoint(path.join(dir, "m"), { params, config, tokenizer: CharTokenizer.fromText("abc"), step: 0 });
      tf.dispose(Object.values(params));
      const meta = path.join(dir, "m", "model.json");
      const json = JSON.parse(fs.readFileSync(meta, "utf8"));
      fs.writeFileSync(meta, JSON.stringify({ ...json, config: { ...json.config, nLayer: 1_000_000_000 } }));
      const before = tf.memory().numTensors, t0 = Date.now();
      assert.throws(() => loadPretrained(path.join(dir, "m")), /m: GPT parameters: the config's 1000000000 layers need \d+ tensors, the weights hold \d+$/);
      assert.ok(Date.now() - t0 < 5000, "refused at once");
      assert.equal(tf.memory().numTensors, before, "nothing left allocated");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("smoke-mode artifacts", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("go to build/artifacts-smoke wherever smoke mode is set (an empty COURSE_ARTIFACTS is unset)", () => {
    assert.equal(artifactsDir({ COURSE_SMOKE: "1" }), path.join(repoRoot, "build", "artifacts-smoke"));
    assert.equal(artifactsDir({}), path.join(repoRoot, "build", "artifacts"));
    assert.equal(artifactsDir({ COURSE_SMOKE: "1", COURSE_ARTIFACTS: "" }), path.join(repoRoot, "build", "artifacts-smoke"));
    assert.equal(artifactsDir({ COURSE_SMOKE: "1", COURSE_ARTIFACTS: "/mine" }), "/mine");
  });

  it("a model made in smoke mode is refused in full mode, in one line, and still loads in smoke mode", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "smoke-ck-"));
    const saved = process.env.COURSE_SMOKE;
    try {
      const config = gptConfig("tiny");
      const params = initGPT(config, { seed: 1 });
      process.env.COURSE_SMOKE = "1";
      saveCheckpoint(path.join(dir, "m"), { params, config, tokenizer: CharTokenizer.fromText("abc"), step: 0 });
      tf.dispose(Object.values(params));
      const m = loadPretrained(path.join(dir, "m"));
      disposeParams(m.params);
      delete process.env.COURSE_SMOKE;
      assert.throws(() => loadPretrained(path.join(dir, "m")), /m: made in smoke mode \(COURSE_SMOKE=1, tiny sizes\); full mode does not build on it: make it again without COURSE_SMOKE$/);
    } finally {
      if (saved === undefined) delete process.env.COURSE_SMOKE;
      else process.env.COURSE_SMOKE = saved;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("countingBaselineLosses", () => {
  it("unigram and bigram held-out losses with add-one smoothing, by hand", () => {
    // V = 2, train 0 0 1: unigram counts (1+2, 1+1) of 5; bigram rows: after 0: (1+1, 1+1)/4, after 1: (1, 1)/2.
    // val 0 1 0: predictions 1 (after 0) and 0 (after 1).
    const r = countingBaselineLosses([0, 0, 1], [0, 1, 0], 2);
    assert.ok(Math.abs(r.unigram - -(Math.log(2 / 5) + Math.log(3 / 5)) / 2) < 1e-12);
    assert.ok(Math.abs(r.bigram - -(Math.log(2 / 4) + Math.log(1 / 2)) / 2) < 1e-12);
  });
  it("rejects ids outside the vocabulary and tables too large to allocate, before counting", () => {
    assert.throws(() => countingBaselineLosses([0, 2], [0, 1], 2), { message: "countingBaselineLosses: train[1] is 2; expected an id in 0..1" });
    assert.throws(() => countingBaselineLosses([0], [0, 1], 1e6), /vocabSize must be an integer in 1\.\.65536/);
    assert.throws(() => countingBaselineLosses([0], [0], 2), /at least 2 held-out tokens/);
  });
});
