/**
 * Positions: attention by itself treats its input as a SET of vectors (shuffle the
 * tokens and the outputs are shuffled the same way), so order must be put in.
 * Three ways, as in the lesson:
 *  1. sinusoidal encodings (Vaswani et al. 2017), added to the token embeddings;
 *  2. learned absolute position embeddings (GPT-2), added to the token embeddings;
 *  3. rotary embeddings, RoPE (Su et al. 2021; Llama), which rotate queries and keys so
 *     that q·k depends only on the distance between the two positions.
 */
import * as tf from "@tensorflow/tfjs";
import { ropeRows, ropeRowsRun } from "../core/kernels/fused";
import { Rng, seedFor } from "../core/random";
import { ropeAngleValues } from "./ropeAngles";

export { ropeAngleValues } from "./ropeAngles";

function checkSize(name: string, what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: ${what} must be a positive integer, got ${n}`);
}

/** Frequency of dimension pair i (dims 2i and 2i+1) of the sinusoidal encoding: 1/10000^(2i/C). */
function sinusoidalFrequency(i: number, channels: number): number {
  return 1 / Math.pow(10000, (2 * i) / channels);
}

/**
 * The sinusoidal encoding of positions 0..T-1 as plain numbers, [T][C]:
 *   PE[p][2i]   = sin(p / 10000^(2i/C))
 *   PE[p][2i+1] = cos(p / 10000^(2i/C))
 * Low dimensions turn fast with p, high dimensions slowly, like the hands of a clock.
 */
export function sinusoidalEncodingValues(T: number, C: number): number[][] {
  checkSize("sinusoidalEncoding", "T", T);
  checkSize("sinusoidalEncoding", "C", C);
  const rows: number[][] = [];
  for (let p = 0; p < T; p++) {
    const row = new Array<number>(C);
    for (let j = 0; j < C; j++) {
      const angle = p * sinusoidalFrequency(Math.floor(j / 2), C);
      row[j] = j % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
    }
    rows.push(row);
  }
  return rows;
}

/** The sinusoidal encoding as a tensor [T, C] (see sinusoidalEncodingValues). */
export function sinusoidalEncoding(T: number, C: number): tf.Tensor2D {
  return tf.tensor2d(sinusoidalEncodingValues(T, C));
}

/**
 * Dot products PE[p]·PE[n] for n = 0..T-1 (plain numbers). For even C this equals
 * Σᵢ cos((n − p)·ωᵢ): it depends only on the distance n − p, not on p — the encoding
 * lets attention see relative positions.
 */
export function positionDotProducts(T: number, C: number, p = 0): number[] {
  if (!Number.isInteger(p) || p < 0 || p >= T) throw new Error(`positionDotProducts: position ${p} is outside 0..${T - 1}`);
  const pe = sinusoidalEncodingValues(T, C);
  return pe.map((row) => row.reduce((acc, x, j) => acc + x * pe[p][j], 0));
}

// ---------------------------------------------------------------------------------------
// Learned absolute position embeddings (GPT-2's wpe)

export interface PositionEmbeddingOptions {
  /** Seed of the normal init. Default 0. */
  seed?: number;
  /** Draw the seed from this generator instead (takes precedence over `seed`). */
  rng?: Rng;
  /** Std of the init; GPT-2 uses 0.02 (the default). */
  std?: number;
}

/** A trainable table [T, C] (one learned vector per position 0..T-1), ~ N(0, std²). */
export function initPositionEmbedding(T: number, C: number, opts: PositionEmbeddingOptions = {}): tf.Variable<tf.Rank.R2> {
  checkSize("initPositionEmbedding", "T", T);
  checkSize("initPositionEmbedding", "C", C);
  const { std = 0.02 } = opts;
  const seed = opts.rng ? seedFor(opts.rng) : opts.seed ?? 0;
  return tf.variable(tf.tidy(() => tf.randomNormal([T, C], 0, std, "float32", seed))) as tf.Variable<tf.Rank.R2>;
}

/**
 * tokEmb [B, T, C] (or [T, C]) + the position rows offset..offset+T-1 of pos [Tmax, C].
 * `offset` is the position of the first token (generation with a KV cache).
 */
export function addPositions(tokEmb: tf.Tensor, pos: tf.Tensor2D, offset = 0): tf.Tensor {
  const name = "addPositions";
  if (tokEmb.rank < 2) throw new Error(`${name}: token embeddings must be [..., T, C], got shape [${tokEmb.shape}]`);
  const [t, c] = tokEmb.shape.slice(-2);
  if (pos.rank !== 2 || pos.shape[1] !== c) {
    throw new Error(`${name}: position table [${pos.shape}] does not match ${c} channels`);
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + t > pos.shape[0]) {
    throw new Error(`${name}: positions ${offset}..${offset + t - 1} exceed the ${pos.shape[0]} positions of the table`);
  }
  return tf.tidy(() => tf.add(tokEmb, tf.slice(pos, [offset, 0], [t, c]))); // [T, C] broadcasts over B
}

// ---------------------------------------------------------------------------------------
// Rotary position embeddings (RoPE), half-split convention (GPT-NeoX, HF Llama)

export interface RopeTables {
  /** cos(p·θᵢ) [T, D/2] for positions p = 0..T-1 and frequencies θᵢ = base^(−2i/D). */
  cos: tf.Tensor2D;
  /** sin(p·θᵢ) [T, D/2]. */
  sin: tf.Tensor2D;
}

/** RoPE tables for positions 0..T-1 and head size D (even). */
export function ropeAngles(T: number, headDim: number, base = 10000): RopeTables {
  const { cos, sin } = ropeAngleValues(T, headDim, base);
  const half = headDim / 2;
  return { cos: tf.tensor2d(cos, [T, half]), sin: tf.tensor2d(sin, [T, half]) };
}

/**
 * Rotate x [..., T, D] by its positions offset..offset+T-1. Half-split convention: dim i
 * is paired with dim i + D/2 (not 2i with 2i+1 as in the RoPE paper's interleaved form;
 * both are the same idea, the pairing just has to match the weights):
 *   x1' = x1·cos − x2·sin,   x2' = x1·sin + x2·cos      (x1 = x[..., :D/2], x2 = x[..., D/2:])
 * Each pair is a 2-D vector turned by the angle p·θᵢ, so for a query at m and a key at n,
 * rope(q, m)·rope(k, n) depends only on m − n.
 * A rotation's transpose is the rotation back, so the gradient is g turned by −p·θᵢ (written
 * by hand: one op each way instead of autograd through split, four products and concat).
 */
export function applyRope(x: tf.Tensor, tables: RopeTables, offset = 0): tf.Tensor {
  const name = "applyRope";
  if (x.rank < 2) throw new Error(`${name}: x must be [..., T, D], got shape [${x.shape}]`);
  const [t, d] = x.shape.slice(-2);
  const half = tables.cos.shape[1];
  if (d !== 2 * half) throw new Error(`${name}: head size ${d} does not match tables for head size ${2 * half}`);
  if (!Number.isInteger(offset) || offset < 0 || offset + t > tables.cos.shape[0]) {
    throw new Error(`${name}: positions ${offset}..${offset + t - 1} exceed the ${tables.cos.shape[0]} positions of the tables`);
  }
  return tf.tidy(() => {
    // One SIMD kernel each way on wasm (lib/core/kernels/fused.ts), the formulas below elsewhere.
    if (ropeRowsRun(x, tables.cos, tables.sin)) {
      const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
        (args[1] as tf.GradSaveFunc)([tables.cos, tables.sin]);
        return {
          value: ropeRows(args[0] as tf.Tensor, tables.cos, tables.sin, offset, 1)!,
          gradFunc: (g: tf.Tensor, saved: tf.Tensor[]) => [ropeRows(g, saved[0] as tf.Tensor2D, saved[1] as tf.Tensor2D, offset, -1)!],
        };
      }) as (v: tf.Tensor) => tf.Tensor;
      return op(x);
    }
    const cos = tf.slice(tables.cos, [offset, 0], [t, half]); // [T, D/2], broadcasts over leading dims
    const sin = tf.slice(tables.sin, [offset, 0], [t, half]);
    const rotate = (v: tf.Tensor, c: tf.Tensor, s: tf.Tensor) => {
      const [v1, v2] = tf.split(v, 2, -1); // [..., T, D/2] each
      return tf.concat([tf.sub(tf.mul(v1, c), tf.mul(v2, s)), tf.add(tf.mul(v1, s), tf.mul(v2, c))], -1);
    };
    const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const save = args[1] as tf.GradSaveFunc;
      save([cos, sin]); // kept for the backward pass (this tidy disposes them otherwise)
      return {
        value: rotate(args[0] as tf.Tensor, cos, sin),
        gradFunc: (g: tf.Tensor, saved: tf.Tensor[]) => [rotate(g, saved[0], tf.neg(saved[1]))],
      };
    }) as (v: tf.Tensor) => tf.Tensor;
    return op(x);
  });
}

// ---------------------------------------------------------------------------------------
// Why positions are needed at all

/**
 * Pool token embeddings [..., T, C] over the T axis → [..., C] ("bag of embeddings").
 * Sum and mean ignore order: "dog bites man" and "man bites dog" give the same vector.
 */
export function bagOfEmbeddings(emb: tf.Tensor, mode: "sum" | "mean" = "mean"): tf.Tensor {
  if (emb.rank < 2) throw new Error(`bagOfEmbeddings: embeddings must be [..., T, C], got shape [${emb.shape}]`);
  return tf.tidy(() => (mode === "sum" ? tf.sum(emb, -2) : tf.mean(emb, -2)));
}

/**
 * Cosine similarity between every two rows of a position table [T, C] (learned, like a GPT's
 * wpe, or sinusoidal): what a model learned about "near" and "far". Result [T][T], 1 on the diagonal.
 */
export function positionSimilarity(table: tf.Tensor2D): number[][] {
  if (table.rank !== 2) throw new Error(`positionSimilarity: expected a [T, C] table, got shape [${table.shape}]`);
  return tf.tidy(() => {
    const unit = tf.div(table, tf.add(tf.norm(table, "euclidean", 1, true), 1e-12)); // rows of length 1
    return tf.matMul(unit, unit, false, true).arraySync() as number[][]; // [T, T]
  });
}
