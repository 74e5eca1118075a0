/**
 * One AdamW update of a parameter in ONE pass, for the wasm backend: the kernel
 * `CourseAdamW` takes p, m, v, g and returns the new p, m, v.
 *
 * Why: written with tensor ops (lib/core/optim.ts, the reference), an update is ~10 elementwise
 * kernels per parameter — each a pass over memory plus a dispatch — ~500 kernel calls and
 * ~10 ms per step for the 0.8M-parameter nanogpt-cpu model on wasm. Here one pass reads
 * the four inputs straight from the wasm heap and writes the three outputs: in WebAssembly
 * SIMD (./simd.ts, four floats per instruction) when it is loaded, ~1-2 ms; else one
 * JavaScript loop in float64 before rounding to float32, ~10-15 ms (V8 does not vectorise;
 * ~11 ns per element here). Both match the reference to ~1e-7 relative (tests/core/kernels/adamw.test.ts):
 *
 *   m' = β1·m + (1 − β1)·g
 *   v' = β2·v + (1 − β2)·g²
 *   p' = shrink·p + negStepSize · m' / (√v' + epsHat)
 *
 * with shrink = 1 − lr·wd (1 for parameters without weight decay), negStepSize =
 * −lr·√(1 − β2^t)/(1 − β1^t) and epsHat = ε·√(1 − β2^t): the bias corrections folded in.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { installKernel, restoreKernel } from "./registry";
import { ptr, type SimdBackend, simdFor } from "./simd";

export const ADAMW_KERNEL = "CourseAdamW";

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** The per-step numbers of an update (see the top of the file). */
export interface AdamWUpdateAttrs {
  beta1: number;
  beta2: number;
  negStepSize: number;
  epsHat: number;
  shrink: number;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function adamwKernel(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const { p, m, v, g } = args.inputs as Record<string, tf.TensorInfo>;
  const a = args.attrs as unknown as AdamWUpdateAttrs;
  const pOut = backend.makeOutput(p.shape, "float32");
  const mOut = backend.makeOutput(p.shape, "float32");
  const vOut = backend.makeOutput(p.shape, "float32");
  const n = tf.util.sizeFromShape(p.shape);
  const simd = simdFor(backend);
  if (simd !== null && n >= 4) {
    const b = backend as unknown as SimdBackend;
    simd.adamw(ptr(b, p), ptr(b, m), ptr(b, v), ptr(b, g), ptr(b, pOut), ptr(b, mOut), ptr(b, vOut), n,
      a.beta1, a.beta2, a.negStepSize, a.epsHat, a.shrink);
    return [pOut, mOut, vOut];
  }
  // Views after the allocations (an allocation may grow the heap and detach older views).
  const P = backend.typedArrayFromHeap(p) as Float32Array;
  const M = backend.typedArrayFromHeap(m) as Float32Array;
  const V = backend.typedArrayFromHeap(v) as Float32Array;
  const G = backend.typedArrayFromHeap(g) as Float32Array;
  const P2 = backend.typedArrayFromHeap(pOut) as Float32Array;
  const M2 = backend.typedArrayFromHeap(mOut) as Float32Array;
  const V2 = backend.typedArrayFromHeap(vOut) as Float32Array;
  const { beta1, beta2, negStepSize, epsHat, shrink } = a;
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  for (let i = 0, n = P.length; i < n; i++) {
    const gi = G[i];
    const mi = beta1 * M[i] + c1 * gi;
    const vi = beta2 * V[i] + c2 * gi * gi;
    M2[i] = mi;
    V2[i] = vi;
    P2[i] = shrink * P[i] + (negStepSize * mi) / (Math.sqrt(vi) + epsHat);
  }
  return [pOut, mOut, vOut];
}

export const adamwWasmConfig: tf.KernelConfig = {
  kernelName: ADAMW_KERNEL,
  backendName: "wasm",
  kernelFunc: adamwKernel as unknown as tf.KernelFunc,
};

/** Install the fused update for wasm (idempotent). */
export function useFusedAdamW(): void {
  installKernel(adamwWasmConfig);
}

/** Remove it: AdamW then uses tensor ops (the reference). */
export function restoreFusedAdamW(): void {
  restoreKernel(adamwWasmConfig);
}

/** Whether the active backend has the fused update. */
export function fusedAdamWAvailable(): boolean {
  return tf.getKernel(ADAMW_KERNEL, tf.getBackend()) !== undefined;
}

/**
 * The new [p, m, v] after one update: the fused kernel when the backend has it, else the
 * same formula with tensor ops. Inputs float32, same shape; they are not disposed.
 */
export function adamwUpdate(p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, attrs: AdamWUpdateAttrs): [tf.Tensor, tf.Tensor, tf.Tensor] {
  if (fusedAdamWAvailable() && p.dtype === "float32" && g.dtype === "float32") {
    const out = tf.engine().runKernel(ADAMW_KERNEL, { p, m, v, g }, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
    return [out[0], out[1], out[2]];
  }
  return tf.tidy(() => {
    const mNew = tf.add(tf.mul(m, attrs.beta1), tf.mul(g, 1 - attrs.beta1));
    const vNew = tf.add(tf.mul(v, attrs.beta2), tf.mul(tf.mul(g, g), 1 - attrs.beta2));
    const update = tf.mul(tf.div(mNew, tf.add(tf.sqrt(vNew), attrs.epsHat)), attrs.negStepSize);
    const base = attrs.shrink === 1 ? p : tf.mul(p, attrs.shrink);
    return [tf.add(base, update), mNew, vNew] as [tf.Tensor, tf.Tensor, tf.Tensor];
  });
}
