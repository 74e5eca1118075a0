import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { gatherWasmConfig, restoreWasmGather, useFastWasmGather } from "../../../lib/core/kernels/gather";
import { unsortedSegmentSumWasmConfig } from "../../../lib/core/kernels/unsortedSegmentSum";

/** A deterministic pseudo-random stream (the same on every backend). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

type Dtype = "float32" | "int32" | "bool";
type Case = { name: string; x: number[]; dtype?: Dtype; idx: number[]; max?: number; axis?: number; batchDims?: number; ids?: number[] };

/** x: random values of the case's dtype; indices: `ids` or random in [0, max) (max = x.shape[axis]). */
function inputs(c: Case, seed = 1): [tf.Tensor, tf.Tensor] {
  const r = rng(seed);
  const dtype = c.dtype ?? "float32";
  const xs = Array.from({ length: size(c.x) }, () =>
    dtype === "float32" ? r() * 4 - 2 : dtype === "int32" ? Math.floor(r() * 2000) - 1000 : Number(r() < 0.5));
  const axis = (c.axis ?? 0) < 0 ? c.x.length + (c.axis ?? 0) : c.axis ?? 0;
  const max = c.max ?? c.x[axis];
  const ids = c.ids ?? Array.from({ length: size(c.idx) }, () => Math.floor(r() * max));
  return [tf.tensor(xs, c.x, dtype), tf.tensor(ids, c.idx, "int32")];
}

const cases: Case[] = [
  { name: "embedding lookup, repeated rows", x: [7, 5], idx: [12] },
  { name: "explicit repeats", x: [4, 3], idx: [6], ids: [3, 3, 0, 3, 1, 0] },
  { name: "wide rows (GPT-like)", x: [120, 64], idx: [300] },
  { name: "1-D x", x: [10], idx: [7] },
  { name: "scalar index", x: [6, 4], idx: [] },
  { name: "scalar index into 1-D", x: [6], idx: [] },
  { name: "2-D indices", x: [9, 5], idx: [3, 4] },
  { name: "3-D indices", x: [9, 18], idx: [2, 3, 2] },
  { name: "axis 1 (short slice)", x: [7, 5], idx: [4], axis: 1 },
  { name: "axis -1", x: [4, 6], idx: [3], axis: -1 },
  { name: "axis 1 of 3-D, short slice", x: [4, 6, 3], idx: [5], axis: 1 },
  { name: "axis 1 of 3-D, long slice", x: [4, 6, 20], idx: [5], axis: 1 },
  { name: "axis 2 of 3-D, 2-D indices", x: [3, 4, 5], idx: [2, 3], axis: 2 },
  { name: "axis 1 of 4-D, long slice", x: [2, 5, 4, 8], idx: [3, 2], axis: 1 },
  { name: "batchDims 1, axis 1", x: [3, 5, 4], idx: [3, 2], axis: 1, batchDims: 1 },
  { name: "batchDims 1, axis 1, long slice", x: [3, 5, 20], idx: [3, 4], axis: 1, batchDims: 1 },
  { name: "batchDims 1, axis 2", x: [3, 4, 5], idx: [3, 2], axis: 2, batchDims: 1 },
  { name: "batchDims 1, axis 2, long slice", x: [2, 3, 4, 17], idx: [2, 5], axis: 2, batchDims: 1 },
  { name: "batchDims 2", x: [2, 3, 5, 4], idx: [2, 3, 4], axis: 2, batchDims: 2 },
  { name: "batchDims -1", x: [3, 5, 4], idx: [3, 6], axis: 1, batchDims: -1 },
  { name: "int32 x", x: [8, 6], dtype: "int32", idx: [10] },
  { name: "int32 x axis 1", x: [3, 8, 2], dtype: "int32", idx: [4], axis: 1 },
  { name: "int32 x long slice, 2-D indices", x: [5, 40], dtype: "int32", idx: [2, 3] },
  { name: "bool x", x: [6, 3], dtype: "bool", idx: [5] },
  { name: "bool x axis 1", x: [2, 7, 17], dtype: "bool", idx: [4], axis: 1 },
  { name: "empty indices", x: [5, 4], idx: [0] },
  { name: "empty 2-D indices", x: [5, 4], idx: [2, 0] },
  { name: "empty indices, axis 1", x: [5, 4], idx: [0], axis: 1 },
  { name: "empty slice", x: [5, 0], idx: [3] },
  { name: "empty outer", x: [0, 5], idx: [2], axis: 1 },
  { name: "big random", x: [1000, 33], idx: [4096] },
];

type Result = { shape: number[]; dtype: string; values: unknown[] };

function gatherResult(c: Case): Result {
  const [x, idx] = inputs(c);
  const y = tf.gather(x, idx, c.axis ?? 0, c.batchDims ?? 0);
  const r = { shape: y.shape, dtype: y.dtype as string, values: Array.from(y.dataSync() as ArrayLike<unknown>) };
  tf.dispose([x, idx, y]);
  return r;
}

/**
 * Cases whose gradient we compare: float32, batchDims 0 or 1 (what tfjs's gather gradient
 * handles), and not "big random" (the cpu UnsortedSegmentSum takes ~40 s on it).
 */
const gradCases = cases.filter((c) =>
  (c.dtype ?? "float32") === "float32" && [0, 1].includes(c.batchDims ?? 0) && c.name !== "big random");

/** Gradient of sum(gather(x, idx) * w) with respect to x. */
function gradResult(c: Case): number[] {
  const g = tf.tidy(() => {
    const [x, idx] = inputs(c);
    const w = inputs({ ...c, x: tf.gather(x, idx, c.axis ?? 0, c.batchDims ?? 0).shape, dtype: "float32" }, 7)[0];
    return tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx, c.axis ?? 0, c.batchDims ?? 0), w)))(x);
  });
  const values = Array.from(g.dataSync());
  g.dispose();
  return values;
}

/** The error a call throws (its message), or "no error". */
function errorOf(f: () => unknown): string {
  try {
    tf.tidy(() => { f(); });
    return "no error";
  } catch (e) {
    return (e as Error).message;
  }
}

const badCalls: { name: string; run: () => unknown }[] = [
  { name: "index too big", run: () => tf.gather(tf.zeros([5, 3]), tf.tensor1d([0, 4, 5], "int32")) },
  { name: "negative index", run: () => tf.gather(tf.zeros([5, 3]), tf.tensor1d([1, -1], "int32")) },
  { name: "too big on axis 1", run: () => tf.gather(tf.zeros([5, 3]), tf.tensor1d([3], "int32"), 1) },
  { name: "any index into an empty axis", run: () => tf.gather(tf.zeros([0, 3]), tf.tensor1d([0], "int32")) },
  { name: "batch shapes differ", run: () => tf.gather(tf.zeros([3, 4]), tf.zeros([2, 2], "int32"), 1, 1) },
  { name: "axis below batchDims", run: () => tf.gather(tf.zeros([3, 4]), tf.zeros([3, 2], "int32"), 0, 1) },
];

describe("wasm GatherV2 that copies whole rows", function () {
  this.timeout(120000);
  const expected = new Map<string, Result>();
  const expectedGrads = new Map<string, number[]>();
  const expectedErrors = new Map<string, string>();
  let wasInstalled = false;
  let addedSegmentSum = false; // the gradient of gather needs UnsortedSegmentSum, missing on wasm

  before(async () => {
    assert.ok(await tf.setBackend("cpu"));
    for (const c of cases) expected.set(c.name, gatherResult(c)); // the reference: tfjs's cpu kernels
    for (const c of gradCases) expectedGrads.set(c.name, gradResult(c));
    for (const b of badCalls) expectedErrors.set(b.name, errorOf(b.run));
    assert.ok(await tf.setBackend("wasm"));
    wasInstalled = tf.getKernel("GatherV2", "wasm")?.kernelFunc === gatherWasmConfig.kernelFunc;
    useFastWasmGather();
    if (tf.getKernel("UnsortedSegmentSum", "wasm") === undefined) {
      tf.registerKernel(unsortedSegmentSumWasmConfig);
      addedSegmentSum = true;
    }
  });
  // Leave the kernels as this file found them (other test files share the registry).
  after(() => {
    if (wasInstalled) useFastWasmGather();
    else restoreWasmGather();
    if (addedSegmentSum) tf.unregisterKernel("UnsortedSegmentSum", "wasm");
  });

  const close = (x: number[], y: number[], what: string) => {
    assert.equal(x.length, y.length, what);
    const d = x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    assert.ok(d < 1e-5, `${what}: max |diff| ${d}`);
  };

  it("gives the cpu backend's shapes, dtypes and values (exactly)", () => {
    assert.equal(tf.getKernel("GatherV2", "wasm")?.kernelFunc, gatherWasmConfig.kernelFunc);
    for (const c of cases) assert.deepEqual(gatherResult(c), expected.get(c.name), c.name);
  });

  it("gives tf.gather's gradient (sum(gather(x, idx) * w) with respect to x)", () => {
    assert.ok(gradCases.length >= 10);
    for (const c of gradCases) close(gradResult(c), expectedGrads.get(c.name)!, c.name);
  });

  it("throws the cpu backend's errors for bad indices and shapes", () => {
    for (const b of badCalls) {
      const want = expectedErrors.get(b.name)!;
      assert.notEqual(want, "no error", b.name);
      assert.equal(errorOf(b.run), want, b.name);
    }
    assert.match(expectedErrors.get("index too big")!, /GatherV2: the index value 5 is not in \[0, 4\]/);
  });

  it("leaks no tensors and no wasm memory over many calls", () => {
    const backend = tf.backend() as unknown as { numDataIds(): number; wasm: { HEAPU8: Uint8Array } };
    // One case per code path: indices as row numbers, row-number table + GatherNd, element loop, empty.
    const paths = ["big random", "axis 1 of 3-D, long slice", "axis 1 of 3-D, short slice", "empty indices"]
      .map((n) => cases.find((c) => c.name === n)!);
    const data = paths.map((c) => inputs(c));
    const run = () => paths.forEach((c, i) => tf.gather(data[i][0], data[i][1], c.axis ?? 0).dispose());
    for (let i = 0; i < 5; i++) run();
    const tensors = tf.memory().numTensors, ids = backend.numDataIds(), heap = backend.wasm.HEAPU8.length;
    for (let i = 0; i < 200; i++) run();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(backend.numDataIds(), ids);
    assert.equal(backend.wasm.HEAPU8.length, heap);
    // A failed call leaks nothing either.
    for (let i = 0; i < 3; i++) errorOf(() => tf.gather(data[0][0], tf.tensor1d([0, 5000], "int32")));
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(backend.numDataIds(), ids);
    tf.dispose(data.flat());
  });

  it("restores tfjs's kernel, which gives the same results, and installs again (idempotent)", () => {
    restoreWasmGather();
    assert.notEqual(tf.getKernel("GatherV2", "wasm")?.kernelFunc, gatherWasmConfig.kernelFunc);
    restoreWasmGather(); // idempotent
    for (const c of cases.slice(0, 8)) assert.deepEqual(gatherResult(c), expected.get(c.name), `original: ${c.name}`);
    useFastWasmGather();
    useFastWasmGather();
    assert.equal(tf.getKernel("GatherV2", "wasm")?.kernelFunc, gatherWasmConfig.kernelFunc);
    for (const c of cases.slice(0, 8)) assert.deepEqual(gatherResult(c), expected.get(c.name), c.name);
  });
});
