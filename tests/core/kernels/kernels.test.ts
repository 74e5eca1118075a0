import assert from "node:assert/strict";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import * as tfWasm from "@tensorflow/tfjs-backend-wasm";
import {
  gradientFixNames,
  registerGradientFixes,
  registerWasmKernels,
  unregisterGradientFixes,
  unregisterWasmKernels,
  wasmKernelNames,
  wasmKernelsRegistered,
} from "../../../lib/core/kernels";
import { createRng } from "../../../lib/core/random";

type Arrays = number[][];

/** Run `f` on a backend and return every output as a plain array (no tensors leak across backends). */
async function on(backend: "cpu" | "wasm", f: () => tf.Tensor | tf.Tensor[]): Promise<Arrays> {
  assert.ok(await tf.setBackend(backend), `could not start ${backend}`);
  return tf.tidy(() => {
    const out = f();
    return (Array.isArray(out) ? out : [out]).map((t) => Array.from(t.dataSync()));
  });
}

/** Float32 agreement: |a - b| <= tol * max(1, |b|) elementwise, same lengths. */
function assertClose(actual: Arrays, expected: Arrays, tol = 1e-4, what = ""): void {
  assert.equal(actual.length, expected.length, `${what}: number of outputs`);
  actual.forEach((a, k) => {
    assert.equal(a.length, expected[k].length, `${what}: length of output ${k}`);
    a.forEach((v, i) => {
      const e = expected[k][i];
      assert.ok(Math.abs(v - e) <= tol * Math.max(1, Math.abs(e)), `${what}: output ${k}[${i}] = ${v}, cpu gives ${e}`);
    });
  });
}

/** Same computation on cpu (the reference) and wasm; returns the wasm result too. */
async function sameOnBoth(what: string, f: () => tf.Tensor | tf.Tensor[], tol = 1e-4): Promise<Arrays> {
  const ref = await on("cpu", f);
  const got = await on("wasm", f);
  assertClose(got, ref, tol, what);
  return got;
}

const rng = createRng("kernels-test");
const randn = (n: number) => Array.from({ length: n }, () => rng.normal());
const randInts = (n: number, hi: number) => Array.from({ length: n }, () => rng.int(hi));

describe("wasm kernels", function () {
  let backendBefore: string;

  before(async () => {
    backendBefore = tf.getBackend();
    const wasmFile = require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm");
    tfWasm.setWasmPaths(path.dirname(wasmFile) + path.sep);
    assert.ok(await tf.setBackend("wasm"));
  });

  after(async () => {
    registerWasmKernels(); // leave them in, as initBackend would
    registerGradientFixes();
    if (backendBefore !== undefined) await tf.setBackend(backendBefore);
  });

  it("wasm ScatterNd adds the updates of repeated indices (what UnsortedSegmentSum is built on)", async () => {
    const [out] = await on("wasm", () =>
      tf.scatterND(tf.tensor2d([[0], [2], [0], [0]], [4, 1], "int32"), tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]), [3, 2]),
    );
    assert.deepEqual(out, [13, 16, 0, 0, 3, 4]);
  });

  it("without the course kernels, the gradient of gather throws on wasm; with them it works", async () => {
    unregisterWasmKernels();
    assert.equal(wasmKernelsRegistered(), false);
    assert.equal(tf.getKernel("UnsortedSegmentSum", "wasm"), undefined);
    const gradOfGather = () =>
      tf.grad((x: tf.Tensor) => tf.gather(x, tf.tensor1d([0, 1, 1], "int32")).sum())(tf.ones([3, 2]));
    await assert.rejects(on("wasm", gradOfGather), /Kernel 'UnsortedSegmentSum' not registered for backend 'wasm'/);

    const installed = registerWasmKernels();
    assert.ok(installed.includes("UnsortedSegmentSum"));
    assert.deepEqual(installed, [...wasmKernelNames]);
    assert.equal(wasmKernelsRegistered(), true);
    assert.deepEqual(await on("wasm", gradOfGather), [[1, 1, 2, 2, 0, 0]]);
  });

  describe("UnsortedSegmentSum", () => {
    before(() => registerWasmKernels());

    it("gives exact sums on a small example (repeated and unused segments)", async () => {
      const [out] = await on("wasm", () =>
        tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]), tf.tensor1d([2, 0, 2, 2], "int32"), 4),
      );
      assert.deepEqual(out, [3, 4, 0, 0, 13, 16, 0, 0]);
    });

    const shapes: { what: string; xShape: number[]; idsShape: number[]; numSegments: number }[] = [
      { what: "1-D x", xShape: [9], idsShape: [9], numSegments: 4 },
      { what: "2-D x (embedding gradient)", xShape: [24, 8], idsShape: [24], numSegments: 11 },
      { what: "3-D x", xShape: [7, 3, 2], idsShape: [7], numSegments: 3 },
      { what: "more segments than rows", xShape: [2, 3], idsShape: [2], numSegments: 5 },
    ];
    for (const s of shapes) {
      it(`matches cpu (forward and gradient) for ${s.what}`, async () => {
        const n = s.xShape.reduce((a, b) => a * b, 1);
        const m = s.idsShape.reduce((a, b) => a * b, 1);
        const xs = randn(n);
        const ids = randInts(m, s.numSegments);
        const outSize = (n / m) * s.numSegments;
        const w = randn(outSize);
        await sameOnBoth(s.what, () => {
          const x = tf.tensor(xs, s.xShape);
          const segIds = tf.tensor(ids, s.idsShape, "int32");
          const f = (t: tf.Tensor) => tf.unsortedSegmentSum(t, segIds as tf.Tensor1D, s.numSegments).reshape([-1]).mul(w).sum();
          const out = tf.unsortedSegmentSum(x, segIds as tf.Tensor1D, s.numSegments);
          assert.deepEqual(out.shape, [s.numSegments, ...s.xShape.slice(s.idsShape.length)]);
          return [out, tf.grad(f)(x)];
        });
      });
    }

    it("accepts 2-D segment ids (the cpu kernel can't: compared with flattened ids on cpu)", async () => {
      const xs = randn(3 * 4 * 5);
      const ids = randInts(12, 6);
      const [ref] = await on("cpu", () => tf.unsortedSegmentSum(tf.tensor(xs, [12, 5]), tf.tensor1d(ids, "int32"), 6));
      const [out] = await on("wasm", () => {
        const r = tf.unsortedSegmentSum(tf.tensor(xs, [3, 4, 5]), tf.tensor2d(ids, [3, 4], "int32") as unknown as tf.Tensor1D, 6);
        assert.deepEqual(r.shape, [6, 5]);
        return r;
      });
      assertClose([out], [ref], 1e-5, "2-D ids");
    });

    it("drops ids outside [0, numSegments), as cpu does", async () => {
      const [out] = await sameOnBoth("out-of-range ids", () =>
        tf.unsortedSegmentSum(tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]), tf.tensor1d([1, -1, 3, 1], "int32"), 3),
      );
      assert.deepEqual(out, [0, 0, 8, 10, 0, 0]);
    });

    it("keeps int32 data int32", async () => {
      const out = await on("wasm", () => {
        const r = tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3, 4], "int32"), tf.tensor1d([1, 1, 0, 1], "int32"), 2);
        assert.equal(r.dtype, "int32");
        return r;
      });
      assert.deepEqual(out, [[3, 7]]);
    });

    it("returns zeros when there is nothing to sum", async () => {
      const out = await on("wasm", () =>
        tf.unsortedSegmentSum(tf.zeros([0, 3]), tf.tensor1d([], "int32"), 2),
      );
      assert.deepEqual(out, [[0, 0, 0, 0, 0, 0]]);
    });

    it("says clearly what is wrong with bad inputs", async () => {
      await on("wasm", () => {
        const run = (inputs: tf.NamedTensorMap, numSegments: number) => () =>
          tf.engine().runKernel("UnsortedSegmentSum", inputs, { numSegments });
        const x = tf.ones([4, 2]);
        assert.throws(run({ x, segmentIds: tf.tensor1d([0, 1, 2], "int32") }, 3), /\[3\] must be a prefix of x shape \[4,2\]/);
        assert.throws(run({ x, segmentIds: tf.tensor1d([0, 1, 2, 0], "float32") }, 3), /segmentIds must be int32/);
        assert.throws(run({ x: tf.ones([4], "bool"), segmentIds: tf.tensor1d([0, 1, 2, 0], "int32") }, 3), /float32 or int32, got bool/);
        assert.throws(run({ x, segmentIds: tf.tensor1d([0, 1, 2, 0], "int32") }, -1), /numSegments must be an integer >= 0/);
        return [];
      });
    });
  });

  describe("gradient of gather (embedding lookups)", () => {
    before(() => registerWasmKernels());

    const cases: { what: string; xShape: number[]; idx: number[]; idxShape: number[]; axis: number; batchDims?: number }[] = [
      { what: "token embedding, repeated ids", xShape: [10, 6], idx: [3, 3, 0, 9, 3, 1, 1, 0], idxShape: [8], axis: 0 },
      { what: "[batch, time] ids", xShape: [7, 4], idx: [0, 6, 6, 2, 2, 2], idxShape: [2, 3], axis: 0 },
      { what: "axis 1", xShape: [2, 5, 3], idx: [4, 0, 4], idxShape: [3], axis: 1 },
      { what: "batchDims 1", xShape: [2, 4, 3], idx: [1, 1, 3, 0], idxShape: [2, 2], axis: 1, batchDims: 1 },
    ];
    for (const c of cases) {
      it(`matches cpu: ${c.what}`, async () => {
        const xs = randn(c.xShape.reduce((a, b) => a * b, 1));
        const outShape = await on("cpu", () => tf.gather(tf.zeros(c.xShape), tf.tensor(c.idx, c.idxShape, "int32"), c.axis, c.batchDims));
        const w = randn(outShape[0].length);
        await sameOnBoth(c.what, () => {
          const idx = tf.tensor(c.idx, c.idxShape, "int32");
          const f = (x: tf.Tensor) => tf.gather(x, idx, c.axis, c.batchDims).reshape([-1]).mul(w).sum();
          const x = tf.tensor(xs, c.xShape);
          return [f(x), tf.grad(f)(x)];
        });
      });
    }

    it("still works after switching backends back and forth (setBackend reruns kernel setup)", async () => {
      await on("cpu", () => tf.ones([1]));
      const [g] = await on("wasm", () =>
        tf.grad((x: tf.Tensor) => tf.gather(x, tf.tensor1d([2, 2, 0], "int32")).sum())(tf.ones([3])),
      );
      assert.deepEqual(g, [1, 0, 2]);
    });
  });

  describe("registration", () => {
    it("replaces an existing kernel and restores it on unregister", async () => {
      unregisterWasmKernels();
      const stand_in: tf.KernelConfig = {
        kernelName: "UnsortedSegmentSum",
        backendName: "wasm",
        kernelFunc: () => {
          throw new Error("stand-in kernel");
        },
      };
      tf.registerKernel(stand_in);
      try {
        registerWasmKernels();
        registerWasmKernels(); // idempotent: must not take our own kernel for "the original"
        const [out] = await on("wasm", () => tf.unsortedSegmentSum(tf.tensor1d([1, 2]), tf.tensor1d([0, 0], "int32"), 1));
        assert.deepEqual(out, [3]);
        unregisterWasmKernels();
        assert.equal(tf.getKernel("UnsortedSegmentSum", "wasm"), stand_in);
      } finally {
        tf.unregisterKernel("UnsortedSegmentSum", "wasm");
        registerWasmKernels();
      }
    });
  });

  describe("gradient fixes (tfjs-core, every backend)", () => {
    after(() => registerGradientFixes());

    // f(x) = sum(where(x > 0, x², -3x)) has gradient where(x > 0, 2x, -3).
    const xs = [1.5, -2, 0.25, -0.5, 3, -1];
    const piecewise = (x: tf.Tensor) => tf.where(tf.greater(x, 0), x.square(), x.mul(-3)).sum();
    const expected = xs.map((v) => (v > 0 ? 2 * v : -3));

    it("without them, a mask computed from x and a broadcast matMul both break the gradient", async () => {
      unregisterGradientFixes();
      assert.equal(tf.getGradient("Greater"), undefined);
      await assert.rejects(on("cpu", () => tf.grad(piecewise)(tf.tensor1d(xs))), /gradient function not found for Greater/);
      await assert.rejects(
        on("wasm", () => tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.matMul(x, w).sum())([tf.ones([2, 3, 4]), tf.ones([4, 5])])),
        /gradient of input 'b' has shape '2,4,5', which does not match the shape of the input '4,5'/,
      );
    });

    it("with them, comparisons and logical ops pass a zero gradient (exact values)", async () => {
      const original = tf.getGradient("BatchMatMul");
      assert.deepEqual(registerGradientFixes(), [...gradientFixNames]);
      assert.deepEqual(registerGradientFixes(), [...gradientFixNames]); // idempotent
      for (const backend of ["cpu", "wasm"] as const) {
        assert.deepEqual(await on(backend, () => tf.grad(piecewise)(tf.tensor1d(xs))), [expected]);
        // Every comparison / logical kernel on the path from x: the mask is (x > 0) exactly.
        const mask = (x: tf.Tensor) =>
          tf.logicalOr(
            tf.logicalAnd(tf.greater(x, 0), tf.lessEqual(x, 100)),
            tf.logicalAnd(tf.logicalNot(tf.less(x, 0)), tf.notEqual(x, tf.scalar(0)).logicalAnd(tf.equal(x, x))),
          );
        const f = (x: tf.Tensor) => tf.where(mask(x), x.square(), x.mul(-3)).sum();
        assert.deepEqual(await on(backend, () => tf.grad(f)(tf.tensor1d(xs))), [expected]);
      }
      unregisterGradientFixes();
      assert.equal(tf.getGradient("BatchMatMul"), original);
      assert.equal(tf.getGradient("LogicalNot"), undefined);
      registerGradientFixes();
    });

    const matmuls: { what: string; a: number[]; b: number[]; tA?: boolean; tB?: boolean }[] = [
      { what: "[B,T,C] x [C,D]", a: [2, 3, 4], b: [4, 5] },
      { what: "[B,T,C] x [D,C]ᵀ", a: [2, 3, 4], b: [5, 4], tB: true },
      { what: "[B,C,T]ᵀ x [C,D]", a: [2, 4, 3], b: [4, 5], tA: true },
      { what: "[T,C] x [B,C,D]", a: [3, 4], b: [2, 4, 5] },
      { what: "[1,T,C] x [B,C,D]", a: [1, 3, 4], b: [2, 4, 5] },
    ];
    for (const m of matmuls) {
      it(`broadcast matMul gradient equals the sum of per-batch gradients: ${m.what}`, async () => {
        const av = randn(m.a.reduce((p, q) => p * q, 1));
        const bv = randn(m.b.reduce((p, q) => p * q, 1));
        const dyShape = await on("cpu", () => tf.matMul(tf.zeros(m.a), tf.zeros(m.b), m.tA, m.tB));
        const wv = randn(dyShape[0].length);
        const loss = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a, b, m.tA, m.tB).reshape([-1]).mul(wv).sum();
        // Reference without broadcasting: tile both inputs to the full batch, then sum the
        // tiled gradients back (what the gradient of a broadcast must equal).
        const batch = Math.max(m.a.length === 3 ? m.a[0] : 1, m.b.length === 3 ? m.b[0] : 1);
        const full = (t: tf.Tensor) => (t.rank === 2 ? tf.stack(Array(batch).fill(t)) : tf.tile(t, [batch / t.shape[0], 1, 1]));
        const ref = await on("cpu", () => {
          const [ga, gb] = tf.grads(loss)([full(tf.tensor(av, m.a)), full(tf.tensor(bv, m.b))]);
          const back = (g: tf.Tensor, shape: number[]) =>
            shape.length === 2 ? g.sum(0) : shape[0] === batch ? g : g.sum(0, true);
          return [back(ga, m.a), back(gb, m.b)];
        });
        for (const backend of ["cpu", "wasm"] as const) {
          const got = await on(backend, () => tf.grads(loss)([tf.tensor(av, m.a), tf.tensor(bv, m.b)]));
          assertClose(got, ref, 1e-4, `${m.what} on ${backend}`);
        }
      });
    }
  });

  describe("what a GPT training step needs (probe)", () => {
    before(() => {
      registerWasmKernels();
      registerGradientFixes();
    });

    // Each case: input shapes and a scalar loss. We compare the loss and its gradients
    // with respect to every input, cpu vs wasm; and list the kernels cpu ran for them.
    const range = (shape: number[]) => tf.range(0, shape.reduce((a, b) => a * b, 1)).reshape(shape).div(10);
    const gelu = (x: tf.Tensor) =>
      x.mul(0.5).mul(tf.tanh(x.add(x.mul(x).mul(x).mul(0.044715)).mul(Math.sqrt(2 / Math.PI))).add(1));
    const cases: [string, number[][], (...xs: tf.Tensor[]) => tf.Tensor][] = [
      ["gather", [[5, 3]], (x) => tf.gather(x, tf.tensor1d([0, 2, 2, 4], "int32")).mul(range([4, 3])).sum()],
      ["softmax", [[3, 5]], (x) => tf.softmax(x).mul(range([3, 5])).sum()],
      ["logSoftmax", [[3, 5]], (x) => tf.logSoftmax(x).mul(range([3, 5])).sum()],
      ["layer norm (moments, rsqrt)", [[4, 6], [6], [6]], (x, g, b) => {
        const { mean, variance } = tf.moments(x, -1, true);
        return x.sub(mean).mul(tf.rsqrt(variance.add(1e-5))).mul(g).add(b).mul(range([4, 6])).sum();
      }],
      ["gelu, tanh form with x*x*x", [[4, 6]], (x) => gelu(x).mul(range([4, 6])).sum()],
      ["gelu via pow and erf", [[4, 6]], (x) => tf.pow(x, 3).add(tf.erf(x)).mul(range([4, 6])).sum()],
      ["matMul", [[3, 4], [4, 5]], (a, b) => tf.matMul(a, b).mul(range([3, 5])).sum()],
      ["matMul transposeA", [[4, 3], [4, 5]], (a, b) => tf.matMul(a, b, true, false).mul(range([3, 5])).sum()],
      ["matMul transposeB", [[3, 4], [5, 4]], (a, b) => tf.matMul(a, b, false, true).mul(range([3, 5])).sum()],
      ["batched matMul [B,H,T,D]", [[2, 2, 3, 4], [2, 2, 3, 4]], (a, b) => tf.matMul(a, b, false, true).mul(range([2, 2, 3, 3])).sum()],
      ["concat/split/slice", [[2, 6], [2, 6]], (a, b) => {
        const [p, q, r] = tf.split(tf.concat([a, b], 1), 3, 1);
        return p.mul(q).sum().add(r.slice([0, 1], [2, 2]).sum());
      }],
      ["reshape/transpose (heads)", [[2, 3, 4]], (a) => a.reshape([2, 3, 2, 2]).transpose([0, 2, 1, 3]).reshape([2, 12]).mul(range([2, 12])).sum()],
      ["causal mask: bandPart, where, equal", [[4, 4]], (a) => {
        const mask = tf.linalg.bandPart(tf.ones([4, 4]), -1, 0);
        return tf.softmax(tf.where(mask.equal(1), a, tf.fill([4, 4], -1e9))).mul(range([4, 4])).sum();
      }],
      // Masks computed from the differentiated tensor need the comparison gradients of lib/core/kernels/gradients.
      ["where/greater/less", [[4, 5]], (a) => tf.where(tf.greater(a, 0.1), a.square(), tf.where(tf.less(a, -0.5), a.mul(-3), a)).sum()],
      ["broadcast matMul [B,T,C] x [C,D]", [[2, 3, 4], [4, 5]], (x, w) => tf.matMul(x, w).mul(range([2, 3, 5])).sum()],
      ["oneHot cross-entropy", [[6, 5]], (a) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([0, 4, 2, 2, 1, 3], "int32"), 5), a)],
      ["cumsum", [[3, 5]], (a) => tf.cumsum(a, 1).mul(range([3, 5])).sum()],
      ["maximum/minimum", [[3, 5], [3, 5]], (a, b) => tf.maximum(a, b).add(tf.minimum(a, b).mul(2)).mul(range([3, 5])).sum()],
      ["pow/sqrt/tanh/exp/log", [[3, 5]], (a) => {
        const p = a.abs().add(0.5);
        return tf.pow(p, 2.5).add(tf.sqrt(p)).add(tf.tanh(a)).add(tf.exp(a)).add(tf.log(p)).mul(range([3, 5])).sum();
      }],
      ["clipByValue", [[3, 5]], (a) => tf.clipByValue(a, -0.3, 0.7).mul(range([3, 5])).sum()],
      ["dropout-style mask", [[3, 5]], (a) => a.mul(tf.randomUniform([3, 5], 0, 1, "float32", 7).greaterEqual(0.3).cast("float32")).div(0.7).sum()],
      ["max/logSumExp/mean", [[3, 5]], (a) => a.max(1).sum().add(tf.logSumExp(a, 1).sum()).add(a.mean())],
      ["global-norm clip", [[3, 4]], (a) => a.mul(tf.minimum(1, tf.scalar(1).div(tf.sqrt(a.square().sum()))))
        .mul(range([3, 4])).sum()],
    ];

    const xsFor = (shapes: number[][]) => shapes.map((s) => randn(s.reduce((a, b) => a * b, 1)));

    it("every kernel these ops run on cpu is registered on wasm", async () => {
      await tf.setBackend("cpu");
      const used = new Set<string>();
      for (const [, shapes, f] of cases) {
        const xs = xsFor(shapes);
        const info = await tf.profile(() => {
          const ts = xs.map((x, i) => tf.tensor(x, shapes[i]));
          const gs = tf.grads((...t: tf.Tensor[]) => f(...t))(ts);
          return gs;
        });
        info.kernelNames.filter((k) => !k.endsWith("__op")).forEach((k) => used.add(k)); // "__op": custom-gradient wrappers, not kernels
        tf.disposeVariables();
      }
      const missing = [...used].filter((k) => tf.getKernel(k, "wasm") === undefined);
      assert.deepEqual(missing, []);
      assert.ok(used.has("UnsortedSegmentSum") && used.size > 40, `probe ran ${used.size} kernels`);
    });

    for (const [what, shapes, f] of cases) {
      it(`forward and gradients match cpu: ${what}`, async () => {
        const xs = xsFor(shapes);
        await sameOnBoth(what, () => {
          const ts = xs.map((x, i) => tf.tensor(x, shapes[i]));
          return [f(...ts), ...tf.grads((...t: tf.Tensor[]) => f(...t))(ts)];
        });
      });
    }

    it("tf.train.adam and a hand-written AdamW step give the same weights as on cpu", async () => {
      const w0 = randn(12);
      const e0 = randn(20);
      const ids = [0, 1, 1, 4];
      const train = () => {
        const w = tf.variable(tf.tensor2d(w0, [4, 3]));
        const emb = tf.variable(tf.tensor2d(e0, [5, 4]));
        const loss = () => tf.matMul(tf.gather(emb, tf.tensor1d(ids, "int32")), w).square().mean() as tf.Scalar;
        const adam = tf.train.adam(0.01);
        for (let i = 0; i < 3; i++) adam.minimize(loss);
        // AdamW by hand: decoupled weight decay, bias-corrected moments, variables updated with assign.
        const m = tf.variable(tf.zerosLike(w));
        const v = tf.variable(tf.zerosLike(w));
        for (let t = 1; t <= 3; t++) {
          tf.tidy(() => {
            const g = tf.variableGrads(loss, [w]).grads[w.name];
            m.assign(m.mul(0.9).add(g.mul(0.1)));
            v.assign(v.mul(0.999).add(g.square().mul(0.001)));
            const update = m.div(1 - 0.9 ** t).div(v.div(1 - 0.999 ** t).sqrt().add(1e-8));
            w.assign(w.sub(update.add(w.mul(0.1)).mul(0.01)));
          });
        }
        const out = [w.clone(), emb.clone()];
        adam.dispose();
        [w, emb, m, v].forEach((t) => t.dispose());
        return out;
      };
      await sameOnBoth("adam + adamW", train);
    });
  });
});
