/**
 * onnxruntime-node as a native compute library for the wasm backend's kernels: loading it,
 * one session per small ONNX model, the models encoded by hand, and `ortGemm`.
 *
 * Why: tfjs's wasm backend computes in WebAssembly (XNNPACK for products, ~15 GFLOP/s here,
 * simple loops elsewhere) and JavaScript kernels run at ~1-10 ns per element in V8;
 * onnxruntime's CPU provider is native code (MLAS with AVX2 + FMA on this AMD EPYC). It is
 * an optionalDependency: where it does not install, everything falls back to wasm/JS.
 * Users: ./ortMatMul.ts (BatchMatMul), ./sum.ts (column sums as ones·X), lib/gpt/decoder.ts
 * (sampling's matrix-vector products). Not elementwise work: an ONNX graph of the AdamW
 * update (14 nodes) measured no faster than the JavaScript loop (~12 ms for 0.8M
 * parameters; ~13 µs per node and call, ~1 ns per element and node).
 *
 * How: onnxruntime-node's public `session.run` is async (it only wraps the native call in a
 * Promise); a tfjs kernel must return synchronously, so we call the native binding
 * (`onnxruntime-node/dist/binding`) directly. Its `run` reads inputs from, and — given a
 * preallocated output in the fetches — writes the output into, any non-shared ArrayBuffer:
 * kernels hand it views of the wasm heap, so nothing is copied. Tensors are passed as plain
 * `{type, dims, data, location}` objects (what the binding reads; ~6 µs/call less than
 * constructing onnxruntime-common Tensors). A call costs ~20-35 µs whatever its size. One
 * intra-op thread: MLAS then sums in a fixed order (same inputs → same bits), and each
 * data-parallel worker thread has its own. Dynamic shapes cost the same as fixed ones
 * (within noise), so one session per model serves every shape. The ONNX models are a few
 * nodes each, protobuf-encoded below: no onnx package needed.
 */
/** A tensor as onnxruntime-node's native binding reads it. */
export interface OrtTensorLike {
  type: "float32";
  dims: number[];
  data: Float32Array;
  location: "cpu";
}

/** The native InferenceSession of onnxruntime-node (dist/binding), synchronous. */
export interface NativeSession {
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
          sessions.set(gemmKey(false, false), tested);
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

let forKernels = false;
/**
 * Whether the course's other wasm kernels (column sums) compute in onnxruntime:
 * registerWasmKernels turns it on with either native matmul engine, BLAS or onnxruntime
 * (COURSE_MATMUL=wasm keeps everything in wasm/JavaScript). Tests switch it to compare both paths.
 */
export function setOnnxRuntimeKernels(on: boolean): void {
  forKernels = on;
}
/** True when kernels should use onnxruntime: switched on, and loaded. */
export function onnxRuntimeKernels(): boolean {
  return forKernels && ort !== null;
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

/** An error's first line, at most 160 characters: what a loader reports of a native library's failure. */
export function firstLine(e: unknown): string {
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
export const RUN_OPTIONS = {};

/** Sessions by model key (e.g. "gemm01": Gemm with transB), created on first use. */
const sessions = new Map<string, NativeSession>();

function createSession(mod: OrtBindingModule, model: Uint8Array): NativeSession {
  const s = new mod.binding.InferenceSession();
  s.loadModel(model.buffer, model.byteOffset, model.byteLength, SESSION_OPTIONS);
  return s;
}

/**
 * The session of model `key`, built by `build` the first time. Only once onnxruntime has
 * loaded (check onnxRuntimeLoaded()); sessions live as long as the process.
 */
export function ortSession(key: string, build: () => Uint8Array): NativeSession {
  let s = sessions.get(key);
  if (s === undefined) {
    if (ort === null) throw new Error("onnxruntime-node is not loaded");
    s = createSession(ort, build());
    sessions.set(key, s);
  }
  return s;
}

const gemmKey = (ta: boolean, tb: boolean) => `gemm${+ta}${+tb}`;
/** The one-node Gemm model's session, Y [M, N] = op(A)·op(B) (inputs A, B; output Y). */
export function gemmSession(ta: boolean, tb: boolean): NativeSession {
  return ortSession(gemmKey(ta, tb), () => gemmModel(ta, tb));
}

export const cpuTensor = (data: Float32Array, dims: number[]): OrtTensorLike => ({ type: "float32", dims, data, location: "cpu" });

// ---------------------------------------------------------------------------------------
// ONNX models, protobuf-encoded by hand (field numbers from onnx.proto)

export type Bytes = number[];

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
export function node(op: string, inputs: string[], output: string, attrs: Record<string, number | number[]> = {}): Bytes {
  const attributes = Object.entries(attrs).flatMap(([name, v]) => bytesField(5, [
    ...bytesField(1, name),
    ...(Array.isArray(v) ? [...v.flatMap((x) => intField(8, x)), ...intField(20, 7)] : [...intField(3, v), ...intField(20, 2)]),
  ]));
  return [...inputs.flatMap((i) => bytesField(1, i)), ...bytesField(2, output), ...bytesField(3, output), ...bytesField(4, op), ...attributes];
}
/**
 * ModelProto of one graph: `nodes` (from `node`), float inputs and outputs with symbolic
 * dims (a name per axis; the same name = the same size).
 */
export function onnxModel(nodes: Bytes[], inputs: Record<string, string[]>, outputs: Record<string, string[]>): Uint8Array {
  const graph = [
    ...nodes.flatMap((n) => bytesField(1, n)), ...bytesField(2, "llm-course"),
    ...Object.entries(inputs).flatMap(([name, dims]) => bytesField(11, floatInput(name, dims))),
    ...Object.entries(outputs).flatMap(([name, dims]) => bytesField(12, floatInput(name, dims))),
  ];
  return Uint8Array.from([
    ...intField(1, 8 /* IR version */), ...bytesField(2, "llm-course"),
    ...bytesField(7, graph), ...bytesField(8, intField(2, 17 /* opset */)),
  ]);
}

/** Y [M, N] = op(A)·op(B); A [M, K] or [K, M], B [K, N] or [N, K]. */
function gemmModel(ta: boolean, tb: boolean): Uint8Array {
  return onnxModel([node("Gemm", ["A", "B"], "Y", { transA: +ta, transB: +tb })], { A: ["a0", "a1"], B: ["b0", "b1"] }, { Y: ["M", "N"] });
}

/**
 * Y [M, N] = op(A)·op(B) for 2-D operands in any (non-shared) Float32Arrays, through
 * onnxruntime's GEMM; A is [M, K] (or [K, M] with ta), B [K, N] (or [N, K] with tb). Returns
 * false, computing nothing, when onnxruntime is not loaded. For other course kernels (column
 * sums as ones·X) and the sampling decoder; shapes are the caller's to check.
 */
export function ortGemm(A: Float32Array, B: Float32Array, Y: Float32Array, m: number, k: number, n: number, ta = false, tb = false): boolean {
  if (ort === null) return false;
  gemmSession(ta, tb).run({ A: cpuTensor(A, ta ? [k, m] : [m, k]), B: cpuTensor(B, tb ? [n, k] : [k, n]) }, { Y: cpuTensor(Y, [m, n]) }, RUN_OPTIONS);
  return true;
}
