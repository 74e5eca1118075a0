/**
 * Matrix products arranged for speed on the tfjs wasm backend.
 *
 * Why: on wasm, tfjs's own BatchMatMul is fast (XNNPACK) only for a plain 2-D product
 * A·B (no transposeA/transposeB flag, batch of 1). Everything else — a transposed
 * operand, a batched product — runs a naive loop ~5-15x slower, and tf.matMul's own
 * gradient uses transposed products (dA = dC·Bᵀ, dB = Aᵀ·dC).
 *
 * Two fixes exist in the course:
 *  - lib/core/kernels/batchMatmul.ts replaces the wasm kernel, so that every tf.matMul
 *    (transposed, batched, and in gradients) takes the fast path. multiHeadAttention
 *    installs it; with it, plain tf.matMul is as fast as the helpers below.
 *  - The helpers below get the same effect without touching the kernel registry:
 *    transposes done explicitly with tf.transpose (or left to a transpose flag when the
 *    active kernel handles it: mmTA / mmTB), batched products split into one 2-D product
 *    per batch element, gradients written by hand (tf.customGrad) with the same rule.
 *    Same maths as tf.matMul (tested).
 * `linear` is worth using either way: one [B·T, C] product for a whole layer, and
 * gradients made of fast products only.
 */
import * as tf from "@tensorflow/tfjs";
import { wasmMatMulEngine } from "./kernels";

function check2d(name: string, a: tf.Tensor, b: tf.Tensor, inner: [number, number]): void {
  if (a.rank !== 2 || b.rank !== 2) {
    throw new Error(`${name}: expected 2-D tensors, got shapes [${a.shape}] and [${b.shape}]`);
  }
  if (inner[0] !== inner[1]) {
    throw new Error(`${name}: inner dimensions differ, shapes [${a.shape}] and [${b.shape}]`);
  }
}

/** Untransposed 2-D product; inside a gradient we already hold plain tensors. */
const mm = (a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D => tf.matMul(a, b);
const tr = (a: tf.Tensor2D): tf.Tensor2D => tf.transpose(a);

/**
 * Whether transposed products may be left to the BatchMatMul kernel: every backend but a
 * wasm one without the course's BatchMatMul multiplies transposed operands fast. With the
 * onnxruntime kernel (lib/core/kernels/ortMatMul.ts) a flag costs nothing, while an explicit
 * tf.transpose copies the operand: ~9% of a training step of nanogpt-cpu.
 */
function transposeFlagsFast(): boolean {
  return tf.getBackend() !== "wasm" || wasmMatMulEngine() !== undefined;
}

/**
 * Whether a transposed operand costs no copy at all: true on every backend but wasm, and on
 * wasm with a native kernel, BLAS or onnxruntime (the XNNPACK one transposes explicitly
 * inside). Lets a caller choose which operand to transpose when one is much larger (the tied
 * head's [N, V]).
 */
export function transposeFlagsFree(): boolean {
  if (tf.getBackend() !== "wasm") return true;
  const engine = wasmMatMulEngine();
  return engine === "onnxruntime" || engine === "blas";
}
/** Aᵀ·B and A·Bᵀ for 2-D operands: flags when fast, else an explicit transpose. */
export const mmTA = (a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D => (transposeFlagsFast() ? tf.matMul(a, b, true, false) : mm(tr(a), b));
export const mmTB = (a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D => (transposeFlagsFast() ? tf.matMul(a, b, false, true) : mm(a, tr(b)));

/** tf.customGrad passes the inputs and then the save function as one rest argument. */
type GradArgs = Array<tf.Tensor | tf.GradSaveFunc>;
const unpack2 = (args: GradArgs) => [args[0], args[1], args[2]] as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];

const matMul2dOp = tf.customGrad((...args: GradArgs) => {
  const [a, b, save] = unpack2(args);
  save([a, b]);
  return {
    value: mm(a, b), // [M, K]·[K, N] = [M, N]
    gradFunc: (g: tf.Tensor2D, saved: tf.Tensor[]) => { // g = dC [M, N]
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [mmTB(g, sb), mmTA(sa, g)]; // dA = dC·Bᵀ [M, K], dB = Aᵀ·dC [K, N]
    },
  };
});

/**
 * C = A·B for A [M, K], B [K, N] → [M, N]; same values and gradients as tf.matMul(a, b),
 * but the backward pass uses explicit transposes so all three products are fast on wasm.
 */
export function matMul2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  check2d("matMul2d", a, b, [a.shape[1], b.shape[0]]);
  return matMul2dOp(a, b) as tf.Tensor2D;
}

const matMulTransposeBOp = tf.customGrad((...args: GradArgs) => {
  const [a, b, save] = unpack2(args);
  save([a, b]);
  return {
    value: mmTB(a, b), // [M, K]·[K, N] = [M, N]
    gradFunc: (g: tf.Tensor2D, saved: tf.Tensor[]) => { // g = dC [M, N]
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      // C = A·Bᵀ ⇒ dA = dC·B [M, K] (no transpose at all), dB = dCᵀ·A [N, K].
      return [mm(g, sb), mmTA(g, sa)];
    },
  };
});

/**
 * C = A·Bᵀ for A [M, K], B [N, K] → [M, N] (e.g. attention scores q·kᵀ); same values as
 * tf.matMul(a, b, false, true). One explicit transpose forward and one backward, against
 * four if you wrote matMul2d(a, tf.transpose(b)).
 */
export function matMulTransposeB(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  check2d("matMulTransposeB", a, b, [a.shape[1], b.shape[1]]);
  return matMulTransposeBOp(a, b) as tf.Tensor2D;
}

/**
 * Batched product a [..., M, K] · b [..., K, N] → [..., M, N] (leading dims equal, no
 * broadcasting), computed as one fast 2-D product per batch element. With
 * `transposeB`, b is [..., N, K] and the result is a·bᵀ.
 */
export function batchMatMul(a: tf.Tensor, b: tf.Tensor, transposeB = false): tf.Tensor {
  const name = "batchMatMul";
  if (a.rank < 2 || a.rank !== b.rank) {
    throw new Error(`${name}: expected tensors of equal rank >= 2, got shapes [${a.shape}] and [${b.shape}]`);
  }
  const lead = a.shape.slice(0, -2);
  if (lead.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${name}: batch dimensions differ, shapes [${a.shape}] and [${b.shape}]`);
  }
  const [m, k] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const product = transposeB ? matMulTransposeB : matMul2d;
  if (lead.length === 0) return product(a as tf.Tensor2D, b as tf.Tensor2D);
  const n = transposeB ? bRows : bCols;
  if ((transposeB ? bCols : bRows) !== k) {
    throw new Error(`${name}: inner dimensions differ, shapes [${a.shape}] and [${b.shape}]`);
  }
  return tf.tidy(() => {
    const batch = lead.reduce((p, d) => p * d, 1);
    const as = tf.unstack(a.reshape([batch, m, k])) as tf.Tensor2D[]; // batch × [M, K]
    const bs = tf.unstack(b.reshape([batch, bRows, bCols])) as tf.Tensor2D[];
    const cs = as.map((ai, i) => product(ai, bs[i])); // batch × [M, N]
    return tf.stack(cs).reshape([...lead, m, n]);
  });
}

const unpack3 = (args: GradArgs) =>
  [args[0], args[1], args[2], args[3]] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];

const affineOp = tf.customGrad((...args: GradArgs) => {
  const [x, w, b, save] = unpack3(args);
  save([x, w]);
  return {
    value: tf.add(mm(x, w), b) as tf.Tensor2D, // [R, Cin]·[Cin, Cout] + [Cout] = [R, Cout]
    gradFunc: (g: tf.Tensor2D, saved: tf.Tensor[]) => { // g = dY [R, Cout]
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      // db = Σ over rows of dY. (On wasm the course's Sum kernel adds the rows in place;
      // tfjs's own transposes first, and ones[1, R]·dY repacks dY as a weight matrix.)
      const db = tf.sum(g, 0) as tf.Tensor1D;
      return [mmTB(g, sw), mmTA(sx, g), db]; // dX [R, Cin], dW [Cin, Cout], db [Cout]
    },
  };
});

/**
 * A dense layer on the last axis: x [..., Cin] · w [Cin, Cout] (+ b [Cout]) → [..., Cout].
 * The leading axes are flattened so the whole layer is ONE fast 2-D product
 * ([B, T, C] → [B·T, C]), and its gradient uses fast products only. This is GPT-2's
 * "Conv1D" orientation: y = x·W + b.
 */
export function linear(x: tf.Tensor, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor {
  const cin = x.shape[x.rank - 1];
  if (x.rank < 1 || w.rank !== 2 || cin !== w.shape[0]) {
    throw new Error(`linear: input features ${cin} do not match weight shape [${w.shape}]`);
  }
  if (b !== undefined && (b.rank !== 1 || b.shape[0] !== w.shape[1])) {
    throw new Error(`linear: bias shape [${b.shape}] does not match weight shape [${w.shape}]`);
  }
  return tf.tidy(() => {
    const x2 = x.reshape([x.size / cin, cin]) as tf.Tensor2D; // [B·T, Cin]
    const y = b === undefined ? matMul2d(x2, w) : (affineOp(x2, w, b) as tf.Tensor2D);
    return y.reshape([...x.shape.slice(0, -1), w.shape[1]]);
  });
}
