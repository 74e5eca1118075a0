import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { backendInfo, initBackend, resetBackendChoice } from "../../../lib/core/backend";
import {
  batchMatMulWasmConfig, loadOnnxRuntime, MIN_ORT_MACS, ortBatchMatMulWasmConfig, ortMatMulCounts,
  registerGradientFixes, unregisterWasmKernels, wasmKernelsRegistered,
} from "../../../lib/core/kernels";
import { installKernel, kernelInstalled, restoreKernel } from "../../../lib/core/kernels/registry";
import {
  assertClose as close, assertGradsMatch, assertProductsDoNotLeak, caseProduct as product, PRODUCT_CASES as cases, type ProductCase, type ProductResult as Result,
  referenceProducts,
} from "./products";

/** Whether onnxruntime computes a case (else it goes to the XNNPACK kernel). */
const inOrt = (c: ProductCase) => c.native && c.small !== true;

describe("wasm BatchMatMul in onnxruntime (lib/core/kernels/ortMatMul.ts)", function () {
  this.timeout(120000);
  let expected = new Map<string, Result>();
  let expectedGrads = new Map<string, Float32Array[]>();
  let wasInstalled = false;

  before(async function () {
    const why = loadOnnxRuntime();
    if (why !== undefined) {
      console.log(`      skipped: ${why}`); // mocha's skip() takes no reason
      this.skip();
    }
    // The broadcast-safe matMul gradient (as initBackend registers) for the broadcast cases.
    registerGradientFixes();
    ({ products: expected, grads: expectedGrads } = await referenceProducts("wasm"));
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
      assert.equal(after.onnxruntime - before.onnxruntime, inOrt(c) ? 1 : 0, `${c.name}: ORT products`);
      assert.equal(after.fallback - before.fallback, inOrt(c) ? 0 : 1, `${c.name}: XNNPACK products`);
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

  it("gives the cpu backend's gradients (tf.grads)", () => assertGradsMatch(expectedGrads));

  it("gives the same bits twice (one intra-op thread)", () => {
    for (const c of cases.filter(inOrt)) {
      assert.deepEqual(product(c).values, product(c).values, c.name);
    }
  });

  it("leaks neither tensors nor wasm memory", () => assertProductsDoNotLeak());

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

    // Without a BLAS (lib/core/kernels/blas.ts), which would come first: ./blasMatMul.test.ts.
    const noBlas = () => "no BLAS found";

    it("installs it on wasm when onnxruntime-node loads and no BLAS does, and says so", async () => {
      resetBackendChoice();
      const info = await initBackend({ quiet: true, env: {}, isInstalled: () => false, loadBlas: noBlas });
      assert.equal(info.name, "wasm");
      assert.equal(info.matmul, "onnxruntime (MLAS)");
      assert.equal(info.matmulReason, "no BLAS found");
      assert.match(info.line, /matmul: onnxruntime \(MLAS\) \(no BLAS found\)\)$/);
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
        quiet: true, env: {}, isInstalled: () => false, loadOnnxRuntime: () => "onnxruntime-node not installed", loadBlas: noBlas,
      });
      assert.equal(info.matmul, "xnnpack");
      assert.match(info.line, /matmul: xnnpack \(no BLAS found; onnxruntime-node not installed\)/);
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
      await initBackend({ quiet: true, env: {}, isInstalled: () => false, loadBlas: noBlas });
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
