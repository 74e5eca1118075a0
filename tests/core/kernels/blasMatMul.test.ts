import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { backendInfo, initBackend, matmulRequestOfThisThread, resetBackendChoice } from "../../../lib/core/backend";
import { blasBatchMatMulWasmConfig, blasInfo, blasMatMulCounts, loadBlas, loadOnnxRuntime, registerGradientFixes, setBlasThreads } from "../../../lib/core/kernels";
import { type BlasLibrary, blasCandidates, setBlasForTests } from "../../../lib/core/kernels/blas";
import { installKernel, kernelInstalled, restoreKernel } from "../../../lib/core/kernels/registry";
import { DataParallel } from "../../../lib/pretrain/dataParallel";
import { transposeFlagsFree } from "../../../lib/core/linalg";
import { assertClose, assertGradsMatch, assertProductsDoNotLeak, caseProduct, PRODUCT_CASES, type ProductResult, referenceProducts } from "./products";

/**
 * cblas_sgemm's contract in JavaScript (row-major, strides, transposes; float64 sums): the
 * kernel's layout logic is tested with it on any machine, a real BLAS where one loads.
 */
function referenceBlas(): BlasLibrary & { calls: number; threads: number[] } {
  const lib = {
    name: "reference (JavaScript)",
    calls: 0,
    threads: [2],
    sgemm(ta: boolean, tb: boolean, m: number, n: number, k: number, A: Float32Array, lda: number, B: Float32Array, ldb: number, C: Float32Array, ldc: number) {
      lib.calls++;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += (ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]);
          C[i * ldc + j] = s;
        }
      }
    },
    setThreads: (n: number) => void lib.threads.push(n),
    getThreads: () => lib.threads[lib.threads.length - 1],
  };
  return lib;
}

const systemBlasWhy = loadBlas();

for (const which of ["a reference GEMM in JavaScript", "this machine's BLAS"] as const) {
  describe(`wasm BatchMatMul in a BLAS (lib/core/kernels/blasMatMul.ts): ${which}`, function () {
    this.timeout(120000);
    let expected = new Map<string, ProductResult>();
    let expectedGrads = new Map<string, Float32Array[]>();
    let wasInstalled = false;
    let saved: BlasLibrary | null = null;

    before(async function () {
      if (which === "this machine's BLAS" && systemBlasWhy !== undefined) {
        console.log(`      skipped: ${systemBlasWhy}`); // mocha's skip() takes no reason
        this.skip();
      }
      registerGradientFixes();
      ({ products: expected, grads: expectedGrads } = await referenceProducts("wasm"));
      if (which === "a reference GEMM in JavaScript") saved = setBlasForTests(referenceBlas());
      wasInstalled = kernelInstalled(blasBatchMatMulWasmConfig);
      installKernel(blasBatchMatMulWasmConfig);
    });
    after(() => {
      if (which === "a reference GEMM in JavaScript") setBlasForTests(saved);
      if (wasInstalled) installKernel(blasBatchMatMulWasmConfig);
      else restoreKernel(blasBatchMatMulWasmConfig);
    });

    it("equals the cpu backend in shapes and values; only general broadcasts and empty products go to XNNPACK", () => {
      for (const c of PRODUCT_CASES) {
        const before = blasMatMulCounts();
        const r = caseProduct(c), e = expected.get(c.name)!;
        const after = blasMatMulCounts();
        assert.deepEqual(r.shape, e.shape, c.name);
        assertClose(r.values, e.values, c.name);
        assert.equal(after.blas - before.blas, c.native ? 1 : 0, `${c.name}: BLAS products`);
        assert.equal(after.fallback - before.fallback, c.native ? 0 : 1, `${c.name}: XNNPACK products`);
      }
    });

    it("gives the cpu backend's gradients (tf.grads)", () => assertGradsMatch(expectedGrads));

    it("leaks neither tensors nor wasm memory", () => assertProductsDoNotLeak());

    if (which === "this machine's BLAS") {
      it("gives the same bits with one thread per product as with the library's default", function () {
        const threads = blasInfo()?.threads;
        if (threads === undefined) this.skip(); // the library cannot be told (Accelerate)
        const run = (n: number | "default") => {
          setBlasThreads(n);
          // The cases, and a product large enough for OpenBLAS to split between threads.
          const large = tf.tidy(() => tf.matMul(tf.sin(tf.range(0, 256 * 384).reshape([256, 384])), tf.cos(tf.range(0, 384 * 512).reshape([384, 512]))).dataSync());
          return [...PRODUCT_CASES.filter((c) => c.native).map((c) => caseProduct(c).values), large];
        };
        try {
          assert.deepEqual(run(1), run("default"));
        } finally {
          setBlasThreads("default");
        }
        assert.equal(blasInfo()?.threads, threads);
      });

      it("data parallelism shares the BLAS's threads out while it runs, and gives them back", async function () {
        const threads = blasInfo()?.threads;
        if (threads === undefined || threads < 2) this.skip(); // nothing to share
        resetBackendChoice();
        await initBackend({ quiet: true, env: { COURSE_MATMUL: "blas" }, isInstalled: () => false });
        assert.equal(matmulRequestOfThisThread(), "blas");
        const params = { w: tf.variable(tf.ones([4, 4]), true, "blas-dp-w") };
        const loss = { builtin: "gpt" as const, options: { config: { vocabSize: 4, blockSize: 4, nLayer: 1, nHead: 1, nEmbd: 4, dropout: 0, bias: true } } };
        try {
          const dp = await DataParallel.start(params, { threads: 2, loss });
          try {
            assert.equal(blasInfo()?.threads, Math.max(1, Math.floor(threads / 2)));
          } finally {
            await dp.dispose();
          }
          assert.equal(blasInfo()?.threads, threads);
          // One thread shares nothing out, so it leaves a setting made elsewhere (the bench's one-core run) alone.
          setBlasThreads(1);
          const alone = await DataParallel.start(params, { threads: 1, loss });
          await alone.dispose();
          assert.equal(blasInfo()?.threads, 1);
        } finally {
          setBlasThreads("default");
          params.w.dispose();
        }
      });
    }
  });
}

describe("loading a BLAS (lib/core/kernels/blas.ts)", () => {
  const wrong = (): BlasLibrary => ({ name: "wrong", sgemm: (_ta, _tb, _m, _n, _k, _A, _lda, _B, _ldb, C) => C.fill(1) });

  it("names every library it tried, and how to get one, when none opens", () => {
    const why = loadBlas({ env: {}, open: (file) => { throw new Error(`${file}: cannot open shared object file`); } });
    assert.equal(why, `no BLAS found (tried ${blasCandidates().join(", ")}; e.g. apt-get install libopenblas0)`);
  });

  it("refuses a library whose product is wrong, and names COURSE_BLAS when it was chosen", () => {
    const why = loadBlas({ env: { COURSE_BLAS: "/opt/odd/libblas.so" }, open: wrong });
    assert.match(why!, /^COURSE_BLAS=\/opt\/odd\/libblas\.so did not load \(\/opt\/odd\/libblas\.so: self-test product gave \[1, 1, 1, 1\]/);
  });

  it("says when a library opened but multiplied wrongly, rather than that none was found", () => {
    const why = loadBlas({ env: {}, open: (file) => { if (file === blasCandidates()[0]) return wrong(); throw new Error("cannot open shared object file"); } });
    assert.match(why!, new RegExp(`^no working BLAS \\(${blasCandidates()[0].replace(/[.\/]/g, "\\$&")}: self-test product gave \\[1, 1, 1, 1\\]`));
  });

  it("takes the first candidate that works, without touching the loaded one", () => {
    const opened: string[] = [];
    const why = loadBlas({ env: {}, open: (file) => { opened.push(file); return opened.length === 1 ? wrong() : referenceBlas(); } });
    assert.equal(why, undefined);
    assert.deepEqual(opened, blasCandidates().slice(0, 2));
    assert.equal(loadBlas(), systemBlasWhy);
  });

  it("lists the platforms' usual libraries", () => {
    assert.deepEqual(blasCandidates("linux"), ["libopenblas.so.0", "libopenblas.so"]);
    assert.equal(blasCandidates("darwin")[0], "/System/Library/Frameworks/Accelerate.framework/Accelerate");
    assert.deepEqual(blasCandidates("win32"), ["libopenblas.dll", "openblas.dll"]);
  });
});

describe("initBackend with a BLAS", () => {
  let saved: BlasLibrary | null = null;
  before(() => (saved = setBlasForTests(referenceBlas())));
  after(async () => {
    setBlasForTests(saved);
    // Leave the process as a notebook would have it: the automatic choice.
    resetBackendChoice();
    await initBackend({ quiet: true, env: {}, isInstalled: () => false });
  });

  it("puts the BLAS first, names the library and its threads, and keeps it on a second call", async () => {
    resetBackendChoice();
    const info = await initBackend({ quiet: true, env: {}, isInstalled: () => false, loadBlas: () => undefined });
    assert.equal(info.matmul, "BLAS");
    assert.deepEqual(info.blas, { name: "reference (JavaScript)", threads: 2 });
    assert.equal(info.matmulReason, undefined);
    assert.match(info.line, /matmul: BLAS \(reference \(JavaScript\), 2 threads per product\)\)$/);
    assert.ok(kernelInstalled(blasBatchMatMulWasmConfig));
    assert.equal(matmulRequestOfThisThread(), "blas");
    assert.ok(transposeFlagsFree(), "a transposed operand is a flag to cblas_sgemm, not a copy");
    await initBackend({ quiet: true });
    assert.equal(backendInfo()?.matmul, "BLAS");
  });

  it("COURSE_MATMUL=onnxruntime passes over the BLAS; COURSE_MATMUL=blas without one is an error", async function () {
    if (loadOnnxRuntime() !== undefined) this.skip(); // optional package absent
    resetBackendChoice();
    const ort = await initBackend({ quiet: true, env: { COURSE_MATMUL: "onnxruntime" }, isInstalled: () => false, loadOnnxRuntime: () => undefined, loadBlas: () => undefined });
    assert.equal(ort.matmul, "onnxruntime (MLAS)");
    assert.equal(ort.matmulReason, "COURSE_MATMUL=onnxruntime");
    resetBackendChoice();
    await assert.rejects(initBackend({ quiet: true, env: { COURSE_MATMUL: "blas" }, isInstalled: () => false, loadBlas: () => "no BLAS found (tried x)" }),
      /^Error: COURSE_MATMUL=blas but no BLAS found \(tried x\)$/);
  });
});
