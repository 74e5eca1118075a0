/**
 * The learning-rate schedule: linear warm-up, then cosine decay to a minimum, as nanoGPT's
 * `get_lr(it)`.
 *
 *   lr
 *   maxLr ┤      ╭──╮_
 *         │     ╱     ‾╲_
 *         │    ╱          ‾╲_
 *         │   ╱              ‾‾╲__
 *   minLr ┤  ╱                    ‾‾‾‾──────────
 *         └──┴──────────────────────┴──────────→ it
 *            warmupIters          decayIters
 *
 * Why warm up: at the start m and v of Adam know nothing yet and the gradients of a random
 * model are large and erratic; small steps at first avoid a blow-up. Why decay: late in
 * training, smaller steps let the loss settle into a minimum instead of bouncing around it.
 *
 *   it < warmupIters:        lr = maxLr · (it + 1) / (warmupIters + 1)
 *   it > decayIters:         lr = minLr
 *   otherwise:               r  = (it − warmupIters) / (decayIters − warmupIters)   (0 → 1)
 *                            lr = minLr + ½(1 + cos(π·r)) · (maxLr − minLr)
 *
 * (`it` counts updates from 0: the first update uses lr(0).) nanoGPT sets decayIters to the
 * number of iterations and minLr to maxLr / 10.
 */

export interface LRSchedule {
  /** Peak learning rate, reached at the end of the warm-up. */
  maxLr: number;
  /** Steps of linear warm-up (0: none). */
  warmupIters: number;
  /** Step at which the cosine reaches minLr (usually the total number of steps). */
  decayIters: number;
  /** Floor of the decay (nanoGPT: maxLr / 10). */
  minLr: number;
  /** false: constant maxLr, as nanoGPT's decay_lr = False. Default true. */
  decay?: boolean;
}

/** The learning rate for update number `it` (0-based). */
export function learningRate(schedule: LRSchedule, it: number): number {
  const { maxLr, warmupIters, decayIters, minLr } = schedule;
  if (schedule.decay === false) return maxLr;
  if (it < warmupIters) return (maxLr * (it + 1)) / (warmupIters + 1);
  if (it > decayIters) return minLr;
  // decayIters === warmupIters leaves no room for a cosine: go straight to the floor.
  if (decayIters <= warmupIters) return it === warmupIters ? maxLr : minLr;
  const ratio = (it - warmupIters) / (decayIters - warmupIters);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio)); // 1 → 0
  return minLr + coeff * (maxLr - minLr);
}

/**
 * A schedule with nanoGPT's usual choices: warm-up `warmupIters` (default 100, capped at a
 * tenth of the run), decay over the whole run, floor maxLr / 10.
 */
export function cosineSchedule(maxLr: number, totalIters: number, opts: Partial<LRSchedule> = {}): LRSchedule {
  const s: LRSchedule = {
    maxLr,
    warmupIters: opts.warmupIters ?? Math.min(100, Math.floor(totalIters / 10)),
    decayIters: opts.decayIters ?? totalIters,
    minLr: opts.minLr ?? maxLr / 10,
    decay: opts.decay ?? true,
  };
  checkSchedule(s);
  return s;
}

/** Throws a one-line error naming the bad field. */
export function checkSchedule(s: LRSchedule, source = "schedule"): void {
  for (const key of ["maxLr", "minLr"] as const) {
    if (!Number.isFinite(s[key]) || s[key] < 0) throw new Error(`${source}: field "${key}" must be a finite number >= 0, got ${s[key]}`);
  }
  for (const key of ["warmupIters", "decayIters"] as const) {
    if (!Number.isInteger(s[key]) || s[key] < 0) throw new Error(`${source}: field "${key}" must be an integer >= 0, got ${s[key]}`);
  }
  if (s.minLr > s.maxLr) throw new Error(`${source}: field "minLr" (${s.minLr}) must not exceed "maxLr" (${s.maxLr})`);
}

/** The learning rate of every step 0 … iters − 1, e.g. to plot the schedule before training. */
export function scheduleCurve(schedule: LRSchedule, iters: number): number[] {
  return Array.from({ length: iters }, (_, it) => learningRate(schedule, it));
}
