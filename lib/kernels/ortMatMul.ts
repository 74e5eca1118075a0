/**
 * `BatchMatMul` for the wasm backend computed by onnxruntime-node (its MLAS GEMM), when
 * that optional package loads.
 *
 * Why: even on its fast path (./batch_matmul.ts) the wasm backend multiplies with XNNPACK
 * compiled to WebAssembly, ~15 GFLOP/s on one core here; MLAS is native code (AVX2 + FMA kernels on this AMD EPYC)
 * and reached 25-45 GFLOP/s on one thread for the same products. Measured on this 2-core
 * machine (loaded by another process; medians, 1 thread each):
 *   [768, 128]·[128, 384]  4.2 ms → 3.0 ms      [768, 512]·[512, 128]       6.3 → 2.7 ms
 *   [128, 768]ᵀ·[768, 512]  7.2 → 2.9 ms         one linear layer fwd + bwd  2.3x faster
 *   attention [48, 64, 32]·[48, 64, 32]ᵀ and its gradients, 6 products: 12.6 → 5.6 ms
 *   decode step q·kᵀ [48, 1, 32]·[48, 40, 32]ᵀ: 508 → 56 µs (XNNPACK: one call per head)
 *   per call (kernel alone, 8×8): XNNPACK 7-11 µs, this kernel 20-35 µs (ORT's Run).
 * That fixed cost makes small untransposed 2-D products slower here: 1×128·128×512
 * 23 → 61 µs, 16×128·128×128 53 → 90 µs; break-even near 64×128·128×128 (1M
 * multiply-adds), so below MIN_ORT_MACS those stay with XNNPACK (sampling's decode steps).
 * End to end, `npm run bench` (nanogpt-cpu, batch 12 × 64, one thread, same sittings):
 * 523-573 ms per training step with XNNPACK, 270-337 ms with this kernel.
 * Dynamic shapes cost the same as fixed ones (within noise), so one session per model
 * variant (2-D or batched × transposeA × transposeB) serves every shape.
 *
 * How: onnxruntime-node's public `session.run` is async (it only wraps the native call in a
 * Promise); a tfjs kernel must return synchronously, so we call the native binding
 * (`onnxruntime-node/dist/binding`) directly. Its `run` reads inputs from, and — given a
 * preallocated output in the fetches — writes the output into, any non-shared ArrayBuffer:
 * we hand it views of the wasm heap, so nothing is copied. Tensors are passed as plain
 * `{type, dims, data, location}` objects (what the binding reads; ~6 µs/call less than
 * constructing onnxruntime-common Tensors). One intra-op thread: MLAS then sums in a fixed
 * order (same inputs → same bits), and each data-parallel worker thread has its own.
 * The ONNX models are one node (Gemm) or Transpose + MatMul (which ORT fuses into one
 * FusedMatMul), encoded by hand below: no onnx package needed.
 *
 * Anything else — not float32, an empty product, batch dims that broadcast other than
 * "one side is 1", a shared (threaded) wasm heap, ORT not loaded — goes to the course's
 * XNNPACK kernel (./batch_matmul.ts). Results equal the cpu backend's to float32 rounding
 * (tests/ortMatMul.test.ts).
 */
import * as tf from "@tensorflow/tfjs";
// Importing the package registers the wasm backend and its original kernels.
import "@tensorflow/tfjs-backend-wasm";
import { batchMatMulWasmConfig } from "./batch_matmul";

/** The members of tfjs-backend-wasm's `BackendWasm` this kernel uses. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } };
  wasm: { HEAPU8: Uint8Array };
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** A tensor as onnxruntime-node's native binding reads it. */
interface OrtTensorLike {
  type: "float32";
  dims: number[];
  data: Float32Array;
  location: "cpu";
}

/** The native InferenceSession of onnxruntime-node (dist/binding), synchronous. */
interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, OrtTensorLike>, fetches: Record<string, OrtTensorLike>, options: object): unknown;
  dispose(): void;
}

interface OrtBindingModule {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

export const ORT_PACKAGE = "onnxruntime-node";

// ---------------------------------------------------------------------------------------
// Loading

let ort: OrtBindingModule | null = null;
/** Why ORT is not in use, once a load failed (the default loader's answer is final). */
let loadError: string | null = null;

/**
 * Load onnxruntime-node and check it multiplies (a 2×3·3×2 product). Returns undefined when
 * the ORT matmul can run, otherwise why not, as one line. Safe to call often: the answer
 * is cached. `load` replaces Node's require, for tests: what it loads is only checked,
 * never cached nor used by the kernel.
 */
export function loadOnnxRuntime(load?: (name: string) => unknown): string | undefined {
  if (load === undefined) {
    if (ort !== null) return undefined;
    if (loadError !== null) return loadError;
  }
  let reason: string;
  try {
    const mod = (load ?? require)(`${ORT_PACKAGE}/dist/binding`) as Partial<OrtBindingModule> | undefined;
    if (typeof mod?.binding?.InferenceSession !== "function" || typeof mod.initOrt !== "function") {
      reason = `${ORT_PACKAGE}: dist/binding has no InferenceSession (an incompatible version?)`;
    } else {
      mod.initOrt();
      const tested = selfTest(mod as OrtBindingModule);
      if (typeof tested !== "string") {
        if (load === undefined) {
          ort = mod as OrtBindingModule;
          sessions.set("gemm00", tested);
        } else {
          tested.dispose();
        }
        return undefined;
      }
      reason = tested;
    }
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    reason = code === "MODULE_NOT_FOUND" && String((e as Error).message).includes(ORT_PACKAGE)
      ? `${ORT_PACKAGE} not installed`
      : `${ORT_PACKAGE} failed to load (${firstLine(e)})`;
  }
  if (load === undefined) loadError = reason;
  return reason;
}

/** True once onnxruntime-node has loaded and passed its self-test. */
export function onnxRuntimeLoaded(): boolean {
  return ort !== null;
}

/**
 * [[1,2,3],[4,5,6]]·[[1,0],[0,1],[1,1]] = [[4,5],[10,11]] through the untransposed 2-D
 * model, written into a preallocated output as the kernel does. The session, or why not.
 */
function selfTest(mod: OrtBindingModule): NativeSession | string {
  try {
    const s = createSession(mod, gemmModel(false, false));
    const y = new Float32Array(4);
    s.run({ A: cpuTensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]), B: cpuTensor(new Float32Array([1, 0, 0, 1, 1, 1]), [3, 2]) },
      { Y: cpuTensor(y, [2, 2]) }, RUN_OPTIONS);
    if (y.join() === "4,5,10,11") return s;
    s.dispose();
    return `${ORT_PACKAGE}: self-test product gave [${y.join(", ")}], expected [4, 5, 10, 11]`;
  } catch (e) {
    return `${ORT_PACKAGE}: self-test failed (${firstLine(e)})`;
  }
}

function firstLine(e: unknown): string {
  const line = (e instanceof Error ? e.message : String(e)).split("\n")[0].trim();
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

// ---------------------------------------------------------------------------------------
// Sessions

const SESSION_OPTIONS = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
};
const RUN_OPTIONS = {};

/** One session per model variant: "gemm" | "bmm", then transposeA, transposeB as 0/1. */
const sessions = new Map<string, NativeSession>();

function createSession(mod: OrtBindingModule, model: Uint8Array): NativeSession {
  const s = new mod.binding.InferenceSession();
  s.loadModel(model.buffer, model.byteOffset, model.byteLength, SESSION_OPTIONS);
  return s;
}

function session(batched: boolean, ta: boolean, tb: boolean): NativeSession {
  const key = `${batched ? "bmm" : "gemm"}${+ta}${+tb}`;
  let s = sessions.get(key);
  if (s === undefined) {
    s = createSession(ort!, batched ? batchedModel(ta, tb) : gemmModel(ta, tb));
    sessions.set(key, s);
  }
  return s;
}

const cpuTensor = (data: Float32Array, dims: number[]): OrtTensorLike => ({ type: "float32", dims, data, location: "cpu" });

// ---------------------------------------------------------------------------------------
// ONNX models, protobuf-encoded by hand (field numbers from onnx.proto)

type Bytes = number[];

function varint(n: number): Bytes {
  const out: Bytes = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}
const tag = (field: number, wireType: 0 | 2) => varint(field * 8 + wireType);
const intField = (field: number, v: number): Bytes => [...tag(field, 0), ...varint(v)];
function bytesField(field: number, v: Bytes | string): Bytes {
  const b = typeof v === "string" ? [...Buffer.from(v, "utf8")] : v;
  return [...tag(field, 2), ...varint(b.length), ...b];
}

/** ValueInfoProto of a float tensor whose dims are all symbolic (dynamic). */
function floatInput(name: string, dims: string[]): Bytes {
  const shape = dims.flatMap((d) => bytesField(1, bytesField(2, d))); // TensorShapeProto.dim.dim_param
  const tensorType = [...intField(1, 1 /* FLOAT */), ...bytesField(2, shape)];
  return [...bytesField(1, name), ...bytesField(2, bytesField(1, tensorType))];
}
/** NodeProto; attrs: INT (type 2) or INTS (type 7) attributes. */
function node(op: string, inputs: string[], output: string, attrs: Record<string, number | number[]> = {}): Bytes {
  const attributes = Object.entries(attrs).flatMap(([name, v]) => bytesField(5, [
    ...bytesField(1, name),
    ...(Array.isArray(v) ? [...v.flatMap((x) => intField(8, x)), ...intField(20, 7)] : [...intField(3, v), ...intField(20, 2)]),
  ]));
  return [...inputs.flatMap((i) => bytesField(1, i)), ...bytesField(2, output), ...bytesField(3, output), ...bytesField(4, op), ...attributes];
}
function model(nodes: Bytes[], aDims: string[], bDims: string[], yDims: string[]): Uint8Array {
  const graph = [
    ...nodes.flatMap((n) => bytesField(1, n)), ...bytesField(2, "matmul"),
    ...bytesField(11, floatInput("A", aDims)), ...bytesField(11, floatInput("B", bDims)),
    ...bytesField(12, floatInput("Y", yDims)),
  ];
  return Uint8Array.from([
    ...intField(1, 8 /* IR version */), ...bytesField(2, "llm-course"),
    ...bytesField(7, graph), ...bytesField(8, intField(2, 17 /* opset */)),
  ]);
}

/** Y [M, N] = op(A)·op(B); A [M, K] or [K, M], B [K, N] or [N, K]. */
function gemmModel(ta: boolean, tb: boolean): Uint8Array {
  return model([node("Gemm", ["A", "B"], "Y", { transA: +ta, transB: +tb })], ["a0", "a1"], ["b0", "b1"], ["M", "N"]);
}

/** Y [batch, M, N] = op(A)·op(B) per batch element; A [batchA, ·, ·], B [batchB, ·, ·], a batch of 1 broadcasts. */
function batchedModel(ta: boolean, tb: boolean): Uint8Array {
  const nodes: Bytes[] = [];
  if (ta) nodes.push(node("Transpose", ["A"], "At", { perm: [0, 2, 1] }));
  if (tb) nodes.push(node("Transpose", ["B"], "Bt", { perm: [0, 2, 1] }));
  nodes.push(node("MatMul", [ta ? "At" : "A", tb ? "Bt" : "B"], "Y"));
  return model(nodes, ["batchA", "a1", "a2"], ["batchB", "b1", "b2"], ["batch", "M", "N"]);
}

// ---------------------------------------------------------------------------------------
// The kernel

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);
/** Products this kernel has computed, and handed to the XNNPACK kernel (tests, diagnostics). */
const counts = { onnxruntime: 0, fallback: 0 };
export function ortMatMulCounts(): { onnxruntime: number; fallback: number } {
  return { ...counts };
}

/** Untransposed 2-D products with fewer multiply-adds than this stay with XNNPACK (see top). */
export const MIN_ORT_MACS = 1 << 20;
const fallback = batchMatMulWasmConfig.kernelFunc as unknown as (args: KernelArgs) => tf.TensorInfo;

function ortBatchMatMulKernel(args: KernelArgs): tf.TensorInfo {
  const a = args.inputs.a!, b = args.inputs.b!;
  const ta = Boolean(args.attrs?.transposeA), tb = Boolean(args.attrs?.transposeB);
  const backend = args.backend as WasmBackendLike;
  const ra = a.shape.length, rb = b.shape.length;
  const leadA = a.shape.slice(0, -2), leadB = b.shape.slice(0, -2);
  const batchA = prod(leadA), batchB = prod(leadB);
  const rank = Math.max(leadA.length, leadB.length);
  const padded = (lead: number[]) => [...new Array<number>(rank - lead.length).fill(1), ...lead];
  const pA = padded(leadA), pB = padded(leadB);
  const sameLead = pA.every((d, i) => d === pB[i]);
  const [m, k] = ta ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [k2, n] = tb ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  const batch = Math.max(batchA, batchB);
  const supported = ort !== null && a.dtype === "float32" && b.dtype === "float32" && ra >= 2 && rb >= 2 &&
    k === k2 && m * n * k > 0 && (sameLead || batchA === 1 || batchB === 1) &&
    backend.wasm.HEAPU8.buffer instanceof ArrayBuffer; // the binding rejects a SharedArrayBuffer
  const xnnpackFaster = batch === 1 && !ta && !tb && m * k * n < MIN_ORT_MACS;
  if (!supported || xnnpackFaster) {
    counts.fallback++;
    return fallback(args);
  }
  // Broadcast batch dims: equal, or all 1 on one side, so the larger of each pair.
  const out = backend.makeOutput([...pA.map((d, i) => Math.max(d, pB[i])), m, n], "float32");
  // The heap's buffer after the allocation (growing memory replaces it).
  const heap = backend.wasm.HEAPU8.buffer;
  const view = (t: tf.TensorInfo, size: number) => new Float32Array(heap, backend.dataIdMap.get(t.dataId).memoryOffset, size);
  const A = view(a, batchA * m * k), B = view(b, batchB * k * n), Y = view(out, batch * m * n);
  const aDims = ta ? [k, m] : [m, k], bDims = tb ? [n, k] : [k, n];
  try {
    if (batch === 1) {
      session(false, ta, tb).run({ A: cpuTensor(A, aDims), B: cpuTensor(B, bDims) }, { Y: cpuTensor(Y, [m, n]) }, RUN_OPTIONS);
    } else if (batchB === 1 && !ta) {
      // A [batchA, M, K] is the 2-D [batchA·M, K]: one GEMM with B [K, N] → [batchA·M, N].
      session(false, false, tb).run({ A: cpuTensor(A, [batchA * m, k]), B: cpuTensor(B, bDims) },
        { Y: cpuTensor(Y, [batchA * m, n]) }, RUN_OPTIONS);
    } else {
      session(true, ta, tb).run({ A: cpuTensor(A, [batchA, ...aDims]), B: cpuTensor(B, [batchB, ...bDims]) },
        { Y: cpuTensor(Y, [batch, m, n]) }, RUN_OPTIONS);
    }
  } catch {
    // Not expected (shapes are checked above); the XNNPACK kernel gives the same answer.
    backend.disposeData(out.dataId);
    counts.fallback++;
    return fallback(args);
  }
  counts.onnxruntime++;
  return out;
}

/**
 * Y [M, N] = op(A)·op(B) for 2-D operands in any (non-shared) Float32Arrays, through
 * onnxruntime's GEMM; A is [M, K] (or [K, M] with ta), B [K, N] (or [N, K] with tb). Returns
 * false, computing nothing, when onnxruntime is not loaded. For other course kernels (column
 * sums as ones·X) and the sampling decoder; shapes are the caller's to check.
 */
export function ortGemm(A: Float32Array, B: Float32Array, Y: Float32Array, m: number, k: number, n: number, ta = false, tb = false): boolean {
  if (ort === null) return false;
  session(false, ta, tb).run({ A: cpuTensor(A, ta ? [k, m] : [m, k]), B: cpuTensor(B, tb ? [n, k] : [k, n]) }, { Y: cpuTensor(Y, [m, n]) }, RUN_OPTIONS);
  return true;
}

export const ortBatchMatMulWasmConfig: tf.KernelConfig = {
  kernelName: "BatchMatMul",
  backendName: "wasm",
  kernelFunc: ortBatchMatMulKernel as unknown as tf.KernelFunc,
  // The fallback (and tfjs's original behind it) wrap their wasm function in this setup.
  setupFunc: batchMatMulWasmConfig.setupFunc,
};

/** What `BackendInfo.matmul` reports for each engine. */
export const MATMUL_ENGINE_NAMES = { onnxruntime: "onnxruntime (MLAS)", xnnpack: "xnnpack" } as const;
export type MatMulEngine = keyof typeof MATMUL_ENGINE_NAMES;
