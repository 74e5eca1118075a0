import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  backendInfo,
  BackendInfo,
  initBackend,
  InitBackendOptions,
  nvidiaGpuVisible,
  parseBackendRequest,
  resetBackendChoice,
  maxThreads,
  threadsProblem,
  checkThreads,
} from "../../lib/core/backend";
import { blasInfo, gradientFixNames, loadBlas, loadOnnxRuntime, unregisterWasmKernels, wasmKernelNames, wasmKernelsRegistered } from "../../lib/core/kernels";

const GPU_PKG = "@tensorflow/tfjs-node-gpu";
const NODE_PKG = "@tensorflow/tfjs-node";
/**
 * The end of initBackend's wasm line: depends on whether a BLAS and onnxruntime-node load here
 * (tests/core/kernels/blasMatMul.test.ts, ortMatMul.test.ts).
 */
const blasWhy = loadBlas();
const ortWhy = loadOnnxRuntime();
function matmulText(): string {
  const blas = blasInfo();
  if (blas !== undefined) return `matmul: BLAS (${blas.name}${blas.threads !== undefined ? `, ${blas.threads} thread${blas.threads === 1 ? "" : "s"} per product` : ""})`;
  return ortWhy === undefined ? `matmul: onnxruntime (MLAS) (${blasWhy})` : `matmul: xnnpack (${blasWhy}; ${ortWhy})`;
}
const MATMUL = matmulText();

/** Capture console.log / console.warn while `f` runs. */
async function captureConsole<T>(f: () => Promise<T>): Promise<{ result: T; logs: string[]; warns: string[] }> {
  const logs: string[] = [];
  const warns: string[] = [];
  const { log, warn } = console;
  console.log = (...a: unknown[]) => void logs.push(a.join(" "));
  console.warn = (...a: unknown[]) => void warns.push(a.join(" "));
  try {
    return { result: await f(), logs, warns };
  } finally {
    console.log = log;
    console.warn = warn;
  }
}

/**
 * Stand-ins for tfjs-node(-gpu), which can't be installed here. Like the real packages,
 * loading one registers a "tensorflow" backend on the shared tfjs and switches to it; the
 * backend object carries `isUsingGpuDevice` as tfjs-node's does. (It computes with the
 * cpu backend's class: these tests only look at the choice.)
 */
function fakePackages(spec: {
  installed: string[];
  gpuVisible: boolean;
  behaviour: Record<string, { throws?: string; gpu?: boolean; registers?: boolean }>;
}): { opts: InitBackendOptions; loaded: string[] } {
  const loaded: string[] = [];
  const opts: InitBackendOptions = {
    quiet: true,
    env: {},
    isInstalled: (name) => spec.installed.includes(name),
    gpuVisible: () => spec.gpuVisible,
    loadPackage: (name) => {
      loaded.push(name);
      const b = spec.behaviour[name] ?? {};
      if (b.throws !== undefined) throw new Error(b.throws);
      if (b.registers === false) return {};
      const CpuBackend = (tf.findBackend("cpu") as tf.KernelBackend).constructor as new () => tf.KernelBackend;
      tf.registerBackend("tensorflow", () => Object.assign(new CpuBackend(), { isUsingGpuDevice: b.gpu === true }), 3);
      tf.setBackend("tensorflow");
      return {};
    },
  };
  return { opts, loaded };
}

describe("thread counts", () => {
  it("at most one per core, at least 2; anything else is refused in one line naming the setting", () => {
    assert.equal(maxThreads(1), 2);
    assert.equal(maxThreads(8), 8);
    assert.equal(threadsProblem(2, "--threads"), undefined);
    assert.equal(threadsProblem(0, "--threads"), "--threads: expected an integer >= 1, got 0");
    const max = maxThreads();
    assert.equal(threadsProblem(max + 1, "--threads"), `--threads ${max + 1}: expected at most ${max}, one per core (more only take turns on the same cores, each thread with its own copy of the model)`);
    assert.throws(() => checkThreads(100000, "pretrain: threads"), /^Error: pretrain: threads 100000: expected at most/);
  });
});

describe("backend", function () {
  this.timeout(60000);

  afterEach(async () => {
    if (tf.findBackend("tensorflow") !== null || tf.engine().registryFactory.tensorflow !== undefined) {
      tf.removeBackend("tensorflow");
    }
    // Leave the process as a notebook would have it: the automatic choice (wasm here).
    resetBackendChoice();
    const info = await initBackend({ quiet: true, env: {}, isInstalled: () => false });
    assert.equal(info.name, "wasm");
  });

  /** Options for the automatic choice on a machine without tfjs-node, whatever this one has. */
  const noTfjsNode: InitBackendOptions = { env: {}, isInstalled: () => false };

  describe("parseBackendRequest (COURSE_BACKEND)", () => {
    it("accepts the four values in any case, unset or blank meaning auto", () => {
      assert.equal(parseBackendRequest("wasm"), "wasm");
      assert.equal(parseBackendRequest(" CPU "), "cpu");
      assert.equal(parseBackendRequest("TensorFlow"), "tensorflow");
      assert.equal(parseBackendRequest("auto"), "auto");
      assert.equal(parseBackendRequest(undefined), "auto");
      assert.equal(parseBackendRequest(""), "auto");
    });

    it("rejects anything else, listing the valid values", () => {
      assert.throws(() => parseBackendRequest("gpu"), {
        message: 'COURSE_BACKEND="gpu" is not valid; use one of: tensorflow, wasm, cpu, auto',
      });
    });
  });

  describe("initBackend", () => {
    beforeEach(() => resetBackendChoice());

    it("picks wasm when tfjs-node is absent, says why in one line, and registers the wasm kernels", async () => {
      unregisterWasmKernels();
      const { result, logs } = await captureConsole(() => initBackend(noTfjsNode));
      assert.equal(result.line, `backend: wasm (tfjs-node not installed; SIMD on, 1 thread; ${MATMUL})`);
      assert.deepEqual(logs, [result.line]);
      assert.equal(tf.getBackend(), "wasm");
      assert.equal(result.name, "wasm");
      assert.equal(result.package, "@tensorflow/tfjs-backend-wasm");
      assert.equal(result.requested, "auto");
      assert.equal(result.simd, true);
      assert.equal(result.threads, 1);
      assert.equal(result.gpu, false);
      assert.deepEqual(result.addedKernels, [...wasmKernelNames]);
      assert.ok(result.addedKernels.includes("UnsortedSegmentSum"));
      assert.deepEqual(result.fixedGradients, [...gradientFixNames]);
      assert.equal(result.tfjsVersion, tf.version.tfjs);
      assert.ok(wasmKernelsRegistered());
      // The point of the kernel: training an embedding works on the chosen backend.
      const g = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.gather(x, tf.tensor1d([1, 1], "int32")).sum())(tf.ones([2])).arraySync());
      assert.deepEqual(g, [0, 2]);
    });

    it("is idempotent: a second call returns the cached choice without printing", async () => {
      const first = await initBackend({ ...noTfjsNode, quiet: true });
      const { result, logs } = await captureConsole(() => initBackend({ env: { COURSE_BACKEND: "cpu" } }));
      assert.equal(result, first);
      assert.deepEqual(logs, []);
      assert.equal(tf.getBackend(), "wasm");
      const info = backendInfo() as BackendInfo;
      assert.deepEqual(info, first);
      assert.notEqual(info, first); // a copy: callers can't alter the cache
    });

    it("concurrent first calls share one start", async () => {
      const [a, b] = await Promise.all([initBackend({ ...noTfjsNode, quiet: true }), initBackend({ ...noTfjsNode, quiet: true })]);
      assert.equal(a, b);
    });

    it("with the real package lookup, reports whether tfjs-node is installed on this machine", async () => {
      let nodeHere = true;
      try {
        require.resolve(NODE_PKG);
      } catch {
        nodeHere = false;
      }
      const info = await initBackend({ quiet: true, env: {} });
      if (nodeHere) assert.equal(info.name, "tensorflow", info.line);
      else assert.equal(info.line, `backend: wasm (tfjs-node not installed; SIMD on, 1 thread; ${MATMUL})`);
    });

    it("backendInfo() is null before initBackend", () => {
      assert.equal(backendInfo(), null);
    });

    it("COURSE_BACKEND=cpu / wasm override the choice and say so", async () => {
      const cpu = await initBackend({ quiet: true, env: { COURSE_BACKEND: "cpu" } });
      assert.equal(cpu.line, "backend: cpu (COURSE_BACKEND=cpu)");
      assert.equal(tf.getBackend(), "cpu");
      resetBackendChoice();
      const wasm = await initBackend({ quiet: true, env: { COURSE_BACKEND: "wasm" } });
      assert.equal(wasm.line, `backend: wasm (COURSE_BACKEND=wasm; SIMD on, 1 thread; ${MATMUL})`);
      assert.equal(tf.getBackend(), "wasm");
    });

    it("an invalid COURSE_BACKEND rejects with the valid values, and a later call can succeed", async () => {
      await assert.rejects(initBackend({ quiet: true, env: { COURSE_BACKEND: "webgl" } }), /use one of: tensorflow, wasm, cpu, auto/);
      assert.equal(backendInfo(), null);
      assert.equal((await initBackend({ ...noTfjsNode, quiet: true })).name, "wasm");
    });

    it("COURSE_BACKEND=tensorflow without tfjs-node is an error, not a silent fallback", async () => {
      const { opts } = fakePackages({ installed: [], gpuVisible: false, behaviour: {} });
      await assert.rejects(
        initBackend({ ...opts, env: { COURSE_BACKEND: "tensorflow" } }),
        { message: "COURSE_BACKEND=tensorflow but TensorFlow could not start: tfjs-node not installed" },
      );
    });

    it("tfjs-node-gpu with a GPU comes first", async () => {
      const { opts, loaded } = fakePackages({ installed: [GPU_PKG, NODE_PKG], gpuVisible: true, behaviour: { [GPU_PKG]: { gpu: true } } });
      const info = await initBackend(opts);
      assert.equal(info.line, "backend: tensorflow (tfjs-node-gpu on GPU)");
      assert.deepEqual(loaded, [GPU_PKG]);
      assert.equal(info.gpu, true);
      assert.equal(info.package, GPU_PKG);
      assert.equal(tf.getBackend(), "tensorflow");
      assert.equal(info.addedKernels.length, 0);
    });

    it("no visible GPU: tfjs-node-gpu is not even loaded, tfjs-node is used", async () => {
      const { opts, loaded } = fakePackages({ installed: [GPU_PKG, NODE_PKG], gpuVisible: false, behaviour: {} });
      const info = await initBackend(opts);
      assert.equal(info.line, "backend: tensorflow (tfjs-node-gpu: no NVIDIA GPU visible; tfjs-node on CPU)");
      assert.deepEqual(loaded, [NODE_PKG]);
      assert.equal(tf.getBackend(), "tensorflow");
    });

    it("a failed CUDA load falls through to tfjs-node", async () => {
      const { opts, loaded } = fakePackages({
        installed: [GPU_PKG, NODE_PKG],
        gpuVisible: true,
        behaviour: { [GPU_PKG]: { throws: "libcudart.so.11.0: cannot open shared object file\nat dlopen" } },
      });
      const info = await initBackend(opts);
      assert.equal(
        info.line,
        "backend: tensorflow (tfjs-node-gpu failed to load (libcudart.so.11.0: cannot open shared object file); tfjs-node on CPU)",
      );
      assert.deepEqual(loaded, [GPU_PKG, NODE_PKG]);
    });

    it("tfjs-node-gpu that loads but finds no GPU is kept (TensorFlow on CPU), and says so", async () => {
      const { opts, loaded } = fakePackages({ installed: [GPU_PKG, NODE_PKG], gpuVisible: true, behaviour: { [GPU_PKG]: { gpu: false } } });
      const info = await initBackend(opts);
      assert.equal(info.line, "backend: tensorflow (tfjs-node-gpu loaded but TensorFlow found no usable GPU; tfjs-node-gpu on CPU)");
      assert.deepEqual(loaded, [GPU_PKG]);
    });

    it("tfjs-node only: used, with the why", async () => {
      const { opts } = fakePackages({ installed: [NODE_PKG], gpuVisible: true, behaviour: {} });
      const info = await initBackend(opts);
      assert.equal(info.line, "backend: tensorflow (tfjs-node-gpu not installed; tfjs-node on CPU)");
    });

    it("tfjs-node that fails to load, or registers on another tfjs copy, falls through to wasm", async () => {
      let { opts } = fakePackages({ installed: [NODE_PKG], gpuVisible: false, behaviour: { [NODE_PKG]: { throws: "The specified module could not be found." } } });
      let info = await initBackend(opts);
      assert.equal(
        info.line,
        `backend: wasm (tfjs-node-gpu not installed; tfjs-node failed to load (The specified module could not be found.); SIMD on, 1 thread; ${MATMUL})`,
      );
      resetBackendChoice();
      ({ opts } = fakePackages({ installed: [NODE_PKG], gpuVisible: false, behaviour: { [NODE_PKG]: { registers: false } } }));
      info = await initBackend(opts);
      assert.match(info.line, /^backend: wasm \(.*tfjs-node failed to load \(it registered its backend on another copy of @tensorflow\/tfjs/);
    });

    it("COURSE_BACKEND=tensorflow uses tfjs-node-gpu even without a visible GPU", async () => {
      const { opts, loaded } = fakePackages({ installed: [GPU_PKG], gpuVisible: false, behaviour: { [GPU_PKG]: { gpu: false } } });
      const info = await initBackend({ ...opts, env: { COURSE_BACKEND: "tensorflow" } });
      assert.equal(info.line, "backend: tensorflow (COURSE_BACKEND=tensorflow; tfjs-node-gpu loaded but TensorFlow found no usable GPU; tfjs-node-gpu on CPU)");
      assert.deepEqual(loaded, [GPU_PKG]);
    });

    it("falls back to cpu only when wasm cannot start, and then warns even when quiet", async () => {
      // Make wasm unavailable by taking its factory out of the registry, then put it back.
      const engine = tf.engine();
      const saved = engine.registryFactory.wasm;
      tf.removeBackend("wasm");
      try {
        const { result, warns } = await captureConsole(() => initBackend({ quiet: true, env: {}, isInstalled: () => false }));
        assert.match(result.line, /^backend: cpu \(tfjs-node not installed; wasm failed to start \(.*wasm.*\)\)$/);
        assert.deepEqual(warns, [result.line]);
        assert.equal(tf.getBackend(), "cpu");
      } finally {
        tf.registerBackend("wasm", saved.factory, saved.priority);
      }
    });
  });

  describe("nvidiaGpuVisible", () => {
    it("is false when CUDA_VISIBLE_DEVICES hides every device", () => {
      assert.equal(nvidiaGpuVisible({ CUDA_VISIBLE_DEVICES: "-1" }), false);
      assert.equal(nvidiaGpuVisible({ CUDA_VISIBLE_DEVICES: "" }), false);
    });
  });
});
