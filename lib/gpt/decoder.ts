/**
 * A small inference engine: the GPT's forward pass for ONE new token, in plain TypeScript
 * over Float32Arrays, with its own KV cache. What sampling uses for small models.
 *
 * Why: generating a token with the KV cache is tiny arithmetic — for the 0.8M-parameter
 * nanogpt-cpu model ~1.6 MFLOP, a few matrix-vector products — but through tfjs it is ~270
 * kernel calls, each with its bookkeeping (shape checks, tidy tracking, a round trip to the
 * wasm heap): ~5 ms per token, of which the maths is a small part. Real inference engines
 * (llama.cpp, vLLM) exist for this reason: no autograd, no per-operation dispatch,
 * buffers allocated once. Here the weights are copied out once per decoder, and each token
 * costs exactly its arithmetic.
 *
 * The maths is gpt.ts's, step by step (tests/gpt/decoder.test.ts compares the logits with
 * gptForward at every position): x = wte[id] + wpe[pos]; per block
 * x += proj(attention(LN₁(x))), x += proj₂(GELU(LN₂(x)·W_fc)); logits = LN_f(x)·wteᵀ.
 * Weights are [in, out] (GPT-2's Conv1D orientation), so y = x·W is a sum of rows of W
 * scaled by x: the inner loop runs along a row, in memory order.
 *
 * The matrix-vector products are nearly all of a token's arithmetic. In JavaScript they run
 * at ~0.4-0.7 GMAC/s (V8 does not vectorise): ~1.6 ms of a ~1.9 ms nanogpt-cpu token. When
 * onnxruntime-node is loaded (the wasm backend's matmul engine, lib/core/kernels/onnxruntime.ts)
 * each product is one call to its native GEMM instead, ~30-37 µs whatever the size here
 * (the call's fixed cost), so a token takes ~1 ms. That fixed cost loses on narrow models:
 * measured per token (4 layers, 60 tokens), JavaScript vs onnxruntime: nEmbd 64 0.44 vs
 * 0.56 ms, 96 0.78 vs 0.81, 128 1.76 vs 1.04, 256 8.4 vs 3.1 ms; so "auto" uses onnxruntime
 * from nEmbd ORT_MIN_EMBD up. `products: "js"` keeps them in JavaScript (tests compare).
 *
 * Chapter 10's options run here too: RMSNorm, SwiGLU, RoPE (the query and the new key turned
 * by the position's angles; cached keys keep theirs) and grouped-query attention (the cache
 * holds only the G key/value heads; query head h reads key/value head ⌊h·G/H⌋).
 */
import { type GPTConfig, kvHeads, mlpHiddenSize } from "./config";
import type { GPTParams } from "./gpt";
import { ropeAngleValues } from "../attention/ropeAngles";
import { onnxRuntimeLoaded, ortGemm } from "../core/kernels/onnxruntime";

/** Width from which "auto" computes the products in onnxruntime (see the top of the file). */
const ORT_MIN_EMBD = 112;

const GELU_K = Math.sqrt(2 / Math.PI);

interface LayerWeights {
  ln1w: Float32Array; ln1b: Float32Array | null;
  attnW: Float32Array; attnB: Float32Array | null; // [C, C + 2·G·D]
  projW: Float32Array; projB: Float32Array | null; // [C, C]
  ln2w: Float32Array; ln2b: Float32Array | null;
  fcW: Float32Array; fcB: Float32Array | null; // [C, 4C] (SwiGLU: up [C, F])
  gateW: Float32Array | null; gateB: Float32Array | null; // SwiGLU's gate [C, F]
  fc2W: Float32Array; fc2B: Float32Array | null; // [4C, C] (SwiGLU: [F, C])
  k: Float32Array; v: Float32Array; // cache [G, blockSize, D]
}

export interface DecoderOptions {
  /**
   * Who computes the matrix-vector products: "auto" (default) onnxruntime's GEMM when it is
   * loaded and the model is wide enough to gain (nEmbd ≥ 112), else JavaScript; "js" always
   * JavaScript; "onnxruntime" (throws when it is not loaded).
   */
  products?: "auto" | "js" | "onnxruntime";
  /**
   * Keep each step's attention weights (`Decoder.attention`): what the course's browser widget
   * draws as heatmaps. Off by default: it costs a copy per head per step.
   */
  recordAttention?: boolean;
}

export interface Decoder {
  /** Tokens in the cache = position of the next token. */
  readonly length: number;
  /** Feed one token at position `length`; returns the logits [V] of the token after it (a reused buffer). */
  step(id: number): Float32Array;
  /** Empty the cache (weights stay). */
  reset(): void;
  /** LN_f(x) of the last token fed, [C] (a reused buffer): the hidden state a scalar head (reward, value) reads. */
  readonly hidden: Float32Array;
  /**
   * With `recordAttention`: attention weights [L, H, blockSize]; after feeding position p, row
   * (l, h) holds that token's weights over positions 0..p (the rest of the row is 0). Else null.
   */
  readonly attention: Float32Array | null;
}

/** A model's weights as plain arrays by parameter name (GPT-2's names, [in, out] orientation). */
export type DecoderWeights = Readonly<Record<string, Float32Array>>;

/**
 * y[0..out) = x[0..in) · W [in, out] (+ b). Four rows of W per pass over y: a quarter of the
 * loads and stores of y (measured ~1.0 vs ~0.6 GMAC/s in V8 for 128 × 512).
 */
function matVecJs(x: Float32Array, w: Float32Array, b: Float32Array | null, y: Float32Array, nIn: number, nOut: number): void {
  if (b) y.set(b);
  else y.fill(0);
  let i = 0;
  for (; i + 3 < nIn; i += 4) {
    const x0 = x[i], x1 = x[i + 1], x2 = x[i + 2], x3 = x[i + 3];
    const r0 = i * nOut, r1 = r0 + nOut, r2 = r1 + nOut, r3 = r2 + nOut;
    for (let j = 0; j < nOut; j++) y[j] += x0 * w[r0 + j] + x1 * w[r1 + j] + x2 * w[r2 + j] + x3 * w[r3 + j];
  }
  for (; i < nIn; i++) {
    const xi = x[i], row = i * nOut;
    for (let j = 0; j < nOut; j++) y[j] += xi * w[row + j];
  }
}

/** The same product through onnxruntime's GEMM, [1, nIn]·[nIn, nOut], then the bias. */
function matVecOrt(x: Float32Array, w: Float32Array, b: Float32Array | null, y: Float32Array, nIn: number, nOut: number): void {
  if (!ortGemm(x, w, y, 1, nIn, nOut)) throw new Error("decoder: onnxruntime is no longer loaded");
  if (b) for (let j = 0; j < nOut; j++) y[j] += b[j];
}

function rmsNormInto(x: Float32Array, w: Float32Array, out: Float32Array, n: number): void {
  let ms = 0;
  for (let i = 0; i < n; i++) ms += x[i] * x[i];
  const inv = 1 / Math.sqrt(ms / n + 1e-5);
  for (let i = 0; i < n; i++) out[i] = x[i] * inv * w[i];
}

/** Turn each head's pairs (i, i + D/2) of v[off..off + n·D) by the angles of one position (cos/sin [D/2]). */
function ropeInto(v: Float32Array, off: number, heads: number, d: number, cos: Float32Array, sin: Float32Array, row: number): void {
  const half = d / 2;
  for (let h = 0; h < heads; h++) {
    const base = off + h * d;
    for (let i = 0; i < half; i++) {
      const c = cos[row + i], s = sin[row + i];
      const x1 = v[base + i], x2 = v[base + half + i];
      v[base + i] = x1 * c - x2 * s;
      v[base + half + i] = x1 * s + x2 * c;
    }
  }
}

function layerNormInto(x: Float32Array, w: Float32Array, b: Float32Array | null, out: Float32Array, n: number): void {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (x[i] - mean) * (x[i] - mean);
  const inv = 1 / Math.sqrt(variance / n + 1e-5);
  for (let i = 0; i < n; i++) out[i] = (x[i] - mean) * inv * w[i] + (b ? b[i] : 0);
}

/**
 * A decoder over a copy of `params` (later changes to the params are not seen: make a new
 * decoder after training). Memory: the weights once more plus a cache of
 * 2 · nLayer · blockSize · G · D floats (G · D = nEmbd without grouped-query attention).
 */
export function createDecoder(params: GPTParams, config: GPTConfig, opts: DecoderOptions = {}): Decoder {
  const weights: Record<string, Float32Array> = {};
  for (const [name, p] of Object.entries(params)) weights[name] = p.dataSync() as Float32Array;
  return createDecoderFromWeights(weights, config, opts);
}

/**
 * The same decoder over weights already in plain arrays (no TensorFlow.js: how the browser
 * widgets run the course's models). The arrays are read, never written, and not copied.
 */
export function createDecoderFromWeights(weights: DecoderWeights, config: GPTConfig, opts: DecoderOptions = {}): Decoder {
  const products = opts.products ?? "auto";
  if (products !== "auto" && products !== "js" && products !== "onnxruntime") {
    throw new Error(`createDecoder: products must be "auto", "js" or "onnxruntime", got ${JSON.stringify(products)}`);
  }
  if (products === "onnxruntime" && !onnxRuntimeLoaded()) throw new Error("createDecoder: products \"onnxruntime\" but onnxruntime-node is not loaded");
  const useOrt = products === "onnxruntime" || (products === "auto" && onnxRuntimeLoaded() && config.nEmbd >= ORT_MIN_EMBD);
  const matVec = useOrt ? matVecOrt : matVecJs;
  const { vocabSize: V, blockSize: T, nLayer: L, nHead: H, nEmbd: C } = config;
  const D = C / H;
  const G = kvHeads(config), rep = H / G;
  const F = mlpHiddenSize(config);
  const swiglu = config.mlp === "swiglu";
  const rms = config.norm === "rmsnorm";
  const rope = config.positions === "rope";
  const get = (name: string, size: number): Float32Array => {
    const p = weights[name];
    if (p === undefined) throw new Error(`createDecoder: missing parameter "${name}"`);
    if (p.length !== size) throw new Error(`createDecoder: parameter "${name}" has ${p.length} values, expected ${size} for this config`);
    return p;
  };
  const opt = (name: string, size: number): Float32Array | null => (weights[name] === undefined ? null : get(name, size));
  const wte = get("wte.weight", V * C); // [V, C]
  const wpe = rope ? null : get("wpe.weight", T * C); // [T, C]
  // RoPE's angles for every position: [T, D/2]
  const half = D / 2;
  const { cos: ropeCos, sin: ropeSin } = rope ? ropeAngleValues(T, D, config.ropeBase ?? 10000) : { cos: new Float32Array(0), sin: new Float32Array(0) };
  const norm = (x: Float32Array, w: Float32Array, b: Float32Array | null, out: Float32Array) => (rms ? rmsNormInto(x, w, out, C) : layerNormInto(x, w, b, out, C));
  const headW = weights["lm_head.weight"] !== undefined ? get("lm_head.weight", V * C) : wte; // [V, C]
  const lnfW = get("ln_f.weight", C);
  const lnfB = opt("ln_f.bias", C);
  const QKV = C + 2 * G * D;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const h = `h.${l}`;
    layers.push({
      ln1w: get(`${h}.ln_1.weight`, C), ln1b: opt(`${h}.ln_1.bias`, C),
      attnW: get(`${h}.attn.c_attn.weight`, C * QKV), attnB: opt(`${h}.attn.c_attn.bias`, QKV),
      projW: get(`${h}.attn.c_proj.weight`, C * C), projB: opt(`${h}.attn.c_proj.bias`, C),
      ln2w: get(`${h}.ln_2.weight`, C), ln2b: opt(`${h}.ln_2.bias`, C),
      fcW: get(`${h}.mlp.c_fc.weight`, C * F), fcB: opt(`${h}.mlp.c_fc.bias`, F),
      gateW: swiglu ? get(`${h}.mlp.c_gate.weight`, C * F) : null, gateB: swiglu ? opt(`${h}.mlp.c_gate.bias`, F) : null,
      fc2W: get(`${h}.mlp.c_proj.weight`, F * C), fc2B: opt(`${h}.mlp.c_proj.bias`, C),
      k: new Float32Array(G * T * D), v: new Float32Array(G * T * D),
    });
  }
  // Work buffers, allocated once.
  const x = new Float32Array(C);
  const a = new Float32Array(C);
  const qkv = new Float32Array(QKV);
  const attention = opts.recordAttention ? new Float32Array(L * H * T) : null;
  const att = new Float32Array(C);
  const tmp = new Float32Array(C);
  const u = new Float32Array(F);
  const gate = new Float32Array(swiglu ? F : 0);
  const scores = new Float32Array(T);
  const logits = new Float32Array(V);
  const scale = 1 / Math.sqrt(D);
  let pos = 0;

  return {
    get length() {
      return pos;
    },
    reset() {
      pos = 0;
    },
    hidden: a,
    attention,
    step(id: number): Float32Array {
      if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`decoder: token id ${id} is outside the vocabulary 0..${V - 1}`);
      if (pos >= T) throw new Error(`decoder: position ${pos} exceeds the context (blockSize ${T}); reset the decoder or crop the input`);
      for (let c = 0; c < C; c++) x[c] = wte[id * C + c] + (wpe ? wpe[pos * C + c] : 0); // [C]
      for (let l = 0; l < L; l++) {
        const w = layers[l];
        norm(x, w.ln1w, w.ln1b, a);
        matVec(a, w.attnW, w.attnB, qkv, C, QKV); // q [C] = H heads × D | k, v [G·D] each
        if (rope) {
          ropeInto(qkv, 0, H, D, ropeCos, ropeSin, pos * half);
          ropeInto(qkv, C, G, D, ropeCos, ropeSin, pos * half);
        }
        for (let g = 0; g < G; g++) {
          const base = g * T * D + pos * D; // this position's row in the cache [G, T, D]
          for (let d = 0; d < D; d++) {
            w.k[base + d] = qkv[C + g * D + d];
            w.v[base + d] = qkv[C + G * D + g * D + d];
          }
        }
        for (let hd = 0; hd < H; hd++) {
          const kv = Math.floor(hd / rep) * T * D; // this query head's key/value head in the cache
          // scores over positions 0..pos (causal: nothing later exists yet), softmax, Σ p·v
          let max = -Infinity;
          for (let s = 0; s <= pos; s++) {
            let dot = 0;
            const kRow = kv + s * D;
            for (let d = 0; d < D; d++) dot += qkv[hd * D + d] * w.k[kRow + d];
            scores[s] = dot * scale;
            if (scores[s] > max) max = scores[s];
          }
          let sum = 0;
          for (let s = 0; s <= pos; s++) {
            scores[s] = Math.exp(scores[s] - max);
            sum += scores[s];
          }
          for (let d = 0; d < D; d++) att[hd * D + d] = 0;
          const row = attention ? (l * H + hd) * T : 0;
          for (let s = 0; s <= pos; s++) {
            const p = scores[s] / sum;
            if (attention) attention[row + s] = p;
            const vRow = kv + s * D;
            for (let d = 0; d < D; d++) att[hd * D + d] += p * w.v[vRow + d];
          }
          if (attention) attention.fill(0, row + pos + 1, row + T);
        }
        matVec(att, w.projW, w.projB, tmp, C, C);
        for (let c = 0; c < C; c++) x[c] += tmp[c];
        norm(x, w.ln2w, w.ln2b, a);
        matVec(a, w.fcW, w.fcB, u, C, F);
        if (swiglu) {
          matVec(a, w.gateW!, w.gateB, gate, C, F);
          for (let j = 0; j < F; j++) {
            const z = gate[j];
            u[j] *= z / (1 + Math.exp(-z)); // SiLU(gate) ⊙ up
          }
        } else {
          for (let j = 0; j < F; j++) {
            const z = u[j];
            // GPT-2's tanh GELU, written as z·σ(2u) like gpt.ts
            u[j] = z / (1 + Math.exp(-2 * GELU_K * (z + 0.044715 * z * z * z)));
          }
        }
        matVec(u, w.fc2W, w.fc2B, tmp, F, C);
        for (let c = 0; c < C; c++) x[c] += tmp[c];
      }
      norm(x, lnfW, lnfB, a);
      if (useOrt) {
        ortGemm(a, headW, logits, 1, C, V, false, true); // logits = LN_f(x)·headᵀ [V]
      } else {
        for (let vId = 0; vId < V; vId++) { // logits = LN_f(x)·headᵀ: one dot product per row
          let dot = 0;
          const row = vId * C;
          for (let c = 0; c < C; c++) dot += a[c] * headW[row + c];
          logits[vId] = dot;
        }
      }
      pos += 1;
      return logits;
    },
  };
}
