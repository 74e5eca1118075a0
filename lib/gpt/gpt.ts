/**
 * GPT: a decoder-only transformer, as GPT-2 (Radford et al. 2019) and nanoGPT's model.py.
 *
 *   idx [B, T] token ids
 *    │  wte[idx] + wpe[0..T-1]                       token + learned position embeddings
 *    ▼
 *   x [B, T, C]  ──►  nLayer × Block:                 (pre-LayerNorm, residual stream x)
 *                        x = x + Attn(LN₁(x))          causal multi-head self-attention
 *                        x = x + MLP(LN₂(x))           C → 4C → GELU → C
 *    │  LN_f
 *    ▼
 *   h [B, T, C]  ──►  logits = h · wteᵀ  [B, T, V]     head tied to the token embedding
 *
 * Parameters are ONE flat `Record<string, tf.Variable>` keyed exactly as Hugging Face's
 * GPT2LMHeadModel names them (without the `transformer.` prefix), in its Conv1D orientation
 * y = x·W (W is [in, out]); so exporting to / importing from HF is a rename:
 *   wte.weight [V, C]   wpe.weight [blockSize, C]
 *   h.{i}.ln_1.weight/bias [C]        h.{i}.attn.c_attn.weight [C, 3C]  .bias [3C]
 *   h.{i}.attn.c_proj.weight [C, C]   .bias [C]
 *   h.{i}.ln_2.weight/bias [C]        h.{i}.mlp.c_fc.weight [C, 4C]     .bias [4C]
 *   h.{i}.mlp.c_proj.weight [4C, C]   .bias [C]
 *   ln_f.weight/bias [C]              lm_head.weight [V, C] (only when tiedHead is false)
 *
 * Speed on the wasm backend (see /work/shared/NOTES.md and lib/tools/cli/benchGpt.ts): the
 * residual stream is kept as rows [B·T, C] so every product is ONE plain 2-D matmul (the
 * only fast kind on wasm; attention's batched products go through the course's BatchMatMul
 * kernel); embeddings, LayerNorm, GELU, the MLP layers, the tied head and the cross-entropy
 * have hand-written gradients that use only fast kernels (no tf.gather forward for small
 * vocabularies, no tanh, no pow, no broadcast-gradient reductions hidden in autograd).
 * What remains is mostly matmul time (onnxruntime's MLAS when it installs, else XNNPACK; one thread each).
 *
 * From GPT-2 to today's open models (chapter 10), four typed options, GPT-2's choice the default:
 *   norm       "layernorm" | "rmsnorm"   RMSNorm: x / rms(x) · w, no mean, no shift (ln_* hold only a weight)
 *   mlp        "gelu" | "swiglu"         SwiGLU: (SiLU(x·W_gate) ⊙ x·W_up)·W_down: c_gate and c_fc [C, F], c_proj
 *                                         [F, C], F = swigluHidden(C) ≈ 8C/3 (the parameters of GELU's 4C MLP)
 *   positions  "learned" | "rope"        RoPE: no wpe; queries and keys rotated by their positions
 *   nKvHead    nHead (default) | fewer   grouped-query attention: c_attn is [C, C + 2·G·D], G key/value heads
 * Llama (and Qwen, Mistral, Gemma) use all four, and no biases (`bias: false`).
 */
import * as tf from "@tensorflow/tfjs";
import { causalMask, MASKED_SCORE, multiHeadAttention } from "../attention/attention";
import { applyRope, ropeAngles, RopeTables } from "../attention/positional";
import { linear, mmTA, mmTB, transposeFlagsFree } from "../core/linalg";
import { geluGrad, geluWithSigmoid, layerNormRows, layerNormRowsGrad, swigluRows, swigluRowsGrad } from "../core/kernels/fused";
import { createRng, Rng, seedFor } from "../core/random";

// ---------------------------------------------------------------------------------------
// Configuration: lib/gpt/config.ts (no TensorFlow.js there, so the browser can read it too)

export * from "./config";
import { type GPTConfig, isTied, kvHeads, mlpHiddenSize, usesRms, usesRope, usesSwiglu, validateConfig } from "./config";

// ---------------------------------------------------------------------------------------
// Parameters

export type GPTParams = Record<string, tf.Variable>;

/** How many parameter tensors a config has (gptParameterShapes(config).length), without listing them. */
export function gptTensorCount(config: GPTConfig): number {
  const one = gptParameterShapes({ ...config, nLayer: 1 }).length, two = gptParameterShapes({ ...config, nLayer: 2 }).length;
  return one + (config.nLayer - 1) * (two - one);
}

/** Every parameter's name and shape, in a fixed order (the order of initGPT's seeds). */
export function gptParameterShapes(config: GPTConfig): Array<[string, number[]]> {
  validateConfig(config);
  const { vocabSize: V, blockSize: T, nLayer: L, nEmbd: C, bias } = config;
  const out: Array<[string, number[]]> = [["wte.weight", [V, C]]];
  if (!usesRope(config)) out.push(["wpe.weight", [T, C]]);
  const lin = (n: string, cin: number, cout: number) => {
    out.push([`${n}.weight`, [cin, cout]]);
    if (bias) out.push([`${n}.bias`, [cout]]);
  };
  const ln = (n: string) => {
    out.push([`${n}.weight`, [C]]);
    if (bias && !usesRms(config)) out.push([`${n}.bias`, [C]]); // RMSNorm has no shift
  };
  const qkv = C + 2 * kvHeads(config) * (C / config.nHead);
  const F = mlpHiddenSize(config);
  for (let i = 0; i < L; i++) {
    ln(`h.${i}.ln_1`);
    lin(`h.${i}.attn.c_attn`, C, qkv);
    lin(`h.${i}.attn.c_proj`, C, C);
    ln(`h.${i}.ln_2`);
    if (usesSwiglu(config)) lin(`h.${i}.mlp.c_gate`, C, F); // SwiGLU's gate; c_fc is then its "up"
    lin(`h.${i}.mlp.c_fc`, C, F);
    lin(`h.${i}.mlp.c_proj`, F, C);
  }
  ln("ln_f");
  if (!isTied(config)) out.push(["lm_head.weight", [V, C]]); // HF nn.Linear layout [out, in]
  return out;
}

/**
 * Number of parameters from the formula (no tensors). Per GPT-2 block:
 *   LN₁ 2C + attn (C·3C + 3C) + proj (C·C + C) + LN₂ 2C + fc (C·4C + 4C) + proj (4C·C + C)
 *   = 12C² + 13C   (with biases; 12C² + 2C without: LN weights only)
 * plus wte V·C, wpe T·C, LN_f 2C (or C), and V·C more for an untied head.
 * GPT-2 small: 124,439,808.
 * The options change the terms: G key/value heads make attn C·(C + 2·G·D); SwiGLU's MLP is
 * 3·C·F (F ≈ 8C/3, so ≈ 8C² as before); RMSNorm has C per norm, never a shift; RoPE has no wpe.
 */
export function gptParameterCount(config: GPTConfig): number {
  validateConfig(config);
  const { vocabSize: V, blockSize: T, nLayer: L, nEmbd: C, bias } = config;
  const qkv = C + 2 * kvHeads(config) * (C / config.nHead);
  const F = mlpHiddenSize(config);
  const fcOut = usesSwiglu(config) ? 2 * F : F; // gate and up
  const norm = bias && !usesRms(config) ? 2 * C : C;
  const attn = C * qkv + C * C + (bias ? qkv + C : 0);
  const mlp = C * fcOut + F * C + (bias ? fcOut + C : 0);
  const perBlock = 2 * norm + attn + mlp;
  return V * C + (usesRope(config) ? 0 : T * C) + L * perBlock + norm + (isTied(config) ? 0 : V * C);
}

/** Total number of scalars in a parameter record. */
export function countParameters(params: Record<string, tf.Tensor>): number {
  return Object.values(params).reduce((n, p) => n + p.size, 0);
}

/**
 * Weight decay or not (nanoGPT's rule, made explicit): decay the 2-D matrices that multiply
 * activations (attention, MLP, and an untied lm_head), not biases, LayerNorm gains/shifts
 * (1-D) nor the embedding tables wte/wpe (a lookup is not a product; decaying rare tokens'
 * rows towards 0 only hurts them). Note nanoGPT's own code decays every ≥2-D tensor,
 * embeddings included; we follow the GPT-3 / minGPT choice instead.
 */
export function isDecayed(name: string, shape: readonly number[]): boolean {
  if (shape.length !== 2) return false;
  return !(name === "wte.weight" || name === "wpe.weight" || name.endsWith(".wte.weight") || name.endsWith(".wpe.weight"));
}

export interface InitGPTOptions {
  /** Seed of the initialisation. Default 0. */
  seed?: number;
  /** Draw the seeds from this generator instead (takes precedence over `seed`). */
  rng?: Rng;
  /** Std of the normal init; GPT-2: 0.02. */
  std?: number;
}

/**
 * Fresh parameters with GPT-2's initialisation: every weight matrix and embedding
 * ~ N(0, 0.02²); the residual projections (attn.c_proj, mlp.c_proj) ~ N(0, (0.02/√(2·nLayer))²),
 * because each block ADDS two of them to the residual stream and the sum's variance would
 * otherwise grow with depth; biases 0; LayerNorm weight 1, bias 0.
 */
export function initGPT(config: GPTConfig, opts: InitGPTOptions = {}): GPTParams {
  const shapes = gptParameterShapes(config);
  const rng = opts.rng ?? createRng(opts.seed ?? 0);
  const std = opts.std ?? 0.02;
  const projStd = std / Math.sqrt(2 * config.nLayer);
  const params: GPTParams = {};
  for (const [name, shape] of shapes) {
    const isLn = /(^|\.)ln_(1|2|f)\.weight$/.test(name) || name === "ln_f.weight";
    let init: tf.Tensor;
    if (shape.length === 1) init = isLn ? tf.ones(shape) : tf.zeros(shape);
    else {
      const s = /\.c_proj\.weight$/.test(name) ? projStd : std;
      init = tf.randomNormal(shape, 0, s, "float32", seedFor(rng));
    }
    params[name] = tf.variable(init, true, undefined, "float32");
    init.dispose();
  }
  return params;
}

/** Copies of a model's weights, trainable or frozen: SFT's copy to fine-tune, RLHF's policy and its frozen reference. */
export function copyParams(params: GPTParams, trainable = true): GPTParams {
  const out: GPTParams = {};
  for (const [name, p] of Object.entries(params)) {
    const c = p.clone();
    out[name] = tf.variable(c, trainable, undefined, "float32");
    c.dispose();
  }
  return out;
}

/** Check a parameter record has exactly the tensors the config needs, with the right shapes. */
export function checkGPTParams(params: Record<string, tf.Tensor>, config: GPTConfig): void {
  // Counted before the list is built: a config read from a file may declare a billion layers.
  const need = gptTensorCount(config), have = Object.keys(params).length;
  if (need > have) throw new Error(`GPT parameters: the config's ${config.nLayer} layers need ${need} tensors, the weights hold ${have}`);
  for (const [name, shape] of gptParameterShapes(config)) {
    const p = params[name];
    if (p === undefined) throw new Error(`GPT parameters: missing "${name}" [${shape}]`);
    if (!tf.util.arraysEqual(p.shape, shape)) throw new Error(`GPT parameters: "${name}" has shape [${p.shape}], config needs [${shape}]`);
  }
}

// ---------------------------------------------------------------------------------------
// Building blocks with hand-written gradients (fast on wasm)

type GradArgs = Array<tf.Tensor | tf.GradSaveFunc>;

/**
 * Column sums of a 2-D tensor [R, C] → [C] (bias and LayerNorm gradients). On wasm the
 * course's Sum kernel computes them (lib/core/kernels/sum.ts: one ones·X GEMM in onnxruntime, or
 * rows added in JavaScript), not a tf.matMul with ones here: XNNPACK re-packs its right
 * operand on every call ([768, 512]: 5.6 ms).
 */
function columnSum(x: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(x, 0);
}

/**
 * y = x·W + b for rows x [R, Cin], W [Cin, Cout], b [Cout] (GPT-2's Conv1D). Like
 * lib/core/linalg.ts `linear`, but the bias gradient is a column sum (see columnSum).
 * Gradients: dX = g·Wᵀ, dW = Xᵀ·g, db = Σ_rows g — transposes explicit, products 2-D.
 */
function dense(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | undefined): tf.Tensor2D {
  if (b === undefined) return linear(x, w) as tf.Tensor2D;
  const op = tf.customGrad((...args: GradArgs) => {
    const [xx, ww, bb, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    save([xx, ww]);
    return {
      value: tf.add(tf.matMul(xx, ww), bb) as tf.Tensor2D, // [R, Cout]
      gradFunc: (g: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [mmTB(g, sw), mmTA(sx, g), columnSum(g)]; // dX [R, Cin], dW [Cin, Cout], db [Cout]
      },
    };
  });
  return op(x, w, b) as tf.Tensor2D;
}

/**
 * Token + position embeddings for ids [B·T] (sequences of length T starting at position
 * `offset`) → x [B·T, C] = wte[id] + wpe[offset + t].
 * Forward: a one-hot product onehot(ids) [B·T, V]·wte [V, C] for small vocabularies
 * (tf.gather on wasm measured 8 ms for 768 rows, the product 1 ms; exact, as each row has
 * a single 1), tf.gather for large ones. Backward: dwte = rows of g summed per id (the
 * course's UnsortedSegmentSum kernel), dwpe = Σ over the batch of g viewed [B, T·C].
 */
function embed(wte: tf.Tensor2D, wpe: tf.Tensor2D, ids: tf.Tensor1D, b: number, t: number, offset: number): tf.Tensor2D {
  const [V, C] = wte.shape;
  const P = wpe.shape[0];
  const op = tf.customGrad((...args: GradArgs) => {
    const [we, wp, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    save([ids]); // kept alive for the backward pass (the caller's tidy would dispose it)
    const tok = V <= 8192 ? tf.matMul(tf.cast(tf.oneHot(ids, V), "float32") as tf.Tensor2D, we) : tf.gather(we, ids); // [B·T, C]
    const pos = tf.slice(wp, [offset, 0], [t, C]); // [T, C]
    return {
      value: tf.add(tok.reshape([b, t, C]), pos).reshape([b * t, C]) as tf.Tensor2D,
      gradFunc: (g: tf.Tensor2D, saved: tf.Tensor[]) => {
        const dwte = tf.unsortedSegmentSum(g, saved[0] as tf.Tensor1D, V); // [V, C]
        let dwpe: tf.Tensor = tf.sum(g.reshape([b, t * C]), 0).reshape([t, C]); // [T, C]
        if (t < P) dwpe = tf.pad(dwpe, [[offset, P - offset - t], [0, 0]]); // rows outside offset..offset+T-1 get 0
        return [dwte, dwpe];
      },
    };
  });
  return op(wte, wpe) as tf.Tensor2D;
}

/**
 * Token embeddings alone, for ids [B·T] → [B·T, C] = wte[id] (RoPE models: positions enter in
 * attention instead). The lookup and its gradient as in `embed`.
 */
function embedTokens(wte: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const V = wte.shape[0];
  const op = tf.customGrad((...args: GradArgs) => {
    const [we, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    save([ids]);
    return {
      value: (V <= 8192 ? tf.matMul(tf.cast(tf.oneHot(ids, V), "float32") as tf.Tensor2D, we) : tf.gather(we, ids)) as tf.Tensor2D, // [B·T, C]
      gradFunc: (g: tf.Tensor2D, saved: tf.Tensor[]) => [tf.unsortedSegmentSum(g, saved[0] as tf.Tensor1D, V)], // [V, C]
    };
  });
  return op(wte) as tf.Tensor2D;
}

/**
 * RMSNorm of rows x [R, C] with gain w [C] (Zhang & Sennrich 2019; Llama): LayerNorm without
 * the mean subtraction and the shift, one statistic per row instead of two. Analytic gradient
 * (lib/core/kernels/fused.ts's LayerNorm kernels with center: false):
 *   forward   xhat = x·rstd, rstd = 1/√(mean(x²) + eps), y = xhat·w
 *   backward  dx = rstd·(dxhat − xhat·mean(dxhat ⊙ xhat)), dxhat = g·w;  dw = Σ_rows g ⊙ xhat
 */
function rmsNorm2d(x: tf.Tensor2D, w: tf.Tensor1D, eps: number): tf.Tensor2D {
  const op = tf.customGrad((...args: GradArgs) => {
    const [xx, ww, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const { y, xhat, rstd } = layerNormRows(xx, ww, undefined, eps, false); // [R, C], [R, C], [R, 1]
    save([xhat, rstd, ww]);
    return {
      value: y,
      gradFunc: (g: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [sxhat, srstd, sw] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const { dx, dw, db } = layerNormRowsGrad(g, sxhat, srstd, sw, false);
        db.dispose();
        return [dx, dw];
      },
    };
  });
  if (w.shape[0] !== x.shape[1]) throw new Error(`rmsNorm: weight [${w.shape}] does not match ${x.shape[1]} channels`);
  return op(x, w) as tf.Tensor2D;
}

/**
 * RMSNorm over the last axis: y = x / √(mean(x²) + eps) · w, per position over its C channels.
 * x [..., C], w [C].
 */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor1D, eps = 1e-5): tf.Tensor {
  const c = x.shape[x.rank - 1];
  return tf.tidy(() => rmsNorm2d(x.reshape([x.size / c, c]) as tf.Tensor2D, w, eps).reshape(x.shape));
}

/**
 * SwiGLU's gating (Shazeer 2020; PaLM, Llama): gate a = x·W_gate, up b = x·W_up (both [R, F])
 * → SiLU(a) ⊙ b [R, F], SiLU(a) = a·σ(a). The up projection b scales each hidden unit by a
 * learned, input-dependent amount, where GELU's MLP only bends one projection.
 * Gradient by hand, s = σ(a):  da = g ⊙ b ⊙ s·(1 + a·(1 − s)),  db = g ⊙ SiLU(a).
 */
export const swiglu = tf.customGrad((...args: GradArgs) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  const { y, s } = swigluRows(a, b); // one SIMD kernel each way on wasm (lib/core/kernels/fused.ts)
  save([a, b, s]);
  return {
    value: y,
    gradFunc: (g: tf.Tensor, saved: tf.Tensor[]) => {
      const { da, db } = swigluRowsGrad(saved[0], saved[1], saved[2], g);
      return [da, db];
    },
  };
}) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/**
 * LayerNorm of rows x [R, C] with gain w [C] and optional shift b [C]; analytic gradient.
 * The formulas are lib/core/kernels/fused.ts's (one SIMD kernel each way on wasm, tensor ops elsewhere):
 *   forward   xhat = (x − mean)·rstd, rstd = 1/√(var + eps), y = xhat·w + b
 *   backward  dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat ⊙ xhat)), dxhat = g·w;
 *             dw = Σ_rows g ⊙ xhat, db = Σ_rows g
 */
function layerNorm2d(x: tf.Tensor2D, w: tf.Tensor1D, b: tf.Tensor1D | undefined, eps: number): tf.Tensor2D {
  const c = x.shape[1];
  const op = tf.customGrad((...args: GradArgs) => {
    const xx = args[0] as tf.Tensor2D, ww = args[1] as tf.Tensor1D;
    const bb = b === undefined ? undefined : (args[2] as tf.Tensor1D);
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const { y, xhat, rstd } = layerNormRows(xx, ww, bb, eps); // [R, C], [R, C], [R, 1]
    save([xhat, rstd, ww]);
    return {
      value: y,
      gradFunc: (g: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [sxhat, srstd, sw] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const { dx, dw, db } = layerNormRowsGrad(g, sxhat, srstd, sw);
        if (bb === undefined) {
          db.dispose();
          return [dx, dw];
        }
        return [dx, dw, db];
      },
    };
  });
  if (w.shape[0] !== c || (b !== undefined && b.shape[0] !== c)) {
    throw new Error(`layerNorm: weight [${w.shape}]${b ? ` / bias [${b.shape}]` : ""} does not match ${c} channels`);
  }
  return (b === undefined ? op(x, w) : op(x, w, b)) as tf.Tensor2D;
}

/**
 * LayerNorm over the last axis: y = (x − mean) / √(var + eps) · w + b, statistics per
 * position over its C channels (biased variance, as PyTorch). x [..., C], w [C], b [C]?
 */
export function layerNorm(x: tf.Tensor, w: tf.Tensor1D, b?: tf.Tensor1D, eps = 1e-5): tf.Tensor {
  const c = x.shape[x.rank - 1];
  return tf.tidy(() => layerNorm2d(x.reshape([x.size / c, c]) as tf.Tensor2D, w, b, eps).reshape(x.shape));
}

/**
 * GPT-2's GELU (tanh approximation): 0.5·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³).
 * Written as x·σ(2u), the same function (0.5·(1 + tanh(u)) = σ(2u)): on wasm tf.tanh was
 * ~20x slower than tf.sigmoid (28 ms vs 1.3 ms on [768, 512]), and σ is one exp. The
 * gradient is written by hand, s = σ(2u):
 *   d/dx = s + x·s·(1 − s)·2·√(2/π)·(1 + 3·0.044715·x²)
 * The function and its gradient are lib/core/kernels/fused.ts's geluWithSigmoid / geluGrad (one
 * SIMD kernel each on wasm, tensor ops elsewhere).
 */
export const gelu = tf.customGrad((...args: GradArgs) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  const { y, s } = geluWithSigmoid(x); // y = x·σ(2u), s = σ(2u)
  save([x, s]);
  return {
    value: y,
    gradFunc: (g: tf.Tensor, saved: tf.Tensor[]) => [geluGrad(saved[0], saved[1], g)],
  };
}) as (x: tf.Tensor) => tf.Tensor;

/**
 * Tied output head: h [N, C] · wᵀ for w = wte [V, C] → logits [N, V]. Gradients:
 * dh = g·w (untransposed) and dw = gᵀ·h — as a transpose flag where that costs no copy
 * (transposeFlagsFree), else as (hᵀ·g)ᵀ: transposing the small hᵀ [C, N] and the product
 * [C, V] instead of g [N, V] (V = 50,257 for GPT-2).
 */
const tiedHeadOp = tf.customGrad((...args: GradArgs) => {
  const h = args[0] as tf.Tensor2D, w = args[1] as tf.Tensor2D;
  const save = args[2] as tf.GradSaveFunc;
  save([h, w]);
  return {
    value: mmTB(h, w), // [N, C]·[C, V] = [N, V]
    gradFunc: (g: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [sh, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      const dw = transposeFlagsFree() ? mmTA(g, sh) : tf.transpose(tf.matMul(tf.transpose(sh), g)); // [V, C] = gᵀ·h
      return [tf.matMul(g, sw), dw]; // dh [N, C]
    },
  };
});

/**
 * log p(target) for each row of logits [N, V] → [N]: logit[target] − logsumexp(logits).
 * Gradient written by hand: d/dlogits = g · (onehot(target) − softmax(logits)).
 */
export function targetLogProbs(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const [n, v] = logits.shape;
  if (targets.rank !== 1 || targets.shape[0] !== n) {
    throw new Error(`targetLogProbs: targets [${targets.shape}] must be [${n}] for logits [${logits.shape}]`);
  }
  const op = tf.customGrad((...args: GradArgs) => {
    const z = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const max = tf.max(z, -1, true); // [N, 1], for a stable exp
    const shifted = tf.sub(z, max); // [N, V], ≤ 0
    const e = tf.exp(shifted);
    const sum = tf.sum(e, -1, true); // [N, 1]
    const probs = tf.div(e, sum); // softmax [N, V]
    // int32 one-hot, then cast: on wasm (tfjs 4.22) tf.oneHot(…, "float32") returns all zeros.
    const onehot = tf.cast(tf.oneHot(tf.cast(targets, "int32"), v), "float32"); // [N, V]
    const picked = tf.sum(tf.mul(shifted, onehot), -1); // [N]
    save([probs, onehot]);
    return {
      value: tf.sub(picked, tf.log(sum).reshape([n])) as tf.Tensor1D, // [N]
      gradFunc: (g: tf.Tensor1D, saved: tf.Tensor[]) => {
        const [sp, so] = saved;
        return [tf.mul(tf.sub(so, sp), g.reshape([n, 1]))];
      },
    };
  });
  return op(logits) as tf.Tensor1D;
}

// ---------------------------------------------------------------------------------------
// KV cache

/**
 * What the attention layers remember of the tokens already processed, for generation:
 * per layer the keys and values of every past position, k, v [B, H, S, D], growing by the
 * new positions at each call. `length` = S = position of the next token. The cache owns its
 * tensors: call `disposeKVCache` when done.
 */
export interface KVCache {
  layers: Array<{ k: tf.Tensor4D; v: tf.Tensor4D } | null>;
  length: number;
}

export function createKVCache(config: GPTConfig): KVCache {
  return { layers: new Array(config.nLayer).fill(null), length: 0 };
}

export function disposeKVCache(cache: KVCache): void {
  for (const l of cache.layers) if (l) tf.dispose([l.k, l.v]);
  cache.layers = cache.layers.map(() => null);
  cache.length = 0;
}

/**
 * Causal self-attention of the new positions x [B·T, C] against the cached positions plus
 * themselves (inference only): q, k, v = x·W + b, k/v appended to the cache along S.
 * Same maths as multiHeadAttention(…, { causal: true }) on the whole sequence, restricted
 * to the last T queries.
 */
function cachedAttention(
  params: GPTParams, prefix: string, x2: tf.Tensor2D, b: number, t: number, config: GPTConfig,
  cache: KVCache, layer: number, rope: RopeTables | undefined,
): tf.Tensor2D {
  const C = config.nEmbd, H = config.nHead, D = C / H, G = kvHeads(config), rep = H / G;
  const offset = cache.length;
  const qkv = linear(x2, params[`${prefix}.c_attn.weight`] as tf.Tensor2D, params[`${prefix}.c_attn.bias`] as tf.Tensor1D | undefined);
  const [q, k, v] = tf.split(qkv, [C, G * D, G * D], 1); // [B·T, C], 2 × [B·T, G·D]
  const heads = (m: tf.Tensor, n: number) => m.reshape([b, t, n, D]).transpose([0, 2, 1, 3]) as tf.Tensor4D; // [B, n, T, D]
  let qh = heads(q, H), kh = heads(k, G);
  if (rope) {
    qh = applyRope(qh, rope, offset) as tf.Tensor4D; // positions offset..offset+T-1
    kh = applyRope(kh, rope, offset) as tf.Tensor4D; // cached already rotated: a key's angle is its own position's
  }
  const old = cache.layers[layer];
  const kAll = old ? tf.concat([old.k, kh], 2) : kh; // [B, G, S, D]: only the key/value heads are stored
  const vAll = old ? tf.concat([old.v, heads(v, G)], 2) : heads(v, G);
  const s = kAll.shape[2];
  // The rep query heads that share a key/value head are consecutive: stack their queries as rows.
  let scores = tf.mul(tf.matMul(qh.reshape([b, G, rep * t, D]), kAll, false, true).reshape([b, H, t, s]), 1 / Math.sqrt(D)); // [B, H, T, S]
  if (t > 1) scores = tf.add(scores, tf.mul(tf.sub(1, causalMask(t, s)), MASKED_SCORE)); // query i sees keys ≤ i + S − T
  const y = tf.matMul(tf.softmax(scores).reshape([b, G, rep * t, s]), vAll).reshape([b, H, t, D]); // [B, H, T, D]
  if (old) tf.dispose([old.k, old.v]);
  cache.layers[layer] = { k: tf.keep(kAll), v: tf.keep(vAll) };
  const merged = y.transpose([0, 2, 1, 3]).reshape([b * t, C]) as tf.Tensor2D; // heads side by side
  return linear(merged, params[`${prefix}.c_proj.weight`] as tf.Tensor2D, params[`${prefix}.c_proj.bias`] as tf.Tensor1D | undefined) as tf.Tensor2D;
}

// ---------------------------------------------------------------------------------------
// The forward pass

export interface GPTForwardOptions {
  /** Apply dropout (when config.dropout > 0). Default false. */
  training?: boolean;
  /** Seeds the dropout masks (each call draws fresh seeds from it): reproducible training. */
  rng?: Rng;
  /**
   * Generation: process idx as the NEXT positions after those already in the cache, and
   * append their keys/values to it (the cache is updated in place). Not with training.
   */
  kvCache?: KVCache;
  /** Also return the final hidden states h [B, T, C] (after ln_f), for reward/value heads. */
  returnHidden?: boolean;
}

function checkIdx(name: string, idx: tf.Tensor, config: GPTConfig, offset: number): [number, number] {
  if (idx.rank !== 2) throw new Error(`${name}: idx must be [B, T] token ids, got shape [${idx.shape}]`);
  const [b, t] = idx.shape;
  if (b < 1 || t < 1) throw new Error(`${name}: idx must not be empty, got shape [${idx.shape}]`);
  if (offset + t > config.blockSize) {
    throw new Error(offset === 0
      ? `${name}: sequence length ${t} exceeds the context (blockSize ${config.blockSize})`
      : `${name}: positions ${offset}..${offset + t - 1} exceed the context (blockSize ${config.blockSize}); crop the input or reset the KV cache`);
  }
  // A bad id would silently embed as a zero vector (one-hot of an out-of-range id): check.
  const ids = idx.dataSync();
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < config.vocabSize && Number.isInteger(ids[i]))) {
      throw new Error(`${name}: token id ${ids[i]} at [${Math.floor(i / t)}, ${i % t}] is outside the vocabulary 0..${config.vocabSize - 1}`);
    }
  }
  return [b, t];
}

/**
 * The transformer body: idx [B, T] → final hidden states h [B·T, C] (after ln_f).
 * Must run inside a tidy (intermediate tensors are not disposed here).
 */
function hiddenStates(
  params: GPTParams, config: GPTConfig, idx: tf.Tensor, opts: GPTForwardOptions & { attentionWeights?: tf.Tensor4D[] }, b: number, t: number,
): tf.Tensor2D {
  const C = config.nEmbd;
  const cache = opts.kvCache;
  const offset = cache?.length ?? 0;
  const dropping = opts.training === true && config.dropout > 0;
  const drop = (x: tf.Tensor2D): tf.Tensor2D =>
    dropping ? (tf.dropout(x, config.dropout, undefined, opts.rng ? seedFor(opts.rng) : undefined) as tf.Tensor2D) : x;
  const p = (n: string) => params[n];
  const p1 = (n: string) => params[n] as tf.Tensor1D | undefined;
  const p2 = (n: string) => params[n] as tf.Tensor2D;

  // LayerNorm (GPT-2) or RMSNorm (Llama) of the residual stream [B·T, C].
  const norm = (x: tf.Tensor2D, n: string): tf.Tensor2D =>
    usesRms(config) ? rmsNorm2d(x, p(`${n}.weight`) as tf.Tensor1D, 1e-5) : layerNorm2d(x, p(`${n}.weight`) as tf.Tensor1D, p1(`${n}.bias`), 1e-5);
  // RoPE: the angles of positions 0..offset+T-1 (the rotation happens inside attention).
  const rope = usesRope(config) ? ropeAngles(offset + t, C / config.nHead, config.ropeBase ?? 10000) : undefined;

  // Embeddings: row idx[b, t] of wte plus row offset + t of wpe (see `embed`: lookups whose
  // gradient scatters rows back, with the course's UnsortedSegmentSum kernel on wasm).
  const ids = tf.cast(idx, "int32").reshape([b * t]) as tf.Tensor1D; // [B·T]
  let x = drop(rope ? embedTokens(p2("wte.weight"), ids) : embed(p2("wte.weight"), p2("wpe.weight"), ids, b, t, offset)); // [B·T, C]
  const attnOptions = { heads: config.nHead, causal: true, kvHeads: kvHeads(config), rope: rope && { tables: rope, offset } };

  for (let i = 0; i < config.nLayer; i++) {
    const h = `h.${i}`;
    // Attention sub-block: x = x + proj(attend(LN₁(x))). The residual stream x is [B·T, C]
    // throughout; only attention needs the [B, T, C] view (to know where sequences end).
    const a = norm(x, `${h}.ln_1`); // [B·T, C]
    const attnParams = { wqkv: p2(`${h}.attn.c_attn.weight`), bqkv: p1(`${h}.attn.c_attn.bias`), wproj: p2(`${h}.attn.c_proj.weight`), bproj: p1(`${h}.attn.c_proj.bias`) };
    let attnOut: tf.Tensor2D;
    if (cache) attnOut = cachedAttention(params, `${h}.attn`, a, b, t, config, cache, i, rope);
    else if (opts.attentionWeights) {
      // attentionMaps: the same attention, keeping its weights [B, H, T, T] for a look
      const r = multiHeadAttention(attnParams, a.reshape([b, t, C]) as tf.Tensor3D, { ...attnOptions, returnWeights: true });
      opts.attentionWeights.push(tf.keep(r.weights));
      attnOut = r.output.reshape([b * t, C]) as tf.Tensor2D;
    } else {
      attnOut = multiHeadAttention(attnParams, a.reshape([b, t, C]) as tf.Tensor3D, attnOptions).reshape([b * t, C]) as tf.Tensor2D; // [B·T, C]
    }
    x = tf.add(x, drop(attnOut));
    // MLP sub-block, position by position: x = x + proj(GELU(LN₂(x)·W_fc)), C → 4C → C,
    // or with SwiGLU x = x + (SiLU(m·W_gate) ⊙ m·W_up)·W_down, C → F → C.
    const m = norm(x, `${h}.ln_2`); // [B·T, C]
    const up = dense(m, p2(`${h}.mlp.c_fc.weight`), p1(`${h}.mlp.c_fc.bias`)); // [B·T, 4C] or [B·T, F]
    const fc = (usesSwiglu(config) ? swiglu(dense(m, p2(`${h}.mlp.c_gate.weight`), p1(`${h}.mlp.c_gate.bias`)), up) : gelu(up)) as tf.Tensor2D; // [B·T, F]
    x = tf.add(x, drop(dense(fc, p2(`${h}.mlp.c_proj.weight`), p1(`${h}.mlp.c_proj.bias`)))); // [B·T, C]
  }
  if (cache) cache.length = offset + t;
  return norm(x, "ln_f"); // [B·T, C]
}

/** Logits [N, V] of hidden states h [N, C]: h·wteᵀ (tied) or h·lm_headᵀ. */
function head(params: GPTParams, config: GPTConfig, h: tf.Tensor2D): tf.Tensor2D {
  const w = (isTied(config) ? params["wte.weight"] : params["lm_head.weight"]) as tf.Tensor2D; // [V, C]
  return tiedHeadOp(h, w) as tf.Tensor2D;
}

/**
 * Logits [B, T, V] for token ids idx [B, T] (int32): logits[b, t] scores the token that
 * follows idx[b, 0..t]. With `returnHidden`, `{ logits, hidden [B, T, C] }`.
 */
export function gptForward(params: GPTParams, config: GPTConfig, idx: tf.Tensor, opts?: GPTForwardOptions & { returnHidden?: false }): tf.Tensor3D;
export function gptForward(params: GPTParams, config: GPTConfig, idx: tf.Tensor, opts: GPTForwardOptions & { returnHidden: true }): { logits: tf.Tensor3D; hidden: tf.Tensor3D };
export function gptForward(
  params: GPTParams, config: GPTConfig, idx: tf.Tensor, opts: GPTForwardOptions = {},
): tf.Tensor3D | { logits: tf.Tensor3D; hidden: tf.Tensor3D } {
  if (opts.kvCache && opts.training) throw new Error("gptForward: a KV cache is for generation; do not combine it with training");
  const [b, t] = checkIdx("gptForward", idx, config, opts.kvCache?.length ?? 0);
  const out = tf.tidy(() => {
    const h = hiddenStates(params, config, idx, opts, b, t); // [B·T, C]
    const logits = head(params, config, h).reshape([b, t, config.vocabSize]); // [B, T, V]
    return opts.returnHidden ? [logits, h.reshape([b, t, config.nEmbd])] : [logits];
  });
  return opts.returnHidden ? { logits: out[0] as tf.Tensor3D, hidden: out[1] as tf.Tensor3D } : (out[0] as tf.Tensor3D);
}

/**
 * What every head of every layer attends to, for one sequence of token ids:
 * weights[layer][head][query][key], each row a distribution over the keys up to the query (causal).
 */
export function attentionMaps(params: GPTParams, config: GPTConfig, ids: readonly number[]): number[][][][] {
  const idx = tf.tensor2d([Array.from(ids)], [1, ids.length], "int32");
  const collected: tf.Tensor4D[] = [];
  try {
    const [, t] = checkIdx("attentionMaps", idx, config, 0);
    tf.tidy(() => {
      hiddenStates(params, config, idx, { attentionWeights: collected }, 1, t);
    });
    return collected.map((w) => (w.arraySync() as number[][][][])[0]); // [H][T][T] per layer
  } finally {
    tf.dispose([idx, ...collected]);
  }
}

/**
 * Logits [B, V] of the LAST position only (generation: the head, a [C, V] product, runs on
 * one row per sequence instead of T).
 */
export function gptLastLogits(params: GPTParams, config: GPTConfig, idx: tf.Tensor, opts: GPTForwardOptions = {}): tf.Tensor2D {
  if (opts.kvCache && opts.training) throw new Error("gptLastLogits: a KV cache is for generation; do not combine it with training");
  const [b, t] = checkIdx("gptLastLogits", idx, config, opts.kvCache?.length ?? 0);
  return tf.tidy(() => {
    const h = hiddenStates(params, config, idx, opts, b, t).reshape([b, t, config.nEmbd]);
    const last = tf.slice(h, [0, t - 1, 0], [b, 1, config.nEmbd]).reshape([b, config.nEmbd]) as tf.Tensor2D; // [B, C]
    return head(params, config, last); // [B, V]
  });
}

function checkTargets(name: string, idx: tf.Tensor, targets: tf.Tensor): void {
  if (!tf.util.arraysEqual(idx.shape, targets.shape)) {
    throw new Error(`${name}: targets [${targets.shape}] must have the shape of idx [${idx.shape}]`);
  }
}

/**
 * log p(targets[b, t] | idx[b, 0..t]) → [B, T]. Differentiable: SFT, PPO and DPO build
 * their losses from these.
 */
export function tokenLogProbs(
  params: GPTParams, config: GPTConfig, idx: tf.Tensor, targets: tf.Tensor, opts: GPTForwardOptions = {},
): tf.Tensor2D {
  checkTargets("tokenLogProbs", idx, targets);
  const [b, t] = checkIdx("tokenLogProbs", idx, config, 0);
  return tf.tidy(() => {
    const h = hiddenStates(params, config, idx, { ...opts, kvCache: undefined }, b, t); // [B·T, C]
    const logits = head(params, config, h); // [B·T, V]
    return targetLogProbs(logits, targets.reshape([b * t]) as tf.Tensor1D).reshape([b, t]) as tf.Tensor2D;
  });
}

export interface GPTLossOptions extends GPTForwardOptions {
  /** [B, T] weights, 1 where the position counts (e.g. SFT: answer tokens only), 0 elsewhere. */
  mask?: tf.Tensor;
}

/**
 * Mean cross-entropy (nats) of predicting targets [B, T] from idx [B, T]:
 *   −Σ mask·log p(target) / Σ mask       (all positions when no mask)
 * A model that knows nothing (uniform over V tokens) scores ln V.
 */
export function gptLoss(params: GPTParams, config: GPTConfig, idx: tf.Tensor, targets: tf.Tensor, opts: GPTLossOptions = {}): tf.Scalar {
  const mask = opts.mask;
  if (mask && !tf.util.arraysEqual(mask.shape, idx.shape)) {
    throw new Error(`gptLoss: mask [${mask.shape}] must have the shape of idx [${idx.shape}]`);
  }
  return tf.tidy(() => {
    const lp = tokenLogProbs(params, config, idx, targets, opts); // [B, T]
    if (!mask) return tf.neg(tf.mean(lp)) as tf.Scalar;
    const m = tf.cast(mask, "float32");
    return tf.div(tf.neg(tf.sum(tf.mul(lp, m))), tf.maximum(tf.sum(m), 1)) as tf.Scalar; // no masked-in position → 0
  });
}

// ---------------------------------------------------------------------------------------
// Compute

/**
 * Training FLOPs per token, as PaLM (Chowdhery et al. 2022, appendix B) and nanoGPT's
 * estimate_mfu: 6N for the weights (2 forward + 4 backward per parameter) plus
 * 12·L·H·D·T for attention's q·kᵀ and att·v (T = sequence length, default blockSize).
 * N excludes the position embeddings (as nanoGPT: a lookup does no multiply) but includes
 * wte, which the tied head uses as a [C, V] product.
 */
export function flopsPerToken(config: GPTConfig, seqLen: number = config.blockSize): number {
  const n = gptParameterCount(config) - (usesRope(config) ? 0 : config.blockSize * config.nEmbd);
  return 6 * n + 12 * config.nLayer * config.nEmbd * seqLen; // H·D = C
}

// ---------------------------------------------------------------------------------------
// Memory

/**
 * Bytes of a training step, estimated before anything is allocated (float32): the weights, their
 * gradients and Adam's two moments (16 bytes per parameter), plus, per token, what the forward
 * pass keeps for the backward pass and the backward pass's own buffers:
 *   per layer, about 24 vectors of width C (the norms' inputs and outputs, q, k, v and their
 *   head-split copies, the attention output, the MLP's 4C hidden before and after GELU, the
 *   residuals) and 3 of width H·T (scores, masked scores, probabilities), each twice (forward,
 *   then their gradients); then a few V-wide vectors (logits, softmax, their gradients).
 * Measured on wasm: nanogpt-cpu (64 tokens) trains 550 sequences per thread in 4 GiB and aborts
 * at 600; this estimate allows 537.
 */
export function trainingStepBytes(config: GPTConfig, rows: number, seqLen: number = config.blockSize): number {
  const { nLayer: L, nEmbd: C, nHead: H, vocabSize: V } = config;
  const perToken = 4 * (L * (48 * C + 6 * H * seqLen) + 6 * V);
  return 16 * gptParameterCount(config) + rows * seqLen * perToken;
}

/**
 * Refuse, in one line and before allocating, a batch that cannot fit in a thread's memory
 * (a wasm instance cannot grow past 4 GiB: the step would abort natively instead).
 * `who` prefixes the line ("pretrain"); `batch` names the setting ("batch size 4096");
 * `rowsPerStep` counts sequences (a preference pair is two).
 */
export function checkTrainingStepFits(config: GPTConfig, rowsPerStep: number, threads: number, who: string, batch: string, limitBytes: number): void {
  const rows = Math.ceil(rowsPerStep / Math.max(1, Math.min(threads, rowsPerStep)));
  const need = trainingStepBytes(config, rows);
  if (need <= limitBytes) return;
  const fixed = trainingStepBytes(config, 0);
  const fit = Math.max(0, Math.floor((limitBytes - fixed) / (trainingStepBytes(config, 1) - fixed)));
  const gib = (b: number) => `${(b / 2 ** 30).toPrecision(3)} GiB`;
  const has = `more than the ${gib(limitBytes)} a thread has`;
  if (fit === 0) {
    throw new Error(`${who}: block size ${config.blockSize}: even one sequence needs about ${gib(trainingStepBytes(config, 1))} for a training step with this model, ${has}; expected a smaller block size or model`);
  }
  throw new Error(
    `${who}: ${batch}: ${rows} sequences of ${config.blockSize} tokens per thread need about ${gib(need)} for a training step, ${has}; ` +
      `expected at most ${fit} per thread (${fit * Math.max(1, threads)} sequences over ${threads} thread${threads === 1 ? "" : "s"})`,
  );
}
