import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { identityWasmConfig } from "../../../lib/core/kernels/identity";
import { installKernel, kernelInstalled, restoreKernel } from "../../../lib/core/kernels/registry";

const seq = (shape: number[]) => tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i) * 3), shape);

/** Loss and gradients of a small graph that saves tensors for its gradient (reshape, customGrad, mul). */
function lossAndGrads(): { loss: number; grads: number[][] } {
  const w0 = seq([6, 4]), b0 = tf.linspace(-1, 1, 4);
  const w = tf.variable(w0, true, "identity-test-w");
  const b = tf.variable(b0, true, "identity-test-b");
  const square = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([x]); // cloned by tfjs: the Identity kernel
    return { value: tf.square(x), gradFunc: (g: tf.Tensor, [sx]: tf.Tensor[]) => tf.mul(g, tf.mul(sx, 2)) };
  });
  const x = seq([3, 2, 6]);
  const { value, grads } = tf.variableGrads(() => {
    const h = tf.add(tf.matMul(x.reshape([6, 6]), w), b); // [6, 4]
    return tf.sum(tf.mul(square(h.reshape([2, 12])), seq([2, 12]))) as tf.Scalar;
  }, [w, b]);
  const out = { loss: value.dataSync()[0], grads: [w, b].map((v) => Array.from(grads[v.name].dataSync())) };
  tf.dispose([value, ...Object.values(grads), w, b, w0, b0, x]);
  return out;
}

describe("wasm Identity shares its input's memory", function () {
  this.timeout(60000);
  let expected: ReturnType<typeof lossAndGrads>;
  let wasInstalled = false;

  before(async () => {
    assert.ok(await tf.setBackend("cpu"));
    expected = lossAndGrads();
    assert.ok(await tf.setBackend("wasm"));
    wasInstalled = kernelInstalled(identityWasmConfig);
    installKernel(identityWasmConfig);
  });
  after(() => {
    if (!wasInstalled) restoreKernel(identityWasmConfig);
  });

  it("a clone has the values; disposing either side leaves the other intact", () => {
    const x = seq([5, 3]);
    const want = Array.from(x.dataSync());
    const c = tf.clone(x);
    assert.deepEqual(Array.from(c.dataSync()), want);
    x.dispose();
    assert.deepEqual(Array.from(c.dataSync()), want);
    const d = tf.clone(c);
    c.dispose();
    assert.deepEqual(Array.from(d.dataSync()), want);
    d.dispose();
  });

  it("clones take no buffer of their own; the buffer is freed with the last tensor on it", () => {
    const before = tf.memory();
    const x = seq([64, 32]);
    const clones = [tf.clone(x), tf.clone(x), x.clone()];
    assert.equal(tf.memory().numDataBuffers, before.numDataBuffers + 1, "one buffer for four tensors");
    x.dispose();
    clones.slice(0, 2).forEach((t) => t.dispose());
    assert.equal(tf.memory().numDataBuffers, before.numDataBuffers + 1, "one tensor left on the buffer");
    assert.equal(clones[2].dataSync()[1], Math.fround(Math.sin(1) * 3));
    clones[2].dispose();
    assert.equal(tf.memory().numDataBuffers, before.numDataBuffers);
    assert.equal(tf.memory().numTensors, before.numTensors);
  });

  it("a variable assigned after a clone keeps the clone's old values", () => {
    const v = tf.variable(tf.tensor1d([1, 2, 3]));
    const c = tf.clone(v);
    v.assign(tf.tensor1d([7, 8, 9]));
    assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3]);
    assert.deepEqual(Array.from(v.dataSync()), [7, 8, 9]);
    tf.dispose([v, c]);
  });

  it("gradients that save tensors (Reshape, customGrad) equal the cpu backend's, with no leak", () => {
    const numTensors = tf.memory().numTensors;
    const got = lossAndGrads();
    assert.ok(Math.abs(got.loss - expected.loss) <= 1e-4 * Math.abs(expected.loss), `${got.loss} vs ${expected.loss}`);
    got.grads.forEach((g, k) => g.forEach((v, i) => {
      const want = expected.grads[k][i];
      assert.ok(Math.abs(v - want) <= 1e-4 * Math.max(1, Math.abs(want)), `grad ${k}[${i}]: ${v} vs ${want}`);
    }));
    lossAndGrads();
    assert.equal(tf.memory().numTensors, numTensors);
  });
});
