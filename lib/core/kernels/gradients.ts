/**
 * Gradient gaps in tfjs-core 4.22 that break ordinary training code on EVERY backend
 * (found by the probe in tests/core/kernels/kernels.test.ts), and their fixes.
 *
 * 1. Comparisons have no gradient. `tf.where(tf.greater(x, 0), x, y)` inside a loss
 *    throws "gradient function not found for Greater": the gradient of `where` (Select)
 *    hands a zero gradient to its condition, and the tape then walks into the comparison
 *    that produced it. A comparison's output is piecewise constant, so its gradient is
 *    zero (TensorFlow simply doesn't differentiate through it). We register that zero
 *    for the comparison and logical kernels that lack a gradient (GreaterEqual has one).
 *
 * 2. Broadcast matMul has a wrong-shaped gradient. For x: [B, T, C] and w: [C, D],
 *    `tf.matMul(x, w)` works but its gradient for w comes out [B, C, D] instead of [C, D]
 *    ("The gradient of input 'b' has shape '2,4,5', which does not match ... '4,5'"):
 *    the gradient is not summed over the broadcast batch dimensions. We wrap the
 *    original gradient and sum it back to each input's shape.
 *
 * Gradients live in one global registry shared by all backends. We only add a gradient
 * where tfjs has none, and keep the original BatchMatMul gradient to restore it.
 */
import * as tf from "@tensorflow/tfjs";

/** Kernels whose outputs are booleans of their inputs: gradient zero almost everywhere. */
const COMPARISONS: Record<string, string[]> = {
  Greater: ["a", "b"],
  Less: ["a", "b"],
  LessEqual: ["a", "b"],
  Equal: ["a", "b"],
  NotEqual: ["a", "b"],
  LogicalAnd: ["a", "b"],
  LogicalOr: ["a", "b"],
  LogicalNot: ["x"],
};

function zeroGradient(kernelName: string, inputNames: string[]): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: inputNames,
    // The tape requires float32 gradients shaped like each input (inputs may be bool).
    gradFunc: (_dy, saved) => {
      const grads: Record<string, () => tf.Tensor> = {};
      inputNames.forEach((name, i) => {
        grads[name] = () => tf.zeros(saved[i].shape, "float32");
      });
      return grads;
    },
  };
}

/** Sum `g` over the dimensions along which `shape` was broadcast, then give it `shape`. */
function sumToShape(g: tf.Tensor, shape: number[]): tf.Tensor {
  if (tf.util.arraysEqual(g.shape, shape)) return g;
  const axes = tf.backend_util.getReductionAxes(shape, g.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape);
}

function broadcastSafeBatchMatMul(original: tf.GradConfig): tf.GradConfig {
  return {
    ...original,
    inputsToSave: ["a", "b"],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved;
      const g = original.gradFunc(dy, saved, attrs);
      return { a: () => sumToShape(g.a(), a.shape), b: () => sumToShape(g.b(), b.shape) };
    },
  };
}

/** Kernel name → gradient registered before ours (undefined: there was none). */
const replaced = new Map<string, tf.GradConfig | undefined>();

/** Names of the kernels whose gradient `registerGradientFixes` adds or fixes. */
export const gradientFixNames: readonly string[] = [...Object.keys(COMPARISONS), "BatchMatMul"];

/** Install the gradient fixes above (idempotent). Returns the kernel names affected. */
export function registerGradientFixes(): string[] {
  const done: string[] = [];
  for (const [name, inputs] of Object.entries(COMPARISONS)) {
    if (!replaced.has(name) && tf.getGradient(name) === undefined) {
      tf.registerGradient(zeroGradient(name, inputs));
      replaced.set(name, undefined);
    }
    if (replaced.has(name)) done.push(name);
  }
  if (!replaced.has("BatchMatMul")) {
    const original = tf.getGradient("BatchMatMul");
    if (original !== undefined) {
      tf.registerGradient(broadcastSafeBatchMatMul(original));
      replaced.set("BatchMatMul", original);
    }
  }
  if (replaced.has("BatchMatMul")) done.push("BatchMatMul");
  return done;
}

/** Remove the fixes and put back what tfjs had. */
export function unregisterGradientFixes(): void {
  for (const [name, original] of replaced) {
    tf.unregisterGradient(name);
    if (original !== undefined) tf.registerGradient(original);
  }
  replaced.clear();
}
