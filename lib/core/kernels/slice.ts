/**
 * `Slice`, `SplitV`, `Unpack` and `Concat` for the wasm backend, copying only what they
 * return, with memmove.
 *
 * Why: tfjs-backend-wasm 4.22 implements these three in JavaScript, and every slice
 * starts with `backend.readSync(x)`, which copies the WHOLE input out of the wasm heap.
 * So tf.split(x, n) / tf.unstack(x) copy x n times: unstacking a [48, 64, 64] tensor
 * moves 37 MB instead of 0.8 MB (measured ~13 ms instead of ~1.5 ms). Anything that
 * cuts a tensor into many pieces (tf.unstack over a batch, per-head splits, the
 * batchMatMul helper of lib/core/linalg.ts) pays this; an attention layer built from per-head
 * 2-D products took ~830 ms instead of ~90 ms for forward+backward.
 *
 * How: copy the requested block row by row inside the wasm heap with `copyWithin` (a
 * memmove, no JavaScript object per row). The heap view is taken AFTER allocating the
 * output, because an allocation may grow the heap and detach earlier views. Concat, the
 * gradient of a split, is the same row-by-row copy the other way: tfjs's does it with a
 * `subarray` + `set` per row, ~0.7-0.9 ms to split or join a [768, 384] attention
 * projection by its rows, ~0.1 ms here.
 * Same results as the original kernels (checked in tests/core/kernels/slice.test.ts); string
 * tensors go to the original kernel.
 */
import * as tf from "@tensorflow/tfjs";
// Importing the package registers the wasm backend and its original kernels.
import "@tensorflow/tfjs-backend-wasm";
import { installKernel, restoreKernel } from "./registry";

/** The few members of tfjs-backend-wasm's `BackendWasm` these kernels use. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** The original wasm kernels (registered by the import above), kept for string tensors. */
const originals = new Map<string, tf.KernelConfig | undefined>(
  ["Slice", "SplitV", "Unpack", "Concat"].map((name) => [name, tf.getKernel(name, "wasm")]),
);

function callOriginal(name: string, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const k = originals.get(name);
  if (k === undefined) throw new Error(`${name} (wasm): string tensors are not supported`);
  return k.kernelFunc(args as never);
}

/**
 * The whole heap as elements of t's size (4 bytes for float32/int32, 1 for bool), and t's
 * offset in it: `copyWithin` on it moves data between tensors without a view per row.
 */
function heapElements(t: tf.TensorInfo, backend: WasmBackendLike): { heap: Int32Array | Uint8Array; base: number } {
  const view = backend.typedArrayFromHeap(t);
  const heap = view.BYTES_PER_ELEMENT === 4 ? new Int32Array(view.buffer) : new Uint8Array(view.buffer);
  return { heap, base: view.byteOffset / view.BYTES_PER_ELEMENT };
}

/** Copy x[begin : begin + size] (any rank) into a new tensor. */
function sliceInfo(x: tf.TensorInfo, begin: number[], size: number[], backend: WasmBackendLike): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const n = size.reduce((a, b) => a * b, 1);
  if (n === 0) return out;
  const { heap, base: s0 } = heapElements(x, backend); // views taken after makeOutput (see above)
  const d0 = heapElements(out, backend).base;
  const rank = x.shape.length;
  if (rank === 0) {
    heap[d0] = heap[s0];
    return out;
  }
  const strides = tf.util.computeStrides(x.shape); // strides[r] = elements per step on axis r (rank-1 entries)
  if (tf.slice_util.isSliceContinous(x.shape, begin, size)) {
    const off = s0 + tf.slice_util.computeFlatOffset(begin, strides);
    heap.copyWithin(d0, off, off + n);
    return out;
  }
  // Copy runs along the last axis; `idx` counts through the outer axes like an odometer.
  const run = size[rank - 1];
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  for (let o = 0; o < n; o += run) {
    let off = begin[rank - 1];
    for (let r = 0; r < rank - 1; r++) off += (begin[r] + idx[r]) * strides[r];
    heap.copyWithin(d0 + o, s0 + off, s0 + off + run);
    for (let r = rank - 2; r >= 0; r--) {
      if (++idx[r] < size[r]) break;
      idx[r] = 0;
    }
  }
  return out;
}

function sliceKernel(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x!;
  if (x.dtype === "string") return callOriginal("Slice", args) as tf.TensorInfo;
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as unknown as tf.Tensor, args.attrs?.begin as number[], args.attrs?.size as number[]);
  tf.slice_util.assertParamsValid(x as unknown as tf.Tensor, begin, size);
  return sliceInfo(x, begin, size, args.backend as WasmBackendLike);
}

function splitVKernel(args: KernelArgs): tf.TensorInfo[] {
  const x = args.inputs.x!;
  if (x.dtype === "string") return callOriginal("SplitV", args) as tf.TensorInfo[];
  const axis = tf.util.parseAxisParam(args.attrs?.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(
    x as unknown as tf.Tensor, args.attrs?.numOrSizeSplits as number | number[], axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[axis] = s;
    const piece = sliceInfo(x, [...begin], size, args.backend as WasmBackendLike);
    begin[axis] += s;
    return piece;
  });
}

function unpackKernel(args: KernelArgs): tf.TensorInfo[] {
  const x = args.inputs.value!;
  if (x.dtype === "string") return callOriginal("Unpack", args) as tf.TensorInfo[];
  let axis = Number(args.attrs?.axis ?? 0);
  if (axis < 0) axis += x.shape.length;
  const outShape = x.shape.filter((_, i) => i !== axis);
  const size = [...x.shape];
  size[axis] = 1;
  const pieces: tf.TensorInfo[] = [];
  for (let i = 0; i < x.shape[axis]; i++) {
    const begin = new Array<number>(x.shape.length).fill(0);
    begin[axis] = i;
    const piece = sliceInfo(x, begin, size, args.backend as WasmBackendLike);
    pieces.push({ dataId: piece.dataId, dtype: piece.dtype, shape: outShape }); // same memory, axis dropped
  }
  return pieces;
}

/** Inputs joined along `axis`: per outer index, each input's inner block in turn. */
function concatKernel(args: KernelArgs): tf.TensorInfo {
  const inputs = Object.values(args.inputs) as tf.TensorInfo[];
  const backend = args.backend as WasmBackendLike;
  const nonEmpty = inputs.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
  if (inputs[0].dtype === "string" || nonEmpty.length <= 1) return callOriginal("Concat", args) as tf.TensorInfo;
  const axis = tf.util.parseAxisParam(args.attrs?.axis as number, inputs[0].shape)[0];
  tf.backend_util.assertParamsConsistent(inputs.map((t) => t.shape), axis);
  const out = backend.makeOutput(tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis), inputs[0].dtype);
  const { heap, base: d0 } = heapElements(out, backend); // after makeOutput (see the top)
  const srcs = nonEmpty.map((t) => ({ base: heapElements(t, backend).base, inner: tf.util.sizeFromShape(t.shape.slice(axis)) }));
  const outer = tf.util.sizeFromShape(nonEmpty[0].shape.slice(0, axis));
  let o = d0;
  for (let b = 0; b < outer; b++) {
    for (const { base, inner } of srcs) {
      heap.copyWithin(o, base + b * inner, base + (b + 1) * inner);
      o += inner;
    }
  }
  return out;
}

function config(kernelName: string, kernelFunc: (a: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]): tf.KernelConfig {
  return { kernelName, backendName: "wasm", kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

/**
 * The four kernels. To install: for each, tf.unregisterKernel(name, "wasm") then
 * tf.registerKernel(config) (what registerWasmKernels in lib/core/kernels/index.ts does with
 * its list), or call `useFastWasmSlicing()`.
 */
export const sliceWasmConfigs: tf.KernelConfig[] = [
  config("Slice", sliceKernel),
  config("SplitV", splitVKernel),
  config("Unpack", unpackKernel),
  config("Concat", concatKernel),
];

/** Install the four kernels in place of tfjs's (idempotent). */
export function useFastWasmSlicing(): void {
  sliceWasmConfigs.forEach(installKernel);
}

/** Put tfjs's own Slice/SplitV/Unpack/Concat back (tests compare both). */
export function restoreWasmSlicing(): void {
  sliceWasmConfigs.forEach(restoreKernel);
}
