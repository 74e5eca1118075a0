/**
 * Kernels the course adds to (or overrides in) the tfjs wasm backend.
 *
 * tfjs keeps one global registry of kernels keyed by (kernel name, backend name).
 * Registering ours there, rather than patching a backend instance, means the kernel
 * survives `tf.setBackend` (which only re-runs each kernel's `setupFunc` on the new
 * backend instance). We remember whatever was registered before so it can be restored.
 *
 * Found missing on wasm by the probe in tests/core/kernels/kernels.test.ts (every kernel a GPT
 * forward + backward pass + AdamW step runs on the cpu backend, looked up on wasm):
 *   UnsortedSegmentSum — gradient of tf.gather (embedding lookups).
 * (Einsum is missing too, but nothing in the course needs it; write matMuls instead.)
 * The same probe found gradients missing or wrong in tfjs-core on every backend; those
 * fixes are in ./gradients.ts.
 */
import * as tf from "@tensorflow/tfjs";
// Importing the package registers the wasm backend and its own kernels, so an original
// kernel (if tfjs ever ships one) is in the registry before we look for it.
import "@tensorflow/tfjs-backend-wasm";
import { unsortedSegmentSumWasmConfig } from "./unsortedSegmentSum";
import { batchMatMulWasmConfig } from "./batchMatmul";
import { loadOnnxRuntime, type MatMulEngine, ortBatchMatMulWasmConfig } from "./ortMatMul";
import { sliceWasmConfigs } from "./slice";
import { installKernel, kernelInstalled, restoreKernel } from "./registry";
import { gatherWasmConfig } from "./gather";
import { sumWasmConfig } from "./sum";
import { setOnnxRuntimeKernels } from "./onnxruntime";
import { adamwWasmConfig } from "./adamw";
import { identityWasmConfig } from "./identity";
import { fusedWasmConfigs } from "./fused";
import { blasBatchMatMulWasmConfig } from "./blasMatMul";
import { loadBlas } from "./blas";

// Gradient fixes for tfjs-core itself (every backend): see ./gradients.
export { gradientFixNames, registerGradientFixes, unregisterGradientFixes } from "./gradients";
export {
  loadOnnxRuntime, MATMUL_ENGINE_NAMES, type MatMulEngine, MIN_ORT_MACS, onnxRuntimeLoaded, ORT_PACKAGE,
  ortBatchMatMulWasmConfig, ortMatMulCounts,
} from "./ortMatMul";
export { batchMatMulWasmConfig } from "./batchMatmul";
export { blasBatchMatMulWasmConfig, blasMatMulCounts } from "./blasMatMul";
export { blasDefaultThreads, blasInfo, blasLoaded, loadBlas, setBlasThreads } from "./blas";
export { loadSimdKernels, setSimdKernels, simdKernelsActive } from "./simd";

/**
 * Our kernels for the wasm backend, one file each:
 *  - UnsortedSegmentSum: missing on wasm (see above).
 *  - BatchMatMul, one of three (`registerWasmKernels({ matmul })`):
 *     - "blas" (./blasMatMul.ts): float32 products in the machine's BLAS (OpenBLAS,
 *       Accelerate) through koffi, in place on the wasm heap; faster than MLAS per core, and
 *       its own threads use every core for one product. Only where koffi and a BLAS load.
 *     - "onnxruntime" (./ortMatMul.ts): float32 products in onnxruntime-node's native MLAS
 *       GEMM, reading and writing the wasm heap in place; 2-2.5x faster than XNNPACK on the
 *       GPT's products (small untransposed 2-D ones, where ORT's ~25 µs per call costs
 *       more, stay with XNNPACK). Only when the optional package onnxruntime-node loads.
 *     - "xnnpack" (./batchMatmul.ts): tfjs's wasm kernel takes XNNPACK's fast path only
 *       for an untransposed, unbatched product; ours makes transposes explicit and runs one
 *       fast 2-D product per batch element (attention and every matMul gradient: ~5x
 *       faster, same values). Also what the other two fall back to.
 *  - Slice / SplitV / Unpack: tfjs's wasm kernels copy the whole input for every piece.
 *  - GatherV2: tfjs's wasm kernel costs ~10 µs per index; ours copies whole rows (embedding
 *    lookups 20-50x faster).
 *  - Sum over leading axes (bias and LayerNorm gradients): tfjs transposes the whole input
 *    first; ours is one GEMM ones·X in onnxruntime when it is loaded and the matmul engine is
 *    not XNNPACK, else adds rows in JavaScript (~20x faster).
 *  - CourseAdamW: not a tfjs kernel but the course's own, one pass per parameter for an
 *    AdamW update instead of ~10 elementwise kernels (lib/core/optim.ts uses it when present).
 *  - Identity (tf.clone, and every tensor a gradient saves): tfjs's wasm kernel copies the
 *    buffer; ours shares it, counting references as the cpu backend does.
 *  - CourseLayerNorm(Grad) / CourseGelu(Grad) / CourseCausalSoftmax(Grad) / CourseSplitHeads /
 *    CourseMergeHeads (./fused.ts): LayerNorm, GELU, attention's causal softmax and head
 *    layout as one WebAssembly SIMD pass each (./simd.ts) instead of 3-12 tfjs kernels. They
 *    run once `loadSimdKernels()` has assembled them (initBackend awaits it); until then, and
 *    on other backends, lib/gpt/gpt.ts and lib/attention/attention.ts use tensor ops.
 */
const wasmKernels: tf.KernelConfig[] = [
  unsortedSegmentSumWasmConfig, batchMatMulWasmConfig, ...sliceWasmConfigs, gatherWasmConfig, sumWasmConfig, adamwWasmConfig, identityWasmConfig,
  ...fusedWasmConfigs,
];
const matMulConfigs: Record<MatMulEngine, tf.KernelConfig> = {
  blas: blasBatchMatMulWasmConfig,
  onnxruntime: ortBatchMatMulWasmConfig,
  xnnpack: batchMatMulWasmConfig,
};
/** Every kernel the course may have installed on wasm: the list plus the other BatchMatMuls. */
const allWasmKernels: readonly tf.KernelConfig[] = [...wasmKernels, ortBatchMatMulWasmConfig, blasBatchMatMulWasmConfig];

/** Names of the kernels `registerWasmKernels` installs. */
export const wasmKernelNames: readonly string[] = wasmKernels.map((k) => k.kernelName);

export interface RegisterWasmKernelsOptions {
  /**
   * Which BatchMatMul to install (default "xnnpack"). "onnxruntime" loads onnxruntime-node
   * first, "blas" koffi and a BLAS, and each throws, saying why, if it cannot run.
   */
  matmul?: MatMulEngine;
}

/**
 * Register the course's wasm kernels (idempotent; a different `matmul` swaps the
 * BatchMatMul). Returns the kernel names installed. `initBackend()` calls this when it
 * picks wasm; call it yourself only if you set the wasm backend up by hand.
 */
export function registerWasmKernels(opts: RegisterWasmKernelsOptions = {}): string[] {
  const engine = opts.matmul ?? "xnnpack";
  if (engine === "onnxruntime") {
    const why = loadOnnxRuntime();
    if (why !== undefined) throw new Error(`registerWasmKernels: the onnxruntime matmul cannot run: ${why}`);
  }
  if (engine === "blas") {
    const why = loadBlas();
    if (why !== undefined) throw new Error(`registerWasmKernels: the BLAS matmul cannot run: ${why}`);
  }
  // Both are "BatchMatMul": take the other one out first, so that restoring gives back
  // tfjs's kernel rather than the course's other one.
  for (const [name, config] of Object.entries(matMulConfigs)) if (name !== engine) restoreKernel(config);
  wasmKernels.map((k) => (k === batchMatMulWasmConfig ? matMulConfigs[engine] : k)).forEach(installKernel);
  // Column sums in onnxruntime where it is loaded, unless everything was asked to stay in wasm.
  setOnnxRuntimeKernels(engine !== "xnnpack");
  return [...wasmKernelNames];
}

/** The course's BatchMatMul now registered on wasm, or undefined (tfjs's own or someone else's). */
export function wasmMatMulEngine(): MatMulEngine | undefined {
  return (Object.keys(matMulConfigs) as MatMulEngine[]).find((e) => kernelInstalled(matMulConfigs[e]));
}

/** Remove the course's wasm kernels and put back whatever was registered before. */
export function unregisterWasmKernels(): void {
  allWasmKernels.forEach(restoreKernel);
}

/** True while the course's wasm kernels are registered. */
export function wasmKernelsRegistered(): boolean {
  return allWasmKernels.some(kernelInstalled);
}
