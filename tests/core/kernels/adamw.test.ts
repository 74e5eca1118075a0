import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../../lib/core/backend";
import { adamwUpdate, adamwWasmConfig, fusedAdamWAvailable, restoreFusedAdamW, useFusedAdamW } from "../../../lib/core/kernels/adamw";
import { setSimdKernels, simdKernelsActive } from "../../../lib/core/kernels/simd";
import { AdamW } from "../../../lib/core/optim";

const attrs = { beta1: 0.9, beta2: 0.99, negStepSize: -1e-3 * Math.sqrt(1 - 0.99 ** 3) / (1 - 0.9 ** 3), epsHat: 1e-8 * Math.sqrt(1 - 0.99 ** 3), shrink: 1 - 1e-3 * 0.1 };

describe("fused AdamW update (wasm kernel CourseAdamW)", function () {
  this.timeout(60000);
  let wasInstalled = false;
  before(async () => {
    await initBackend({ quiet: true });
    assert.equal(tf.getBackend(), "wasm");
    wasInstalled = tf.getKernel("CourseAdamW", "wasm")?.kernelFunc === adamwWasmConfig.kernelFunc;
  });
  after(() => (wasInstalled ? useFusedAdamW() : restoreFusedAdamW()));

  it("one element by hand", () => {
    useFusedAdamW();
    const [p, m, v] = adamwUpdate(tf.tensor1d([2]), tf.tensor1d([0.5]), tf.tensor1d([0.25]), tf.tensor1d([-1]), attrs);
    const m2 = 0.9 * 0.5 + 0.1 * -1; // 0.35
    const v2 = 0.99 * 0.25 + 0.01 * 1; // 0.2575
    const p2 = attrs.shrink * 2 + (attrs.negStepSize * m2) / (Math.sqrt(v2) + attrs.epsHat);
    assert.ok(Math.abs(m.dataSync()[0] - m2) < 1e-7);
    assert.ok(Math.abs(v.dataSync()[0] - v2) < 1e-7);
    assert.ok(Math.abs(p.dataSync()[0] - p2) < 1e-6);
    tf.dispose([p, m, v]);
  });

  for (const simd of [true, false]) {
    it(`equals the tensor-op formula on random inputs (${simd ? "WebAssembly SIMD" : "JavaScript loop"})`, () => {
      setSimdKernels(simd);
      assert.equal(simdKernelsActive(), simd);
      for (const shape of [[37, 129], [3], [5]]) { // 3 elements: the loop even with SIMD loaded
        const [p, m, g] = [1, 2, 3].map((s) => tf.randomNormal(shape, 0, 1, "float32", s));
        const v = tf.abs(tf.randomNormal(shape, 0, 1, "float32", 4));
        useFusedAdamW();
        assert.ok(fusedAdamWAvailable());
        const fused = adamwUpdate(p, m, v, g, attrs);
        restoreFusedAdamW();
        assert.ok(!fusedAdamWAvailable());
        const ref = adamwUpdate(p, m, v, g, attrs);
        fused.forEach((t, i) => {
          assert.deepEqual(t.shape, shape);
          const d = tf.tidy(() => tf.max(tf.abs(tf.sub(t, ref[i]))).dataSync()[0]);
          assert.ok(d < 1e-6, `[${shape}] output ${i} differs by ${d}`);
        });
        tf.dispose([p, m, g, v, ...fused, ...ref]);
      }
      setSimdKernels(true);
    });
  }

  it("AdamW takes the same steps with and without the kernel; no tensor leak", () => {
    const run = (fused: boolean) => {
      if (fused) useFusedAdamW();
      else restoreFusedAdamW();
      const params = { w: tf.variable(tf.tensor2d([[1, -2], [3, 0.5]])), b: tf.variable(tf.tensor1d([0.1, -0.1])) };
      const opt = new AdamW(params, { lr: 0.01, weightDecay: 0.1, beta2: 0.99 });
      const before = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) {
        const grads = { w: tf.mul(params.w, 0.3 + i), b: tf.onesLike(params.b) };
        opt.step(grads);
        tf.dispose(Object.values(grads));
      }
      assert.equal(tf.memory().numTensors, before);
      const out = [...params.w.dataSync(), ...params.b.dataSync()];
      opt.dispose();
      tf.dispose(Object.values(params));
      return out;
    };
    const a = run(true);
    const b = run(false);
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) < 1e-6, `${x} vs ${b[i]}`));
  });
});
