import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { backendInfo, initBackend, resetBackendChoice } from "../../../lib/core/backend";
import {
  batchMatMulWasmConfig, loadOnnxRuntime, MIN_ORT_MACS, ortBatchMatMulWasmConfig, ortMatMulCounts,
  registerGradientFixes, unregisterWasmKernels, wasmKernelsRegistered,
} from "../../../lib/core/kernels";
import { installKernel, kernelInstalled, restoreKernel } from "../../../lib/core/kernels/registry";

/** ort: whether the product should run in onnxruntime (false: handed to the XNNPACK kernel). */
type Case = { name: string; a: number[]; b: number[]; ta?: boolean; tb?: boolean; ort: boolean; noGrad?: boolean };
const cases: Case[] = [
  // Untransposed 2-D products run in ORT only from MIN_ORT_MACS multiply-adds on: 96·128·160 ≈ 2M.
  { name: "2-D", a: [96, 128], b: [128, 160], ort: true },
  { name: "2-D small (XNNPACK)", a: [5, 3], b: [3, 4], ort: false },
  { name: "2-D transposeA", a: [30, 40], b: [30, 20], ta: true, ort: true },
  { name: "2-D transposeB", a: [40, 30], b: [20, 30], tb: true, ort: true },
  { name: "2-D both", a: [30, 40], b: [20, 30], ta: true, tb: true, ort: true },
  { name: "linear layer dW = Xᵀ·dY", a: [192, 64], b: [192, 96], ta: true, ort: true },
  // Attention, [B·H, T, D]: scores q·kᵀ, att·v, and the transposed products of their gradients.
  { name: "attention q·kᵀ", a: [12, 16, 8], b: [12, 16, 8], tb: true, ort: true },
  { name: "attention att·v", a: [12, 16, 16], b: [12, 16, 8], ort: true },
  { name: "attention attᵀ·dy", a: [12, 16, 16], b: [12, 16, 8], ta: true, ort: true },
  { name: "batched both", a: [4, 7, 5], b: [4, 6, 7], ta: true, tb: true, ort: true },
  { name: "rank 4 [B, H, T, D]", a: [2, 3, 16, 8], b: [2, 3, 16, 8], tb: true, ort: true },
  { name: "a broadcast (batch 1)", a: [1, 5, 3], b: [6, 3, 4], ort: true },
  { name: "a 2-D, b batched", a: [5, 3], b: [6, 3, 4], ort: true },
  { name: "b 2-D (one GEMM)", a: [2, 6, 5, 3], b: [3, 4], ort: true },
  { name: "b 2-D transposeB", a: [6, 5, 3], b: [4, 3], tb: true, ort: true },
  { name: "b 2-D transposeA", a: [6, 3, 5], b: [3, 4], ta: true, ort: true },
  { name: "a rank 4 of ones", a: [1, 1, 5, 3], b: [6, 3, 4], ort: true },
  { name: "general broadcast (XNNPACK)", a: [2, 1, 5, 3], b: [1, 3, 3, 4], ort: false, noGrad: true },
  { name: "empty (XNNPACK)", a: [2, 0, 3], b: [2, 3, 4], ort: false, noGrad: true },
];

type Result = { shape: number[]; values: Float32Array };

/** Random inputs, the same on every backend (made on cpu, copied as numbers). */
const data = new Map<string, [Float32Array, Float32Array]>();
function inputs(c: Case): [tf.Tensor, tf.Tensor] {
  const [a, b] = data.get(c.name)!;
  return [tf.tensor(a, c.a), tf.tensor(b, c.b)];
}

function product(c: Case): Result {
  return tf.tidy(() => {
    const [a, b] = inputs(c);
    const y = tf.matMul(a, b, c.ta, c.tb);
    return { shape: y.shape, values: y.dataSync() as Float32Array };
  });
}

function grads(c: Case): Float32Array[] {
  return tf.tidy(() => {
    const [a, b] = inputs(c);
    const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.sin(tf.matMul(x, y, c.ta, c.tb)));
    return tf.grads(f)([a, b]).map((g) => g.dataSync() as Float32Array);
  });
}

/** Max |difference| relative to the reference's largest magnitude (products sum up to 192 terms). */
function close(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, what);
  let diff = 0, scale = 1;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  assert.ok(diff <= 2e-5 * scale, `${what}: max |diff| ${diff} (scale ${scale})`);
}

describe("wasm BatchMatMul in onnxruntime (lib/core/kernels/ortMatMul.ts)", function () {
  this.timeout(120000);
  const expected = new Map<string, Result>();
  const expectedGrads = new Map<string, Float32Array[]>();
  let wasInstalled = false;

  before(async function () {
    const why = loadOnnxRuntime();
    if (why !== undefined) {
      console.log(`      skipped: ${why}`); // mocha's skip() takes no reason
      this.skip();
    }
    // The broadcast-safe matMul gradient (as initBackend registers) for the broadcast cases.
    registerGradientFixes();
    assert.ok(await tf.setBackend("cpu"));
    let seed = 1;
    for (const c of cases) {
      data.set(c.name, tf.tidy(() => [c.a, c.b].map((s) => tf.randomNormal(s, 0, 1, "float32", seed++).dataSync() as Float32Array)) as [Float32Array, Float32Array]);
      expected.set(c.name, product(c));
      if (!c.noGrad) expectedGrads.set(c.name, grads(c));
    }
    assert.ok(await tf.setBackend("wasm"));
    wasInstalled = kernelInstalled(ortBatchMatMulWasmConfig);
    installKernel(ortBatchMatMulWasmConfig);
  });
  after(() => (wasInstalled ? installKernel(ortBatchMatMulWasmConfig) : restoreKernel(ortBatchMatMulWasmConfig)));

  it("equals the cpu backend in shapes and values, in ORT unless expected to fall back", () => {
    for (const c of cases) {
      const before = ortMatMulCounts();
      const r = product(c), e = expected.get(c.name)!;
      const after = ortMatMulCounts();
      assert.deepEqual(r.shape, e.shape, c.name);
      close(r.values, e.values, c.name);
      assert.equal(after.onnxruntime - before.onnxruntime, c.ort ? 1 : 0, `${c.name}: ORT products`);
      assert.equal(after.fallback - before.fallback, c.ort ? 0 : 1, `${c.name}: XNNPACK products`);
    }
  });

  it("keeps small untransposed 2-D products with XNNPACK, from MIN_ORT_MACS on in ORT", () => {
    const count = (m: number, k: number, n: number) => tf.tidy(() => {
      const before = ortMatMulCounts().onnxruntime;
      tf.matMul(tf.ones([m, k]), tf.ones([k, n])).dataSync();
      return ortMatMulCounts().onnxruntime - before;
    });
    assert.equal(count(1, 128, 384), 0); // a sampling step's projection
    assert.equal(count(MIN_ORT_MACS / 256, 16, 16), 1);
    assert.equal(count(1, 128, 384 * 64), 1);
  });

  it("gives the cpu backend's gradients (tf.grads)", () => {
    for (const c of cases) {
      if (c.noGrad) continue;
      grads(c).forEach((g, i) => close(g, expectedGrads.get(c.name)![i], `${c.name} grad ${i}`));
    }
  });

  it("gives the same bits twice (one intra-op thread)", () => {
    for (const c of cases.filter((k) => k.ort)) {
      assert.deepEqual(product(c).values, product(c).values, c.name);
    }
  });

  it("leaks neither tensors nor wasm memory", () => {
    const heap = () => ((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength);
    const loop = () => {
      for (let i = 0; i < 30; i++) {
        for (const c of cases) tf.tidy(() => { const [a, b] = inputs(c); tf.matMul(a, b, c.ta, c.tb).dataSync(); });
      }
    };
    loop();
    const before = tf.memory(), heapBefore = heap();
    loop();
    const after = tf.memory();
    assert.equal(after.numTensors, before.numTensors);
    assert.equal(after.numBytes, before.numBytes);
    assert.equal(heap(), heapBefore, "wasm heap grew");
  });

  it("reports a missing or broken onnxruntime-node as a reason, not an error", () => {
    const missing = loadOnnxRuntime(() => {
      throw Object.assign(new Error("Cannot find module 'onnxruntime-node/dist/binding'"), { code: "MODULE_NOT_FOUND" });
    });
    assert.equal(missing, "onnxruntime-node not installed");
    assert.match(loadOnnxRuntime(() => { throw new Error("libonnxruntime.so.1: cannot open shared object file"); })!,
      /^onnxruntime-node failed to load \(libonnxruntime\.so\.1/);
    assert.match(loadOnnxRuntime(() => ({}))!, /no InferenceSession/);
    // None of this touched the loaded one.
    assert.equal(loadOnnxRuntime(), undefined);
  });

  describe("initBackend", () => {
    after(async () => {
      // Leave the process as a notebook would have it: the automatic choice.
      resetBackendChoice();
      await initBackend({ quiet: true, env: {}, isInstalled: () => false });
    });

    it("installs it on wasm when onnxruntime-node loads, and says so", async () => {
      resetBackendChoice();
      const info = await initBackend({ quiet: true, env: {}, isInstalled: () => false });
      assert.equal(info.name, "wasm");
      assert.equal(info.matmul, "onnxruntime (MLAS)");
      assert.equal(info.matmulReason, undefined);
      assert.match(info.line, /matmul: onnxruntime \(MLAS\)\)$/);
      assert.ok(kernelInstalled(ortBatchMatMulWasmConfig));
      assert.ok(info.addedKernels.includes("BatchMatMul"));
      // A second call keeps it (and puts it back after a stray unregister).
      unregisterWasmKernels();
      await initBackend({ quiet: true });
      assert.ok(kernelInstalled(ortBatchMatMulWasmConfig));
      assert.equal(backendInfo()?.matmul, "onnxruntime (MLAS)");
    });

    it("keeps the XNNPACK kernel with COURSE_MATMUL=wasm", async () => {
      resetBackendChoice();
      const info = await initBackend({ quiet: true, env: { COURSE_MATMUL: "wasm" }, isInstalled: () => false });
      assert.equal(info.matmul, "xnnpack");
      assert.equal(info.matmulReason, "COURSE_MATMUL=wasm");
      assert.match(info.line, /matmul: xnnpack \(COURSE_MATMUL=wasm\)/);
      assert.ok(kernelInstalled(batchMatMulWasmConfig));
      assert.ok(!kernelInstalled(ortBatchMatMulWasmConfig));
    });

    it("falls back to XNNPACK, saying why, when onnxruntime-node cannot load", async () => {
      resetBackendChoice();
      const info = await initBackend({
        quiet: true, env: {}, isInstalled: () => false, loadOnnxRuntime: () => "onnxruntime-node not installed",
      });
      assert.equal(info.matmul, "xnnpack");
      assert.match(info.line, /matmul: xnnpack \(onnxruntime-node not installed\)/);
      assert.ok(kernelInstalled(batchMatMulWasmConfig));
      // COURSE_MATMUL=onnxruntime makes that an error.
      resetBackendChoice();
      await assert.rejects(
        initBackend({ quiet: true, env: { COURSE_MATMUL: "onnxruntime" }, isInstalled: () => false, loadOnnxRuntime: () => "nope" }),
        /COURSE_MATMUL=onnxruntime but nope/);
      resetBackendChoice();
      await assert.rejects(initBackend({ quiet: true, env: { COURSE_MATMUL: "mlas" }, isInstalled: () => false }), /COURSE_MATMUL="mlas"/);
    });

    it("switching engines and unregistering restore tfjs's own kernel", async () => {
      const tfjsOwn = () => {
        const k = tf.getKernel("BatchMatMul", "wasm");
        return k !== undefined && k.kernelFunc !== ortBatchMatMulWasmConfig.kernelFunc && k.kernelFunc !== batchMatMulWasmConfig.kernelFunc;
      };
      resetBackendChoice();
      await initBackend({ quiet: true, env: { COURSE_MATMUL: "wasm" }, isInstalled: () => false });
      resetBackendChoice();
      await initBackend({ quiet: true, env: {}, isInstalled: () => false });
      assert.ok(kernelInstalled(ortBatchMatMulWasmConfig));
      // Another kernel stacked on top (tests/core/kernels/batchMatmul.test.ts does this) and taken off again.
      installKernel(batchMatMulWasmConfig);
      restoreKernel(batchMatMulWasmConfig);
      assert.ok(kernelInstalled(ortBatchMatMulWasmConfig));
      unregisterWasmKernels();
      assert.ok(!wasmKernelsRegistered());
      assert.ok(tfjsOwn());
      const c = cases[0];
      close(product(c).values, expected.get(c.name)!.values, "tfjs's own kernel");
    });
  });
});
