import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { restoreWasmSlicing, sliceWasmConfigs, useFastWasmSlicing } from "../../../lib/core/kernels/slice";

type Case = { name: string; run: () => tf.Tensor | tf.Tensor[] };

/** Values (and shapes) of every result, as plain data. */
function results(c: Case): { shape: number[]; dtype: string; values: unknown[] }[] {
  const r = c.run();
  const ts = Array.isArray(r) ? r : [r];
  const out = ts.map((t) => ({ shape: t.shape, dtype: t.dtype as string, values: Array.from(t.dataSync() as ArrayLike<unknown>) }));
  tf.dispose(ts);
  return out;
}

const seq = (shape: number[], dtype: "float32" | "int32" = "float32") =>
  tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (dtype === "int32" ? i : i * 0.5 - 3)), shape, dtype);

const cases: Case[] = [
  { name: "slice 1-D", run: () => tf.slice(seq([10]), [3], [4]) },
  { name: "slice 2-D rows (contiguous)", run: () => tf.slice(seq([6, 5]), [2, 0], [3, 5]) },
  { name: "slice 2-D columns", run: () => tf.slice(seq([6, 5]), [1, 2], [4, 2]) },
  { name: "slice 3-D middle", run: () => tf.slice(seq([4, 5, 6]), [1, 2, 3], [2, 2, 2]) },
  { name: "slice 3-D size -1", run: () => tf.slice(seq([4, 5, 6]), [1, 0, 2], [-1, 3, -1]) },
  { name: "slice 4-D", run: () => tf.slice(seq([3, 4, 5, 2]), [1, 1, 0, 1], [2, 2, 5, 1]) },
  { name: "slice 5-D", run: () => tf.slice(seq([2, 3, 2, 4, 3]), [0, 1, 1, 1, 0], [2, 2, 1, 3, 2]) },
  { name: "slice 6-D", run: () => tf.slice(seq([2, 2, 2, 2, 3, 2]), [1, 0, 1, 0, 1, 1], [1, 2, 1, 2, 2, 1]) },
  { name: "slice empty", run: () => tf.slice(seq([4, 5]), [1, 1], [0, 3]) },
  { name: "slice int32", run: () => tf.slice(seq([5, 4], "int32"), [1, 1], [3, 2]) },
  { name: "slice bool", run: () => tf.slice(tf.tensor2d([[true, false, true], [false, true, true]], [2, 3], "bool"), [0, 1], [2, 2]) },
  { name: "slice scalar-like", run: () => tf.slice(seq([1]), [0], [1]) },
  { name: "split axis 0 in 3", run: () => tf.split(seq([6, 4]), 3, 0) },
  { name: "split axis 1 sizes", run: () => tf.split(seq([3, 7]), [2, 4, 1], 1) },
  { name: "split 4-D axis 2 with -1", run: () => tf.split(seq([2, 3, 6, 2]), [1, -1, 2], 2) },
  { name: "split axis -1", run: () => tf.split(seq([2, 8]), 4, -1) },
  { name: "unstack axis 0", run: () => tf.unstack(seq([4, 3, 2])) },
  { name: "unstack axis 1", run: () => tf.unstack(seq([4, 3, 2]), 1) },
  { name: "unstack axis 2 int32", run: () => tf.unstack(seq([4, 3, 2], "int32"), 2) },
  { name: "unstack axis -1", run: () => tf.unstack(seq([2, 5]), -1) },
  { name: "concat axis 1 (the gradient of a q|k|v split)", run: () => tf.concat([seq([4, 3]), seq([4, 2]), seq([4, 3])], 1) },
  { name: "concat axis 0", run: () => tf.concat([seq([2, 3]), seq([1, 3])], 0) },
  { name: "concat 3-D axis -1", run: () => tf.concat([seq([2, 3, 2]), seq([2, 3, 1])], -1) },
  { name: "concat 3-D axis 1 int32", run: () => tf.concat([seq([2, 1, 2], "int32"), seq([2, 3, 2], "int32")], 1) },
  { name: "concat bool", run: () => tf.concat([tf.tensor2d([[true], [false]], [2, 1], "bool"), tf.tensor2d([[false, true], [true, true]], [2, 2], "bool")], 1) },
  { name: "concat with an empty input", run: () => tf.concat([seq([2, 0]), seq([2, 3]), seq([2, 1])], 1) },
  { name: "concat one input", run: () => tf.concat([seq([2, 3])], 1) },
  { name: "concat 1-D", run: () => tf.concat([seq([3]), seq([2])]) },
];

describe("wasm Slice / SplitV / Unpack / Concat that copy only what they return", function () {
  this.timeout(60000);
  const expected = new Map<string, ReturnType<typeof results>>();

  before(async () => {
    assert.ok(await tf.setBackend("cpu"));
    for (const c of cases) expected.set(c.name, results(c)); // the reference: tfjs's cpu kernels
    wasInstalled = tf.getKernel("Slice", "wasm")?.kernelFunc === sliceWasmConfigs[0].kernelFunc;
    assert.ok(await tf.setBackend("wasm"));
  });

  let wasInstalled = false;
  // Leave the kernels as this file found them (other test files share the registry).
  after(() => (wasInstalled ? useFastWasmSlicing() : restoreWasmSlicing()));

  it("tfjs's original wasm kernels give the cpu results (the reference is sound)", () => {
    restoreWasmSlicing();
    for (const k of sliceWasmConfigs) assert.notEqual(tf.getKernel(k.kernelName, "wasm")?.kernelFunc, k.kernelFunc);
    for (const c of cases) assert.deepEqual(results(c), expected.get(c.name), c.name);
  });

  it("ours give the same shapes, dtypes and values", () => {
    useFastWasmSlicing();
    for (const k of sliceWasmConfigs) assert.equal(tf.getKernel(k.kernelName, "wasm")?.kernelFunc, k.kernelFunc);
    for (const c of cases) assert.deepEqual(results(c), expected.get(c.name), c.name);
    useFastWasmSlicing(); // idempotent
    for (const c of cases.slice(0, 3)) assert.deepEqual(results(c), expected.get(c.name), c.name);
  });

  it("still slice string tensors (through the original kernel) and keep gradients", () => {
    useFastWasmSlicing();
    tf.tidy(() => {
      assert.deepEqual(tf.slice(tf.tensor1d(["a", "b", "c", "d"]), [1], [2]).arraySync(), ["b", "c"]);
      const x = seq([3, 4]);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.slice(t, [1, 1], [2, 2]), 2)))(x);
      assert.deepEqual(g.arraySync(), [[0, 0, 0, 0], [0, 2, 2, 0], [0, 2, 2, 0]]);
      const parts = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(tf.unstack(t)[1], 3)))([x]);
      assert.deepEqual(parts[0].arraySync(), [[0, 0, 0, 0], [3, 3, 3, 3], [0, 0, 0, 0]]);
      assert.deepEqual(tf.concat([tf.tensor1d(["a"]), tf.tensor1d(["b", "c"])]).arraySync(), ["a", "b", "c"]);
      const dSplit = tf.grad((t: tf.Tensor) => { const [a, b] = tf.split(t, [1, 3], 1); return tf.add(tf.sum(tf.mul(a, 2)), tf.sum(tf.mul(b, 5))); })(x);
      assert.deepEqual(dSplit.arraySync(), [[2, 5, 5, 5], [2, 5, 5, 5], [2, 5, 5, 5]]); // a split's gradient is a concat
    });
  });

  it("leaks no tensors", () => {
    useFastWasmSlicing();
    const x = seq([4, 6]);
    const run = () => tf.dispose([...tf.split(x, 2, 1), ...tf.unstack(x), tf.slice(x, [1, 1], [2, 2]), tf.concat([x, x], 1)]);
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  });
});
