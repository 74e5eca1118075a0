/**
 * The machine's own BLAS (OpenBLAS on Linux and Windows, Apple's Accelerate on macOS) as a
 * compute library for the wasm backend's matrix products, called through koffi, a foreign
 * function interface with prebuilt binaries on npm, so nothing is compiled at install.
 *
 * Why: a training step is mostly matrix products (the README's "Speed" section), and a BLAS
 * tuned for the CPU it runs on is the fastest single-precision GEMM a machine has: OpenBLAS
 * picks kernels for the exact CPU at load time (AVX-512 where there is AVX-512), Accelerate
 * uses Apple's matrix units. It is also what PyTorch multiplies with on such machines. And a
 * BLAS splits one product between cores with its own threads, which uses a second core
 * without a second copy of the model: the products get faster, nothing else changes.
 *
 * How: `cblas_sgemm` (row-major) is called synchronously on Float32Array views of the wasm
 * heap; koffi passes a typed array as a pointer to its first element, so nothing is copied.
 * The library is found by name (the system's loader searches its usual places), or given as
 * COURSE_BLAS=/path/to/libopenblas.so (or any library with cblas_sgemm, e.g. MKL's
 * libmkl_rt). koffi and the library are both optional: where either is missing, products
 * go to onnxruntime or XNNPACK, with the reason in the backend line.
 *
 * Threads: `setBlasThreads` (OpenBLAS, MKL and BLIS have a call for it; Accelerate decides
 * alone). The default is the library's own (OpenBLAS: every core, or OPENBLAS_NUM_THREADS).
 * Data parallelism (lib/pretrain/dataParallel.ts) gives each of its threads its share.
 * Same bits whatever the thread count: OpenBLAS splits a product's rows and columns between
 * threads, never the sum over k (checked by tests/core/kernels/blasMatMul.test.ts).
 */
import { availableCores } from "../cores";
import { firstLine } from "./onnxruntime";

/** A BLAS as the kernels use it. */
export interface BlasLibrary {
  /** What it is, for the backend line: e.g. "OpenBLAS 0.3.21 (SkylakeX)". */
  name: string;
  /**
   * C [M, N] (row stride ldc) = op(A)·op(B), row-major: A [M, K] (lda) or, with ta, [K, M];
   * B [K, N] (ldb) or, with tb, [N, K]. cblas_sgemm with alpha 1 and beta 0.
   */
  sgemm(ta: boolean, tb: boolean, m: number, n: number, k: number, A: Float32Array, lda: number, B: Float32Array, ldb: number, C: Float32Array, ldc: number): void;
  /** Set the threads each product may use (undefined when the library has no such call). */
  setThreads?: (n: number) => void;
  /** The threads each product uses now, when the library says. */
  getThreads?: () => number;
}

export const KOFFI_PACKAGE = "koffi";

/** Where each platform keeps its BLAS; the loader's own search finds bare names. */
export function blasCandidates(platform: NodeJS.Platform = process.platform): string[] {
  if (platform === "darwin") {
    return [
      "/System/Library/Frameworks/Accelerate.framework/Accelerate",
      "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
      "/usr/local/opt/openblas/lib/libopenblas.dylib",
    ];
  }
  if (platform === "win32") return ["libopenblas.dll", "openblas.dll"];
  return ["libopenblas.so.0", "libopenblas.so"];
}

const CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112;

interface KoffiLib {
  func(signature: string): (...args: unknown[]) => unknown;
  unload?: () => void;
}
interface Koffi {
  load(path: string): KoffiLib;
}

/** The library at `file` through koffi, or an Error saying why not. */
function openWithKoffi(koffi: Koffi, file: string): BlasLibrary {
  const lib = koffi.load(file);
  const sgemm = lib.func("void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int)");
  const optional = (signature: string) => {
    try {
      return lib.func(signature);
    } catch {
      return undefined; // this library has no such symbol
    }
  };
  const config = optional("const char *openblas_get_config()");
  const setOpenblas = optional("void openblas_set_num_threads(int)");
  const getOpenblas = optional("int openblas_get_num_threads()");
  const setMkl = setOpenblas === undefined ? optional("void MKL_Set_Num_Threads(int)") : undefined;
  const getMkl = setOpenblas === undefined ? optional("int MKL_Get_Max_Threads()") : undefined;
  const setBlis = setOpenblas === undefined && setMkl === undefined ? optional("void bli_thread_set_num_threads(int64_t)") : undefined;
  const base = file.split(/[\\/]/).pop() ?? file;
  let name = base.startsWith("Accelerate") ? "Accelerate" : base;
  if (config !== undefined) {
    // "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64": version and the CPU's kernels
    const words = String(config()).split(/\s+/);
    const core = words.slice(2).find((w) => /^[A-Z][A-Za-z0-9]+$/.test(w) && !w.includes("_"));
    name = `${words.slice(0, 2).join(" ")}${core !== undefined ? ` (${core})` : ""}`;
  }
  const setter = setOpenblas ?? setMkl ?? setBlis;
  const getter = getOpenblas ?? getMkl;
  return {
    name,
    sgemm: (ta, tb, m, n, k, A, lda, B, ldb, C, ldc) =>
      void sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, A, lda, B, ldb, 0, C, ldc),
    setThreads: setter === undefined ? undefined : (n: number) => void setter(n),
    getThreads: getter === undefined ? undefined : () => Number(getter()),
  };
}

// ---------------------------------------------------------------------------------------
// Loading

let blas: BlasLibrary | null = null;
let loadError: string | null = null;
/** The library's thread count when it loaded (its own default): what data parallelism shares out. */
let threadsAtLoad: number | undefined;

export interface LoadBlasOptions {
  /** COURSE_BLAS is read here (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Replaces opening a library (tests): a BlasLibrary, or throws why not. Its answer is only checked, never kept. */
  open?: (file: string) => BlasLibrary;
}

/**
 * Load koffi and the first BLAS that opens and multiplies correctly (COURSE_BLAS, else the
 * platform's candidates). Returns undefined when the BLAS can run, otherwise why not, as one
 * line. The default loader's answer is cached; with `open` (tests) nothing is cached or used.
 */
export function loadBlas(opts: LoadBlasOptions = {}): string | undefined {
  if (opts.open === undefined) {
    if (blas !== null) return undefined;
    if (loadError !== null) return loadError;
  }
  const env = opts.env ?? process.env;
  const chosen = env.COURSE_BLAS?.trim();
  const files = chosen !== undefined && chosen !== "" ? [chosen] : blasCandidates();
  let open = opts.open;
  let reason: string | undefined;
  if (open === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const koffi = require(KOFFI_PACKAGE) as Koffi;
      open = (file) => openWithKoffi(koffi, file);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      reason = code === "MODULE_NOT_FOUND" ? `${KOFFI_PACKAGE} not installed` : `${KOFFI_PACKAGE} failed to load (${firstLine(e)})`;
    }
  }
  if (open !== undefined) {
    const tried: string[] = [];
    const wrong: string[] = []; // libraries that opened but multiplied wrongly
    for (const file of files) {
      try {
        const lib = open(file);
        const problem = selfTest(lib);
        if (problem === undefined) {
          if (opts.open === undefined) {
            blas = lib;
            threadsAtLoad = lib.getThreads?.();
          }
          return undefined;
        }
        tried.push(`${file}: ${problem}`);
        wrong.push(`${file}: ${problem}`);
      } catch (e) {
        tried.push(`${file}: ${firstLine(e)}`);
      }
    }
    reason = chosen !== undefined && chosen !== "" ? `COURSE_BLAS=${chosen} did not load (${tried.join("; ")})` :
      wrong.length > 0 ? `no working BLAS (${wrong.join("; ")})` :
      `no BLAS found (tried ${files.join(", ")}; e.g. apt-get install libopenblas0)`;
  }
  if (opts.open === undefined) loadError = reason!;
  return reason;
}

/**
 * [[1,2,3],[4,5,6]]·[[1,0],[0,1],[1,1]] = [[4,5],[10,11]], and the same with both operands
 * stored transposed; undefined when right, else what came out.
 */
function selfTest(lib: BlasLibrary): string | undefined {
  const A = Float32Array.from([1, 2, 3, 4, 5, 6]), B = Float32Array.from([1, 0, 0, 1, 1, 1]);
  const C = new Float32Array(4).fill(NaN);
  lib.sgemm(false, false, 2, 2, 3, A, 3, B, 2, C, 2);
  const At = Float32Array.from([1, 4, 2, 5, 3, 6]), Bt = Float32Array.from([1, 0, 1, 0, 1, 1]);
  const Ct = new Float32Array(4).fill(NaN);
  lib.sgemm(true, true, 2, 2, 3, At, 2, Bt, 3, Ct, 2);
  const want = [4, 5, 10, 11];
  if (want.every((v, i) => C[i] === v && Ct[i] === v)) return undefined;
  return `self-test product gave [${[...C].join(", ")}] and transposed [${[...Ct].join(", ")}], expected [4, 5, 10, 11]`;
}

/** True once a BLAS has loaded and passed its self-test. */
export function blasLoaded(): boolean {
  return blas !== null;
}

/** The loaded BLAS's name and its threads per product now (undefined when it does not say). */
export function blasInfo(): { name: string; threads: number | undefined } | undefined {
  return blas === null ? undefined : { name: blas.name, threads: blas.getThreads?.() };
}

/**
 * Threads per product: `n`, or with "default" the library's own count at load. No effect
 * when no BLAS is loaded or it cannot be told (Accelerate). Process-wide: every thread's
 * products share the setting.
 */
export function setBlasThreads(n: number | "default"): void {
  if (blas?.setThreads === undefined) return;
  const want = n === "default" ? threadsAtLoad ?? availableCores() : n;
  if (!Number.isInteger(want) || want < 1) throw new Error(`setBlasThreads: expected an integer >= 1, got ${want}`);
  blas.setThreads(want);
}

/** The library's thread count at load (its default), when it says. */
export function blasDefaultThreads(): number | undefined {
  return threadsAtLoad;
}

/** C = op(A)·op(B) through the loaded BLAS (see BlasLibrary.sgemm); throws when none is loaded. */
export function blasSgemm(ta: boolean, tb: boolean, m: number, n: number, k: number, A: Float32Array, lda: number, B: Float32Array, ldb: number, C: Float32Array, ldc: number): void {
  if (blas === null) throw new Error("no BLAS is loaded (loadBlas)");
  blas.sgemm(ta, tb, m, n, k, A, lda, B, ldb, C, ldc);
}

/**
 * Use `lib` as the loaded BLAS (tests: a reference GEMM in JavaScript exercises the kernel's
 * layout logic on machines without a BLAS); null forgets it, and the next loadBlas() loads afresh.
 * Returns the library it replaces, to be put back.
 */
export function setBlasForTests(lib: BlasLibrary | null): BlasLibrary | null {
  const before = blas;
  blas = lib;
  loadError = null;
  threadsAtLoad = lib?.getThreads?.();
  return before;
}
