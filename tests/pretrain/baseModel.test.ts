import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { gptConfig, gptForward, gptParameterCount, initGPT } from "../../lib/gpt/gpt";
import * as os from "os";
import { ARTIFACT_MAKERS, artifactPath, baseModelChoice, baseModelDir, repoRoot, requireArtifact, requireBaseModel, shippedBaseModelDir } from "../../lib/core/paths";
import { disposeParams, heldOutLoss, loadPretrained } from "../../lib/pretrain/pretrain";
import { BaseModelMetrics, mobyDickValIds, QUICK_CHECK_WINDOWS } from "../../lib/tools/cli/baseModelCard";

describe("the shipped base model (data/base-model)", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("loads, has the course-base architecture and reproduces its card's held-out loss", () => {
    const metrics = JSON.parse(fs.readFileSync(path.join(shippedBaseModelDir, "metrics.json"), "utf8")) as BaseModelMetrics;
    const model = loadPretrained(shippedBaseModelDir);
    try {
      assert.deepEqual(model.config, gptConfig("course-base", { vocabSize: model.tokenizer.vocabSize }));
      assert.equal(gptParameterCount(model.config), metrics.parameters);
      assert.equal(model.step, metrics.step);
      const val = mobyDickValIds((s) => model.tokenizer.encode(s));
      assert.equal(val.length, metrics.data.valCharacters);
      const quick = heldOutLoss(model.params, model.config, val, { maxWindows: QUICK_CHECK_WINDOWS });
      assert.equal(quick.windows, metrics.quickCheck.windows);
      assert.ok(Math.abs(quick.loss - metrics.quickCheck.loss) < 1e-4, `quick check ${quick.loss} vs the card's ${metrics.quickCheck.loss}`);
      // The card's figure is the same measure over every held-out window.
      assert.equal(metrics.heldOut.windows, Math.floor((val.length - 1) / model.config.blockSize));
      assert.ok(Math.abs(metrics.heldOut.bitsPerCharacter - metrics.heldOut.loss / Math.LN2) < 1e-12);
      const card = fs.readFileSync(path.join(shippedBaseModelDir, "README.md"), "utf8");
      assert.ok(card.includes(metrics.heldOut.loss.toFixed(4)), "the card states the measured held-out loss");
    } finally {
      disposeParams(model.params);
    }
  });

  it("baseModelDir: the shipped model in full mode, the learner's in smoke mode, COURSE_BASE_MODEL overrides", () => {
    assert.equal(baseModelChoice({}), "course");
    assert.equal(baseModelDir({}), shippedBaseModelDir);
    assert.equal(baseModelChoice({ COURSE_SMOKE: "1" }), "own");
    assert.equal(baseModelDir({ COURSE_SMOKE: "1" }), artifactPath("pretrained", { COURSE_SMOKE: "1" }));
    assert.equal(baseModelChoice({ COURSE_BASE_MODEL: "own" }), "own");
    assert.equal(baseModelChoice({ COURSE_SMOKE: "1", COURSE_BASE_MODEL: "course" }), "course");
    assert.throws(() => baseModelChoice({ COURSE_BASE_MODEL: "mine" }), /COURSE_BASE_MODEL must be "course".*"own".*got "mine"/);
  });
});

describe("requireArtifact: what a chapter reads from an earlier one", () => {
  fs.mkdirSync(path.join(repoRoot, "build"), { recursive: true }); // a fresh clone has none yet
  const dir = fs.mkdtempSync(path.join(repoRoot, "build", "artifacts-test-"));
  const env = { COURSE_ARTIFACTS: dir };
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("names the notebook and the command that make a missing artifact, in one line, path relative to the project", () => {
    const rel = path.relative(repoRoot, dir);
    assert.throws(() => requireArtifact("sft", env), { message: `${rel}/sft does not exist yet: run notebook 06 (supervised fine-tuning) or \`npm run sft\` first` });
    assert.throws(() => requireArtifact("reward", env), { message: `${rel}/reward does not exist yet: run notebook 07 (reward model) or \`npm run reward\` first` });
    assert.throws(() => requireArtifact("nonsense", env), { message: `${rel}/nonsense does not exist yet: no chapter makes an artifact of this name` });
    for (const name of Object.keys(ARTIFACT_MAKERS)) assert.throws(() => requireArtifact(name, env), (e: Error) => !e.message.includes("\n") && !e.message.includes(os.homedir() + "/"));
  });

  it("returns the path once the artifact exists; the base model is checked only when it is the learner's", () => {
    fs.mkdirSync(path.join(dir, "sft"));
    assert.equal(requireArtifact("sft", env), path.join(dir, "sft"));
    assert.equal(requireBaseModel({ ...env, COURSE_BASE_MODEL: "course" }), shippedBaseModelDir);
    assert.throws(() => requireBaseModel({ ...env, COURSE_BASE_MODEL: "own" }), /pretrained does not exist yet: run notebook 05 \(pretraining\) or `npm run train` first$/);
    fs.mkdirSync(path.join(dir, "pretrained"));
    assert.equal(requireBaseModel({ ...env, COURSE_BASE_MODEL: "own" }), path.join(dir, "pretrained"));
  });
});

describe("heldOutLoss", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("averages every token of consecutive windows once: equal to the mean of per-window losses by hand", () => {
    const config = gptConfig("tiny", { vocabSize: 7, blockSize: 4 });
    const params = initGPT(config, { seed: 5 });
    try {
      const ids = Int32Array.from([1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0]); // 14 ids: 3 windows of 4 + 1
      const r = heldOutLoss(params, config, ids, { batchSize: 2 });
      assert.equal(r.windows, 3);
      assert.equal(r.tokens, 12);
      // By hand: log-softmax of the logits of each window, the target's entry.
      let nll = 0;
      for (let w = 0; w < 3; w++) {
        const x = tf.tensor2d([Array.from(ids.slice(w * 4, w * 4 + 4))], [1, 4], "int32");
        const lp = tf.tidy(() => tf.logSoftmax(gptForward(params, config, x)).arraySync() as number[][][]);
        x.dispose();
        for (let t = 0; t < 4; t++) nll -= lp[0][t][ids[w * 4 + t + 1]];
      }
      assert.ok(Math.abs(r.loss - nll / 12) < 1e-5, `${r.loss} vs ${nll / 12}`);
      assert.ok(Math.abs(r.bits - r.loss / Math.LN2) < 1e-12);
      const first = heldOutLoss(params, config, ids, { maxWindows: 1 });
      assert.equal(first.windows, 1);
      assert.throws(() => heldOutLoss(params, config, ids.slice(0, 4)), /at least 5 tokens/);
      const before = tf.memory().numTensors;
      heldOutLoss(params, config, ids);
      assert.equal(tf.memory().numTensors, before);
    } finally {
      disposeParams(params);
    }
  });
});
