/**
 * `GatherV2` (tf.gather) for the wasm backend, built on the fast wasm GatherNd.
 *
 * Why: tfjs-backend-wasm 4.22's GatherV2 costs ~10 µs per gathered index whatever the
 * row length. Measured here (machine under load, medians): 768 rows of a [65, 128] table
 * 5-8 ms, of a [50257, 128] table 6-9 ms; 8192 rows of [4000, 64] 32-49 ms, of
 * [50257, 128] 67-102 ms. Every embedding lookup (word2vec's batches, a GPT's token
 * table) pays this. tfjs's wasm GatherNd, though, copies rows in C: 0.1-0.4 ms for the
 * same lookups written as gatherND(x, indices[N, 1]).
 *
 * How: view x as a table of slices [batch · outer · dim, slice] (same memory, only the
 * shape differs) and hand GatherNd the table row of every output row. For an embedding
 * lookup (axis 0, batchDims 0) those ARE the indices, viewed as [N, 1]: nothing is
 * copied but the output. Otherwise we write the row numbers into a temporary int32
 * tensor, or, for slices shorter than SHORT_SLICE elements (gathering along a last axis,
 * where that table would be as big as the output), copy elements in JavaScript through
 * views of the wasm heap taken after allocating the output (an allocation may grow the
 * heap and detach earlier views). Measured: the lookups above in 0.08, 0.13-0.4,
 * 0.4-0.8 and 2.6-5 ms; along axis 1 of [256, 1000] (500 indices) 12-16 → 1.3-3 ms.
 *
 * Semantics are tf.gather's, as in the cpu kernel: any axis, batchDims, indices of any
 * rank, float32 / int32 / bool x; an index outside [0, x.shape[axis]) throws the same
 * "GatherV2: the index value … is not in [0, …]" error (checked before anything is
 * allocated). Only what tf.gather never sends (indices that are not int32, string or
 * complex x) goes to the original kernel. Same values as the cpu backend
 * (tests/core/kernels/gather.test.ts).
 *
 * The gradient of tf.gather is an UnsortedSegmentSum (./unsortedSegmentSum), measured
 * and left as it is: a wasm ScatterNd whose cost for a big table is writing the zeroed
 * [V, C] output (~5 ms for 50257 × 128, of which ~3 ms is just zeroing the memory); a
 * JavaScript zero-fill + row-add loop ties for 768 rows and loses for 2048 and more.
 */
import * as tf from "@tensorflow/tfjs";
// Importing the package registers the wasm backend and its original kernels.
import "@tensorflow/tfjs-backend-wasm";
import { installKernel, restoreKernel } from "./registry";

/** The few members of tfjs-backend-wasm's `BackendWasm` this kernel uses. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** The original wasm kernel (registered by the import above), for what we don't cover. */
const original = tf.getKernel("GatherV2", "wasm");

/** Below this slice length (and with axis > batchDims) elements are copied in JavaScript. */
const SHORT_SLICE = 16;

function gatherKernel(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs.x!;
  const indices = args.inputs.indices!;
  if (indices.dtype !== "int32" || (x.dtype !== "float32" && x.dtype !== "int32" && x.dtype !== "bool")) {
    if (original === undefined) throw new Error(`GatherV2 (wasm): unsupported dtypes x ${x.dtype}, indices ${indices.dtype}`);
    return original.kernelFunc(args as never) as tf.TensorInfo;
  }
  const axis = tf.util.parseAxisParam(args.attrs?.axis as number, x.shape)[0];
  const batchDims = Number(args.attrs?.batchDims ?? 0);

  // Bounds first, with the message (and order of checks) of the cpu and wasm kernels.
  const axisDim = x.shape[axis];
  const nIdx = tf.util.sizeFromShape(indices.shape);
  {
    const ids = backend.typedArrayFromHeap(indices);
    for (let i = 0; i < nIdx; i++) {
      const index = ids[i];
      if (!(index <= axisDim - 1 && index >= 0)) {
        throw new Error(`GatherV2: the index value ${index} is not in [0, ${axisDim - 1}]`);
      }
    }
  }
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(
    x as unknown as tf.Tensor, indices as unknown as tf.Tensor, axis, batchDims);
  const { batchSize, outerSize, dimSize, sliceSize } = info;
  const perBatch = batchSize === 0 ? 0 : nIdx / batchSize; // indices per batch element
  const rows = batchSize * outerSize * perBatch; // slices to copy
  if (rows * sliceSize === 0) return backend.makeOutput(info.outputShape, x.dtype);

  // x viewed as a table of slices [batch · outer · dim, slice]; the output is the rows
  // [batch, outer, perBatch] of it, in that order. Row r of output (b, q, i) is table row
  // (b · outer + q) · dim + indices[b, i]. Views share memory (same dataId): no copy.
  const table: tf.TensorInfo = { dataId: x.dataId, shape: [batchSize * outerSize * dimSize, sliceSize], dtype: x.dtype };
  if (batchSize * outerSize === 1) {
    // The embedding lookup (axis 0, batchDims 0): the indices are the row numbers.
    const rowIds: tf.TensorInfo = { dataId: indices.dataId, shape: [rows, 1], dtype: "int32" };
    const out = gatherRows(table, rowIds, args.backend);
    return { ...out, shape: info.outputShape };
  }
  if (sliceSize >= SHORT_SLICE) {
    // Write the table row of every output row, then one GatherNd.
    const rowIds = backend.makeOutput([rows, 1], "int32");
    const ids = backend.typedArrayFromHeap(indices); // views taken after makeOutput (see above)
    const r = backend.typedArrayFromHeap(rowIds);
    let k = 0;
    for (let b = 0; b < batchSize; b++) {
      for (let q = 0; q < outerSize; q++) {
        const base = (b * outerSize + q) * dimSize;
        for (let i = b * perBatch, end = i + perBatch; i < end; i++) r[k++] = base + ids[i];
      }
    }
    const out = gatherRows(table, rowIds, args.backend);
    backend.disposeData(rowIds.dataId);
    return { ...out, shape: info.outputShape };
  }
  // Short slices (gathering along one of the last axes): a row-number table would be as
  // big as the output, so copy the elements directly.
  const out = backend.makeOutput(info.outputShape, x.dtype);
  const src = backend.typedArrayFromHeap(x); // views taken after makeOutput (see above)
  const dst = backend.typedArrayFromHeap(out);
  const ids = backend.typedArrayFromHeap(indices);
  let o = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let q = 0; q < outerSize; q++) {
      const base = (b * outerSize + q) * dimSize;
      for (let i = b * perBatch, end = i + perBatch; i < end; i++) {
        let s = (base + ids[i]) * sliceSize;
        for (let j = 0; j < sliceSize; j++) dst[o++] = src[s++];
      }
    }
  }
  return out;
}

/** Rows `rowIds` ([n, 1] int32, all in range) of `table` ([R, S]): the wasm GatherNd kernel. */
function gatherRows(table: tf.TensorInfo, rowIds: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  const gatherNd = tf.getKernel("GatherNd", "wasm");
  if (gatherNd === undefined) throw new Error("GatherV2 (wasm): the wasm GatherNd kernel is missing");
  return gatherNd.kernelFunc({
    inputs: { params: table, indices: rowIds },
    backend: backend as tf.KernelBackend,
    attrs: {},
  }) as tf.TensorInfo;
}

export const gatherWasmConfig: tf.KernelConfig = {
  kernelName: "GatherV2",
  backendName: "wasm",
  kernelFunc: gatherKernel as unknown as tf.KernelFunc,
  // The original, which we fall back to, wraps its wasm function in its setup.
  setupFunc: original?.setupFunc,
};

/** Install the kernel in place of tfjs's (idempotent). */
export function useFastWasmGather(): void {
  installKernel(gatherWasmConfig);
}

/** Put tfjs's own GatherV2 back (tests compare both). */
export function restoreWasmGather(): void {
  restoreKernel(gatherWasmConfig);
}
