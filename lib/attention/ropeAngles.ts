/**
 * RoPE's angles as plain numbers: cos and sin of p·θᵢ, θᵢ = base^(−2i/D), row-major [T, D/2].
 * Apart from positional.ts (which turns them into tensors and re-exports this) because it needs
 * no TensorFlow.js: the course's decoder runs in the browser too.
 */

/** ropeAngles' numbers as plain arrays, row-major [T, D/2] (the Float32 decoder uses them). */
export function ropeAngleValues(T: number, headDim: number, base = 10000): { cos: Float32Array; sin: Float32Array } {
  if (!Number.isInteger(T) || T < 1) throw new Error(`ropeAngles: T must be a positive integer, got ${T}`);
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) {
    throw new Error(`ropeAngles: head size must be a positive even integer, got ${headDim}`);
  }
  const half = headDim / 2;
  const cos = new Float32Array(T * half);
  const sin = new Float32Array(T * half);
  for (let p = 0; p < T; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(base, (-2 * i) / headDim);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

