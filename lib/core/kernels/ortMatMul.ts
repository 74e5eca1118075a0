/**
 * `BatchMatMul` for the wasm backend computed by onnxruntime-node (its MLAS GEMM), when
 * that optional package loads.
 *
 * Why: even on its fast path (./batchMatmul.ts) the wasm backend multiplies with XNNPACK
 * compiled to WebAssembly, ~15 GFLOP/s on one core here; MLAS is native code (AVX2 + FMA kernels on this AMD EPYC)
 * and reached 25-45 GFLOP/s on one thread for the same products. Measured on this 2-core
 * machine (loaded by another process; medians, 1 thread each):
 *   [768, 128]·[128, 384]  4.2 ms → 3.0 ms      [768, 512]·[512, 128]       6.3 → 2.7 ms
 *   [128, 768]ᵀ·[768, 512]  7.2 → 2.9 ms         one linear layer fwd + bwd  2.3x faster
 *   attention [48, 64, 32]·[48, 64, 32]ᵀ and its gradients, 6 products: 12.6 → 5.6 ms
 *   decode step q·kᵀ [48, 1, 32]·[48, 40, 32]ᵀ: 508 → 56 µs (XNNPACK: one call per head)
 *   per call (kernel alone, 8×8): XNNPACK 7-11 µs, this kernel 20-35 µs (ORT's Run).
 * That fixed cost makes small untransposed 2-D products slower here: 1×128·128×512
 * 23 → 61 µs, 16×128·128×128 53 → 90 µs; break-even near 64×128·128×128 (1M
 * multiply-adds), so below MIN_ORT_MACS those stay with XNNPACK (sampling's decode steps).
 * End to end, `npm run bench` (nanogpt-cpu, batch 12 × 64, one thread, same sittings):
 * 523-573 ms per training step with XNNPACK, 270-337 ms with this kernel.
 * Dynamic shapes cost the same as fixed ones (within noise), so one session per model
 * variant (2-D or batched × transposeA × transposeB) serves every shape.
 *
 * How: the native binding called synchronously on views of the wasm heap (./onnxruntime.ts).
 * The ONNX models are one node (Gemm) or Transpose + MatMul (which ORT fuses into one
 * FusedMatMul).
 *
 * Anything else — not float32, an empty product, batch dims that broadcast other than
 * "one side is 1", a shared (threaded) wasm heap, ORT not loaded — goes to the course's
 * XNNPACK kernel (./batchMatmul.ts). Results equal the cpu backend's to float32 rounding
 * (tests/core/kernels/ortMatMul.test.ts).
 */
import * as tf from "@tensorflow/tfjs";
// Importing the package registers the wasm backend and its original kernels.
import "@tensorflow/tfjs-backend-wasm";
import { batchMatMulWasmConfig } from "./batchMatmul";
import { allocateProduct, nativeBatchMatMulConfig, planProduct, type WasmBackendLike } from "./productPlan";
import { type Bytes, cpuTensor, gemmSession, type NativeSession, node, onnxModel, onnxRuntimeLoaded, ortSession, RUN_OPTIONS } from "./onnxruntime";

export { loadOnnxRuntime, onnxRuntimeLoaded, ORT_PACKAGE, ortGemm } from "./onnxruntime";

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

// ---------------------------------------------------------------------------------------
// ONNX models

/** Y [batch, M, N] = op(A)·op(B) per batch element; A [batchA, ·, ·], B [batchB, ·, ·], a batch of 1 broadcasts. */
function batchedModel(ta: boolean, tb: boolean): Uint8Array {
  const nodes: Bytes[] = [];
  if (ta) nodes.push(node("Transpose", ["A"], "At", { perm: [0, 2, 1] }));
  if (tb) nodes.push(node("Transpose", ["B"], "Bt", { perm: [0, 2, 1] }));
  nodes.push(node("MatMul", [ta ? "At" : "A", tb ? "Bt" : "B"], "Y"));
  return onnxModel(nodes, { A: ["batchA", "a1", "a2"], B: ["batchB", "b1", "b2"] }, { Y: ["batch", "M", "N"] });
}

/** The Gemm (2-D) or batched MatMul model for these transposes. */
function session(batched: boolean, ta: boolean, tb: boolean): NativeSession {
  if (!batched) return gemmSession(ta, tb);
  return ortSession(`bmm${+ta}${+tb}`, () => batchedModel(ta, tb));
}

// ---------------------------------------------------------------------------------------
// The kernel

/** Products this kernel has computed, and handed to the XNNPACK kernel (tests, diagnostics). */
const counts = { onnxruntime: 0, fallback: 0 };
export function ortMatMulCounts(): { onnxruntime: number; fallback: number } {
  return { ...counts };
}

/** Untransposed 2-D products with fewer multiply-adds than this stay with XNNPACK (see top). */
export const MIN_ORT_MACS = 1 << 20;
const fallback = batchMatMulWasmConfig.kernelFunc as unknown as (args: KernelArgs) => tf.TensorInfo;

function ortBatchMatMulKernel(args: KernelArgs): tf.TensorInfo {
  const a = args.inputs.a!, b = args.inputs.b!;
  const backend = args.backend as WasmBackendLike;
  const plan = planProduct(a, b, args.attrs);
  const supported = onnxRuntimeLoaded() && plan !== undefined &&
    backend.wasm.HEAPU8.buffer instanceof ArrayBuffer; // the binding rejects a SharedArrayBuffer
  if (!supported || (plan.batch === 1 && !plan.ta && !plan.tb && plan.m * plan.k * plan.n < MIN_ORT_MACS)) {
    counts.fallback++;
    return fallback(args);
  }
  const { ta, tb, m, n, k, batchA, batchB, batch } = plan;
  const { out, A, B, Y } = allocateProduct(backend, a, b, plan);
  const aDims = ta ? [k, m] : [m, k], bDims = tb ? [n, k] : [k, n];
  try {
    if (batch === 1) {
      session(false, ta, tb).run({ A: cpuTensor(A, aDims), B: cpuTensor(B, bDims) }, { Y: cpuTensor(Y, [m, n]) }, RUN_OPTIONS);
    } else if (batchB === 1 && !ta) {
      // A [batchA, M, K] is the 2-D [batchA·M, K]: one GEMM with B [K, N] → [batchA·M, N].
      session(false, false, tb).run({ A: cpuTensor(A, [batchA * m, k]), B: cpuTensor(B, bDims) },
        { Y: cpuTensor(Y, [batchA * m, n]) }, RUN_OPTIONS);
    } else {
      session(true, ta, tb).run({ A: cpuTensor(A, [batchA, ...aDims]), B: cpuTensor(B, [batchB, ...bDims]) },
        { Y: cpuTensor(Y, [batch, m, n]) }, RUN_OPTIONS);
    }
  } catch {
    // Not expected (shapes are checked above); the XNNPACK kernel gives the same answer.
    backend.disposeData(out.dataId);
    counts.fallback++;
    return fallback(args);
  }
  counts.onnxruntime++;
  return out;
}

export const ortBatchMatMulWasmConfig: tf.KernelConfig = nativeBatchMatMulConfig(ortBatchMatMulKernel, batchMatMulWasmConfig.setupFunc);

/** What `BackendInfo.matmul` reports for each engine ("blas": the library's name follows in BackendInfo.blas). */
export const MATMUL_ENGINE_NAMES = { blas: "BLAS", onnxruntime: "onnxruntime (MLAS)", xnnpack: "xnnpack" } as const;
export type MatMulEngine = keyof typeof MATMUL_ENGINE_NAMES;
