import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { Batch, batcher, splitTokens } from "../../lib/pretrain/batches";
import { loadCheckpoint, disposeCheckpoint } from "../../lib/pretrain/checkpoint";
import { DisplayMessage, setDisplaySink } from "../../lib/show/display";
import { Figure, PLOTLY_MIME } from "../../lib/show/plot";
import { Params } from "../../lib/core/optim";
import { createRng, seedFor } from "../../lib/core/random";
import { formatSeconds, progressMode, StepContext, train, TrainOptions } from "../../lib/pretrain/trainer";

// A tiny next-token model: one-hot token → tanh hidden layer (with dropout) → logits.
const V = 8;
const H = 16;
const T = 6;
const B = 4;

function initParams(seed: number): Params {
  return tf.tidy(() => ({
    "w1.weight": tf.variable(tf.randomNormal([V, H], 0, 0.5, "float32", seed)),
    "w1.bias": tf.variable(tf.zeros([H])),
    "w2.weight": tf.variable(tf.randomNormal([H, V], 0, 0.5, "float32", seed + 1)),
    "w2.bias": tf.variable(tf.zeros([V])),
  }));
}

function lossFor(params: Params) {
  return (batch: Batch, ctx: StepContext): tf.Scalar => {
    const x = tf.oneHot(tf.reshape(batch.x, [-1]), V).toFloat();
    let h = tf.tanh(tf.add(tf.matMul(x, params["w1.weight"]), params["w1.bias"]));
    if (ctx.training) h = tf.dropout(h, 0.1, undefined, seedFor(ctx.rng)); // randomness from the trainer's RNG
    const logits = tf.add(tf.matMul(h, params["w2.weight"]), params["w2.bias"]);
    return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.reshape(batch.y, [-1]), V), logits) as tf.Scalar;
  };
}

// Tokens of a noisy cycle 0 → 1 → … → 7 → 0: learnable, so the loss must fall.
const rng = createRng(42);
const tokens = new Int32Array(600);
for (let i = 1; i < tokens.length; i++) tokens[i] = rng.next() < 0.8 ? (tokens[i - 1] + 1) % V : rng.int(V);
const split = splitTokens(tokens);
const getBatch = batcher(split.train, split.val, T, B);

function options(params: Params, extra: Partial<TrainOptions<Batch>> = {}): TrainOptions<Batch> {
  return {
    params,
    lossFn: lossFor(params),
    getBatch,
    optimizer: { lr: 0.05, beta2: 0.99, weightDecay: 0.1 },
    schedule: { maxLr: 0.05, warmupIters: 3, decayIters: 20, minLr: 0.005 },
    maxIters: 20,
    evalInterval: 5,
    evalIters: 2,
    gradClip: 1.0,
    seed: 7,
    progress: "none",
    chart: false,
    ...extra,
  };
}

const snapshot = (params: Params) => Object.fromEntries(Object.entries(params).map(([k, v]) => [k, Array.from(v.dataSync())]));
const free = (params: Params) => tf.dispose(Object.values(params));

describe("trainer", () => {
  let root: string;
  before(async () => {
    await initBackend({ quiet: true });
    root = fs.mkdtempSync(path.join(os.tmpdir(), "trainer-test-"));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("trains: the loss falls, callbacks and summary report every step and evaluation", async () => {
    const params = initParams(1);
    const steps: number[] = [];
    const lrs: number[] = [];
    const evals: number[] = [];
    const summary = await train(
      options(params, {
        maxIters: 60,
        evalInterval: 20,
        evalIters: 4,
        schedule: { maxLr: 0.05, warmupIters: 3, decayIters: 60, minLr: 0.005 },
        onStep: (s) => {
          steps.push(s.step);
          lrs.push(s.lr);
          assert.ok(s.gradNorm > 0 && Number.isFinite(s.loss));
        },
        onEval: (e) => {
          evals.push(e.step);
          assert.equal(e.valPerplexity, Math.exp(e.valLoss));
        },
      }),
    );
    assert.deepEqual(steps, Array.from({ length: 60 }, (_, i) => i));
    assert.equal(lrs[0], 0.05 / 4); // warm-up: maxLr·1/(3 + 1)
    assert.equal(lrs[3], 0.05);
    assert.deepEqual(evals, [0, 20, 40, 60]);
    assert.equal(summary.step, 60);
    assert.equal(summary.iters, 60);
    assert.equal(summary.history.train.length, 60);
    const [first, last] = [summary.history.eval[0], summary.history.eval[3]];
    assert.ok(last[2] < first[2] - 0.5, `val loss ${first[2]} → ${last[2]}`);
    assert.equal(summary.valLoss, last[2]);
    assert.equal(summary.trainPerplexity, Math.exp(summary.trainLoss));
    assert.ok(summary.msPerStep > 0 && summary.seconds > 0);
    free(params);
  });

  it("reproduces the same losses bit for bit with and without an interruption + resume (on wasm here)", async () => {
    assert.ok(["wasm", "cpu", "tensorflow"].includes(tf.getBackend()));
    // Straight: 20 steps.
    const a = initParams(1);
    const straight = await train(options(a));
    const lossesA = straight.history.train.map(([, l]) => l);
    assert.equal(lossesA.length, 20);

    // Same seed again: same losses (determinism of the backend and of the RNG).
    const a2 = initParams(1);
    const again = await train(options(a2));
    assert.deepEqual(again.history, straight.history);
    free(a2);

    // 10 steps, checkpoint, then a NEW process-like start (other initial weights) resumes for 10 more.
    const dir = path.join(root, "resume");
    const b = initParams(1);
    const firstHalf = await train(options(b, { maxIters: 10, checkpointDir: dir }));
    assert.equal(firstHalf.step, 10);
    free(b);
    const b2 = initParams(99); // different weights: they must come from the checkpoint
    const secondHalf = await train(options(b2, { checkpointDir: dir, resume: true }));
    assert.equal(secondHalf.startStep, 10);
    assert.equal(secondHalf.iters, 10);
    assert.equal(secondHalf.resumedFrom, path.resolve(dir));
    assert.deepEqual(secondHalf.history.train.map(([, l]) => l), lossesA); // bit for bit
    assert.deepEqual(secondHalf.history.eval, straight.history.eval);
    assert.deepEqual(snapshot(b2), snapshot(a));
    free(b2);

    // A crash at step 14 of a run that checkpoints every 10 steps: resume from step 10.
    const dir2 = path.join(root, "crash");
    const c = initParams(1);
    await assert.rejects(
      train(options(c, { checkpointDir: dir2, checkpointInterval: 10, onStep: (s) => { if (s.step === 14) throw new Error("power cut"); } })),
      /power cut/,
    );
    free(c);
    const ck = loadCheckpoint(dir2);
    assert.equal(ck.step, 10);
    assert.equal(ck.losses!.train.length, 10);
    assert.equal((ck.extra!.training as { maxIters: number }).maxIters, 20);
    disposeCheckpoint(ck);
    const c2 = initParams(5);
    const resumed = await train(options(c2, { checkpointDir: dir2, checkpointInterval: 10, resume: true }));
    assert.deepEqual(resumed.history.train.map(([, l]) => l), lossesA);
    assert.deepEqual(snapshot(c2), snapshot(a));
    // The final checkpoint holds step 20; resuming it with the same maxIters has nothing left to do.
    const done = await train(options(c2, { checkpointDir: dir2, resume: true }));
    assert.equal(done.iters, 0);
    assert.equal(done.step, 20);
    free(c2);
    free(a);
  });

  it("evaluations do not change the training losses (own RNG)", async () => {
    const a = initParams(3);
    const b = initParams(3);
    const withEval = await train(options(a, { evalIters: 3, evalInterval: 2 }));
    const without = await train(options(b, { evalIters: 0 }));
    assert.deepEqual(withEval.history.train, without.history.train);
    assert.deepEqual(without.history.eval, []);
    assert.ok(Number.isNaN(without.valLoss));
    free(a);
    free(b);
  });

  it("leaks no tensor across steps (same count after step 10 and step 100)", async () => {
    const params = initParams(4);
    const counts: Record<number, number> = {};
    await train(
      options(params, {
        maxIters: 100,
        evalInterval: 25,
        schedule: { maxLr: 0.05, warmupIters: 3, decayIters: 100, minLr: 0.005 },
        onStep: (s) => {
          if (s.step === 9 || s.step === 99) counts[s.step] = tf.memory().numTensors;
        },
      }),
    );
    assert.equal(counts[99], counts[9]);
    free(params);
  });

  it("prints plain lines (never a bar) when not on a terminal, and stops on a NaN loss", async () => {
    assert.equal(progressMode("auto", true, false), "bar");
    assert.equal(progressMode("auto", false, false), "lines");
    assert.equal(progressMode("auto", true, true), "lines"); // notebooks get the chart + lines
    assert.equal(progressMode("none", true, false), "none");
    assert.equal(formatSeconds(75), "1m15s");
    assert.equal(formatSeconds(3.04), "3.0s");
    const params = initParams(6);
    const lines: string[] = [];
    await train(options(params, { maxIters: 10, evalInterval: 5, progress: "lines", logInterval: 5, log: (l) => lines.push(l) }));
    assert.equal(lines.length, 2 + 3 + 1, lines.join("\n")); // 2 step lines, 3 evaluations, 1 summary
    assert.match(lines[0], /^step 0\/10: train loss \d\.\d{4}, val loss \d\.\d{4} \(perplexity \d+\.\d\d\)$/);
    assert.match(lines[1], /^step 5\/10: loss \d\.\d{4}, lr \d\.\d\de-\d, \d+ ms\/step, ETA \d+\.\ds$/);
    assert.match(lines[5], /^trained 10 steps in .*: train loss \d\.\d{4}, val loss \d\.\d{4}$/);

    await assert.rejects(train(options(params, { optimizer: { lr: 0.1 }, lossFn: () => tf.mul(tf.sum(params["w1.bias"]), NaN) as tf.Scalar })), /^Error: train: the loss is NaN at step 0 \(lr 1\.25e-2\)/);
    free(params);
  });

  it("draws a live train/val loss chart in a notebook, continuing the curves after a resume", async () => {
    const sent: DisplayMessage[] = [];
    setDisplaySink((m) => sent.push(m));
    try {
      const params = initParams(8);
      const dir = path.join(root, "chart");
      await train(options(params, { maxIters: 10, chart: true, checkpointDir: dir }));
      const figures = () => sent.filter((m) => m.data[PLOTLY_MIME] !== undefined).map((m) => m.data[PLOTLY_MIME] as Figure);
      let fig = figures()[figures().length - 1];
      const series = (f: Figure, name: string) => f.data.find((t) => t.name === name)!;
      assert.deepEqual(series(fig, "train").x, Array.from({ length: 10 }, (_, i) => i));
      assert.deepEqual(series(fig, "val").x, [0, 5, 10]);
      sent.length = 0;
      await train(options(params, { maxIters: 20, chart: true, checkpointDir: dir, resume: true }));
      fig = figures()[figures().length - 1];
      assert.equal(series(fig, "train").x!.length, 20);
      assert.deepEqual(series(fig, "val").x, [0, 5, 10, 15, 20]);
      free(params);
    } finally {
      setDisplaySink(undefined);
    }
  });
});
