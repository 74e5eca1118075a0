/**
 * Choosing where tensors are computed.
 *
 * TensorFlow.js runs the same program on several "backends". From fastest to slowest
 * on a machine without a browser:
 *   tensorflow  native TensorFlow through @tensorflow/tfjs-node-gpu (CUDA GPU) or
 *               @tensorflow/tfjs-node (CPU). Both are optional: their install downloads
 *               libtensorflow, which not every machine can do.
 *   wasm        @tensorflow/tfjs-backend-wasm: C++ kernels compiled to WebAssembly, with
 *               SIMD; always installable.
 *   cpu         plain JavaScript kernels; the reference, but 10-50x slower than wasm.
 *
 * `await initBackend()` picks the fastest one that works here, says which and why in
 * one line, and is safe to call from every notebook (the second call is free and quiet).
 * `COURSE_BACKEND=tensorflow|wasm|cpu|auto` overrides the automatic choice.
 *
 * On wasm, matrix products (BatchMatMul) run in the machine's BLAS (OpenBLAS, Accelerate)
 * through the optional package koffi where both load (lib/core/kernels/blasMatMul.ts), else in
 * onnxruntime-node's native GEMM when that optional package loads (lib/core/kernels/ortMatMul.ts),
 * else in the course's XNNPACK kernel (lib/core/kernels/batchMatmul.ts).
 * `COURSE_MATMUL=auto|blas|onnxruntime|wasm`: "wasm" (or "xnnpack") forces the XNNPACK kernel,
 * e.g. to compare or to rule native code out; "blas" or "onnxruntime" picks that engine and
 * makes a failure to load it an error instead of a fallback. COURSE_BLAS=/path/to/library
 * chooses the BLAS (lib/core/kernels/blas.ts).
 *
 * It also patches what tfjs 4.22 lacks for training (see lib/core/kernels): the wasm
 * `UnsortedSegmentSum` kernel (gradient of tf.gather) and, on every backend, zero
 * gradients for comparisons plus a broadcast-safe matMul gradient.
 * Call it before any tensor op: once the wasm package is imported, tfjs refuses to run
 * ops ("backend 'wasm' has not yet been initialized") until a backend has been awaited.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import * as tfWasm from "@tensorflow/tfjs-backend-wasm";
import { availableCores } from "./cores";
import { blasDefaultThreads, blasInfo, loadBlas, loadOnnxRuntime, loadSimdKernels, MATMUL_ENGINE_NAMES, type MatMulEngine, registerGradientFixes, registerWasmKernels, wasmMatMulEngine } from "./kernels";

export type BackendName = "tensorflow" | "wasm" | "cpu";
export type BackendRequest = BackendName | "auto";

/** Accepted values of the COURSE_BACKEND environment variable. */
export const BACKEND_REQUESTS: readonly BackendRequest[] = ["tensorflow", "wasm", "cpu", "auto"];

export type MatMulRequest = "auto" | "blas" | "onnxruntime" | "wasm";
/** Accepted values of the COURSE_MATMUL environment variable ("xnnpack" means "wasm"). */
export const MATMUL_REQUESTS: readonly string[] = ["auto", "blas", "onnxruntime", "wasm", "xnnpack"];

export interface BackendInfo {
  /** The active tfjs backend, as `tf.getBackend()` names it. */
  name: BackendName;
  /** The npm package providing it. */
  package: string;
  /** What was asked for: COURSE_BACKEND, or "auto". */
  requested: BackendRequest;
  /** Why this backend: the fallbacks that were skipped, or the override. */
  reason: string;
  /** True when TensorFlow runs on a GPU. */
  gpu: boolean;
  /** wasm only: whether the SIMD build of the kernels runs. */
  simd?: boolean;
  /** wasm only: threads used by the wasm kernels (Node runs them single-threaded). */
  threads?: number;
  /** wasm only: what computes BatchMatMul (see COURSE_MATMUL at the top of this file). */
  matmul?: (typeof MATMUL_ENGINE_NAMES)[MatMulEngine];
  /** wasm only, when matmul is not "BLAS": why not the faster engines (COURSE_MATMUL, or their load errors). */
  matmulReason?: string;
  /** wasm only, with matmul "BLAS": the library (e.g. "OpenBLAS 0.3.21 (SkylakeX)") and its threads per product. */
  blas?: { name: string; threads: number | undefined };
  /** Kernels the course added to this backend (see lib/core/kernels). */
  addedKernels: string[];
  /** Kernels whose tfjs gradient the course added or fixed, on every backend (see lib/core/kernels/gradients.ts). */
  fixedGradients: string[];
  /** Version of @tensorflow/tfjs. */
  tfjsVersion: string;
  /**
   * The one line initBackend prints, e.g.
   * "backend: wasm (tfjs-node not installed; SIMD on, 1 thread; matmul: onnxruntime (MLAS))".
   */
  line: string;
}

export interface InitBackendOptions {
  /** Don't print the one-line summary. */
  quiet?: boolean;
  /** Where COURSE_BACKEND and COURSE_MATMUL are read from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Loads onnxruntime-node for the matmul: undefined when it can run, else why not
   * (default: lib/core/kernels' loadOnnxRuntime). Tests replace it.
   */
  loadOnnxRuntime?: () => string | undefined;
  /** Loads the BLAS for the matmul, likewise (default: lib/core/kernels' loadBlas). Tests replace it. */
  loadBlas?: () => string | undefined;
  /** Loads an optional package by name (default: Node's require). Tests replace it. */
  loadPackage?: (name: string) => unknown;
  /** Whether the optional package is installed (default: require.resolve succeeds). */
  isInstalled?: (name: string) => boolean;
  /** Whether an NVIDIA GPU is visible to this process (default: looks at /proc and /dev). */
  gpuVisible?: () => boolean;
}

const GPU_PKG = "@tensorflow/tfjs-node-gpu";
const NODE_PKG = "@tensorflow/tfjs-node";
const WASM_PKG = "@tensorflow/tfjs-backend-wasm";

let pending: Promise<BackendInfo> | null = null;
let chosen: BackendInfo | null = null;

/** Parse COURSE_BACKEND; empty or unset means "auto". */
export function parseBackendRequest(value: string | undefined): BackendRequest {
  const v = (value ?? "").trim().toLowerCase();
  if (v === "") return "auto";
  if ((BACKEND_REQUESTS as readonly string[]).includes(v)) return v as BackendRequest;
  throw new Error(`COURSE_BACKEND="${value}" is not valid; use one of: ${BACKEND_REQUESTS.join(", ")}`);
}

/** Parse COURSE_MATMUL; empty or unset means "auto", "xnnpack" means "wasm". */
export function parseMatMulRequest(value: string | undefined): MatMulRequest {
  const v = (value ?? "").trim().toLowerCase();
  if (v === "") return "auto";
  if (v === "xnnpack") return "wasm";
  if (MATMUL_REQUESTS.includes(v)) return v as MatMulRequest;
  throw new Error(`COURSE_MATMUL="${value}" is not valid; use one of: ${MATMUL_REQUESTS.join(", ")}`);
}

/**
 * What computes matrix products, in words: "BLAS (OpenBLAS 0.3.21 (SkylakeX), 2 threads per
 * product)", "onnxruntime (MLAS) (no BLAS found …)", "xnnpack (COURSE_MATMUL=wasm)"; undefined
 * off wasm. The backend line ends with it; training summaries report it.
 */
export function describeMatmul(info: Pick<BackendInfo, "matmul" | "matmulReason" | "blas"> | null = backendInfo()): string | undefined {
  if (info?.matmul === undefined) return undefined;
  const blas = info.blas;
  const what = blas !== undefined ? `${blas.name}${blas.threads !== undefined ? `, ${blas.threads} thread${blas.threads === 1 ? "" : "s"} per product` : ""}` : info.matmulReason;
  return `${info.matmul}${what === undefined ? "" : ` (${what})`}`;
}

/** The matmul engine a BackendInfo.matmul names (undefined: not wasm, so XNNPACK's name is harmless). */
export function engineOf(matmul: BackendInfo["matmul"]): MatMulEngine {
  const found = (Object.keys(MATMUL_ENGINE_NAMES) as MatMulEngine[]).find((e) => MATMUL_ENGINE_NAMES[e] === matmul);
  return found ?? "xnnpack";
}

/** The COURSE_MATMUL that makes another thread (a worker) compute products as this one does. */
export function matmulRequestOfThisThread(): MatMulRequest {
  const engine = wasmMatMulEngine();
  return engine === "blas" ? "blas" : engine === "onnxruntime" ? "onnxruntime" : "wasm";
}

/**
 * Pick and start the fastest working backend (see the top of this file). Prints one line
 * saying which and why, unless `quiet`. Idempotent: later calls return the first choice
 * without printing, whatever their options.
 */
export function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  if (chosen !== null) {
    // Cheap and idempotent: undoes a stray unregister after the first call.
    registerGradientFixes();
    if (chosen.name === "wasm") registerWasmKernels({ matmul: engineOf(chosen.matmul) });
  }
  if (pending === null) {
    pending = chooseBackend(opts).then(
      (info) => {
        chosen = info;
        if (!opts.quiet) console.log(info.line);
        // Falling back to the slow cpu backend is never silent, even when quiet.
        else if (info.name === "cpu" && info.requested === "auto") console.warn(info.line);
        return info;
      },
      (err: unknown) => {
        pending = null; // a failed start (e.g. a bad COURSE_BACKEND) can be retried
        throw err;
      },
    );
  }
  return pending;
}

/** What initBackend chose, or null before it has finished. */
export function backendInfo(): BackendInfo | null {
  return chosen === null
    ? null
    : { ...chosen, addedKernels: [...chosen.addedKernels], fixedGradients: [...chosen.fixedGradients] };
}

/**
 * Forget the cached choice so the next initBackend decides again (for tests). It does not
 * unload packages or backends.
 */
export function resetBackendChoice(): void {
  pending = null;
  chosen = null;
}

// ---------------------------------------------------------------------------------------

interface Picked {
  name: BackendName;
  package: string;
  gpu: boolean;
  /** Why the faster options were skipped / how this one was chosen. */
  why: string[];
}

async function chooseBackend(opts: InitBackendOptions): Promise<BackendInfo> {
  const env = opts.env ?? process.env;
  const requested = parseBackendRequest(env.COURSE_BACKEND);
  const matmulRequested = parseMatMulRequest(env.COURSE_MATMUL);
  const load = opts.loadPackage ?? defaultLoad;
  const installed = opts.isInstalled ?? defaultIsInstalled;
  const gpuVisible = opts.gpuVisible ?? nvidiaGpuVisible;

  let picked: Picked;
  if (requested === "auto") {
    const why: string[] = [];
    picked =
      tryTensorflow(load, installed, gpuVisible, why, false) ??
      (await tryWasm(why)) ??
      (await startCpu(why));
  } else {
    const why = [`COURSE_BACKEND=${requested}`];
    if (requested === "tensorflow") {
      const p = tryTensorflow(load, installed, gpuVisible, why, true);
      if (p === undefined) {
        throw new Error(`COURSE_BACKEND=tensorflow but TensorFlow could not start: ${why.slice(1).join("; ")}`);
      }
      picked = p;
    } else if (requested === "wasm") {
      const p = await tryWasm(why);
      if (p === undefined) throw new Error(`COURSE_BACKEND=wasm but the wasm backend could not start: ${why.slice(1).join("; ")}`);
      picked = p;
    } else {
      picked = await startCpu(why);
    }
  }

  await tf.ready();
  const fixedGradients = registerGradientFixes();
  let simd: boolean | undefined;
  let threads: number | undefined;
  let matmul: BackendInfo["matmul"];
  let matmulReason: string | undefined;
  let blas: BackendInfo["blas"];
  let engine: MatMulEngine = "xnnpack";
  let addedKernels: string[] = [];
  const details: string[] = [];
  if (picked.name === "wasm") {
    simd = (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) === true;
    threads = tfWasm.getThreadsCount();
    if (matmulRequested === "wasm") {
      matmulReason = "COURSE_MATMUL=wasm";
    } else {
      // onnxruntime is loaded whatever computes the products: column sums and the sampling decoder use it.
      const ortWhy = (opts.loadOnnxRuntime ?? loadOnnxRuntime)();
      const blasWhy = matmulRequested === "onnxruntime" ? "COURSE_MATMUL=onnxruntime" : (opts.loadBlas ?? loadBlas)();
      if (blasWhy === undefined) engine = "blas";
      else if (matmulRequested === "blas") throw new Error(`COURSE_MATMUL=blas but ${blasWhy}`);
      else if (ortWhy === undefined) {
        engine = "onnxruntime";
        matmulReason = blasWhy;
      } else if (matmulRequested === "onnxruntime") throw new Error(`COURSE_MATMUL=onnxruntime but ${ortWhy}`);
      else matmulReason = `${blasWhy}; ${ortWhy}`;
    }
    const simdReason = await loadSimdKernels();
    addedKernels = registerWasmKernels({ matmul: engine });
    matmul = MATMUL_ENGINE_NAMES[engine];
    blas = engine === "blas" ? blasInfo() : undefined;
    details.push(`SIMD ${simd ? "on" : "off"}, ${threads} thread${threads === 1 ? "" : "s"}`);
    details.push(`matmul: ${describeMatmul({ matmul, matmulReason, blas })}`);
    if (simdReason !== undefined) details.push(simdReason);
  } else if (picked.name === "tensorflow") {
    details.push(`${picked.package.replace("@tensorflow/", "")} on ${picked.gpu ? "GPU" : "CPU"}`);
  }
  const reason = summarize(picked.why);
  const line = `backend: ${picked.name} (${[reason, ...details].filter((s) => s !== "").join("; ")})`;
  return {
    name: picked.name,
    package: picked.package,
    requested,
    reason,
    gpu: picked.gpu,
    simd,
    threads,
    matmul,
    matmulReason,
    blas,
    addedKernels,
    fixedGradients,
    tfjsVersion: tf.version.tfjs,
    line,
  };
}

/**
 * tfjs-node-gpu (only with a visible GPU), then tfjs-node. Each package registers a
 * "tensorflow" backend on the @tensorflow/tfjs-core it finds and switches to it when
 * required; with npm's hoisting that is the same tfjs-core as ours, which we check.
 * `forced`: COURSE_BACKEND=tensorflow, so a GPU package without a GPU is still used.
 */
function tryTensorflow(
  load: (name: string) => unknown,
  installed: (name: string) => boolean,
  gpuVisible: () => boolean,
  why: string[],
  forced: boolean,
): Picked | undefined {
  const gpuInstalled = installed(GPU_PKG);
  const nodeInstalled = installed(NODE_PKG);
  if (!gpuInstalled && !nodeInstalled) {
    why.push("tfjs-node not installed");
    return undefined;
  }

  if (gpuInstalled) {
    if (!forced && !gpuVisible()) {
      // Loading the GPU build without a GPU only adds CUDA errors to the log.
      why.push("tfjs-node-gpu: no NVIDIA GPU visible");
    } else {
      const err = loadTensorflow(load, GPU_PKG);
      if (err !== undefined) {
        why.push(`tfjs-node-gpu failed to load (${err})`);
      } else {
        const gpu = tensorflowUsesGpu();
        if (!gpu) {
          // The package is in and its "tensorflow" backend is registered; it runs
          // TensorFlow's CPU kernels, the same ones tfjs-node would.
          why.push("tfjs-node-gpu loaded but TensorFlow found no usable GPU");
        }
        return { name: "tensorflow", package: GPU_PKG, gpu, why };
      }
    }
  } else {
    why.push("tfjs-node-gpu not installed");
  }

  if (!nodeInstalled) {
    why.push("tfjs-node not installed");
    return undefined;
  }
  const err = loadTensorflow(load, NODE_PKG);
  if (err !== undefined) {
    why.push(`tfjs-node failed to load (${err})`);
    return undefined;
  }
  return { name: "tensorflow", package: NODE_PKG, gpu: tensorflowUsesGpu(), why };
}

/** Require a tfjs-node package and switch to its backend. Returns an error text, or undefined on success. */
function loadTensorflow(load: (name: string) => unknown, pkg: string): string | undefined {
  try {
    load(pkg);
  } catch (e) {
    return firstLine(e);
  }
  if (tf.findBackend("tensorflow") == null) {
    return "it registered its backend on another copy of @tensorflow/tfjs; dedupe node_modules";
  }
  // The package switches to "tensorflow" itself; make sure, in case another backend was set since.
  if (tf.getBackend() !== "tensorflow" && !tf.setBackend("tensorflow")) {
    return "tf.setBackend('tensorflow') failed";
  }
  return undefined;
}

/** tfjs-node's backend records whether TensorFlow placed its device on a GPU. */
function tensorflowUsesGpu(): boolean {
  const b = tf.findBackend("tensorflow") as unknown as { isUsingGpuDevice?: unknown } | null;
  return b !== null && b.isUsingGpuDevice === true;
}

async function tryWasm(why: string[]): Promise<Picked | undefined> {
  try {
    // In Node the wasm backend reads its .wasm binaries from disk: point it at the package's dist/.
    const wasmFile = require.resolve(`${WASM_PKG}/dist/tfjs-backend-wasm.wasm`);
    tfWasm.setWasmPaths(path.dirname(wasmFile) + path.sep);
    if (await tf.setBackend("wasm")) return { name: "wasm", package: WASM_PKG, gpu: false, why };
    why.push("wasm failed to start (tf.setBackend('wasm') returned false)");
  } catch (e) {
    why.push(`wasm failed to start (${firstLine(e)})`);
  }
  return undefined;
}

async function startCpu(why: string[]): Promise<Picked> {
  if (!(await tf.setBackend("cpu"))) throw new Error("even the cpu backend failed to start");
  return { name: "cpu", package: "@tensorflow/tfjs-backend-cpu", gpu: false, why };
}

/** "tfjs-node-gpu not installed" + "tfjs-node not installed" reads better as one note. */
function summarize(why: string[]): string {
  const notes = why.filter((w) => w !== "tfjs-node-gpu not installed" || !why.includes("tfjs-node not installed"));
  return notes.join("; ");
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const line = msg.split("\n")[0].trim();
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

function defaultLoad(name: string): unknown {
  // A dynamic require: nothing of tfjs-node is imported statically, so the library compiles
  // and runs where it is absent (it is an optional dependency).
  return require(name);
}

function defaultIsInstalled(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

/** An NVIDIA GPU is visible unless CUDA_VISIBLE_DEVICES hides all, or the driver lists none. */
export function nvidiaGpuVisible(env: NodeJS.ProcessEnv = process.env): boolean {
  const cvd = env.CUDA_VISIBLE_DEVICES;
  if (cvd !== undefined && (cvd.trim() === "" || cvd.trim() === "-1")) return false;
  try {
    if (fs.readdirSync("/proc/driver/nvidia/gpus").length > 0) return true;
  } catch {
    /* no driver info: look for the device node */
  }
  return fs.existsSync("/dev/nvidia0");
}

/**
 * The default number of threads: one per core up to 2 on the wasm and cpu backends (the
 * course's laptops have 2+ cores; more shards of a batch of 12 stop paying), 1 on the
 * native backend, which already uses every core for each operation.
 */
export function defaultThreads(backend: string = backendInfo()?.name ?? tf.getBackend(), cores: number = availableCores()): number {
  if (backend === "tensorflow") return 1;
  return Math.max(1, Math.min(2, cores));
}

/**
 * The default number of threads that share a TRAINING step (data parallelism): 1 on wasm when
 * the matrix products run in a BLAS that splits each product across the cores itself (one
 * copy of the model, nothing to copy or average: `npm run bench` measured it faster than two
 * threads on two cores, for every preset); otherwise defaultThreads(). Generation keeps
 * defaultThreads(): the sampling decoder does not multiply through the BLAS.
 */
export function defaultTrainingThreads(backend: string = backendInfo()?.name ?? tf.getBackend(), cores: number = availableCores()): number {
  if (backend === "wasm" && wasmMatMulEngine() === "blas" && (blasDefaultThreads() ?? 1) > 1) return 1;
  return defaultThreads(backend, cores);
}

/**
 * The most threads a batch may be split across: one per core (at least 2, so that the course's
 * two-thread runs work anywhere). More only take turns on the same cores, each with its own
 * copy of the model.
 */
export function maxThreads(cores: number = availableCores()): number {
  return Math.max(2, cores);
}

/** Why a thread count is refused, in one line that names it (`what`, e.g. "--threads"); undefined if it is fine. */
export function threadsProblem(threads: number, what: string): string | undefined {
  if (!Number.isInteger(threads) || threads < 1) return `${what}: expected an integer >= 1, got ${threads}`;
  const max = maxThreads();
  if (threads > max) return `${what} ${threads}: expected at most ${max}, one per core (more only take turns on the same cores, each thread with its own copy of the model)`;
  return undefined;
}

/** Throws threadsProblem's line, if any. */
export function checkThreads(threads: number, what: string): void {
  const problem = threadsProblem(threads, what);
  if (problem !== undefined) throw new Error(problem);
}

/**
 * Memory one thread may use for a training step: wasm's 32-bit address space (4 GiB per
 * instance, and each thread is its own instance) or, natively, the machine's memory.
 */
export function stepMemoryLimitBytes(backend: string = backendInfo()?.name ?? tf.getBackend()): number {
  return backend === "wasm" ? 4 * 2 ** 30 : os.totalmem();
}

/** How many rows of a batch of `rows` each of `threads` shards gets: as equal as possible, the first ones larger. */
export function shardSizes(rows: number, threads: number): number[] {
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`dataParallel: a batch needs at least one row, got ${rows}`);
  const n = Math.min(threads, rows);
  return Array.from({ length: n }, (_, i) => Math.floor(rows / n) + (i < rows % n ? 1 : 0));
}
