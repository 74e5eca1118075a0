import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { loadOnnxRuntime, onnxRuntimeKernels, setOnnxRuntimeKernels } from "../../../lib/core/kernels/onnxruntime";
import { columnSumCounts, leadingAxes, restoreWasmSum, sumWasmConfig, useFastWasmSum, type WasmSumEngine } from "../../../lib/core/kernels/sum";

type Case = { name: string; run: () => tf.Tensor };

const seq = (shape: number[], dtype: "float32" | "int32" = "float32") =>
  tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (dtype === "int32" ? i % 7 : Math.sin(i) * 3)), shape, dtype);

const cases: Case[] = [
  { name: "axis 0 of [768, 128] (a bias gradient)", run: () => tf.sum(seq([768, 128]), 0) },
  { name: "axis 0 of [11, 7] (rows not a multiple of 4)", run: () => tf.sum(seq([11, 7]), 0) },
  { name: "axis 0 keepDims", run: () => tf.sum(seq([5, 3]), 0, true) },
  { name: "axes [0, 1] of [4, 6, 5] (LayerNorm weight gradient of [B, T, C])", run: () => tf.sum(seq([4, 6, 5]), [0, 1]) },
  { name: "axes [1, 0] (order does not matter)", run: () => tf.sum(seq([4, 6, 5]), [1, 0]) },
  { name: "axis -2 of a 2-D tensor", run: () => tf.sum(seq([7, 9]), -2) },
  { name: "last axis (original kernel)", run: () => tf.sum(seq([6, 5]), 1) },
  { name: "all axes (original kernel)", run: () => tf.sum(seq([6, 5])) },
  { name: "middle axis (original kernel)", run: () => tf.sum(seq([3, 4, 5]), 1) },
  { name: "int32 axis 0 (original kernel)", run: () => tf.sum(seq([6, 5], "int32"), 0) },
  { name: "1-D", run: () => tf.sum(seq([10]), 0) },
  { name: "empty rows", run: () => tf.sum(tf.zeros([0, 4]), 0) },
  { name: "gradient through a bias add", run: () => tf.grad((b: tf.Tensor) => tf.sum(tf.mul(tf.add(seq([8, 3]), b), seq([8, 3]))))(tf.zeros([3])) },
];

function values(c: Case) {
  const t = c.run();
  const out = { shape: t.shape, dtype: t.dtype as string, values: Array.from(t.dataSync() as ArrayLike<number>) };
  t.dispose();
  return out;
}

describe("wasm Sum over leading axes", function () {
  this.timeout(60000);
  const expected = new Map<string, ReturnType<typeof values>>();
  let wasInstalled = false;

  before(async () => {
    assert.ok(await tf.setBackend("cpu"));
    for (const c of cases) expected.set(c.name, values(c));
    wasInstalled = tf.getKernel("Sum", "wasm")?.kernelFunc === sumWasmConfig.kernelFunc;
    ortBefore = onnxRuntimeKernels();
    assert.ok(await tf.setBackend("wasm"));
  });
  let ortBefore = false;
  after(() => {
    if (wasInstalled) useFastWasmSum();
    else restoreWasmSum();
    setOnnxRuntimeKernels(ortBefore);
  });

  it("leadingAxes recognises 0..k-1 only", () => {
    assert.equal(leadingAxes([0], 2), 1);
    assert.equal(leadingAxes([1, 0], 3), 2);
    assert.equal(leadingAxes([0, 1], 2), 0); // all axes: the original
    assert.equal(leadingAxes([1], 3), 0);
    assert.equal(leadingAxes([0, 2], 3), 0);
  });

  const kernels: (["original", null] | ["course", WasmSumEngine])[] = [["original", null], ["course", "js"], ["course", "onnxruntime"]];
  for (const [kernel, engine] of kernels) {
    it(`${kernel} kernel${engine ? ` (${engine})` : ""}: the cpu backend's values, shapes and dtypes`, function () {
      if (engine === "onnxruntime" && loadOnnxRuntime() !== undefined) this.skip(); // optional package absent
      if (kernel === "course") {
        useFastWasmSum();
        setOnnxRuntimeKernels(engine === "onnxruntime");
      } else {
        restoreWasmSum();
      }
      const before = columnSumCounts();
      for (const c of cases) {
        // tfjs's own wasm Sum returns uninitialised memory for an empty input (whatever was there before).
        if (kernel === "original" && c.name === "empty rows") continue;
        const got = values(c);
        const want = expected.get(c.name)!;
        assert.deepEqual(got.shape, want.shape, c.name);
        assert.equal(got.dtype, want.dtype, c.name);
        got.values.forEach((v, i) => assert.ok(Math.abs(v - want.values[i]) <= 1e-4 * Math.max(1, Math.abs(want.values[i])), `${c.name}[${i}]: ${v} vs ${want.values[i]}`));
      }
      if (engine !== null) assert.ok(columnSumCounts()[engine] > before[engine], `the ${engine} engine computed the column sums`);
    });
  }

  it("no tensor leak", () => {
    useFastWasmSum();
    const x = seq([16, 8]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.sum(x, 0).dispose();
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  });
});
