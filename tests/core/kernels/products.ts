/**
 * Matrix products every native BatchMatMul engine is tested on (./ortMatMul.test.ts,
 * ./blasMatMul.test.ts), with inputs made once on the cpu backend and the helpers that
 * compute a case's product and gradients on whatever backend is active.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";

/**
 * native: a native engine can take it (false: general broadcasting or an empty product, which
 * go to XNNPACK); small: an untransposed 2-D product under MIN_ORT_MACS, which onnxruntime
 * hands to XNNPACK and the BLAS computes.
 */
export type ProductCase = { name: string; a: number[]; b: number[]; ta?: boolean; tb?: boolean; native: boolean; small?: boolean; noGrad?: boolean };

export const PRODUCT_CASES: ProductCase[] = [
  // Untransposed 2-D products run in ORT only from MIN_ORT_MACS multiply-adds on: 96·128·160 ≈ 2M.
  { name: "2-D", a: [96, 128], b: [128, 160], native: true },
  { name: "2-D small", a: [5, 3], b: [3, 4], native: true, small: true },
  { name: "2-D transposeA", a: [30, 40], b: [30, 20], ta: true, native: true },
  { name: "2-D transposeB", a: [40, 30], b: [20, 30], tb: true, native: true },
  { name: "2-D both", a: [30, 40], b: [20, 30], ta: true, tb: true, native: true },
  { name: "linear layer dW = Xᵀ·dY", a: [192, 64], b: [192, 96], ta: true, native: true },
  // Attention, [B·H, T, D]: scores q·kᵀ, att·v, and the transposed products of their gradients.
  { name: "attention q·kᵀ", a: [12, 16, 8], b: [12, 16, 8], tb: true, native: true },
  { name: "attention att·v", a: [12, 16, 16], b: [12, 16, 8], native: true },
  { name: "attention attᵀ·dy", a: [12, 16, 16], b: [12, 16, 8], ta: true, native: true },
  { name: "batched both", a: [4, 7, 5], b: [4, 6, 7], ta: true, tb: true, native: true },
  { name: "rank 4 [B, H, T, D]", a: [2, 3, 16, 8], b: [2, 3, 16, 8], tb: true, native: true },
  { name: "a broadcast (batch 1)", a: [1, 5, 3], b: [6, 3, 4], native: true },
  { name: "a 2-D, b batched", a: [5, 3], b: [6, 3, 4], native: true },
  { name: "a 2-D transposed, b batched", a: [3, 5], b: [6, 3, 4], ta: true, native: true },
  { name: "b 2-D (one GEMM)", a: [2, 6, 5, 3], b: [3, 4], native: true },
  { name: "b 2-D transposeB", a: [6, 5, 3], b: [4, 3], tb: true, native: true },
  { name: "b 2-D transposeA", a: [6, 3, 5], b: [3, 4], ta: true, native: true },
  { name: "a rank 4 of ones", a: [1, 1, 5, 3], b: [6, 3, 4], native: true },
  { name: "general broadcast (XNNPACK)", a: [2, 1, 5, 3], b: [1, 3, 3, 4], native: false, noGrad: true },
  { name: "empty (XNNPACK)", a: [2, 0, 3], b: [2, 3, 4], native: false, noGrad: true },
];

export type ProductResult = { shape: number[]; values: Float32Array };

/** Random inputs, the same on every backend (made on cpu, copied as numbers). */
const data = new Map<string, [Float32Array, Float32Array]>();

/**
 * Make every case's inputs and its reference product and gradients on the cpu backend (the
 * broadcast-safe matMul gradient must be registered), then return to `backend`.
 */
export async function referenceProducts(backend: string): Promise<{ products: Map<string, ProductResult>; grads: Map<string, Float32Array[]> }> {
  assert.ok(await tf.setBackend("cpu"));
  const products = new Map<string, ProductResult>(), grads = new Map<string, Float32Array[]>();
  let seed = 1;
  for (const c of PRODUCT_CASES) {
    data.set(c.name, tf.tidy(() => [c.a, c.b].map((s) => tf.randomNormal(s, 0, 1, "float32", seed++).dataSync() as Float32Array)) as [Float32Array, Float32Array]);
    products.set(c.name, caseProduct(c));
    if (!c.noGrad) grads.set(c.name, caseGrads(c));
  }
  assert.ok(await tf.setBackend(backend));
  return { products, grads };
}

export function caseInputs(c: ProductCase): [tf.Tensor, tf.Tensor] {
  const [a, b] = data.get(c.name)!;
  return [tf.tensor(a, c.a), tf.tensor(b, c.b)];
}

export function caseProduct(c: ProductCase): ProductResult {
  return tf.tidy(() => {
    const [a, b] = caseInputs(c);
    const y = tf.matMul(a, b, c.ta, c.tb);
    return { shape: y.shape, values: y.dataSync() as Float32Array };
  });
}

export function caseGrads(c: ProductCase): Float32Array[] {
  return tf.tidy(() => {
    const [a, b] = caseInputs(c);
    const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.sin(tf.matMul(x, y, c.ta, c.tb)));
    return tf.grads(f)([a, b]).map((g) => g.dataSync() as Float32Array);
  });
}

/** Max |difference| relative to the reference's largest magnitude (products sum up to 192 terms). */
export function assertClose(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, what);
  let diff = 0, scale = 1;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  assert.ok(diff <= 2e-5 * scale, `${what}: max |diff| ${diff} (scale ${scale})`);
}

/** Every case's product, 30 times over, twice: no tensor, byte or wasm heap growth between the rounds. */
export function assertProductsDoNotLeak(): void {
  const heap = () => ((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength);
  const run = () => {
    for (let i = 0; i < 30; i++) {
      for (const c of PRODUCT_CASES) tf.tidy(() => { const [a, b] = caseInputs(c); tf.matMul(a, b, c.ta, c.tb).dataSync(); });
    }
  };
  run();
  const before = tf.memory(), heapBefore = heap();
  run();
  const after = tf.memory();
  assert.equal(after.numTensors, before.numTensors);
  assert.equal(after.numBytes, before.numBytes);
  assert.equal(heap(), heapBefore, "wasm heap grew");
}

/** Every case with gradients gives the reference's (tf.grads of sum(sin(a·b))). */
export function assertGradsMatch(expected: Map<string, Float32Array[]>): void {
  for (const c of PRODUCT_CASES) {
    if (c.noGrad) continue;
    caseGrads(c).forEach((g, i) => assertClose(g, expected.get(c.name)![i], `${c.name} grad ${i}`));
  }
}
