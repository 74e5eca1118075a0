/**
 * The optimizer: AdamW, and gradient clipping by global norm.
 *
 * Training moves every parameter a little against its gradient. Plain gradient descent
 * (θ ← θ − lr·g) uses one step size for all parameters; Adam keeps, per number in every
 * tensor, running averages of the gradient (m, "momentum") and of its square (v), and
 * divides by √v: parameters with consistently small gradients get relatively larger steps.
 * AdamW adds weight decay "decoupled" from the gradient: it shrinks the weights directly
 * instead of adding wd·θ to the gradient (which Adam's division by √v would distort).
 *
 * The update, exactly as PyTorch's torch.optim.AdamW (t counts steps from 1):
 *
 *   θ ← θ · (1 − lr·wd)                      only for decayed parameters (see `decay`)
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   m̂ = m / (1 − β1^t)                        bias correction: m and v start at 0, so
 *   v̂ = v / (1 − β2^t)                        early averages are too small without it
 *   θ ← θ − lr · m̂ / (√v̂ + ε)
 *
 * (PyTorch computes √v̂ + ε as √v / √(1 − β2^t) + ε; `step` rearranges it to save work.)
 *
 * Which parameters decay: as in nanoGPT, matrices (2-D and more: linear weights, embeddings)
 * do, vectors (biases, LayerNorm gains) don't. A model can pass its own rule (`decay`).
 *
 * Speed: every parameter costs a handful of elementwise kernels per step, on tensors that
 * stay in the backend; the per-step scalars (lr, bias corrections) are made once per step
 * and shared by all parameters, m and v are variables updated in place with `assign`, and
 * everything temporary lives inside one tf.tidy, so nothing leaks from step to step.
 */
import * as tf from "@tensorflow/tfjs";
import { adamwUpdate } from "./kernels/adamw";

/** Parameters of a model by name (e.g. "h.0.attn.c_attn.weight"). */
export type Params = Record<string, tf.Variable>;
/** Gradients (or any tensors) by parameter name. */
export type NamedTensors = Record<string, tf.Tensor>;

/** Decide whether parameter `name` of this shape gets weight decay. */
export type DecayRule = (name: string, shape: number[]) => boolean;

/** The default rule: matrices and higher decay, vectors and scalars (biases, norms) don't. */
export const decayMatrices: DecayRule = (_name, shape) => shape.length >= 2;

export interface AdamWConfig {
  /** Learning rate; `step(grads, lr)` overrides it per step (a schedule). Default 1e-3. */
  lr?: number;
  /** Decay of the gradient average m. Default 0.9. */
  beta1?: number;
  /** Decay of the squared-gradient average v. Default 0.999 (PyTorch); nanoGPT uses 0.95 (0.99 for tiny models). */
  beta2?: number;
  /** Added to √v̂ so tiny v never divides by ~0. Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay wd. Default 0.01 (PyTorch); nanoGPT uses 0.1. */
  weightDecay?: number;
  /** Which parameters decay (default `decayMatrices`). Not saved in checkpoints: it is code. */
  decay?: DecayRule;
}

/** The optimizer's numbers with every default filled in (JSON-ready: goes into checkpoints). */
export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * What a checkpoint needs to continue exactly: the step count t and, for each parameter
 * `name`, the tensors "m.<name>" and "v.<name>" (same shape as the parameter).
 */
export interface OptimizerState {
  step: number;
  tensors: NamedTensors;
  /** The numbers it ran with (informative: loadOptimizerState keeps the optimizer's own). */
  hyper?: AdamWHyper;
}

export class AdamW {
  readonly hyper: AdamWHyper;
  private readonly decay: DecayRule;
  private readonly params: Params;
  private readonly m: Record<string, tf.Variable> = {};
  private readonly v: Record<string, tf.Variable> = {};
  private readonly decayed: Record<string, boolean> = {};
  private t = 0;
  private disposed = false;

  constructor(params: Params, config: AdamWConfig = {}) {
    this.hyper = {
      lr: config.lr ?? 1e-3,
      beta1: config.beta1 ?? 0.9,
      beta2: config.beta2 ?? 0.999,
      eps: config.eps ?? 1e-8,
      weightDecay: config.weightDecay ?? 0.01,
    };
    const h = this.hyper;
    for (const [k, val] of Object.entries(h)) {
      if (!Number.isFinite(val) || val < 0) throw new Error(`AdamW: ${k} must be a finite number >= 0, got ${val}`);
    }
    if (h.beta1 >= 1 || h.beta2 >= 1) throw new Error(`AdamW: betas must be < 1, got [${h.beta1}, ${h.beta2}]`);
    this.decay = config.decay ?? decayMatrices;
    this.params = { ...params };
    const seen = new Map<tf.Variable, string>();
    for (const [name, p] of Object.entries(params)) {
      // Tied weights must appear once, or they would get two m/v and two updates per step.
      const other = seen.get(p);
      if (other !== undefined) throw new Error(`AdamW: parameters "${other}" and "${name}" are the same variable; list it once`);
      seen.set(p, name);
    }
    for (const [name, p] of Object.entries(this.params)) {
      // Zeros, like PyTorch's lazily created state.
      // (Inside tidy: the zeros tensor itself is freed, the variable keeps its data.)
      this.m[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
      this.v[name] = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
      this.decayed[name] = this.decay(name, p.shape);
    }
  }

  /** Number of updates done so far (t of the equations). */
  get stepCount(): number {
    return this.t;
  }

  /** Whether parameter `name` gets weight decay. */
  isDecayed(name: string): boolean {
    return this.decayed[name] === true;
  }

  /**
   * One update of every parameter that has a gradient in `grads` (parameters without one
   * are left alone, as PyTorch skips parameters whose .grad is None). `lr` defaults to the
   * configured one; a schedule passes its value each step. Does not dispose `grads`.
   */
  step(grads: NamedTensors, lr: number = this.hyper.lr): void {
    if (this.disposed) throw new Error("AdamW.step: this optimizer was disposed");
    if (!Number.isFinite(lr) || lr < 0) throw new Error(`AdamW.step: lr must be a finite number >= 0, got ${lr}`);
    for (const name of Object.keys(grads)) {
      if (!(name in this.params)) throw new Error(`AdamW.step: gradient "${name}" matches no parameter`);
    }
    this.t += 1;
    const { beta1, beta2, weightDecay } = this.hyper;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    // The bias corrections are folded into two per-step numbers:
    // m̂ / (√v̂ + ε) = (m / bc1) / (√v / √bc2 + ε) = (√bc2 / bc1) · m / (√v + ε·√bc2),
    // which saves a full-size multiply per parameter (equal up to float rounding).
    const negStepSize = (-lr * Math.sqrt(bc2)) / bc1; // −lr · √(1 − β2^t) / (1 − β1^t)
    const epsHat = this.hyper.eps * Math.sqrt(bc2); // ε · √(1 − β2^t)
    tf.tidy(() => {
      for (const [name, g] of Object.entries(grads)) {
        const p = this.params[name];
        if (g.shape.length !== p.shape.length || g.shape.some((d, i) => d !== p.shape[i])) {
          throw new Error(`AdamW.step: gradient "${name}" has shape [${g.shape}], parameter has [${p.shape}]`);
        }
        const shrink = this.decayed[name] && weightDecay !== 0 ? 1 - lr * weightDecay : 1; // decoupled weight decay
        // One pass on wasm (lib/core/kernels/adamw.ts), tensor ops elsewhere: same formula.
        const [pNew, mNew, vNew] = adamwUpdate(p, this.m[name], this.v[name], g, { beta1, beta2, negStepSize, epsHat, shrink });
        this.m[name].assign(mNew);
        this.v[name].assign(vNew);
        p.assign(pNew);
      }
    });
  }

  /**
   * The state a checkpoint saves: step count and m/v per parameter ("m.<name>", "v.<name>").
   * The tensors are copies: dispose them when done (saveCheckpoint does not).
   */
  optimizerState(): OptimizerState {
    const tensors: NamedTensors = {};
    for (const name of Object.keys(this.params)) {
      tensors[`m.${name}`] = this.m[name].clone();
      tensors[`v.${name}`] = this.v[name].clone();
    }
    return { step: this.t, tensors, hyper: { ...this.hyper } };
  }

  /**
   * Continue from a saved state. Every parameter must have its m and v with the right shape
   * (errors name the tensor); the tensors are copied, the caller keeps ownership.
   */
  loadOptimizerState(state: OptimizerState, source = "optimizer state"): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new Error(`${source}: field "step" must be an integer >= 0, got ${state.step}`);
    }
    const expected = new Set<string>();
    for (const [name, p] of Object.entries(this.params)) {
      for (const key of [`m.${name}`, `v.${name}`]) {
        expected.add(key);
        const t = state.tensors[key];
        if (t === undefined) throw new Error(`${source}: tensor "${key}" is missing`);
        if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
          throw new Error(`${source}: tensor "${key}" has shape [${t.shape}], parameter "${name}" has [${p.shape}]`);
        }
      }
    }
    for (const key of Object.keys(state.tensors)) {
      if (!expected.has(key)) throw new Error(`${source}: tensor "${key}" matches no parameter`);
    }
    tf.tidy(() => {
      for (const name of Object.keys(this.params)) {
        // assign shares the data; tf.clone so the caller may dispose its tensors.
        this.m[name].assign(tf.clone(state.tensors[`m.${name}`].toFloat()));
        this.v[name].assign(tf.clone(state.tensors[`v.${name}`].toFloat()));
      }
    });
    this.t = state.step;
  }

  /** Free m, v and the constants. The parameters are the caller's and stay. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const name of Object.keys(this.params)) {
      this.m[name].dispose();
      this.v[name].dispose();
    }
  }
}

/** A new AdamW over `params` (same as `new AdamW(params, config)`). */
export function adamW(params: Params, config: AdamWConfig = {}): AdamW {
  return new AdamW(params, config);
}

export interface ClipResult {
  /** The gradients, scaled so their global norm is at most maxNorm (the inputs themselves when no scaling was needed). */
  grads: NamedTensors;
  /** The global norm BEFORE clipping: √(Σ over all tensors of Σ g²). Worth logging: spikes warn of instability. */
  norm: number;
}

/**
 * Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_: treat all gradients
 * as one long vector; if its length exceeds `maxNorm`, scale every gradient by
 * maxNorm / (norm + 1e-6) so the direction stays and the length becomes ~maxNorm.
 * One bad batch then cannot throw the model far away.
 *
 * Returned tensors that were scaled are new (tidy them); unscaled ones are the inputs.
 * Reads one number back from the backend (the norm).
 */
export function clipByGlobalNorm(grads: NamedTensors, maxNorm: number): ClipResult {
  if (!(maxNorm > 0)) throw new Error(`clipByGlobalNorm: maxNorm must be > 0, got ${maxNorm}`);
  const list = Object.values(grads);
  if (list.length === 0) return { grads: {}, norm: 0 };
  const norm = tf.tidy(() => {
    const sums = list.map((g) => tf.sum(tf.mul(g, g)));
    return tf.sqrt(sums.length === 1 ? sums[0] : tf.addN(sums));
  });
  const value = norm.dataSync()[0];
  norm.dispose();
  if (!Number.isFinite(value) || value <= maxNorm) {
    // Already short enough (coefficient clamped to 1 in PyTorch: the same numbers). A NaN/Inf
    // norm is returned as is, so the caller can notice and skip the step.
    return { grads: { ...grads }, norm: value };
  }
  const coef = maxNorm / (value + 1e-6);
  // Returned from tidy (not tf.keep'd), so an enclosing tidy still frees them.
  const scaled = tf.tidy(() => {
    const c = tf.scalar(coef);
    const out: NamedTensors = {};
    for (const [name, g] of Object.entries(grads)) out[name] = tf.mul(g, c);
    return out;
  });
  return { grads: scaled, norm: value };
}
