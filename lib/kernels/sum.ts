/**
 * `Sum` over the LEADING axes (column sums) for the wasm backend, in JavaScript.
 *
 * Why: training sums over rows all the time — the gradient of every bias and of every
 * LayerNorm weight is dY summed over the B·T rows, [B·T, C] → [C]. tfjs-backend-wasm 4.22's
 * Sum reduces only along the last axis, so for axis 0 it first transposes the whole input:
 * ~0.5 ms for [768, 128], ~2 ms for [768, 512], 22 of them in a nanogpt-cpu training step.
 * Writing the same sum as a product ones[1, R]·dY is no better: XNNPACK repacks dY as a
 * weight matrix on every call (~3.7 ms for [768, 384]).
 *
 * How: read the input through a view of the wasm heap and add its rows into a float64
 * accumulator row by row (memory order; more exact than float32 pairwise sums). ~0.1 ms for
 * [768, 512]. Everything else (last-axis sums, all-axes sums, int32 and bool inputs) goes to
 * the original kernel. Same values as the cpu backend to float32 rounding (tests/sum.test.ts).
 */
import * as tf from "@tensorflow/tfjs";
// Importing the package registers the wasm backend and its original kernels.
import "@tensorflow/tfjs-backend-wasm";
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
  const acc = new Float64Array(cols);
  for (let r = 0, o = 0; r < rows; r++, o += cols) {
    for (let j = 0; j < cols; j++) acc[j] += src[o + j];
  }
  dst.set(acc);
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
