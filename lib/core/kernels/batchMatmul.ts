/**
 * `BatchMatMul` for the wasm backend that always takes the fast path.
 *
 * Why: tfjs-backend-wasm 4.22 multiplies with XNNPACK only when the product is a single
 * untransposed 2-D one (batch 1, transposeA = transposeB = false); everything else — a
 * transposed operand, a batch of products, and so also the gradient of every matMul
 * (dA = dC·Bᵀ, dB = Aᵀ·dC) — runs a naive loop ~5-15x slower.
 *
 * How: transpose explicitly with the wasm Transpose kernel, then call the wasm
 * BatchMatMul function once per batch element on views of the operands (extra tensor ids
 * registered on the same heap memory, so nothing is copied), each a fast 2-D product.
 * Products the original already does fast (batch 1, no transpose), and the rare
 * broadcasts it is not worth handling here (batch dims that differ in more than "one side
 * is 1"), go to the original kernel. Results equal the cpu backend's to float32 rounding
 * (tests/core/kernels/batchMatmul.test.ts).
 *
 * Measured here: 48 products [64, 64]·[64, 32]: 12.5 ms → 2.1 ms; a 512² product with
 * transposeB: ~166 ms → 22 ms.
 */
import * as tf from "@tensorflow/tfjs";
// Importing the package registers the wasm backend and its original kernels.
import "@tensorflow/tfjs-backend-wasm";
import { installKernel, restoreKernel } from "./registry";

/** The members of tfjs-backend-wasm's `BackendWasm` this kernel uses. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } };
  dataIdNextNumber: number;
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...a: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  };
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

const original = tf.getKernel("BatchMatMul", "wasm");

/** The wasm module's BatchMatMul entry point, wrapped once per module. */
const entryPoints = new WeakMap<object, (...a: unknown[]) => void>();
function wasmBatchMatMul(backend: WasmBackendLike): (...a: unknown[]) => void {
  let fn = entryPoints.get(backend.wasm);
  if (fn === undefined) {
    // a_id, a_shape, a_rank, b_id, b_shape, b_rank, transpose_a, transpose_b, out_id
    fn = backend.wasm.cwrap("BatchMatMul", null,
      ["number", "array", "number", "number", "array", "number", "number", "number", "number"]);
    entryPoints.set(backend.wasm, fn);
  }
  return fn;
}

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** x with its last two axes swapped, by the wasm Transpose kernel (a new tensor). */
function transposeLast2(x: tf.TensorInfo, backend: WasmBackendLike): tf.TensorInfo {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  const transpose = tf.getKernel("Transpose", "wasm")!.kernelFunc;
  return transpose({ inputs: { x }, backend: backend as never, attrs: { perm } }) as tf.TensorInfo;
}

/** A tensor id for `size` floats at `offset` of the heap; no memory of its own. */
function viewId(backend: WasmBackendLike, offset: number, size: number): number {
  const id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

function batchMatMulKernel(args: KernelArgs): tf.TensorInfo {
  const a = args.inputs.a!, b = args.inputs.b!;
  const transposeA = Boolean(args.attrs?.transposeA), transposeB = Boolean(args.attrs?.transposeB);
  const backend = args.backend as WasmBackendLike;
  const leadA = a.shape.slice(0, -2), leadB = b.shape.slice(0, -2);
  const batchA = prod(leadA), batchB = prod(leadB);
  const padded = (lead: number[], n: number) => [...new Array<number>(n - lead.length).fill(1), ...lead];
  const rank = Math.max(leadA.length, leadB.length);
  const sameLead = padded(leadA, rank).every((d, i) => d === padded(leadB, rank)[i]);
  const [m, k] = transposeA ? [a.shape[a.shape.length - 1], a.shape[a.shape.length - 2]] : a.shape.slice(-2);
  const [k2, n] = transposeB ? [b.shape[b.shape.length - 1], b.shape[b.shape.length - 2]] : b.shape.slice(-2);
  const simple = a.dtype === "float32" && b.dtype === "float32" && k === k2 && m * n * k > 0 &&
    (sameLead || batchA === 1 || batchB === 1);
  const alreadyFast = batchA === 1 && batchB === 1 && !transposeA && !transposeB;
  if (!simple || alreadyFast) {
    if (original === undefined) throw new Error("BatchMatMul (wasm): the original kernel is not available");
    return original.kernelFunc(args as never) as tf.TensorInfo;
  }
  const temps: tf.TensorInfo[] = [];
  const aa = transposeA ? transposeLast2(a, backend) : a; // [..., M, K]
  const bb = transposeB ? transposeLast2(b, backend) : b; // [..., K, N]
  if (transposeA) temps.push(aa);
  if (transposeB) temps.push(bb);
  const batch = Math.max(batchA, batchB);
  const lead = batchA >= batchB ? leadA : leadB;
  const out = backend.makeOutput([...lead, m, n], "float32");
  // Offsets read after every allocation (an allocation may move nothing, but be safe).
  const aOff = backend.dataIdMap.get(aa.dataId).memoryOffset;
  const bOff = backend.dataIdMap.get(bb.dataId).memoryOffset;
  const oOff = backend.dataIdMap.get(out.dataId).memoryOffset;
  const aShape = new Uint8Array(new Int32Array([1, m, k]).buffer);
  const bShape = new Uint8Array(new Int32Array([1, k, n]).buffer);
  const fn = wasmBatchMatMul(backend);
  for (let i = 0; i < batch; i++) {
    const ai = viewId(backend, aOff + 4 * (batchA === 1 ? 0 : i) * m * k, m * k);
    const bi = viewId(backend, bOff + 4 * (batchB === 1 ? 0 : i) * k * n, k * n);
    const oi = viewId(backend, oOff + 4 * i * m * n, m * n);
    fn(ai, aShape, 3, bi, bShape, 3, false, false, oi); // [1, M, K]·[1, K, N]: XNNPACK
    for (const id of [ai, bi, oi]) backend.wasm.tfjs.disposeData(id); // forget the ids, keep the memory
  }
  for (const t of temps) backend.disposeData(t.dataId);
  return out;
}

export const batchMatMulWasmConfig: tf.KernelConfig = {
  kernelName: "BatchMatMul",
  backendName: "wasm",
  kernelFunc: batchMatMulKernel as unknown as tf.KernelFunc,
  // The original, which we fall back to, wraps its wasm function in its setup.
  setupFunc: original?.setupFunc,
};

/** Install the kernel in place of tfjs's (idempotent). */
export function useFastWasmMatMul(): void {
  installKernel(batchMatMulWasmConfig);
}

/** Put tfjs's own BatchMatMul back. */
export function restoreWasmMatMul(): void {
  restoreKernel(batchMatMulWasmConfig);
}
