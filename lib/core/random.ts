/**
 * Seeded randomness, so a run can be repeated exactly and a checkpoint can resume the
 * very same random stream.
 *
 *   const rng = createRng(1337);
 *   rng.next();            // uniform in [0, 1)
 *   rng.int(10);           // 0..9
 *   rng.normal();          // standard normal
 *   rng.shuffle(array);    // in place
 *   rng.choice([0.1, 0.9]) // index 1 nine times out of ten
 *   const saved = rng.state();             // plain JSON: store it in a checkpoint
 *   const again = createRng(1337, saved);  // continues exactly where rng was
 *   tf.randomNormal([2, 3], 0, 1, "float32", seedFor(rng)); // tfjs ops take an int seed
 *
 * Built on seedrandom's ARC4 generator (its default), whose full state can be saved.
 */
import seedrandom from "seedrandom";

/** The generator's complete state: JSON-serialisable, for checkpoints. */
export interface RngState {
  algorithm: "arc4";
  /** ARC4 indices and permutation of 0..255. */
  i: number;
  j: number;
  S: number[];
}

export interface Rng {
  /** The seed this generator was created with. */
  readonly seed: number | string;
  /** Uniform float in [0, 1), 53 random bits. */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Standard normal sample (mean 0, std 1), by the Box–Muller transform. */
  normal(): number;
  /** Shuffle `arr` in place (Fisher–Yates) and return it. */
  shuffle<T>(arr: T[]): T[];
  /**
   * Sample an index with probability proportional to `probs[i]` (weights need not sum to
   * exactly 1, e.g. float32 softmax output). Zero-weight indices are never returned.
   */
  choice(probs: ArrayLike<number>): number;
  /** A copy of the full state; `createRng(seed, state)` continues from here. */
  state(): RngState;
}

/** Create a generator from a seed, or restore one from a saved `state` (then `seed` is only a label). */
export function createRng(seed: number | string, state?: RngState): Rng {
  if (typeof seed === "number" && !Number.isFinite(seed)) {
    throw new Error(`createRng: seed must be a finite number or a string, got ${seed}`);
  }
  let prng: seedrandom.StatefulPRNG<seedrandom.State.Arc4>;
  if (state !== undefined) {
    checkState(state);
    prng = seedrandom("", { state: { i: state.i, j: state.j, S: [...state.S] } });
  } else {
    prng = seedrandom(String(seed), { state: true });
  }

  const next = (): number => prng.double();

  const int = (n: number): number => {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`rng.int(n): n must be a positive integer, got ${n}`);
    return Math.floor(next() * n);
  };

  const normal = (): number => {
    // Box–Muller: two uniforms → one normal. 1 - u is in (0, 1], so the log is finite.
    const u = 1 - next();
    const v = next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };

  const shuffle = <T>(arr: T[]): T[] => {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = int(i + 1); // 0..i
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  };

  const choice = (probs: ArrayLike<number>): number => {
    let total = 0;
    for (let i = 0; i < probs.length; i++) {
      const p = probs[i];
      if (!(p >= 0) || !Number.isFinite(p)) {
        throw new Error(`rng.choice: probabilities must be finite and >= 0, got ${p} at index ${i}`);
      }
      total += p;
    }
    if (!(total > 0)) throw new Error("rng.choice: probabilities must not all be zero");
    // Walk the cumulative sum until it passes r; the last positive index catches rounding.
    const r = next() * total;
    let acc = 0;
    let last = -1;
    for (let i = 0; i < probs.length; i++) {
      if (probs[i] === 0) continue;
      acc += probs[i];
      last = i;
      if (r < acc) return i;
    }
    return last;
  };

  const stateFn = (): RngState => {
    const s = prng.state();
    return { algorithm: "arc4", i: s.i, j: s.j, S: [...s.S] };
  };

  return { seed, next, int, normal, shuffle, choice, state: stateFn };
}

/**
 * An integer seed in [0, 2^31) drawn from `rng`, for tfjs ops that take a `seed`
 * (tf.randomNormal, tf.randomUniform, tf.multinomial, tf.dropout...). Each call advances
 * `rng`, so successive ops get different but reproducible seeds.
 */
export function seedFor(rng: Rng): number {
  return rng.int(2 ** 31);
}

function checkState(state: RngState): void {
  const ok =
    state !== null &&
    typeof state === "object" &&
    state.algorithm === "arc4" &&
    Number.isInteger(state.i) &&
    Number.isInteger(state.j) &&
    Array.isArray(state.S) &&
    state.S.length === 256;
  if (!ok) throw new Error("createRng: state is not an RngState saved by rng.state()");
}
