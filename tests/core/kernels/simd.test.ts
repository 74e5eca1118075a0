import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../../lib/core/backend";
import { fusedCausalSoftmax, fusedKernelCalls, geluGrad, geluWithSigmoid, layerNormRows, layerNormRowsGrad, mergeHeads, ropeRows, splitHeads, swigluRows, swigluRowsGrad } from "../../../lib/core/kernels/fused";
import { applyRope, ropeAngles } from "../../../lib/attention/positional";
import { loadSimdKernels, setSimdKernels, simdKernelsActive } from "../../../lib/core/kernels/simd";
import { gelu, layerNorm } from "../../../lib/gpt/gpt";
import { causalMask, MASKED_SCORE } from "../../../lib/attention/attention";

/** Largest |a − b| relative to max(1, |b|), over all elements. */
function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync(), y = b.dataSync();
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(y[i])));
  return d;
}

/**
 * Run f with the SIMD kernels on and off; both results (kept until the caller disposes them).
 * `kernels`: the fused kernels the fast run must have used.
 */
function both<T extends tf.TensorContainer>(kernels: string[], f: () => T): [T, T] {
  setSimdKernels(true);
  assert.ok(simdKernelsActive());
  const before = fusedKernelCalls();
  const fast = tf.tidy(f);
  const after = fusedKernelCalls();
  for (const k of kernels) assert.ok((after[k] ?? 0) > (before[k] ?? 0), `${k} ran`);
  setSimdKernels(false);
  assert.ok(!simdKernelsActive());
  const ref = tf.tidy(f);
  setSimdKernels(true);
  return [fast, ref];
}

describe("WebAssembly SIMD kernels (LayerNorm, GELU, attention heads: lib/core/kernels/simd.ts, fused.ts)", function () {
  this.timeout(60000);
  before(async () => {
    await initBackend({ quiet: true });
    assert.equal(await loadSimdKernels(), undefined);
  });
  after(() => setSimdKernels(true));

  it("LayerNorm forward: y, xhat and rstd equal the tensor-op formula (with and without bias)", () => {
    for (const [rows, cols] of [[768, 128], [5, 4], [3, 36]]) {
      for (const withBias of [true, false]) {
        const x = tf.randomNormal([rows, cols], 0.5, 2, "float32", 1) as tf.Tensor2D;
        const w = tf.randomNormal([cols], 1, 0.3, "float32", 2) as tf.Tensor1D;
        const b = withBias ? (tf.randomNormal([cols], 0, 0.3, "float32", 3) as tf.Tensor1D) : undefined;
        const [fast, ref] = both(["CourseLayerNorm"], () => { const r = layerNormRows(x, w, b, 1e-5); return [r.y, r.xhat, r.rstd]; });
        fast.forEach((t, i) => assert.ok(maxRelDiff(t, ref[i]) < 2e-5, `[${rows}, ${cols}] output ${i} differs by ${maxRelDiff(t, ref[i])}`));
        tf.dispose([x, w, ...fast, ...ref]);
        b?.dispose();
      }
    }
  });

  it("LayerNorm backward: dx, dw, db equal the tensor-op formula", () => {
    const [rows, cols] = [96, 132];
    const x = tf.randomNormal([rows, cols], 0, 1.5, "float32", 4) as tf.Tensor2D;
    const w = tf.randomNormal([cols], 1, 0.3, "float32", 5) as tf.Tensor1D;
    const g = tf.randomNormal([rows, cols], 0, 1, "float32", 6) as tf.Tensor2D;
    const { xhat, rstd } = layerNormRows(x, w, undefined, 1e-5);
    const [fast, ref] = both(["CourseLayerNormGrad"], () => { const r = layerNormRowsGrad(g, xhat, rstd, w); return [r.dx, r.dw, r.db]; });
    fast.forEach((t, i) => assert.ok(maxRelDiff(t, ref[i]) < 1e-4, `output ${i} differs by ${maxRelDiff(t, ref[i])}`));
    tf.dispose([x, w, g, xhat, rstd, ...fast, ...ref]);
  });

  it("GELU: y, σ(2u) and the gradient equal the tensor-op formulas, for sizes not a multiple of 4 too", () => {
    for (const shape of [[768, 512], [4], [7], [3, 11]]) {
      const x = tf.randomNormal(shape, 0, 2, "float32", 7);
      const g = tf.randomNormal(shape, 0, 1, "float32", 8);
      const s = tf.sigmoid(x);
      const [fast, ref] = both(["CourseGelu", "CourseGeluGrad"], () => { const r = geluWithSigmoid(x); return [r.y, r.s, geluGrad(x, s, g)]; });
      fast.forEach((t, i) => assert.ok(maxRelDiff(t, ref[i]) < 1e-5, `[${shape}] output ${i} differs by ${maxRelDiff(t, ref[i])}`));
      tf.dispose([x, g, s, ...fast, ...ref]);
    }
  });

  it("GELU's exp holds at the ends of float32's range: large |x| give x (or 0), never NaN", () => {
    const x = tf.tensor1d([-200, -90, -30, -5, -1e-3, 0, 1e-3, 5, 30, 90, 200, 3.4e38]);
    const [fast, ref] = both(["CourseGelu"], () => [geluWithSigmoid(x).y]);
    const got = fast[0].dataSync(), want = ref[0].dataSync();
    got.forEach((v, i) => assert.ok(Number.isFinite(v) && Math.abs(v - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])), `gelu(${x.dataSync()[i]}) = ${v}, tensor ops ${want[i]}`));
    tf.dispose([x, ...fast, ...ref]);
  });

  it("the GPT's layerNorm and gelu: same values and gradients with the kernels as with tensor ops", () => {
    const x = tf.randomNormal([2, 6, 16], 0, 1, "float32", 9);
    const w = tf.randomNormal([16], 1, 0.2, "float32", 10) as tf.Tensor1D;
    const b = tf.randomNormal([16], 0, 0.2, "float32", 11) as tf.Tensor1D;
    const up = tf.randomNormal([2, 6, 16], 0, 1, "float32", 12);
    const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(gelu(layerNorm(xx, ww as tf.Tensor1D, bb as tf.Tensor1D)), up));
    const [fast, ref] = both(["CourseLayerNorm", "CourseLayerNormGrad", "CourseGelu", "CourseGeluGrad"], () => {
      const { value, grads } = tf.valueAndGrads(f)([x, w, b]);
      return [value, ...grads];
    });
    fast.forEach((t, i) => assert.ok(maxRelDiff(t, ref[i]) < 1e-4, `output ${i} differs by ${maxRelDiff(t, ref[i])}`));
    tf.dispose([x, w, b, up, ...fast, ...ref]);
  });

  it("attention heads: splitHeads / mergeHeads equal reshape + transpose, and their gradients too", () => {
    const [b, t, h, d] = [2, 5, 3, 8];
    for (const n of [3, 1]) {
      const x = tf.randomNormal([b * t, n * h * d], 0, 1, "float32", 14) as tf.Tensor2D;
      const up = Array.from({ length: n }, (_, j) => tf.randomNormal([b * h, t, d], 0, 1, "float32", 15 + j));
      const [fast, ref] = both(["CourseSplitHeads", "CourseMergeHeads"], () => {
        const pieces = splitHeads(x, b, t, h, n);
        const back = mergeHeads(pieces, b, t); // the round trip
        // gradient of Σ pieces·up through the split, and of the merge of `up` weighted by x
        const dx = tf.grad((xx: tf.Tensor) => tf.addN(splitHeads(xx as tf.Tensor2D, b, t, h, n).map((q, j) => tf.sum(tf.mul(q, up[j])))))(x);
        const dUp = tf.grads((...ps: tf.Tensor[]) => tf.sum(tf.mul(mergeHeads(ps as tf.Tensor3D[], b, t), x)))(up);
        return [...pieces, back, dx, ...dUp];
      });
      fast.forEach((q, i) => assert.ok(maxRelDiff(q, ref[i]) === 0, `n=${n}: output ${i} differs by ${maxRelDiff(q, ref[i])}`));
      assert.ok(maxRelDiff(fast[n], x) === 0, "mergeHeads(splitHeads(x)) = x");
      // By hand: head 1 of sequence 1, position 2, value 3 of block 0 is x[1·T + 2, 1·D + 3].
      assert.equal((fast[0].arraySync() as number[][][])[1 * h + 1][2][3], (x.arraySync() as number[][])[1 * t + 2][1 * d + 3]);
      tf.dispose([x, ...up, ...fast, ...ref]);
    }
  });

  it("causal softmax: weights and gradient equal softmax(scale·x + causal mask) by tensor ops, T = S and T < S", () => {
    for (const [t, s] of [[64, 64], [3, 8], [1, 4]]) {
      const x = tf.mul(tf.randomNormal([6, t, s], 0, 1, "float32", 16), 4);
      const up = tf.randomNormal([6, t, s], 0, 1, "float32", 17);
      const scale = 0.3;
      const byOps = (xx: tf.Tensor) => tf.softmax(tf.add(tf.mul(xx, scale), tf.mul(tf.sub(1, causalMask(t, s)), MASKED_SCORE)));
      setSimdKernels(true);
      const before = fusedKernelCalls();
      const [fast, dFast] = tf.tidy((): tf.Tensor[] => [fusedCausalSoftmax(x, scale)!, tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(fusedCausalSoftmax(xx, scale)!, up)))(x)]);
      assert.ok((fusedKernelCalls().CourseCausalSoftmaxGrad ?? 0) > (before.CourseCausalSoftmaxGrad ?? 0), "the gradient kernel ran");
      const [ref, dRef] = tf.tidy(() => [byOps(x), tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(byOps(xx), up)))(x)]);
      assert.ok(maxRelDiff(fast, ref) < 1e-5, `[${t}, ${s}] weights differ by ${maxRelDiff(fast, ref)}`);
      assert.ok(maxRelDiff(dFast, dRef) < 1e-5, `[${t}, ${s}] gradients differ by ${maxRelDiff(dFast, dRef)}`);
      // masked weights are exactly 0: query 0 sees keys 0 … S − T only
      const w = fast.arraySync() as number[][][];
      assert.equal(w[2][0][s - t + 1] ?? 0, 0);
      assert.ok(Math.abs(w[2][0].reduce((a, v) => a + v, 0) - 1) < 1e-6);
      tf.dispose([x, up, fast, dFast, ref, dRef]);
    }
    setSimdKernels(false);
    const z = tf.zeros([2, 4, 4]);
    assert.equal(fusedCausalSoftmax(z, 1), undefined, "undefined when the kernel cannot run");
    z.dispose();
    setSimdKernels(true);
  });

  it("RMSNorm (LayerNorm with centering off): forward and backward equal the tensor-op formulas", () => {
    const x = tf.randomNormal([6, 12], 0.5, 2, "float32", 4) as tf.Tensor2D;
    const w = tf.randomNormal([12], 1, 0.3, "float32", 5) as tf.Tensor1D;
    const g = tf.randomNormal([6, 12], 0, 1, "float32", 6) as tf.Tensor2D;
    const [fast, ref] = both(["CourseLayerNorm", "CourseLayerNormGrad"], () => {
      const f = layerNormRows(x, w, undefined, 1e-5, false);
      const b = layerNormRowsGrad(g, f.xhat, f.rstd, w, false);
      return [f.y, f.xhat, f.rstd, b.dx, b.dw];
    });
    fast.forEach((t, i) => assert.ok(maxRelDiff(t, ref[i]) < 1e-5, `output ${i}`));
    // The reference itself against the definition: y = x / √(mean(x²) + eps) · w.
    const want = tf.tidy(() => tf.mul(tf.div(x, tf.sqrt(tf.add(tf.mean(tf.square(x), 1, true), 1e-5))), w));
    assert.ok(maxRelDiff(ref[0], want) < 1e-6);
    tf.dispose([x, w, g, ...fast, ...ref, want]);
  });

  it("SwiGLU: y = SiLU(a)·b, σ(a) and both gradients equal the tensor-op formulas, for sizes not a multiple of 4 too", () => {
    for (const shape of [[5, 8], [3, 7]]) {
      const a = tf.randomNormal(shape, 0, 3, "float32", 7), b = tf.randomNormal(shape, 0, 1, "float32", 8), g = tf.randomNormal(shape, 0, 1, "float32", 9);
      const [fast, ref] = both(["CourseSwiglu", "CourseSwigluGrad"], () => {
        const f = swigluRows(a, b);
        const d = swigluRowsGrad(a, b, f.s, g);
        return [f.y, f.s, d.da, d.db];
      });
      fast.forEach((t, i) => assert.ok(maxRelDiff(t, ref[i]) < 1e-5, `[${shape}] output ${i}`));
      tf.dispose([a, b, g, ...fast, ...ref]);
    }
  });

  it("rotary embeddings: rotation and its inverse equal the tensor-op formula, at an offset too", () => {
    const tables = ropeAngles(20, 16);
    const x = tf.randomNormal([2, 3, 5, 16], 0, 1, "float32", 10);
    for (const offset of [0, 7]) {
      const [fast, ref] = both(["CourseRope"], () => [applyRope(x, tables, offset)]);
      assert.ok(maxRelDiff(fast[0], ref[0]) < 1e-6, `offset ${offset}`);
      // sign −1 turns it back.
      const back = tf.tidy(() => ropeRows(fast[0], tables.cos, tables.sin, offset, -1)!);
      assert.ok(maxRelDiff(back, x) < 1e-5);
      tf.dispose([...fast, ...ref, back]);
    }
    tf.dispose([x, tables.cos, tables.sin]);
  });

  it("no tensor leak across forward and backward passes", () => {
    const x = tf.randomNormal([8, 32], 0, 1, "float32", 13);
    const w = tf.ones([32]) as tf.Tensor1D;
    const step = () => tf.tidy(() => tf.grad((xx: tf.Tensor) => tf.sum(gelu(layerNorm(xx, w))))(x)).dispose();
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, w]);
  });
});
