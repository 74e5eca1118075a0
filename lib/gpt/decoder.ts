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
 */
import type { GPTConfig, GPTParams } from "./gpt";
import { onnxRuntimeLoaded, ortGemm } from "../core/kernels/onnxruntime";

/** Width from which "auto" computes the products in onnxruntime (see the top of the file). */
const ORT_MIN_EMBD = 112;

const GELU_K = Math.sqrt(2 / Math.PI);

interface LayerWeights {
  ln1w: Float32Array; ln1b: Float32Array | null;
  attnW: Float32Array; attnB: Float32Array | null; // [C, 3C]
  projW: Float32Array; projB: Float32Array | null; // [C, C]
  ln2w: Float32Array; ln2b: Float32Array | null;
  fcW: Float32Array; fcB: Float32Array | null; // [C, 4C]
  fc2W: Float32Array; fc2B: Float32Array | null; // [4C, C]
  k: Float32Array; v: Float32Array; // cache [H, blockSize, D]
}

export interface DecoderOptions {
  /**
   * Who computes the matrix-vector products: "auto" (default) onnxruntime's GEMM when it is
   * loaded and the model is wide enough to gain (nEmbd ≥ 112), else JavaScript; "js" always
   * JavaScript; "onnxruntime" (throws when it is not loaded).
   */
  products?: "auto" | "js" | "onnxruntime";
}

export interface Decoder {
  /** Tokens in the cache = position of the next token. */
  readonly length: number;
  /** Feed one token at position `length`; returns the logits [V] of the token after it (a reused buffer). */
  step(id: number): Float32Array;
  /** Empty the cache (weights stay). */
  reset(): void;
}

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
 * 2 · nLayer · blockSize · nEmbd floats.
 */
export function createDecoder(params: GPTParams, config: GPTConfig, opts: DecoderOptions = {}): Decoder {
  const products = opts.products ?? "auto";
  if (products !== "auto" && products !== "js" && products !== "onnxruntime") {
    throw new Error(`createDecoder: products must be "auto", "js" or "onnxruntime", got ${JSON.stringify(products)}`);
  }
  if (products === "onnxruntime" && !onnxRuntimeLoaded()) throw new Error("createDecoder: products \"onnxruntime\" but onnxruntime-node is not loaded");
  const useOrt = products === "onnxruntime" || (products === "auto" && onnxRuntimeLoaded() && config.nEmbd >= ORT_MIN_EMBD);
  const matVec = useOrt ? matVecOrt : matVecJs;
  const { vocabSize: V, blockSize: T, nLayer: L, nHead: H, nEmbd: C } = config;
  const D = C / H;
  const get = (name: string): Float32Array => {
    const p = params[name];
    if (p === undefined) throw new Error(`createDecoder: missing parameter "${name}"`);
    return p.dataSync() as Float32Array;
  };
  const opt = (name: string): Float32Array | null => (params[name] === undefined ? null : get(name));
  const wte = get("wte.weight"); // [V, C]
  const wpe = get("wpe.weight"); // [T, C]
  const headW = params["lm_head.weight"] !== undefined ? get("lm_head.weight") : wte; // [V, C]
  const lnfW = get("ln_f.weight");
  const lnfB = opt("ln_f.bias");
  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const h = `h.${l}`;
    layers.push({
      ln1w: get(`${h}.ln_1.weight`), ln1b: opt(`${h}.ln_1.bias`),
      attnW: get(`${h}.attn.c_attn.weight`), attnB: opt(`${h}.attn.c_attn.bias`),
      projW: get(`${h}.attn.c_proj.weight`), projB: opt(`${h}.attn.c_proj.bias`),
      ln2w: get(`${h}.ln_2.weight`), ln2b: opt(`${h}.ln_2.bias`),
      fcW: get(`${h}.mlp.c_fc.weight`), fcB: opt(`${h}.mlp.c_fc.bias`),
      fc2W: get(`${h}.mlp.c_proj.weight`), fc2B: opt(`${h}.mlp.c_proj.bias`),
      k: new Float32Array(H * T * D), v: new Float32Array(H * T * D),
    });
  }
  // Work buffers, allocated once.
  const x = new Float32Array(C);
  const a = new Float32Array(C);
  const qkv = new Float32Array(3 * C);
  const att = new Float32Array(C);
  const tmp = new Float32Array(C);
  const f = new Float32Array(4 * C);
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
    step(id: number): Float32Array {
      if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`decoder: token id ${id} is outside the vocabulary 0..${V - 1}`);
      if (pos >= T) throw new Error(`decoder: position ${pos} exceeds the context (blockSize ${T}); reset the decoder or crop the input`);
      for (let c = 0; c < C; c++) x[c] = wte[id * C + c] + wpe[pos * C + c]; // [C]
      for (const w of layers) {
        layerNormInto(x, w.ln1w, w.ln1b, a, C);
        matVec(a, w.attnW, w.attnB, qkv, C, 3 * C); // q | k | v, each [C] = H heads × D
        for (let hd = 0; hd < H; hd++) {
          const base = hd * T * D + pos * D; // this position's row in the cache [H, T, D]
          for (let d = 0; d < D; d++) {
            w.k[base + d] = qkv[C + hd * D + d];
            w.v[base + d] = qkv[2 * C + hd * D + d];
          }
          // scores over positions 0..pos (causal: nothing later exists yet), softmax, Σ p·v
          let max = -Infinity;
          for (let s = 0; s <= pos; s++) {
            let dot = 0;
            const kRow = hd * T * D + s * D;
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
          for (let s = 0; s <= pos; s++) {
            const p = scores[s] / sum;
            const vRow = hd * T * D + s * D;
            for (let d = 0; d < D; d++) att[hd * D + d] += p * w.v[vRow + d];
          }
        }
        matVec(att, w.projW, w.projB, tmp, C, C);
        for (let c = 0; c < C; c++) x[c] += tmp[c];
        layerNormInto(x, w.ln2w, w.ln2b, a, C);
        matVec(a, w.fcW, w.fcB, f, C, 4 * C);
        for (let j = 0; j < 4 * C; j++) {
          const z = f[j];
          // GPT-2's tanh GELU, written as z·σ(2u) like gpt.ts
          f[j] = z / (1 + Math.exp(-2 * GELU_K * (z + 0.044715 * z * z * z)));
        }
        matVec(f, w.fc2W, w.fc2B, tmp, 4 * C, C);
        for (let c = 0; c < C; c++) x[c] += tmp[c];
      }
      layerNormInto(x, lnfW, lnfB, a, C);
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
