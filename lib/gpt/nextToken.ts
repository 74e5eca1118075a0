/**
 * Choosing the next token from the logits: temperature, top-k, top-p, then a draw (or the
 * argmax). Plain numbers, no tensors, no TensorFlow.js: sampling.ts uses it for every model,
 * and the course site's widgets in the browser (lib/widgets/live.ts). sampling.ts re-exports it.
 */
import type { Rng } from "../core/random";

export interface SamplingOptions {
  /** Divide the logits by this; 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (exactly k; ties broken by lower id). Default: all. */
  topK?: number;
  /** Keep the smallest set of most likely tokens with total probability ≥ p, in (0, 1]. Default 1. */
  topP?: number;
}

export function checkSampling(o: SamplingOptions): void {
  const { temperature = 1, topK, topP = 1 } = o;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new Error(`sampling: temperature must be >= 0, got ${temperature}`);
  if (topK !== undefined && (!Number.isInteger(topK) || topK < 1)) throw new Error(`sampling: topK must be a positive integer, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`sampling: topP must be in (0, 1], got ${topP}`);
}

/** Index of the largest value (the first one on ties). */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/**
 * The distribution sampling draws from, as probabilities [V] (zeros for removed tokens):
 * softmax(logits / temperature), restricted to the top-k, then to the top-p nucleus,
 * renormalised. With temperature 0: all mass on the argmax. Plain numbers, no tensors.
 */
export function samplingDistribution(logits: ArrayLike<number>, opts: SamplingOptions = {}): Float64Array {
  checkSampling(opts);
  const { temperature = 1, topK, topP = 1 } = opts;
  const v = logits.length;
  if (v === 0) throw new Error("sampling: logits are empty");
  const probs = new Float64Array(v);
  if (temperature === 0) {
    probs[argmax(logits)] = 1;
    return probs;
  }
  // Token ids by decreasing logit (ties: lower id first), so "top" is well defined.
  const order = Array.from({ length: v }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  const k = Math.min(topK ?? v, v);
  const max = logits[order[0]];
  let z = 0;
  for (let r = 0; r < k; r++) {
    const i = order[r];
    probs[i] = Math.exp((logits[i] - max) / temperature); // stable: exponent ≤ 0
    z += probs[i];
  }
  for (let r = 0; r < k; r++) probs[order[r]] /= z;
  if (topP < 1) {
    // Keep ranks 0..r where the running sum first reaches p (at least one token).
    let acc = 0;
    let keep = 0;
    while (keep < k) {
      acc += probs[order[keep]];
      keep++;
      if (acc >= topP) break;
    }
    for (let r = keep; r < k; r++) probs[order[r]] = 0;
    for (let r = 0; r < keep; r++) probs[order[r]] /= acc;
  }
  return probs;
}

/** Draw a token id from logits [V] (pure: all randomness comes from `rng`; greedy needs none). */
export function sampleFromLogits(logits: ArrayLike<number>, opts: SamplingOptions, rng: Rng): number {
  if ((opts.temperature ?? 1) === 0) {
    checkSampling(opts);
    return argmax(logits);
  }
  return rng.choice(samplingDistribution(logits, opts));
}
