/**
 * LayerNorm, GELU and attention pieces as single kernels on wasm (./simd.ts), the same
 * formulas as tensor ops elsewhere. lib/gpt/gpt.ts and lib/attention/attention.ts call these functions; the
 * tensor-op branch of each is the readable reference, and the one tests compare the kernels with.
 *
 *   layerNormRows      x [R, C], w, b → y, xhat [R, C], rstd [R, 1]      (one kernel, not ~9)
 *   layerNormRowsGrad  g, xhat, rstd, w → dx [R, C], dw, db [C]           (one kernel, not ~12)
 *                      (both with center: false are RMSNorm's)
 *   swigluRows         gate a, up b → SiLU(a)·b, σ(a)                      (one kernel, not 3)
 *   swigluRowsGrad     a, b, σ(a), g → da, db                              (one kernel, not 8)
 *   ropeRows           x [N·T, D] rows of T positions, cos, sin → rotated  (one kernel, not 8)
 *   geluWithSigmoid    x → y = x·σ(2u), σ(2u); 2u = 2√(2/π)·(x + 0.044715·x³)  (one kernel, not 7)
 *   geluGrad           x, s = σ(2u), g → g·GELU'(x)                        (one kernel, not 9)
 *   splitHeads         x [B·T, n·H·D] → n × [B·H, T, D]                    (one kernel, not 1 + 3n)
 *   mergeHeads         n × [B·H, T, D] → [B·T, n·H·D]                      (one kernel, not 3n + 1)
 *   fusedCausalSoftmax q·kᵀ [..., T, S] → softmax(scale·q·kᵀ + causal mask)
 *                                                   (one kernel, not 3; backward one, not 6)
 *
 * Measured on a nanogpt-cpu training step (wasm, onnxruntime matmul): see ./simd.ts and
 * the README. Used when the SIMD kernels are active (simdKernelsActive) and the shapes fit
 * them (C a multiple of 4, at least 4 elements); tensor ops otherwise.
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { installKernel, restoreKernel } from "./registry";
import { ptr, type SimdBackend, simdFor, simdKernelsActive, type SimdExports } from "./simd";

export const GELU_K = Math.sqrt(2 / Math.PI);
export const GELU_A = 0.044715;

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

const calls: Record<string, number> = {};
/** How many times each fused kernel has run (tests check the kernels, not the fallback, ran). */
export function fusedKernelCalls(): Record<string, number> {
  return { ...calls };
}

type Run = (simd: SimdExports, out: (shape: number[]) => tf.TensorInfo, p: (t: tf.TensorInfo) => number,
  inputs: Record<string, tf.TensorInfo>, attrs: tf.NamedAttrMap) => tf.TensorInfo | tf.TensorInfo[];

/** A wasm kernel that allocates float32 outputs and calls a SIMD function with byte offsets. */
function simdKernel(kernelName: string, run: Run): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs) => {
    calls[kernelName] = (calls[kernelName] ?? 0) + 1;
    const backend = args.backend as SimdBackend;
    const simd = simdFor(backend);
    if (simd === null) throw new Error(`${kernelName}: the SIMD kernels are not loaded (call loadSimdKernels)`);
    return run(simd, (shape) => backend.makeOutput(shape, "float32"), (t) => ptr(backend, t), args.inputs as Record<string, tf.TensorInfo>, args.attrs ?? {});
  };
  return { kernelName, backendName: "wasm", kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

const layerNormConfig = simdKernel("CourseLayerNorm", (simd, out, p, { x, w, b }, attrs) => {
  const [rows, cols] = x.shape;
  const [y, xhat, rstd] = [out([rows, cols]), out([rows, cols]), out([rows, 1])];
  simd.layernorm(p(x), p(w), p(b), p(y), p(xhat), p(rstd), rows, cols, attrs.eps as number, attrs.center === false ? 0 : 1);
  return [y, xhat, rstd];
});

const layerNormGradConfig = simdKernel("CourseLayerNormGrad", (simd, out, p, { g, xhat, rstd, w }, attrs) => {
  const [rows, cols] = g.shape;
  const [dx, dw, db] = [out([rows, cols]), out([cols]), out([cols])];
  simd.layernorm_grad(p(g), p(xhat), p(rstd), p(w), p(dx), p(dw), p(db), rows, cols, attrs.center === false ? 0 : 1);
  return [dx, dw, db];
});

const swigluConfig = simdKernel("CourseSwiglu", (simd, out, p, { a, b }) => {
  const [y, s] = [out(a.shape), out(a.shape)];
  simd.swiglu(p(a), p(b), p(y), p(s), tf.util.sizeFromShape(a.shape));
  return [y, s];
});

const swigluGradConfig = simdKernel("CourseSwigluGrad", (simd, out, p, { a, b, s, g }) => {
  const [da, db] = [out(a.shape), out(a.shape)];
  simd.swiglu_grad(p(a), p(b), p(s), p(g), p(da), p(db), tf.util.sizeFromShape(a.shape));
  return [da, db];
});

/** x [R, D] in blocks of t rows (positions offset..offset+t-1), cos/sin [P, D/2] (attrs t, offset, sign). */
const ropeConfig = simdKernel("CourseRope", (simd, out, p, { x, cos, sin }, attrs) => {
  const [rows, d] = x.shape;
  const y = out([rows, d]);
  simd.rope(p(x), p(cos), p(sin), p(y), rows, attrs.t as number, d, attrs.offset as number, attrs.sign as number);
  return y;
});

const geluConfig = simdKernel("CourseGelu", (simd, out, p, { x }) => {
  const [y, s] = [out(x.shape), out(x.shape)];
  simd.gelu(p(x), p(y), p(s), tf.util.sizeFromShape(x.shape), 2 * GELU_K * GELU_A, 2 * GELU_K);
  return [y, s];
});

const geluGradConfig = simdKernel("CourseGeluGrad", (simd, out, p, { x, s, g }) => {
  const dx = out(x.shape);
  simd.gelu_grad(p(x), p(s), p(g), p(dx), tf.util.sizeFromShape(x.shape), 2 * GELU_K, 3 * 2 * GELU_K * GELU_A);
  return dx;
});

/** x [B·T, n·H·D] → n tensors [B·H, T, D] (attrs b, t, h, n). */
const splitHeadsConfig = simdKernel("CourseSplitHeads", (simd, out, p, { x }, attrs) => {
  const { t, h, n } = attrs as { t: number; h: number; n: number };
  const [bt, width] = x.shape;
  const d = width / (n * h);
  return Array.from({ length: n }, (_, j) => {
    const y = out([(bt / t) * h, t, d]);
    simd.heads(p(x), p(y), bt, t, h, d, width, j * h * d, 1);
    return y;
  });
});

/** n tensors [B·H, T, D] → [B·T, n·H·D] (attrs b, t, n). */
const mergeHeadsConfig = simdKernel("CourseMergeHeads", (simd, out, p, inputs, attrs) => {
  const { b, t } = attrs as { b: number; t: number };
  const pieces = Object.values(inputs);
  const [bh, , d] = pieces[0].shape;
  const h = bh / b;
  const width = pieces.length * h * d;
  const y = out([b * t, width]);
  pieces.forEach((piece, j) => simd.heads(p(y), p(piece), b * t, t, h, d, width, j * h * d, 0));
  return y;
});

/** softmax over the last axis of x [..., T, S]·scale, query i seeing keys ≤ i + S − T (attrs scale). */
const causalSoftmaxConfig = simdKernel("CourseCausalSoftmax", (simd, out, p, { x }, attrs) => {
  const [t, s] = x.shape.slice(-2);
  const y = out(x.shape);
  simd.causal_softmax(p(x), p(y), tf.util.sizeFromShape(x.shape) / s, t, s, attrs.scale as number);
  return y;
});

const causalSoftmaxGradConfig = simdKernel("CourseCausalSoftmaxGrad", (simd, out, p, { y, dy }, attrs) => {
  const s = y.shape[y.shape.length - 1];
  const dx = out(y.shape);
  simd.causal_softmax_grad(p(y), p(dy), p(dx), tf.util.sizeFromShape(y.shape) / s, s, attrs.scale as number);
  return dx;
});

export const fusedWasmConfigs: tf.KernelConfig[] = [
  layerNormConfig, layerNormGradConfig, geluConfig, geluGradConfig, splitHeadsConfig, mergeHeadsConfig,
  causalSoftmaxConfig, causalSoftmaxGradConfig, swigluConfig, swigluGradConfig, ropeConfig,
];

// The head and softmax kernels have gradients of their own (the head kernels are each other's),
// so tfjs records them on its tape like its own kernels; the LayerNorm and GELU kernels run
// inside lib/gpt/gpt.ts's customGrads.
tf.registerGradient({
  kernelName: "CourseSplitHeads",
  gradFunc: (dy: tf.Tensor | tf.Tensor[], _saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const { b, t } = attrs as unknown as { b: number; t: number };
    // One output's gradient comes as a tensor, several as an array.
    return { x: () => mergeHeads((Array.isArray(dy) ? dy : [dy]) as tf.Tensor3D[], b, t) };
  },
});
tf.registerGradient({
  kernelName: "CourseCausalSoftmax",
  outputsToSave: [true],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => ({
    x: () => tf.engine().runKernel("CourseCausalSoftmaxGrad", { y: saved[0], dy: dy as tf.Tensor }, { scale: attrs.scale }) as tf.Tensor,
  }),
});
tf.registerGradient({
  kernelName: "CourseMergeHeads",
  gradFunc: (dy: tf.Tensor | tf.Tensor[], _saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const { b, t, n, h } = attrs as unknown as { b: number; t: number; n: number; h: number };
    // All pieces at once, here: tfjs calls each input's closure in a scope of its own, which
    // would dispose pieces computed there for the other inputs.
    const parts = splitHeads(dy as tf.Tensor2D, b, t, h, n);
    return Object.fromEntries(parts.map((q, j) => [String(j), () => q]));
  },
});

/** Install the fused kernels on wasm (idempotent); they run once loadSimdKernels has assembled them. */
export function useFusedKernels(): void {
  fusedWasmConfigs.forEach(installKernel);
}
/** Remove them: the functions below then use tensor ops. */
export function restoreFusedKernels(): void {
  fusedWasmConfigs.forEach(restoreKernel);
}

/** The fused kernel `name` can run now (registered on the active backend, SIMD loaded). */
function fused(name: string): boolean {
  return tf.getKernel(name, tf.getBackend())?.kernelFunc !== undefined && simdKernelsActive();
}
const isF32 = (...ts: tf.Tensor[]) => ts.every((t) => t.dtype === "float32");

export interface LayerNormRows {
  y: tf.Tensor2D; // [R, C] the output
  xhat: tf.Tensor2D; // [R, C] normalised rows: mean 0, variance 1
  rstd: tf.Tensor2D; // [R, 1] 1/√(var + eps) per row
}

/**
 * LayerNorm of rows x [R, C] with gain w [C] and shift b [C] (zeros if absent). With
 * center false, RMSNorm: no mean subtraction (xhat = x / √(mean(x²) + eps)), no shift.
 */
export function layerNormRows(x: tf.Tensor2D, w: tf.Tensor1D, b: tf.Tensor1D | undefined, eps: number, center = true): LayerNormRows {
  const c = x.shape[1];
  if (fused("CourseLayerNorm") && c % 4 === 0 && c > 0 && x.shape[0] > 0 && isF32(x, w)) {
    const bb = b ?? tf.zeros([c]);
    const [y, xhat, rstd] = tf.engine().runKernel("CourseLayerNorm", { x, w, b: bb }, { eps, center }) as unknown as tf.Tensor2D[];
    if (b === undefined) bb.dispose();
    return { y, xhat, rstd };
  }
  return tf.tidy(() => {
    const mean = center ? tf.mean(x, -1, true) : tf.zeros([x.shape[0], 1]); // [R, 1]
    const xc = tf.sub(x, mean); // [R, C]
    const variance = tf.mean(tf.mul(xc, xc), -1, true); // [R, 1], biased (÷C) as PyTorch
    const rstd = tf.rsqrt(tf.add(variance, eps)) as tf.Tensor2D; // [R, 1]
    const xhat = tf.mul(xc, rstd) as tf.Tensor2D; // [R, C]
    const scaled = tf.mul(xhat, w);
    const y = (b === undefined ? scaled : tf.add(scaled, b)) as tf.Tensor2D;
    return { y, xhat, rstd };
  });
}

/**
 * LayerNorm's gradients from the upstream g [R, C] and the forward pass's xhat, rstd:
 * dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat ⊙ xhat)) per row with dxhat = g·w;
 * dw = Σ_rows g ⊙ xhat; db = Σ_rows g.
 */
export function layerNormRowsGrad(g: tf.Tensor2D, xhat: tf.Tensor2D, rstd: tf.Tensor2D, w: tf.Tensor1D, center = true): { dx: tf.Tensor2D; dw: tf.Tensor1D; db: tf.Tensor1D } {
  const c = g.shape[1];
  if (fused("CourseLayerNormGrad") && c % 4 === 0 && c > 0 && g.shape[0] > 0 && isF32(g, xhat, rstd, w)) {
    const [dx, dw, db] = tf.engine().runKernel("CourseLayerNormGrad", { g, xhat, rstd, w }, { center }) as unknown as tf.Tensor[];
    return { dx: dx as tf.Tensor2D, dw: dw as tf.Tensor1D, db: db as tf.Tensor1D };
  }
  return tf.tidy(() => {
    const dxhat = tf.mul(g, w); // [R, C]
    const m1 = center ? tf.mean(dxhat, -1, true) : tf.zeros([g.shape[0], 1]); // [R, 1] (RMSNorm: no mean was taken)
    const m2 = tf.mean(tf.mul(dxhat, xhat), -1, true); // [R, 1]
    const dx = tf.mul(tf.sub(tf.sub(dxhat, m1), tf.mul(xhat, m2)), rstd) as tf.Tensor2D;
    return { dx, dw: tf.sum(tf.mul(g, xhat), 0) as tf.Tensor1D, db: tf.sum(g, 0) as tf.Tensor1D };
  });
}

/**
 * GPT-2's GELU, y = x·s with s = σ(2u), 2u = 2√(2/π)·(x + 0.044715·x³); also returns s, which
 * the gradient needs. (x³ as x·x·x: tf.pow is slow on wasm.)
 */
export function geluWithSigmoid(x: tf.Tensor): { y: tf.Tensor; s: tf.Tensor } {
  if (fused("CourseGelu") && x.size >= 4 && isF32(x)) {
    const [y, s] = tf.engine().runKernel("CourseGelu", { x }, {}) as unknown as tf.Tensor[];
    return { y, s };
  }
  return tf.tidy(() => {
    const s = tf.sigmoid(tf.mul(tf.mul(x, tf.add(tf.mul(tf.mul(x, x), GELU_A), 1)), 2 * GELU_K));
    return { y: tf.mul(x, s), s };
  });
}

/** g·GELU'(x) with s = σ(2u) from the forward pass: GELU'(x) = s + x·s·(1 − s)·2√(2/π)·(1 + 3·0.044715·x²). */
export function geluGrad(x: tf.Tensor, s: tf.Tensor, g: tf.Tensor): tf.Tensor {
  if (fused("CourseGeluGrad") && x.size >= 4 && isF32(x, s, g) && g.shape.join() === x.shape.join()) {
    return tf.engine().runKernel("CourseGeluGrad", { x, s, g }, {}) as tf.Tensor;
  }
  return tf.tidy(() => {
    const dTwoU = tf.mul(tf.add(tf.mul(tf.mul(x, x), 3 * GELU_A), 1), 2 * GELU_K); // d(2u)/dx
    return tf.mul(g, tf.add(s, tf.mul(tf.mul(x, tf.mul(s, tf.sub(1, s))), dTwoU)));
  });
}

/** SwiGLU's gating of gate a and up b (same shape): y = SiLU(a)·b, and s = σ(a) for the gradient. */
export function swigluRows(a: tf.Tensor, b: tf.Tensor): { y: tf.Tensor; s: tf.Tensor } {
  if (fused("CourseSwiglu") && a.size >= 4 && isF32(a, b) && a.shape.join() === b.shape.join()) {
    const [y, s] = tf.engine().runKernel("CourseSwiglu", { a, b }, {}) as unknown as tf.Tensor[];
    return { y, s };
  }
  return tf.tidy(() => {
    const s = tf.sigmoid(a);
    return { y: tf.mul(tf.mul(a, s), b), s };
  });
}

/** SwiGLU's gradients from g: da = g·b·s·(1 + a·(1 − s)), db = g·a·s (s = σ(a)). */
export function swigluRowsGrad(a: tf.Tensor, b: tf.Tensor, s: tf.Tensor, g: tf.Tensor): { da: tf.Tensor; db: tf.Tensor } {
  if (fused("CourseSwigluGrad") && a.size >= 4 && isF32(a, b, s, g) && g.shape.join() === a.shape.join()) {
    const [da, db] = tf.engine().runKernel("CourseSwigluGrad", { a, b, s, g }, {}) as unknown as tf.Tensor[];
    return { da, db };
  }
  return tf.tidy(() => ({
    da: tf.mul(tf.mul(g, b), tf.mul(s, tf.add(1, tf.mul(a, tf.sub(1, s))))),
    db: tf.mul(g, tf.mul(a, s)),
  }));
}

/** ropeRows's kernel can rotate x here (wasm with SIMD, D/2 a multiple of 4, float32). */
export function ropeRowsRun(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): boolean {
  const d = x.shape[x.rank - 1];
  return fused("CourseRope") && x.rank >= 2 && (d / 2) % 4 === 0 && x.size > 0 && isF32(x, cos, sin);
}

/**
 * Rotary embeddings of x [..., T, D] by positions offset..offset+T-1, tables cos/sin [P, D/2]
 * (sign −1: the rotation back, the gradient). One kernel when D/2 is a multiple of 4;
 * undefined otherwise (the caller uses tensor ops).
 */
export function ropeRows(x: tf.Tensor, cos: tf.Tensor2D, sin: tf.Tensor2D, offset: number, sign: 1 | -1): tf.Tensor | undefined {
  const [t, d] = x.shape.slice(-2);
  if (!ropeRowsRun(x, cos, sin)) return undefined;
  const y = tf.engine().runKernel("CourseRope", { x: x.reshape([x.size / d, d]), cos, sin }, { t, offset, sign }) as tf.Tensor;
  return y.reshape(x.shape);
}

/**
 * Attention's heads: x [B·T, n·H·D] (n blocks side by side, e.g. q | k | v, each H heads of
 * D) → n tensors [B·H, T, D], one row of T positions per (sequence, head). Differentiable.
 */
export function splitHeads(x: tf.Tensor2D, b: number, t: number, h: number, n: number): tf.Tensor3D[] {
  const d = x.shape[1] / (n * h);
  if (!Number.isInteger(d) || x.shape[0] !== b * t) throw new Error(`splitHeads: [${x.shape}] is not [${b}·${t}, ${n}·${h}·D]`);
  if (fused("CourseSplitHeads") && d % 4 === 0 && x.size > 0 && isF32(x)) {
    return tf.engine().runKernel("CourseSplitHeads", { x }, { b, t, h, n }) as unknown as tf.Tensor3D[];
  }
  return tf.tidy(() => (n === 1 ? [x] : tf.split(x, n, 1)).map((m) =>
    (h === 1 ? m.reshape([b, t, d]) : m.reshape([b, t, h, d]).transpose([0, 2, 1, 3]).reshape([b * h, t, d])) as tf.Tensor3D));
}

/** The inverse of splitHeads: n tensors [B·H, T, D] → [B·T, n·H·D]. Differentiable. */
export function mergeHeads(pieces: tf.Tensor3D[], b: number, t: number): tf.Tensor2D {
  const [bh, tt, d] = pieces[0].shape;
  const h = bh / b;
  if (tt !== t || !Number.isInteger(h) || pieces.some((q) => q.shape.join() !== pieces[0].shape.join())) {
    throw new Error(`mergeHeads: pieces [${pieces.map((q) => `[${q.shape}]`).join(", ")}] are not all [${b}·H, ${t}, D]`);
  }
  if (fused("CourseMergeHeads") && d % 4 === 0 && pieces[0].size > 0 && isF32(...pieces)) {
    return tf.engine().runKernel("CourseMergeHeads", Object.fromEntries(pieces.map((q, i) => [String(i), q])), { b, t, h, n: pieces.length }) as tf.Tensor2D;
  }
  return tf.tidy(() => {
    const rows = pieces.map((y) => (h === 1 ? y.reshape([b * t, d]) : y.reshape([b, h, t, d]).transpose([0, 2, 1, 3]).reshape([b * t, h * d])));
    return (rows.length === 1 ? rows[0] : tf.concat(rows, 1)) as tf.Tensor2D;
  });
}

/**
 * Attention weights softmax(scale·x + causal mask) over the last axis of raw scores
 * x = q·kᵀ [..., T, S] in one SIMD pass (and one for the gradient), query i seeing keys
 * ≤ i + S − T; masked weights are exactly 0, as with lib/attention/attention.ts's additive mask.
 * Undefined when the kernel cannot run here (not wasm with SIMD, S not a multiple of 4):
 * the caller then uses tensor ops.
 */
export function fusedCausalSoftmax(x: tf.Tensor, scale: number): tf.Tensor | undefined {
  const [t, s] = x.shape.slice(-2);
  if (!(fused("CourseCausalSoftmax") && x.rank >= 2 && s % 4 === 0 && t <= s && x.size > 0 && isF32(x))) return undefined;
  return tf.engine().runKernel("CourseCausalSoftmax", { x }, { scale }) as tf.Tensor;
}
