import assert from "node:assert/strict";
import { checkSchedule, cosineSchedule, learningRate, LRSchedule, scheduleCurve } from "../../lib/core/schedule";

const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-15, `${a} vs ${b}`);

describe("learning-rate schedule (nanoGPT get_lr)", () => {
  const s: LRSchedule = { maxLr: 1e-3, warmupIters: 10, decayIters: 110, minLr: 1e-4 };

  it("warms up linearly: lr(it) = maxLr·(it + 1)/(warmupIters + 1)", () => {
    near(learningRate(s, 0), 1e-3 / 11);
    near(learningRate(s, 4), (1e-3 * 5) / 11);
    near(learningRate(s, 9), (1e-3 * 10) / 11);
  });

  it("is maxLr at the end of the warm-up, decays on a cosine, reaches minLr at decayIters and stays", () => {
    assert.equal(learningRate(s, 10), 1e-3);
    near(learningRate(s, 35), 1e-4 + 0.5 * (1 + Math.SQRT1_2) * 9e-4); // a quarter: cos(π/4)
    near(learningRate(s, 60), 5.5e-4); // halfway: the mean of maxLr and minLr
    near(learningRate(s, 110), 1e-4);
    assert.equal(learningRate(s, 111), 1e-4);
    assert.equal(learningRate(s, 10_000), 1e-4);
  });

  it("decreases monotonically after the warm-up", () => {
    const curve = scheduleCurve(s, 130);
    assert.equal(curve.length, 130);
    for (let i = 11; i < 130; i++) assert.ok(curve[i] <= curve[i - 1], `step ${i}`);
  });

  it("is constant with decay: false, and has no warm-up with warmupIters 0", () => {
    assert.equal(learningRate({ ...s, decay: false }, 0), 1e-3);
    assert.equal(learningRate({ ...s, decay: false }, 500), 1e-3);
    assert.equal(learningRate({ ...s, warmupIters: 0 }, 0), 1e-3);
    assert.equal(learningRate({ ...s, warmupIters: 5, decayIters: 5 }, 5), 1e-3);
    assert.equal(learningRate({ ...s, warmupIters: 5, decayIters: 5 }, 6), 1e-4);
  });

  it("cosineSchedule fills nanoGPT's defaults; checkSchedule names the bad field", () => {
    assert.deepEqual(cosineSchedule(6e-4, 5000), { maxLr: 6e-4, warmupIters: 100, decayIters: 5000, minLr: 6e-4 / 10, decay: true });
    assert.equal(cosineSchedule(1e-3, 200).warmupIters, 20);
    assert.throws(() => checkSchedule({ ...s, warmupIters: 1.5 }), /^Error: schedule: field "warmupIters" must be an integer >= 0, got 1.5$/);
    assert.throws(() => checkSchedule({ ...s, minLr: 1 }), /field "minLr" \(1\) must not exceed "maxLr"/);
  });
});
