import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { AdamW, clipByGlobalNorm, decayMatrices, Params } from "../../lib/core/optim";

const close = (actual: ArrayLike<number>, expected: number[], tol = 1e-6, what = "") => {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
};

// Three steps of the AdamW equations (top of lib/core/optim.ts) with lr 0.1, betas (0.9, 0.999),
// eps 1e-8, computed in double precision by a scalar loop (Python). Step 1 by hand, element 0:
// m = 0.1·0.1 = 0.01, v = 0.001·0.01 = 1e-5, m̂ = 0.01/0.1 = 0.1, v̂ = 1e-5/0.001 = 0.01,
// θ = 1 − 0.1 · 0.1/(√0.01 + 1e-8) = 0.90000001; with wd 0.1 θ first shrinks to 0.99 → 0.89000001.
// A zero gradient at step 1 leaves m = v = 0 and θ unmoved (0/(0 + eps)).
const GRADS = [
  [0.1, -0.2, 0.0],
  [0.3, 0.1, 0.5],
  [-0.2, 0.4, 0.5],
];
const NO_DECAY = [
  [0.900000009999999, -1.9000000049999997, 0.5],
  [0.8082219022055899, -1.8733663027186758, 0.42558631974751227],
  [0.7824315228897929, -1.9190994799913499, 0.33974006627323466],
];
const WITH_DECAY = [
  [0.890000009999999, -1.8800000049999996, 0.495],
  [0.7893219021055898, -1.8345663026686758, 0.41563631974751225],
  [0.755638303768737, -1.8619538169146632, 0.3256337030757595],
];

describe("AdamW", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("matches the PyTorch AdamW equations for 3 steps, with decay for matrices only", () => {
    const params: Params = {
      "bias": tf.variable(tf.tensor1d([1, -2, 0.5])), // 1-D: not decayed
      "weight": tf.variable(tf.tensor2d([[1, -2, 0.5]])), // 2-D: decayed
    };
    const opt = new AdamW(params, { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
    assert.equal(opt.isDecayed("bias"), false);
    assert.equal(opt.isDecayed("weight"), true);
    for (let s = 0; s < 3; s++) {
      tf.tidy(() => opt.step({ bias: tf.tensor1d(GRADS[s]), weight: tf.tensor2d([GRADS[s]]) }));
      assert.equal(opt.stepCount, s + 1);
      close(params.bias.dataSync(), NO_DECAY[s], 1e-6, `bias after step ${s + 1}`);
      close(params.weight.dataSync(), WITH_DECAY[s], 1e-6, `weight after step ${s + 1}`);
    }
    opt.dispose();
    tf.dispose(Object.values(params));
  });

  it("takes its decay rule from the caller and the lr per step", () => {
    const params: Params = { "ln.weight": tf.variable(tf.tensor2d([[1, -2, 0.5]])) };
    assert.equal(decayMatrices("x", [3, 4]), true);
    assert.equal(decayMatrices("x", [4]), false);
    const opt = new AdamW(params, { lr: 123, weightDecay: 0.1, decay: (name) => !name.startsWith("ln") });
    assert.equal(opt.isDecayed("ln.weight"), false);
    tf.tidy(() => opt.step({ "ln.weight": tf.tensor2d([GRADS[0]]) }, 0.1)); // lr 0.1 overrides 123
    close(params["ln.weight"].dataSync(), NO_DECAY[0]);
    opt.dispose();
    params["ln.weight"].dispose();
  });

  it("saves and restores m, v and the step so training continues identically", () => {
    const make = () => ({ w: tf.variable(tf.tensor2d([[1, -2, 0.5]])) }) as Params;
    const a = make();
    const optA = new AdamW(a, { lr: 0.1, weightDecay: 0.1 });
    for (const g of GRADS) tf.tidy(() => optA.step({ w: tf.tensor2d([g]) }));

    const b = make();
    const optB = new AdamW(b, { lr: 0.1, weightDecay: 0.1 });
    tf.tidy(() => optB.step({ w: tf.tensor2d([GRADS[0]]) }));
    const state = optB.optimizerState();
    assert.equal(state.step, 1);
    assert.deepEqual(Object.keys(state.tensors).sort(), ["m.w", "v.w"]);
    assert.equal(state.hyper?.weightDecay, 0.1);
    // A fresh optimizer, given the state (and the weights), continues exactly.
    const c = make();
    c.w.assign(b.w);
    const optC = new AdamW(c, { lr: 0.1, weightDecay: 0.1 });
    optC.loadOptimizerState(state);
    tf.dispose(Object.values(state.tensors)); // the optimizer keeps its own copy
    for (const g of GRADS.slice(1)) tf.tidy(() => optC.step({ w: tf.tensor2d([g]) }));
    assert.equal(optC.stepCount, 3);
    assert.deepEqual(Array.from(c.w.dataSync()), Array.from(a.w.dataSync()));

    const bad = { step: 1, tensors: { "m.w": tf.zeros([3]), "v.w": tf.zeros([1, 3]) } };
    assert.throws(() => optC.loadOptimizerState(bad, "ckpt"), /^Error: ckpt: tensor "m\.w" has shape \[3\], parameter "w" has \[1,3\]$/);
    assert.throws(() => optC.loadOptimizerState({ step: 1, tensors: { "m.w": bad.tensors["v.w"] } }), /tensor "v\.w" is missing/);
    tf.dispose(Object.values(bad.tensors));
    for (const o of [optA, optB, optC]) o.dispose();
    tf.dispose([a.w, b.w, c.w]);
  });

  it("rejects gradients it cannot match", () => {
    const params: Params = { w: tf.variable(tf.zeros([2, 2])) };
    const opt = new AdamW(params);
    assert.throws(() => tf.tidy(() => opt.step({ nope: tf.zeros([2, 2]) })), /gradient "nope" matches no parameter/);
    assert.throws(() => tf.tidy(() => opt.step({ w: tf.zeros([4]) })), /gradient "w" has shape \[4\], parameter has \[2,2\]/);
    assert.throws(() => new AdamW(params, { beta2: 1 }), /betas must be < 1/);
    assert.throws(() => new AdamW({ "wte.weight": params.w, "lm_head.weight": params.w }), /parameters "wte\.weight" and "lm_head\.weight" are the same variable/);
    opt.dispose();
    params.w.dispose();
  });

  it("leaks no tensor from step to step (same count after step 10 and step 100)", () => {
    const params: Params = { w: tf.variable(tf.randomNormal([8, 4], 0, 1, "float32", 1)), b: tf.variable(tf.zeros([4])) };
    const x = tf.randomNormal([16, 8], 0, 1, "float32", 2);
    const y = tf.randomNormal([16, 4], 0, 1, "float32", 3);
    const opt = new AdamW(params, { lr: 0.01, weightDecay: 0.1 });
    const loss = () => tf.mean(tf.square(tf.sub(tf.add(tf.matMul(x, params.w), params.b), y))) as tf.Scalar;
    let at10 = -1;
    const losses: number[] = [];
    for (let s = 1; s <= 100; s++) {
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(loss, [params.w, params.b]);
        losses.push(value.dataSync()[0]);
        const { grads: clipped } = clipByGlobalNorm({ w: grads[params.w.name], b: grads[params.b.name] }, 1.0);
        opt.step(clipped);
      });
      if (s === 10) at10 = tf.memory().numTensors;
    }
    assert.equal(tf.memory().numTensors, at10);
    assert.ok(losses[99] < losses[0] * 0.5, `loss went from ${losses[0]} to ${losses[99]}`);
    opt.dispose();
    tf.dispose([params.w, params.b, x, y]);
  });
});

describe("clipByGlobalNorm", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("scales all gradients by maxNorm / (norm + 1e-6) when the global norm is larger", () => {
    // Global norm √(3² + 4² + 12²) = √169 = 13.
    const grads = { a: tf.tensor1d([3, 4]), b: tf.tensor2d([[0, 12]]) };
    const { grads: out, norm } = clipByGlobalNorm(grads, 6.5);
    assert.ok(Math.abs(norm - 13) < 1e-6, `norm ${norm}`);
    const coef = 6.5 / (13 + 1e-6);
    close(out.a.dataSync(), [3 * coef, 4 * coef], 1e-6, "a");
    close(out.b.dataSync(), [0, 12 * coef], 1e-6, "b");
    assert.deepEqual(out.b.shape, [1, 2]);
    // The clipped global norm is maxNorm (to float32 precision).
    const after = Math.hypot(...out.a.dataSync(), ...out.b.dataSync());
    assert.ok(Math.abs(after - 6.5) < 1e-5, `clipped norm ${after}`);
    tf.dispose([...Object.values(grads), ...Object.values(out)]);
  });

  it("leaves gradients alone (same tensors) when the norm is within the limit", () => {
    const grads = { a: tf.tensor1d([3, 4]) };
    const { grads: out, norm } = clipByGlobalNorm(grads, 5);
    assert.equal(norm, 5);
    assert.equal(out.a, grads.a);
    assert.deepEqual(clipByGlobalNorm({}, 1), { grads: {}, norm: 0 });
    assert.throws(() => clipByGlobalNorm(grads, 0), /maxNorm must be > 0/);
    grads.a.dispose();
  });
});
