/**
 * `Sum` over the LEADING axes (column sums) for the wasm backend.
 *
 * Why: training sums over rows all the time — the gradient of every bias and of every
 * LayerNorm weight is dY summed over the B·T rows, [B·T, C] → [C]. tfjs-backend-wasm 4.22's
 * Sum reduces only along the last axis, so for axis 0 it first transposes the whole input:
 * ~0.4 ms for [768, 128], ~1.5 ms for [768, 512], 34 of them in a nanogpt-cpu training step
 * (~27 ms of a ~230 ms step).
 * Writing the same sum as a product ones[1, R]·dY is no better: XNNPACK repacks dY as a
 * weight matrix on every call (~3.7 ms for [768, 384]).
 *
 * How, two engines (./onnxruntime.ts `setOnnxRuntimeKernels`, on with either native matmul engine):
 *  - "onnxruntime": the sum is the product ones [1, R]·X [R, C], one MLAS GEMM reading the
 *    wasm heap in place (./onnxruntime.ts `ortGemm`): ~50 µs for [768, 128], ~70 µs for
 *    [768, 512], whatever the width, the call's fixed cost dominating.
 *  - "js": rows added into a float64 accumulator four at a time, in memory order (a quarter
 *    of the accumulator's loads and stores: ~160 µs for [768, 128], ~450 µs for [768, 512];
 *    one row at a time was ~2.5x slower).
 * A step's column sums: ~27 ms → ~6 ms with onnxruntime (tf.profile). Everything else
 * (last-axis sums, all-axes sums, int32 and bool inputs) goes to the original kernel. Same
 * values as the cpu backend to float32 rounding, with either engine (tests/core/kernels/sum.test.ts).
 */
import * as tf from "@tensorflow/tfjs";
// Importing the package registers the wasm backend and its original kernels.
import "@tensorflow/tfjs-backend-wasm";
import { onnxRuntimeKernels, ortGemm } from "./onnxruntime";
import { installKernel, restoreKernel } from "./registry";

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

const original = tf.getKernel("Sum", "wasm");

/** How many leading axes `axes` covers (0 when it is not exactly 0, 1, …, k − 1 with k < rank). */
export function leadingAxes(axes: number[], rank: number): number {
  const sorted = [...new Set(axes)].sort((a, b) => a - b);
  if (sorted.length === 0 || sorted.length >= rank) return 0;
  return sorted.every((a, i) => a === i) ? sorted.length : 0;
}

export type WasmSumEngine = "onnxruntime" | "js";

let ones = new Float32Array(0);
const counts = { onnxruntime: 0, js: 0 };
/** Column sums computed by each engine so far (tests, diagnostics). */
export function columnSumCounts(): Record<WasmSumEngine, number> {
  return { ...counts };
}

/** dst [cols] = Σ over rows of src [rows, cols]. */
function columnSums(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  if (onnxRuntimeKernels() && rows > 0) {
    if (ones.length < rows) ones = new Float32Array(rows).fill(1);
    if (ortGemm(ones.subarray(0, rows), src, dst, 1, rows, cols)) {
      counts.onnxruntime++;
      return;
    }
  }
  counts.js++;
  const acc = new Float64Array(cols);
  let r = 0;
  for (; r + 3 < rows; r += 4) {
    const o0 = r * cols, o1 = o0 + cols, o2 = o1 + cols, o3 = o2 + cols;
    for (let j = 0; j < cols; j++) acc[j] += (src[o0 + j] + src[o1 + j]) + (src[o2 + j] + src[o3 + j]);
  }
  for (; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) acc[j] += src[o + j];
  }
  dst.set(acc);
}

function sumKernel(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs.x!;
  const axes = tf.util.parseAxisParam(args.attrs?.axis as number | number[], x.shape);
  const k = x.dtype === "float32" ? leadingAxes(axes, x.shape.length) : 0;
  // (An empty input is summed here too, to zeros: tfjs's wasm Sum returns uninitialised memory for it.)
  if (k === 0) {
    if (original === undefined) throw new Error("Sum (wasm): the original kernel is missing");
    return original.kernelFunc(args as never) as tf.TensorInfo;
  }
  const rest = x.shape.slice(k);
  const cols = tf.util.sizeFromShape(rest);
  const rows = tf.util.sizeFromShape(x.shape.slice(0, k));
  const outShape = args.attrs?.keepDims ? [...x.shape.slice(0, k).map(() => 1), ...rest] : rest;
  const out = backend.makeOutput(outShape, "float32");
  // Views after makeOutput: an allocation may grow the heap and detach older views.
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  columnSums(src, rows, cols, dst);
  return out;
}

export const sumWasmConfig: tf.KernelConfig = {
  kernelName: "Sum",
  backendName: "wasm",
  kernelFunc: sumKernel as unknown as tf.KernelFunc,
  // The original, which we fall back to, wraps its wasm function in its setup.
  setupFunc: original?.setupFunc,
};

/** Install the kernel in place of tfjs's (idempotent). */
export function useFastWasmSum(): void {
  installKernel(sumWasmConfig);
}

/** Put tfjs's own Sum back (tests compare both). */
export function restoreWasmSum(): void {
  restoreKernel(sumWasmConfig);
}
