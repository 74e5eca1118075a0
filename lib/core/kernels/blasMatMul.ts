/**
 * `BatchMatMul` for the wasm backend computed by the machine's BLAS (./blas.ts: OpenBLAS,
 * Accelerate), when koffi and a BLAS load: the fastest of the course's matrix-product engines
 * where it exists (the README's "Speed" section has the measurements).
 *
 * How: `cblas_sgemm` on views of the wasm heap, transposes as flags. A 2-D product is one
 * call; A [batch, M, K] times one B [K, N] is one call on [batch·M, K]; other batched
 * products (attention's per-head products) are one call per batch element, a broadcast side
 * read again for each. Every size goes to the BLAS: a call costs about a microsecond, less
 * than XNNPACK's.
 *
 * Anything else — not float32, an empty product, batch dims that broadcast other than "one
 * side is 1", a shared (threaded) wasm heap, no BLAS loaded — goes to the course's XNNPACK
 * kernel (./batchMatmul.ts). Results equal the cpu backend's to float32 rounding
 * (tests/core/kernels/blasMatMul.test.ts).
 */
import * as tf from "@tensorflow/tfjs";
// Importing the package registers the wasm backend and its original kernels.
import "@tensorflow/tfjs-backend-wasm";
import { batchMatMulWasmConfig } from "./batchMatmul";
import { blasLoaded, blasSgemm } from "./blas";
import { allocateProduct, nativeBatchMatMulConfig, planProduct, type WasmBackendLike } from "./productPlan";

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** Products this kernel has computed, and handed to the XNNPACK kernel (tests, diagnostics). */
const counts = { blas: 0, fallback: 0 };
export function blasMatMulCounts(): { blas: number; fallback: number } {
  return { ...counts };
}

const fallback = batchMatMulWasmConfig.kernelFunc as unknown as (args: KernelArgs) => tf.TensorInfo;

function blasBatchMatMulKernel(args: KernelArgs): tf.TensorInfo {
  const a = args.inputs.a!, b = args.inputs.b!;
  const backend = args.backend as WasmBackendLike;
  const plan = planProduct(a, b, args.attrs);
  if (plan === undefined || !blasLoaded() || !(backend.wasm.HEAPU8.buffer instanceof ArrayBuffer)) {
    counts.fallback++;
    return fallback(args);
  }
  const { ta, tb, m, n, k, batchA, batchB, batch } = plan;
  const { out, A, B, Y } = allocateProduct(backend, a, b, plan);
  // Row strides of the operands as stored: A is [M, K] or (ta) [K, M], B [K, N] or (tb) [N, K].
  const lda = ta ? m : k, ldb = tb ? k : n;
  if (batch === 1 || (batchB === 1 && !ta)) {
    // A [batchA, M, K] is the 2-D [batchA·M, K] (rows follow each other): one call.
    blasSgemm(ta, tb, batchA * m, n, k, A, lda, B, ldb, Y, n);
  } else {
    const sa = batchA === 1 ? 0 : m * k, sb = batchB === 1 ? 0 : k * n;
    for (let i = 0; i < batch; i++) {
      blasSgemm(ta, tb, m, n, k, A.subarray(i * sa, i * sa + m * k), lda, B.subarray(i * sb, i * sb + k * n), ldb, Y.subarray(i * m * n, (i + 1) * m * n), n);
    }
  }
  counts.blas++;
  return out;
}

export const blasBatchMatMulWasmConfig: tf.KernelConfig = nativeBatchMatMulConfig(blasBatchMatMulKernel, batchMatMulWasmConfig.setupFunc);
