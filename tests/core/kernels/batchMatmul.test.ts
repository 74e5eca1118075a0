import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { batchMatMulWasmConfig, restoreWasmMatMul, useFastWasmMatMul } from "../../../lib/core/kernels/batchMatmul";

/** noGrad: tfjs's own matMul gradient rejects broadcast batch dims (on every backend). */
type Case = { name: string; a: number[]; b: number[]; ta?: boolean; tb?: boolean; noGrad?: boolean };
const cases: Case[] = [
  { name: "2-D", a: [5, 3], b: [3, 4] },
  { name: "2-D transposeB", a: [5, 3], b: [4, 3], tb: true },
  { name: "2-D transposeA", a: [3, 5], b: [3, 4], ta: true },
  { name: "2-D both", a: [3, 5], b: [4, 3], ta: true, tb: true },
  { name: "batched", a: [6, 5, 3], b: [6, 3, 4] },
  { name: "batched transposeB", a: [2, 3, 5, 7], b: [2, 3, 4, 7], tb: true },
  { name: "batched transposeA", a: [4, 7, 5], b: [4, 7, 2], ta: true },
  { name: "a broadcast (batch 1)", a: [1, 5, 3], b: [6, 3, 4], noGrad: true },
  { name: "b broadcast (rank 2)", a: [2, 6, 5, 3], b: [3, 4], noGrad: true },
  { name: "b broadcast transposeB", a: [6, 5, 3], b: [4, 3], tb: true, noGrad: true },
  { name: "general broadcast (fallback)", a: [2, 1, 5, 3], b: [1, 3, 3, 4], noGrad: true },
  { name: "empty (fallback)", a: [2, 0, 3], b: [2, 3, 4], noGrad: true },
  { name: "big transposeB", a: [70, 90], b: [60, 90], tb: true },
];

function inputs(c: Case): [tf.Tensor, tf.Tensor] {
  const fill = (shape: number[], s: number) =>
    tf.tensor(Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, i) => Math.sin(i * 0.37 + s)), shape);
  return [fill(c.a, 1), fill(c.b, 2)];
}

function run(c: Case): { shape: number[]; values: number[] } {
  return tf.tidy(() => {
    const [a, b] = inputs(c);
    const y = tf.matMul(a, b, c.ta, c.tb);
    return { shape: y.shape, values: Array.from(y.dataSync()) };
  }) as unknown as { shape: number[]; values: number[] };
}

describe("wasm BatchMatMul with the fast path for transposed and batched products", function () {
  this.timeout(60000);
  const expected = new Map<string, { shape: number[]; values: number[] }>();
  const expectedGrads = new Map<string, number[][]>();
  let wasInstalled = false;

  const grads = (c: Case) => tf.tidy(() => {
    const [a, b] = inputs(c);
    return tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.sin(tf.matMul(x, y, c.ta, c.tb))))([a, b]).map((g) => Array.from(g.dataSync()));
  }) as unknown as number[][];

  before(async () => {
    assert.ok(await tf.setBackend("cpu"));
    for (const c of cases) {
      const r = tf.tidy(() => { const [a, b] = inputs(c); const y = tf.matMul(a, b, c.ta, c.tb); return { shape: y.shape, values: Array.from(y.dataSync()) }; }) as unknown as { shape: number[]; values: number[] };
      expected.set(c.name, r);
      if (!c.noGrad) expectedGrads.set(c.name, grads(c));
    }
    assert.ok(await tf.setBackend("wasm"));
    wasInstalled = tf.getKernel("BatchMatMul", "wasm")?.kernelFunc === batchMatMulWasmConfig.kernelFunc;
    useFastWasmMatMul();
  });
  after(() => (wasInstalled ? useFastWasmMatMul() : restoreWasmMatMul()));

  const close = (x: number[], y: number[], what: string) => {
    assert.equal(x.length, y.length, what);
    const d = x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    assert.ok(d < 1e-4, `${what}: max |diff| ${d}`);
  };

  it("equals the cpu backend in shapes and values", () => {
    assert.equal(tf.getKernel("BatchMatMul", "wasm")?.kernelFunc, batchMatMulWasmConfig.kernelFunc);
    for (const c of cases) {
      const r = run(c), e = expected.get(c.name)!;
      assert.deepEqual(r.shape, e.shape, c.name);
      close(r.values, e.values, c.name);
    }
  });

  it("gives tf.matMul's gradients", () => {
    for (const c of cases) {
      if (c.noGrad) continue;
      grads(c).forEach((g, i) => close(g, expectedGrads.get(c.name)![i], `${c.name} grad ${i}`));
    }
  });

  it("leaks neither tensors nor wasm memory", () => {
    const [a, b] = inputs(cases[5]);
    const loop = () => { for (let i = 0; i < 50; i++) tf.tidy(() => tf.matMul(a, b, false, true).dataSync()); };
    loop();
    const before = tf.memory();
    loop();
    const after = tf.memory();
    assert.equal(after.numTensors, before.numTensors);
    assert.equal(after.numBytes, before.numBytes);
    tf.dispose([a, b]);
  });

  it("restores the original kernel", () => {
    restoreWasmMatMul();
    assert.notEqual(tf.getKernel("BatchMatMul", "wasm")?.kernelFunc, batchMatMulWasmConfig.kernelFunc);
    for (const c of cases.slice(0, 6)) close(run(c).values, expected.get(c.name)!.values, `original: ${c.name}`);
    useFastWasmMatMul();
  });
});
