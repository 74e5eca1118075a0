/**
 * Attention: every position builds its output as a weighted average of the value vectors
 * of the positions it may look at; the weights come from how well its query matches
 * their keys.
 *
 *   Attention(Q, K, V) = softmax(Q·Kᵀ / √D + M) · V
 *
 * where M is 0 where attending is allowed and "−∞" where it is masked.
 *
 * Two implementations of multi-head attention live here, with the same maths:
 *  - `multiHeadAttentionTextbook`: nanoGPT's formulation in plain tfjs (tf.matMul
 *    projections, heads split by reshape + transpose to [B, H, T, D], batched q·kᵀ with
 *    transposeB, tf's own gradients). Kept to explain the idea and as the baseline.
 *  - `multiHeadAttention`: the one the course's GPT uses. Same structure, but the
 *    projections are `linear` (one [B·T, C] product with a hand-written gradient, see
 *    lib/core/linalg.ts), and on wasm it relies on the course's BatchMatMul kernel, which
 *    `initBackend()` registers: on wasm, tfjs's own kernel is fast only for an untransposed 2-D product, and runs the
 *    batched/transposed products of attention and of every matMul gradient in a naive
 *    loop. Measured with lib/tools/cli/benchAttention.ts (wasm, B=12 T=64 C=128 H=4,
 *    forward+backward): textbook with tfjs's kernels ~185 ms, this ~35-40 ms.
 *
 * Masking convention: masks are 1 (or true) where a query may attend to a key, 0 where it
 * may not. A masked score gets MASKED_SCORE (−1e9) added: after the softmax's max
 * subtraction, exp(−1e9) underflows to exactly 0, so masked weights are exactly 0 and each
 * row still sums to 1. (A true −∞ would give NaN, in values and gradients, for a row
 * where everything is masked.) A row whose keys are ALL masked attends to nothing: its
 * weights are all 0 and its output is the zero vector (no NaN).
 */
import * as tf from "@tensorflow/tfjs";
import { fusedCausalSoftmax, mergeHeads, splitHeads } from "../core/kernels/fused";
import { batchMatMul, linear } from "../core/linalg";
import { Rng, seedFor } from "../core/random";
import { applyRope, RopeTables } from "./positional";

/** Added to masked scores; behaves as −∞ in the softmax but never produces NaN. */
export const MASKED_SCORE = -1e9;

/**
 * Causal mask [T, S]: 1 where query i may attend to key j, 0 elsewhere. With S = T,
 * position i sees positions 0..i (lower triangle). With S > T (keys include S − T earlier
 * positions, e.g. from a KV cache) the queries are the LAST T positions, so query i sees
 * keys 0..i + (S − T).
 */
export function causalMask(T: number, S: number = T): tf.Tensor2D {
  if (!Number.isInteger(T) || !Number.isInteger(S) || T < 1 || S < T) {
    throw new Error(`causalMask: need integers 1 <= T <= S, got T=${T}, S=${S}`);
  }
  return tf.tensor2d(causalValues(T, S, 1, 0), [T, S]);
}

/** Row-major [T, S] values: `allowed` where j <= i + S − T, `masked` elsewhere. */
function causalValues(T: number, S: number, allowed: number, masked: number): Float32Array {
  const out = new Float32Array(T * S);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j < S; j++) out[i * S + j] = j <= i + S - T ? allowed : masked;
  }
  return out;
}

/** The additive form of a causal mask, [T, S]: 0 where allowed, MASKED_SCORE where masked. */
function causalBias(T: number, S: number): tf.Tensor2D {
  return tf.tensor2d(causalValues(T, S, 0, MASKED_SCORE), [T, S]);
}

/** Scores q·kᵀ·scale for q [..., Tq, D], k [..., Tk, D] → [..., Tq, Tk]; scale defaults to 1/√D. */
export function attentionScores(q: tf.Tensor, k: tf.Tensor, scale?: number): tf.Tensor {
  checkQK("attentionScores", q, k);
  const d = q.shape[q.rank - 1];
  return tf.tidy(() => tf.mul(batchMatMul(q, k, true), scale ?? 1 / Math.sqrt(d)));
}

/**
 * Masked scores: unchanged where mask is 1/true, score + MASKED_SCORE (≈ −1e9, "−∞")
 * where mask is 0/false. The mask broadcasts against scores (e.g. [T, S] for [B, H, T, S]).
 */
export function applyMask(scores: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.add(scores, maskToBias(mask)));
}

/** 1/true → 0, 0/false → MASKED_SCORE. */
function maskToBias(mask: tf.Tensor): tf.Tensor {
  return tf.mul(tf.sub(1, tf.cast(mask, "float32")), MASKED_SCORE);
}

/**
 * Softmax over the last axis: each row becomes non-negative weights summing to 1.
 * With `mask`, weights of masked positions are forced to exactly 0, which also turns a
 * fully masked row into all zeros instead of a meaningless uniform row.
 */
export function softmaxRows(scores: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const w = tf.softmax(scores); // rows sum to 1
    return mask === undefined ? w : tf.mul(w, tf.cast(mask, "float32"));
  });
}

export interface AttentionOptions {
  /** 1/true where a query may attend to a key; broadcastable to [..., Tq, Tk]. */
  mask?: tf.Tensor;
  /** Forbid attending to later positions (see causalMask for Tq < Tk). */
  causal?: boolean;
  /** Multiplies the scores; default 1/√D. */
  scale?: number;
  /** Also return the attention weights [..., Tq, Tk]. */
  returnWeights?: boolean;
}

export interface AttentionResult {
  output: tf.Tensor;
  weights: tf.Tensor;
}

function checkQK(name: string, q: tf.Tensor, k: tf.Tensor): void {
  if (q.rank < 2 || k.rank !== q.rank) {
    throw new Error(`${name}: q and k need the same rank >= 2, got shapes [${q.shape}] and [${k.shape}]`);
  }
  if (q.shape.slice(0, -2).some((d, i) => d !== k.shape[i])) {
    throw new Error(`${name}: batch dimensions of q [${q.shape}] and k [${k.shape}] differ`);
  }
  if (q.shape[q.rank - 1] !== k.shape[k.rank - 1]) {
    throw new Error(`${name}: query size ${q.shape[q.rank - 1]} != key size ${k.shape[k.rank - 1]}`);
  }
}

function checkMask(name: string, mask: tf.Tensor, scoresShape: number[]): void {
  const offset = scoresShape.length - mask.rank;
  if (offset < 0 || mask.shape.some((d, i) => d !== 1 && d !== scoresShape[offset + i])) {
    throw new Error(`${name}: mask shape [${mask.shape}] does not broadcast to the scores [${scoresShape}]`);
  }
}

// ---------------------------------------------------------------------------------------
// The core: all heads of all batch elements at once

/** Sizes of one attention call: B batch elements × H heads, T queries, S keys. */
interface CoreDims {
  b: number; h: number; t: number; s: number;
  /**
   * Key/value heads (grouped-query attention): each serves h / kvHeads consecutive query
   * heads. Default h (every query head has its own keys and values).
   */
  kvHeads?: number;
  /** Size of a query/key vector and of a value vector, per head. */
  dk: number; dv: number;
  /** The shape the scores are viewed in when masks are applied, e.g. [B, H, T, S]. */
  view: number[];
  /** The only mask is the causal one (`bias` is causalBias): a fused kernel may apply it. */
  causalOnly?: boolean;
}

/**
 * softmax(q·kᵀ·scale + bias) [⊙ mask] · v for every (batch element, head), one row of
 * positions per (b, h): q [B·H, T, Dk], k [B·H, S, Dk], v [B·H, S, Dv] → [output
 * [B·H, T, Dv], weights (viewed as dims.view)?]. With G = dims.kvHeads < H, k and v are
 * [B·G, S, D]: the H/G query heads that share a key/value head are consecutive, so q is
 * viewed as [B·G, (H/G)·T, Dk], their queries stacked as extra rows against the same keys:
 * grouped-query attention with no copy of k or v. `bias` (0 or MASKED_SCORE) and `mask`
 * (1/0) broadcast to dims.view. lib/core/kernels/fused.ts's splitHeads / mergeHeads go between
 * this layout and "heads side by side" [B·T, H·D], what one projection x·W produces.
 *
 * The batched products are fast on wasm only with the course's BatchMatMul kernels
 * (lib/core/kernels/ortMatMul.ts, batchMatmul.ts); tfjs's own runs them, and their gradients,
 * ~5x slower. `initBackend()` registers them when it picks wasm.
 */
function attend(
  qh: tf.Tensor3D, kh: tf.Tensor3D, vh: tf.Tensor3D, dims: CoreDims, scale: number,
  bias: tf.Tensor | undefined, mask: tf.Tensor | undefined, returnWeights: boolean | undefined,
): tf.Tensor[] {
  const { b, h, t, s, view } = dims;
  const g = dims.kvHeads ?? h;
  const grouped = (m: tf.Tensor, width: number) => (g === h ? m : m.reshape([b * g, (h / g) * t, width])) as tf.Tensor3D;
  const raw = tf.matMul(grouped(qh, dims.dk), kh, false, true).reshape([b * h, t, s]); // q·kᵀ [B·H, T, S]
  // Causal attention without other masks: scale, mask and softmax in one kernel where it runs
  // (lib/core/kernels/fused.ts; the same numbers as the three steps below).
  let att = dims.causalOnly ? fusedCausalSoftmax(raw, scale)?.reshape(view) : undefined;
  if (att === undefined) {
    let scores: tf.Tensor = tf.mul(raw.reshape(view), scale); // [..., T, S]
    if (bias) scores = tf.add(scores, bias); // masked scores → ≈ −1e9
    att = softmaxRows(scores, mask); // [..., T, S], masked weights exactly 0
  }
  const y = tf.matMul(grouped(att.reshape([b * h, t, s]), s), vh).reshape([b * h, t, dims.dv]); // [B·H, T, Dv]
  return returnWeights ? [y, att] : [y];
}

/** The additive bias of `causal` and the 0/1 float mask of `mask`, or undefined. */
function maskTensors(name: string, view: number[], causal: boolean | undefined, mask: tf.Tensor | undefined) {
  const [t, s] = view.slice(-2);
  if (mask) checkMask(name, mask, view);
  let bias: tf.Tensor | undefined = causal ? causalBias(t, s) : undefined;
  let m: tf.Tensor | undefined;
  if (mask) {
    m = tf.cast(mask, "float32");
    const mb = maskToBias(m);
    bias = bias ? tf.add(bias, mb) : mb;
  }
  return { bias, m };
}

/**
 * softmax(q·kᵀ·scale + mask)·v for q [..., Tq, D], k [..., Tk, D], v [..., Tk, Dv]
 * → output [..., Tq, Dv] (and, with returnWeights, weights [..., Tq, Tk]).
 * Leading ("batch") dimensions must be equal. The mask broadcasts to [..., Tq, Tk].
 */
export function scaledDotProductAttention(
  q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, opts?: AttentionOptions & { returnWeights?: false },
): tf.Tensor;
export function scaledDotProductAttention(
  q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, opts: AttentionOptions & { returnWeights: true },
): AttentionResult;
export function scaledDotProductAttention(
  q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, opts: AttentionOptions = {},
): tf.Tensor | AttentionResult {
  const name = "scaledDotProductAttention";
  checkQK(name, q, k);
  if (v.rank !== k.rank || v.shape.slice(0, -1).some((d, i) => d !== k.shape[i])) {
    throw new Error(`${name}: v [${v.shape}] must match k [${k.shape}] in all but the last dimension`);
  }
  const lead = q.shape.slice(0, -2);
  const [tq, d] = q.shape.slice(-2);
  const tk = k.shape[k.rank - 2];
  const dv = v.shape[v.rank - 1];
  if (opts.causal && tq > tk) {
    throw new Error(`${name}: causal attention needs Tq <= Tk, got Tq=${tq}, Tk=${tk}`);
  }
  const view = [...lead, tq, tk];
  const out = tf.tidy(() => {
    const { bias, m } = maskTensors(name, view, opts.causal, opts.mask);
    const b = lead.reduce((x, y) => x * y, 1);
    const dims: CoreDims = { b, h: 1, t: tq, s: tk, dk: d, dv, view, causalOnly: Boolean(opts.causal) && opts.mask === undefined };
    const [y, w] = attend(
      q.reshape([b, tq, d]), k.reshape([b, tk, d]), v.reshape([b, tk, dv]),
      dims, opts.scale ?? 1 / Math.sqrt(d), bias, m, opts.returnWeights);
    const output = y.reshape([...lead, tq, dv]);
    return w ? [output, w] : [output];
  });
  return opts.returnWeights ? { output: out[0], weights: out[1] } : out[0];
}

// ---------------------------------------------------------------------------------------
// Multi-head attention

/**
 * Parameters of one multi-head attention layer, laid out like GPT-2 (HuggingFace
 * Conv1D orientation, y = x·W + b):
 *   wqkv [C, 3C] = attn.c_attn.weight (columns: all of q, then k, then v; head h of q is
 *                  columns h·D..(h+1)·D), bqkv [3C] = attn.c_attn.bias,
 *   wproj [C, C] = attn.c_proj.weight, bproj [C] = attn.c_proj.bias.
 * Cross-attention uses the same tensors: queries from the first C columns applied to the
 * decoder stream, keys/values from the last 2C columns applied to the encoder states.
 */
export interface MultiHeadAttentionParams {
  wqkv: tf.Tensor2D;
  bqkv?: tf.Tensor1D;
  wproj: tf.Tensor2D;
  bproj?: tf.Tensor1D;
}

export interface MultiHeadAttentionConfig {
  channels: number;
  heads: number;
  /** Add biases (GPT-2: yes). Default true. */
  bias?: boolean;
  /** Seed of the weight initialisation. Default 0. */
  seed?: number;
  /** Draw the seeds from this generator instead (takes precedence over `seed`). */
  rng?: Rng;
  /** Std of the normal init of wqkv (GPT-2: 0.02). */
  std?: number;
  /** Std of the init of wproj; nanoGPT uses 0.02/√(2·layers). Default: std. */
  projStd?: number;
}

function checkHeads(name: string, channels: number, heads: number): void {
  if (!Number.isInteger(heads) || heads < 1) throw new Error(`${name}: heads must be a positive integer, got ${heads}`);
  if (channels % heads !== 0) {
    throw new Error(`${name}: channels ${channels} not divisible by heads ${heads}`);
  }
}

/** Fresh trainable parameters: weights ~ N(0, std²), biases 0. */
export function initMultiHeadAttention(cfg: MultiHeadAttentionConfig): {
  wqkv: tf.Variable<tf.Rank.R2>; bqkv?: tf.Variable<tf.Rank.R1>;
  wproj: tf.Variable<tf.Rank.R2>; bproj?: tf.Variable<tf.Rank.R1>;
} {
  const { channels: c, heads, bias = true, seed = 0, std = 0.02 } = cfg;
  if (!Number.isInteger(c) || c < 1) throw new Error(`initMultiHeadAttention: channels must be a positive integer, got ${c}`);
  checkHeads("initMultiHeadAttention", c, heads);
  const projStd = cfg.projStd ?? std;
  const [seedQkv, seedProj] = cfg.rng ? [seedFor(cfg.rng), seedFor(cfg.rng)] : [seed, seed + 1];
  const wqkv = tf.variable(tf.tidy(() => tf.randomNormal([c, 3 * c], 0, std, "float32", seedQkv))) as tf.Variable<tf.Rank.R2>;
  const wproj = tf.variable(tf.tidy(() => tf.randomNormal([c, c], 0, projStd, "float32", seedProj))) as tf.Variable<tf.Rank.R2>;
  if (!bias) return { wqkv, wproj };
  return {
    wqkv,
    bqkv: tf.variable(tf.zeros([3 * c])) as tf.Variable<tf.Rank.R1>,
    wproj,
    bproj: tf.variable(tf.zeros([c])) as tf.Variable<tf.Rank.R1>,
  };
}

export interface MultiHeadAttentionOptions {
  heads: number;
  /** Causal self-attention: position t only sees positions <= t. */
  causal?: boolean;
  /** 1/true where attending is allowed, broadcastable to [B, H, T, S] (e.g. [T, S] or [B, 1, 1, S]). */
  mask?: tf.Tensor;
  /** Cross-attention: keys and values come from these states [B, S, C] instead of x. */
  kv?: tf.Tensor3D;
  /** Also return the attention weights [B, H, T, S]. */
  returnWeights?: boolean;
  /**
   * Key/value heads G (self-attention only): H = heads is multi-head attention (the default),
   * 1 < G < H grouped-query attention (Llama 2 70B, Llama 3), 1 multi-query attention. Wqkv is
   * then [C, C + 2·G·D]: all query heads, then G key heads, then G value heads.
   */
  kvHeads?: number;
  /**
   * Rotary position embeddings (self-attention only): queries and keys are rotated by their
   * positions offset..offset+T-1 (lib/attention/positional.ts) before the scores.
   */
  rope?: { tables: RopeTables; offset?: number };
}

interface Checked { b: number; t: number; s: number; c: number; h: number; d: number; g: number }

function checkMha(name: string, p: MultiHeadAttentionParams, x: tf.Tensor, o: MultiHeadAttentionOptions): Checked {
  if (x.rank !== 3) throw new Error(`${name}: x must be [B, T, C], got shape [${x.shape}]`);
  const [b, t, c] = x.shape;
  checkHeads(name, c, o.heads);
  const g = o.kvHeads ?? o.heads;
  if (!Number.isInteger(g) || g < 1 || o.heads % g !== 0) throw new Error(`${name}: kvHeads must be a positive integer dividing heads ${o.heads}, got ${g}`);
  if ((g !== o.heads || o.rope) && o.kv) throw new Error(`${name}: kvHeads and rope are for self-attention; not with kv (cross-attention)`);
  const qkvWidth = c + 2 * g * (c / o.heads);
  if (p.wqkv.rank !== 2 || p.wqkv.shape[0] !== c || p.wqkv.shape[1] !== qkvWidth) {
    throw new Error(`${name}: wqkv must be [${c}, ${qkvWidth}] for ${c} channels${g !== o.heads ? ` and ${g} key/value heads` : ""}, got [${p.wqkv.shape}]`);
  }
  if (p.wproj.rank !== 2 || p.wproj.shape[0] !== c || p.wproj.shape[1] !== c) {
    throw new Error(`${name}: wproj must be [${c}, ${c}], got [${p.wproj.shape}]`);
  }
  if (p.bqkv && (p.bqkv.rank !== 1 || p.bqkv.shape[0] !== qkvWidth)) throw new Error(`${name}: bqkv must be [${qkvWidth}], got [${p.bqkv.shape}]`);
  if (p.bproj && (p.bproj.rank !== 1 || p.bproj.shape[0] !== c)) throw new Error(`${name}: bproj must be [${c}], got [${p.bproj.shape}]`);
  let s = t;
  if (o.kv) {
    if (o.kv.rank !== 3 || o.kv.shape[0] !== b || o.kv.shape[2] !== c) {
      throw new Error(`${name}: kv must be [${b}, S, ${c}] to match x [${x.shape}], got [${o.kv.shape}]`);
    }
    s = o.kv.shape[1];
  }
  if (o.causal && t > s) throw new Error(`${name}: causal attention needs T <= S, got T=${t}, S=${s}`);
  return { b, t, s, c, h: o.heads, d: c / o.heads, g };
}

/** Cross-attention's projections: q = x·Wq [B·T, C] from the queries, k, v [B·S, C] from kv. */
function projectQKV(p: MultiHeadAttentionParams, x2: tf.Tensor2D, kv2: tf.Tensor2D, c: number): tf.Tensor2D[] {
  const [wq, wkv] = tf.split(p.wqkv, [c, 2 * c], 1) as tf.Tensor2D[]; // [C, C], [C, 2C]
  const [bq, bkv] = p.bqkv ? (tf.split(p.bqkv, [c, 2 * c]) as tf.Tensor1D[]) : [undefined, undefined];
  const q = linear(x2, wq, bq) as tf.Tensor2D; // [B·T, C]
  const [k, v] = tf.split(linear(kv2, wkv, bkv), 2, 1) as tf.Tensor2D[]; // 2 × [B·S, C]
  return [q, k, v];
}

/**
 * Multi-head attention, fast on wasm. x [B, T, C] → [B, T, C]
 * (with returnWeights: `{ output [B, T, C], weights [B, H, T, S] }`).
 *
 * Self-attention by default (bidirectional), `causal: true` for a decoder, `kv` for
 * cross-attention (S = kv's length). Same maths as `multiHeadAttentionTextbook`:
 *   q, k, v = x·Wqkv + b   (one [B·T, C]·[C, 3C] product)
 *   per head: softmax(q·kᵀ/√D + mask)·v   (`attend`: batched over all B·H heads)
 *   out = heads side by side · Wproj + b
 */
export function multiHeadAttention(
  p: MultiHeadAttentionParams, x: tf.Tensor3D, opts: MultiHeadAttentionOptions & { returnWeights?: false },
): tf.Tensor3D;
export function multiHeadAttention(
  p: MultiHeadAttentionParams, x: tf.Tensor3D, opts: MultiHeadAttentionOptions & { returnWeights: true },
): { output: tf.Tensor3D; weights: tf.Tensor4D };
export function multiHeadAttention(
  p: MultiHeadAttentionParams, x: tf.Tensor3D, opts: MultiHeadAttentionOptions,
): tf.Tensor3D | { output: tf.Tensor3D; weights: tf.Tensor4D } {
  const name = "multiHeadAttention";
  const { b, t, s, c, h, d, g } = checkMha(name, p, x, opts);
  const view = [b, h, t, s];
  const out = tf.tidy(() => {
    const x2 = x.reshape([b * t, c]) as tf.Tensor2D;
    const kv2 = opts.kv?.reshape([b * s, c]) as tf.Tensor2D | undefined;
    // q, k, v per head [B·H, len, D] (k, v [B·G, len, D]): self-attention cuts one
    // [B·T, C + 2·G·D] projection straight into heads
    let qh: tf.Tensor3D, kh: tf.Tensor3D, vh: tf.Tensor3D;
    if (kv2 !== undefined) [qh, kh, vh] = projectQKV(p, x2, kv2, c).map((m, i) => splitHeads(m, b, i === 0 ? t : s, h, 1)[0]);
    else if (g === h) [qh, kh, vh] = splitHeads(linear(x2, p.wqkv, p.bqkv) as tf.Tensor2D, b, t, h, 3);
    else {
      const [q, k, v] = tf.split(linear(x2, p.wqkv, p.bqkv), [c, g * d, g * d], 1) as tf.Tensor2D[];
      [qh, kh, vh] = [splitHeads(q, b, t, h, 1)[0], splitHeads(k, b, t, g, 1)[0], splitHeads(v, b, t, g, 1)[0]];
    }
    if (opts.rope) {
      qh = applyRope(qh, opts.rope.tables, opts.rope.offset) as tf.Tensor3D;
      kh = applyRope(kh, opts.rope.tables, opts.rope.offset) as tf.Tensor3D;
    }
    const { bias, m } = maskTensors(name, view, opts.causal, opts.mask);
    const dims = { b, h, t, s, kvHeads: g, dk: d, dv: d, view, causalOnly: Boolean(opts.causal) && opts.mask === undefined };
    const [y, w] = attend(qh, kh, vh, dims, 1 / Math.sqrt(d), bias, m, opts.returnWeights);
    const output = linear(mergeHeads([y as tf.Tensor3D], b, t), p.wproj, p.bproj).reshape([b, t, c]); // heads side by side, projected: [B, T, C]
    return w ? [output, w] : [output];
  });
  return opts.returnWeights
    ? { output: out[0] as tf.Tensor3D, weights: out[1] as tf.Tensor4D }
    : (out[0] as tf.Tensor3D);
}

/**
 * The textbook formulation of multi-head attention (as in nanoGPT): project, reshape to
 * [B, T, H, D] and transpose to [B, H, T, D], batched q·kᵀ, mask, softmax, batched
 * att·v, transpose back, project. Same inputs/outputs as `multiHeadAttention`; kept to
 * explain the idea and as the baseline the fast version is tested and timed against.
 */
export function multiHeadAttentionTextbook(
  p: MultiHeadAttentionParams, x: tf.Tensor3D, opts: MultiHeadAttentionOptions & { returnWeights?: false },
): tf.Tensor3D;
export function multiHeadAttentionTextbook(
  p: MultiHeadAttentionParams, x: tf.Tensor3D, opts: MultiHeadAttentionOptions & { returnWeights: true },
): { output: tf.Tensor3D; weights: tf.Tensor4D };
export function multiHeadAttentionTextbook(
  p: MultiHeadAttentionParams, x: tf.Tensor3D, opts: MultiHeadAttentionOptions,
): tf.Tensor3D | { output: tf.Tensor3D; weights: tf.Tensor4D } {
  const { b, t, s, c, h, d, g } = checkMha("multiHeadAttentionTextbook", p, x, opts);
  if (g !== h || opts.rope) throw new Error("multiHeadAttentionTextbook: kvHeads and rope are multiHeadAttention's options");
  const out = tf.tidy(() => {
    const dense = (m: tf.Tensor, w: tf.Tensor2D, bias?: tf.Tensor1D, rows = b * t) => {
      const y = tf.matMul(m.reshape([rows, c]), w);
      return bias ? tf.add(y, bias) : y;
    };
    let q: tf.Tensor, k: tf.Tensor, v: tf.Tensor;
    if (!opts.kv) {
      [q, k, v] = tf.split(dense(x, p.wqkv, p.bqkv), 3, 1); // 3 × [B·T, C]
    } else {
      const [wq, wkv] = tf.split(p.wqkv, [c, 2 * c], 1);
      const [bq, bkv] = p.bqkv ? tf.split(p.bqkv, [c, 2 * c]) : [undefined, undefined];
      q = dense(x, wq as tf.Tensor2D, bq as tf.Tensor1D | undefined);
      [k, v] = tf.split(dense(opts.kv, wkv as tf.Tensor2D, bkv as tf.Tensor1D | undefined, b * s), 2, 1);
    }
    const heads = (m: tf.Tensor, len: number) => m.reshape([b, len, h, d]).transpose([0, 2, 1, 3]); // [B, H, len, D]
    let scores: tf.Tensor = tf.mul(tf.matMul(heads(q, t), heads(k, s), false, true), 1 / Math.sqrt(d)); // [B, H, T, S]
    if (opts.causal) scores = tf.add(scores, causalBias(t, s));
    if (opts.mask) scores = applyMask(scores, opts.mask);
    const att = softmaxRows(scores, opts.mask); // [B, H, T, S]
    const y = tf.matMul(att, heads(v, s)).transpose([0, 2, 1, 3]).reshape([b * t, c]); // [B·T, C]
    const output = dense(y, p.wproj, p.bproj).reshape([b, t, c]);
    return opts.returnWeights ? [output, att] : [output];
  });
  return opts.returnWeights
    ? { output: out[0] as tf.Tensor3D, weights: out[1] as tf.Tensor4D }
    : (out[0] as tf.Tensor3D);
}
