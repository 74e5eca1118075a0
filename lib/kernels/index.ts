/**
 * Kernels the course adds to (or overrides in) the tfjs wasm backend.
 *
 * tfjs keeps one global registry of kernels keyed by (kernel name, backend name).
 * Registering ours there, rather than patching a backend instance, means the kernel
 * survives `tf.setBackend` (which only re-runs each kernel's `setupFunc` on the new
 * backend instance). We remember whatever was registered before so it can be restored.
 *
 * Found missing on wasm by the probe in tests/kernels.test.ts (every kernel a GPT
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
import { unsortedSegmentSumWasmConfig } from "./unsorted_segment_sum";
import { batchMatMulWasmConfig } from "./batch_matmul";
import { sliceWasmConfigs } from "./slice";
import { installKernel, kernelInstalled, restoreKernel } from "./registry";
import { gatherWasmConfig } from "./gather";
import { sumWasmConfig } from "./sum";
import { adamwWasmConfig } from "./adamw";

// Gradient fixes for tfjs-core itself (every backend): see ./gradients.
export { gradientFixNames, registerGradientFixes, unregisterGradientFixes } from "./gradients";

/**
 * Our kernels for the wasm backend, one file each:
 *  - UnsortedSegmentSum: missing on wasm (see above).
 *  - BatchMatMul: tfjs's wasm kernel takes XNNPACK's fast path only for an untransposed,
 *    unbatched product; ours makes transposes explicit and runs one fast 2-D product per
 *    batch element (attention and every matMul gradient: ~5x faster, same values).
 *  - Slice / SplitV / Unpack: tfjs's wasm kernels copy the whole input for every piece.
 *  - GatherV2: tfjs's wasm kernel costs ~10 µs per index; ours copies whole rows (embedding
 *    lookups 20-50x faster).
 *  - Sum over leading axes (bias and LayerNorm gradients): tfjs transposes the whole input
 *    first; ours adds rows in JavaScript (~5-20x faster).
 *  - CourseAdamW: not a tfjs kernel but the course's own, one pass per parameter for an
 *    AdamW update instead of ~10 elementwise kernels (lib/optim.ts uses it when present).
 */
const wasmKernels: tf.KernelConfig[] = [
  unsortedSegmentSumWasmConfig, batchMatMulWasmConfig, ...sliceWasmConfigs, gatherWasmConfig, sumWasmConfig, adamwWasmConfig,
];


/** Names of the kernels `registerWasmKernels` installs. */
export const wasmKernelNames: readonly string[] = wasmKernels.map((k) => k.kernelName);

/**
 * Register the course's wasm kernels (idempotent). Returns the kernel names installed.
 * `initBackend()` calls this when it picks wasm; call it yourself only if you set the
 * wasm backend up by hand.
 */
export function registerWasmKernels(): string[] {
  wasmKernels.forEach(installKernel);
  return [...wasmKernelNames];
}

/** Remove the course's wasm kernels and put back whatever was registered before. */
export function unregisterWasmKernels(): void {
  wasmKernels.forEach(restoreKernel);
}

/** True while the course's wasm kernels are registered. */
export function wasmKernelsRegistered(): boolean {
  return wasmKernels.some(kernelInstalled);
}
