/**
 * The sizes of a BatchMatMul as a native GEMM sees them, shared by the kernels that hand
 * products to native code (./ortMatMul.ts, ./blasMatMul.ts): op(A) [batch, M, K] · op(B)
 * [batch, K, N], where the batch dims of A and B are equal or one side's are all 1 (it
 * broadcasts). Anything else (other dtypes, general broadcasting, an empty product) has no
 * plan and goes to the XNNPACK kernel.
 */
import * as tf from "@tensorflow/tfjs";

export interface ProductPlan {
  ta: boolean;
  tb: boolean;
  m: number;
  n: number;
  k: number;
  /** Batch sizes of A and B (1 = broadcast) and of the product. */
  batchA: number;
  batchB: number;
  batch: number;
  /** The output's shape: the broadcast batch dims, then [M, N]. */
  outShape: number[];
}

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

export function planProduct(a: tf.TensorInfo, b: tf.TensorInfo, attrs: tf.NamedAttrMap | undefined): ProductPlan | undefined {
  const ta = Boolean(attrs?.transposeA), tb = Boolean(attrs?.transposeB);
  const ra = a.shape.length, rb = b.shape.length;
  if (a.dtype !== "float32" || b.dtype !== "float32" || ra < 2 || rb < 2) return undefined;
  const leadA = a.shape.slice(0, -2), leadB = b.shape.slice(0, -2);
  const batchA = prod(leadA), batchB = prod(leadB);
  const rank = Math.max(leadA.length, leadB.length);
  const padded = (lead: number[]) => [...new Array<number>(rank - lead.length).fill(1), ...lead];
  const pA = padded(leadA), pB = padded(leadB);
  const sameLead = pA.every((d, i) => d === pB[i]);
  const [m, k] = ta ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [k2, n] = tb ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  if (k !== k2 || m * n * k === 0 || !(sameLead || batchA === 1 || batchB === 1)) return undefined;
  // Broadcast batch dims: equal, or all 1 on one side, so the larger of each pair.
  return { ta, tb, m, n, k, batchA, batchB, batch: Math.max(batchA, batchB), outShape: [...pA.map((d, i) => Math.max(d, pB[i])), m, n] };
}

/** The members of tfjs-backend-wasm's `BackendWasm` these kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
}

/**
 * The plan's output, allocated, and Float32Array views of A, B and it on the wasm heap (taken
 * after the allocation: growing memory replaces the heap's buffer).
 */
export function allocateProduct(backend: WasmBackendLike, a: tf.TensorInfo, b: tf.TensorInfo, plan: ProductPlan): { out: tf.TensorInfo; A: Float32Array; B: Float32Array; Y: Float32Array } {
  const out = backend.makeOutput(plan.outShape, "float32");
  const heap = backend.wasm.HEAPU8.buffer;
  const view = (t: tf.TensorInfo, size: number) => new Float32Array(heap, backend.dataIdMap.get(t.dataId).memoryOffset, size);
  const { m, n, k } = plan;
  return { out, A: view(a, plan.batchA * m * k), B: view(b, plan.batchB * k * n), Y: view(out, plan.batch * m * n) };
}

/**
 * The KernelConfig of a native BatchMatMul: `kernelFunc` on wasm, with the XNNPACK kernel's
 * setup, since it falls back to that kernel (and tfjs's original behind it wraps its wasm function there).
 */
export function nativeBatchMatMulConfig(kernelFunc: (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => tf.TensorInfo, fallbackSetup: tf.KernelConfig["setupFunc"]): tf.KernelConfig {
  return { kernelName: "BatchMatMul", backendName: "wasm", kernelFunc: kernelFunc as unknown as tf.KernelFunc, setupFunc: fallbackSetup };
}
