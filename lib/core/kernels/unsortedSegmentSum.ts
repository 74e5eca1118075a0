/**
 * `UnsortedSegmentSum` for the wasm backend.
 *
 * Why it exists: tfjs-backend-wasm 4.22 ships no `UnsortedSegmentSum` kernel, and the
 * gradient of `tf.gather` (every embedding lookup) is built on it, so training any
 * model with an embedding table throws "Kernel 'UnsortedSegmentSum' not registered
 * for backend 'wasm'" (tfjs issue #8082).
 *
 * What it computes: out[s, ...] = sum of x[i, ...] over every i with segmentIds[i] = s.
 *   x:          [...idsShape, ...inner]   float32 or int32
 *   segmentIds: idsShape                  int32 (1-D in the gather gradient)
 *   out:        [numSegments, ...inner]   same dtype as x
 * Ids outside [0, numSegments) are dropped, as the cpu backend does.
 *
 * How: this is exactly a scatter-add. The wasm `ScatterNd` kernel adds the updates of
 * repeated indices together (checked in tests/core/kernels/kernels.test.ts), so with
 *   indices = segmentIds viewed as [N, 1], updates = x viewed as [N, ...inner]
 * one ScatterNd call does the whole job in wasm. Views share the tensors' memory, so
 * nothing is copied. ScatterNd does not check bounds, so when an id is out of range we
 * take a plain JavaScript loop instead (rare: the gather gradient never does this).
 */
import * as tf from "@tensorflow/tfjs";

/** The few members of tfjs-backend-wasm's `BackendWasm` this kernel uses. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

function unsortedSegmentSumWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs.x;
  const segmentIds = args.inputs.segmentIds;
  const numSegments = Number(args.attrs?.numSegments);

  if (x === undefined || segmentIds === undefined) {
    throw new Error("UnsortedSegmentSum (wasm): expected inputs x and segmentIds");
  }
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum (wasm): numSegments must be an integer >= 0, got ${args.attrs?.numSegments}`);
  }
  if (x.dtype !== "float32" && x.dtype !== "int32") {
    throw new Error(`UnsortedSegmentSum (wasm): x must be float32 or int32, got ${x.dtype}`);
  }
  if (segmentIds.dtype !== "int32") {
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  const idsShape = segmentIds.shape;
  const prefixMatches = idsShape.length <= x.shape.length && idsShape.every((d, i) => d === x.shape[i]);
  if (!prefixMatches) {
    throw new Error(
      `UnsortedSegmentSum (wasm): segmentIds shape [${idsShape}] must be a prefix of x shape [${x.shape}]`,
    );
  }

  const n = idsShape.reduce((a, b) => a * b, 1); // number of rows being summed
  const inner = x.shape.slice(idsShape.length); // shape of one row
  const rowSize = inner.reduce((a, b) => a * b, 1);
  const outShape = [numSegments, ...inner];

  const ids = backend.typedArrayFromHeap(segmentIds);
  let allInRange = true;
  for (let i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= numSegments) {
      allInRange = false;
      break;
    }
  }

  if (allInRange && n > 0 && rowSize > 0) {
    const scatterNd = tf.getKernel("ScatterNd", "wasm");
    if (scatterNd === undefined) throw new Error("UnsortedSegmentSum (wasm): the wasm ScatterNd kernel is missing");
    // Views over the same memory (same dataId), only the shapes differ.
    const indices: tf.TensorInfo = { dataId: segmentIds.dataId, shape: [n, 1], dtype: "int32" };
    const updates: tf.TensorInfo = { dataId: x.dataId, shape: [n, ...inner], dtype: x.dtype };
    return scatterNd.kernelFunc({
      inputs: { indices, updates },
      backend: args.backend as tf.KernelBackend,
      attrs: { shape: outShape },
    }) as tf.TensorInfo;
  }

  // Fallback: loop in JavaScript, skipping out-of-range ids (also covers empty inputs).
  const out = backend.makeOutput(outShape, x.dtype);
  // Read the heap views only after makeOutput: allocating can grow (and detach) wasm memory.
  const outVals = backend.typedArrayFromHeap(out);
  const xVals = backend.typedArrayFromHeap(x);
  const idVals = backend.typedArrayFromHeap(segmentIds);
  outVals.fill(0);
  for (let i = 0; i < n; i++) {
    const s = idVals[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * rowSize;
    const dst = s * rowSize;
    for (let j = 0; j < rowSize; j++) outVals[dst + j] += xVals[src + j];
  }
  return out;
}

export const unsortedSegmentSumWasmConfig: tf.KernelConfig = {
  kernelName: "UnsortedSegmentSum",
  backendName: "wasm",
  kernelFunc: unsortedSegmentSumWasm as unknown as tf.KernelFunc,
};
