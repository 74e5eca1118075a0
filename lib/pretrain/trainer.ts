/**
 * The training loop, as nanoGPT's train.py, for any model given as named variables and a
 * loss function:
 *
 *   for it = 0 … maxIters − 1:
 *     every evalInterval steps: estimate train and val loss (mean over evalIters batches)
 *     lr    = schedule(it)                   warm-up, then cosine decay (lib/core/schedule)
 *     batch = getBatch("train", rng)
 *     loss, grads = ∂ lossFn(batch) / ∂ params       tf.variableGrads
 *     grads = clip(grads, gradClip)          by global norm (lib/core/optim)
 *     AdamW update with lr                   (lib/core/optim)
 *     every checkpointInterval steps: save a checkpoint (lib/pretrain/checkpoint)
 *   final evaluation and checkpoint
 *
 * It shows a live loss chart in a notebook, and a progress bar with ETA on a terminal (plain
 * periodic lines when the output is not a terminal: a notebook, a log file, CI).
 *
 * Reproducible: with the same seed, a run gives the same losses every time on the same
 * backend, and a run interrupted at step k and resumed from its checkpoint gives exactly the
 * same losses as one that never stopped. For that, everything random in a step must come from
 * the trainer's RNG (batches, and dropout seeds via `ctx.rng` in lossFn), whose state the
 * checkpoint saves; evaluations draw from their own RNG, seeded by (seed, step), so they never
 * shift the training batches.
 */
import * as tf from "@tensorflow/tfjs";
import { SingleBar } from "cli-progress";
import { AdamW, AdamWConfig, AdamWHyper, NamedTensors, Params, clipByGlobalNorm } from "../core/optim";
import { LRSchedule, checkSchedule, learningRate } from "../core/schedule";
import { LossHistory, assignParams, checkpointExists, disposeCheckpoint, loadCheckpoint, saveCheckpoint } from "./checkpoint";
import { createRng, Rng } from "../core/random";
import type { Split } from "./batches";
import type { Tokenizer, TokenizerJSON } from "../tokens/tokenizer";
import { liveLineChart, LiveLineChart } from "../show/plot";
import { inKernel } from "../show/display";
import { defaultTrainingThreads } from "../core/backend";
import { DataParallel, ShardLossSpec, TensorBatch } from "./dataParallel";

/** What lossFn and evalLoss are told about the call. */
export interface StepContext {
  /** Update number (0-based) for training; the step evaluated at for evaluation. */
  step: number;
  /** true during training steps, false during evaluation (e.g. to switch dropout off). */
  training: boolean;
  /** The RNG to draw any randomness from (dropout seeds: seedFor(ctx.rng)). */
  rng: Rng;
}

export interface StepInfo {
  step: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping (NaN when gradClip is 0). */
  gradNorm: number;
  /** Milliseconds this step took. */
  ms: number;
}

export interface EvalInfo {
  step: number;
  trainLoss: number;
  valLoss: number;
  /** exp(loss): "as unsure as a uniform choice among this many tokens". */
  trainPerplexity: number;
  valPerplexity: number;
}

export type ProgressMode = "auto" | "bar" | "lines" | "none";

export interface TrainOptions<B> {
  /** The model's trainable variables by name. Updated in place. */
  params: Params;
  /** Mean loss of a batch (a scalar). Called inside tf.tidy and tf.variableGrads. */
  lossFn: (batch: B, ctx: StepContext) => tf.Scalar;
  /** A batch of a split, drawing its randomness from `rng`. Its tensors are disposed by the trainer. */
  getBatch: (split: Split, rng: Rng) => B;
  /**
   * Split every batch across threads (lib/pretrain/dataParallel.ts): the main thread and workers each
   * compute a shard's gradients, averaged into the whole batch's. The batch must be a record
   * of tensors with the batch on axis 0, and `loss` must compute what lossFn computes (a
   * worker cannot receive the closure). threads 1 (or no dataParallel) = lossFn alone.
   * `frozen`: weights the loss also reads, untrained (see DataParallelOptions).
   */
  dataParallel?: { threads?: number; loss: ShardLossSpec; frozen?: Record<string, tf.Tensor> };
  /** Loss for evaluations (default: lossFn with ctx.training = false). */
  evalLoss?: (batch: B, ctx: StepContext) => tf.Scalar;
  /** AdamW settings, or an AdamW to continue with (then its state is the caller's). */
  optimizer?: AdamWConfig | AdamW;
  /** Learning rate per step: a schedule, or a function of the step. Default: the optimizer's constant lr. */
  schedule?: LRSchedule | ((it: number) => number);
  /** Total number of updates (counted from 0, including steps done before a resume). */
  maxIters: number;
  /** Evaluate every this many steps (and at the end). Default: maxIters / 10. */
  evalInterval?: number;
  /** Batches per split averaged by each evaluation; 0 disables evaluation. Default 20. */
  evalIters?: number;
  /** Clip gradients to this global norm; 0 disables. Default 1.0 (nanoGPT). */
  gradClip?: number;
  /** Seed of the training RNG (batches, dropout). Default 1337. */
  seed?: number;
  /** Where to save checkpoints (atomically). None: no checkpoints. */
  checkpointDir?: string;
  /** Save every this many steps (and always at the end). Default: only at the end. */
  checkpointInterval?: number;
  /** Continue from checkpointDir when it holds a checkpoint (params, optimizer, RNG, step, losses). */
  resume?: boolean;
  /** Model configuration to store in checkpoints (e.g. the GPTConfig). */
  modelConfig?: unknown;
  /** Tokenizer to store in checkpoints. */
  tokenizer?: Tokenizer | TokenizerJSON;
  /** More JSON to store in checkpoints. */
  extra?: Record<string, unknown>;
  /** Called after every step. */
  onStep?: (info: StepInfo) => void;
  /** Called after every evaluation. */
  onEval?: (info: EvalInfo) => void;
  /** Live loss chart in a notebook (default true; nothing is drawn outside a kernel). */
  chart?: boolean;
  /** Title of the chart. */
  chartTitle?: string;
  /**
   * Terminal output: "bar" (cli-progress on stderr), "lines" (a line every logInterval steps
   * and at evaluations), "none"; "auto" (default) = bar when stderr is a terminal and we are
   * not in a notebook, else lines. Never both.
   */
  progress?: ProgressMode;
  /** Steps between two progress lines (default: ~20 lines per run). */
  logInterval?: number;
  /** Where lines go (default console.log). */
  log?: (line: string) => void;
}

export interface TrainSummary {
  /** Step reached (= maxIters unless nothing was left to do). */
  step: number;
  /** Updates done by this call (fewer than step after a resume). */
  iters: number;
  /** Step this call started from (0, or the checkpoint's step). */
  startStep: number;
  /** Last evaluated train loss (last batch loss if evaluation is off). */
  trainLoss: number;
  /** Last evaluated val loss (NaN if evaluation is off). */
  valLoss: number;
  trainPerplexity: number;
  valPerplexity: number;
  /** Wall-clock seconds of this call, evaluations and checkpoints included. */
  seconds: number;
  /** Mean milliseconds per training step (evaluations excluded). */
  msPerStep: number;
  /** Threads that computed each step (1 = no data parallelism). */
  threads: number;
  /** All losses of the run, from step 0 (those before a resume come from the checkpoint). */
  history: LossHistory;
  /** Directory of the checkpoint resumed from, if any. */
  resumedFrom?: string;
}

/** Train `params` (see the top of the file). */
export async function train<B>(opts: TrainOptions<B>): Promise<TrainSummary> {
  const t0 = performance.now();
  const maxIters = opts.maxIters;
  if (!Number.isInteger(maxIters) || maxIters < 0) throw new Error(`train: maxIters must be an integer >= 0, got ${maxIters}`);
  const evalIters = opts.evalIters ?? 20;
  const evalInterval = opts.evalInterval ?? Math.max(1, Math.round(maxIters / 10));
  const gradClip = opts.gradClip ?? 1.0;
  const seed = opts.seed ?? 1337;
  const checkpointInterval = opts.checkpointInterval ?? 0;
  for (const [k, v] of Object.entries({ evalIters, gradClip, checkpointInterval })) {
    if (!(v >= 0) || !Number.isFinite(v)) throw new Error(`train: ${k} must be a finite number >= 0, got ${v}`);
  }
  if (!Number.isInteger(evalInterval) || evalInterval < 1) throw new Error(`train: evalInterval must be an integer >= 1, got ${evalInterval}`);
  if (opts.resume && opts.checkpointDir === undefined) throw new Error("train: resume needs checkpointDir");

  // Trainable variables only (frozen ones, trainable = false, are left alone).
  const names = Object.keys(opts.params).filter((k) => opts.params[k].trainable);
  const varList = names.map((k) => opts.params[k]);
  const nameOfVar = new Map(names.map((k) => [opts.params[k].name, k]));
  const ownOptimizer = !(opts.optimizer instanceof AdamW);
  const optimizer = opts.optimizer instanceof AdamW ? opts.optimizer : new AdamW(opts.params, opts.optimizer ?? {});
  const schedule = opts.schedule;
  if (schedule !== undefined && typeof schedule !== "function") checkSchedule(schedule);
  const lrAt = (it: number): number =>
    schedule === undefined ? optimizer.hyper.lr : typeof schedule === "function" ? schedule(it) : learningRate(schedule, it);
  const evalLoss = opts.evalLoss ?? opts.lossFn;
  const log = opts.log ?? ((line: string) => console.log(line));

  let rng = createRng(seed);
  let start = 0;
  const threads = opts.dataParallel === undefined ? 1 : opts.dataParallel.threads ?? defaultTrainingThreads();
  let dp: DataParallel | undefined;
  let history: LossHistory = { train: [], eval: [] };
  let resumedFrom: string | undefined;
  try {
    // ---- resume
    if (opts.resume && opts.checkpointDir !== undefined) {
      if (checkpointExists(opts.checkpointDir)) {
        const ck = loadCheckpoint(opts.checkpointDir);
        try {
          assignParams(opts.params, ck.params, ck.dir);
          if (ck.optimizer === undefined) throw new Error(`${ck.dir}: has no optimizer state; cannot resume training exactly`);
          optimizer.loadOptimizerState(ck.optimizer, ck.dir);
        } finally {
          disposeCheckpoint(ck);
        }
        if (ck.rng !== undefined) rng = createRng(seed, ck.rng);
        start = ck.step;
        if (ck.losses !== undefined) history = { train: [...ck.losses.train], eval: [...ck.losses.eval] };
        resumedFrom = ck.dir;
      }
    }

    // After resume: the workers copy the frozen weights once, at start.
    if (opts.dataParallel !== undefined && threads > 1) dp = await DataParallel.start(opts.params, { threads, loss: opts.dataParallel.loss, frozen: opts.dataParallel.frozen });

    const mode = progressMode(opts.progress ?? "auto");
    const logInterval = opts.logInterval ?? Math.max(1, Math.round(maxIters / 20));
    if (mode !== "none" && resumedFrom !== undefined) log(`resumed from ${resumedFrom} at step ${start}`);
    if (mode !== "none" && opts.resume && resumedFrom === undefined) log(`no checkpoint in ${opts.checkpointDir} yet: starting from step 0`);
    const chart: LiveLineChart | undefined =
      opts.chart === false ? undefined : liveLineChart({ title: opts.chartTitle ?? "Loss", xTitle: "step", yTitle: "cross-entropy loss" });
    if (chart !== undefined) {
      for (const [s, l] of history.train) chart.push("train", s, l);
      for (const [s, , v] of history.eval) chart.push("val", s, v);
    }
    const bar =
      mode === "bar"
        ? new SingleBar({
            format: "train |{bar}| {value}/{total} | loss {loss} | val {val} | {ms} ms/step | ETA {eta_formatted}",
            barsize: 24,
            hideCursor: true,
            etaBuffer: 20,
          })
        : undefined;
    bar?.start(maxIters, start, { loss: "-", val: "-", ms: "-" });

    let lastEval: EvalInfo | undefined;
    let lastLoss = NaN;
    let stepMs = 0;
    let steps = 0;

    const evaluate = async (step: number): Promise<void> => {
      if (evalIters === 0) return;
      const last = history.eval[history.eval.length - 1];
      if (last !== undefined && last[0] === step) {
        lastEval = info(step, last[1], last[2]);
        return; // already evaluated at this step (before the checkpoint we resumed from)
      }
      // Own RNG per evaluation: the same batches whether or not the run was resumed.
      const evalRng = createRng(`${seed}:eval:${step}`);
      const mean = async (split: Split): Promise<number> => {
        let sum = 0;
        for (let k = 0; k < evalIters; k++) {
          if (dp !== undefined && opts.evalLoss === undefined) {
            const batch = opts.getBatch(split, evalRng);
            try {
              sum += await dp.loss(tensorBatch(batch), { step, seed: `${seed}:eval` });
            } finally {
              tf.dispose(Object.values(tensorBatch(batch)));
            }
            continue;
          }
          sum += tf.tidy(() => {
            const batch = opts.getBatch(split, evalRng);
            return evalLoss(batch, { step, training: false, rng: evalRng }).dataSync()[0];
          });
        }
        return sum / evalIters;
      };
      const trainLoss = await mean("train");
      const valLoss = await mean("val");
      history.eval.push([step, trainLoss, valLoss]);
      lastEval = info(step, trainLoss, valLoss);
      chart?.push("val", step, valLoss);
      bar?.update({ val: valLoss.toFixed(4) });
      if (mode === "lines") {
        log(`step ${step}/${maxIters}: train loss ${trainLoss.toFixed(4)}, val loss ${valLoss.toFixed(4)} (perplexity ${Math.exp(valLoss).toFixed(2)})`);
      }
      opts.onEval?.(lastEval);
    };

    const save = (step: number): void => {
      if (opts.checkpointDir === undefined) return;
      const state = optimizer.optimizerState();
      try {
        saveCheckpoint(opts.checkpointDir, {
          params: opts.params,
          optimizer: state,
          config: opts.modelConfig,
          tokenizer: opts.tokenizer,
          step,
          rng: rng.state(),
          losses: history,
          extra: { ...opts.extra, training: trainingSettings(maxIters, schedule, optimizer.hyper, seed, evalInterval, evalIters, gradClip) },
        });
      } finally {
        tf.dispose(Object.values(state.tensors));
      }
    };

    // ---- the loop
    const loopStart = performance.now();
    for (let it = start; it < maxIters; it++) {
      if (it % evalInterval === 0) await evaluate(it);
      const lr = lrAt(it);
      const s0 = performance.now();
      let loss = NaN;
      let gradNorm = NaN;
      // Data parallel: the threads compute the gradients (async), then the update as below.
      let shared: { loss: number; grads: NamedTensors } | undefined;
      if (dp !== undefined) {
        const batch = tensorBatch(opts.getBatch("train", rng));
        try {
          shared = await dp.gradients(batch, { step: it, training: true, seed });
        } finally {
          tf.dispose(Object.values(batch));
        }
      }
      tf.tidy(() => {
        let named: NamedTensors = {};
        if (shared !== undefined) {
          loss = shared.loss;
          named = shared.grads;
        } else {
          const batch = opts.getBatch("train", rng);
          const ctx: StepContext = { step: it, training: true, rng };
          const { value, grads } = tf.variableGrads(() => opts.lossFn(batch, ctx), varList);
          loss = value.dataSync()[0];
          for (const [varName, g] of Object.entries(grads)) named[nameOfVar.get(varName) ?? varName] = g;
        }
        if (!Number.isFinite(loss)) {
          throw new Error(`train: the loss is ${loss} at step ${it} (lr ${lr.toExponential(2)}); try a lower learning rate or gradClip`);
        }
        let use = named;
        if (gradClip > 0) {
          const clipped = clipByGlobalNorm(named, gradClip);
          use = clipped.grads;
          gradNorm = clipped.norm;
        }
        optimizer.step(use, lr);
      });
      if (shared !== undefined) tf.dispose(Object.values(shared.grads)); // made outside the tidy
      const ms = performance.now() - s0;
      stepMs += ms;
      steps += 1;
      lastLoss = loss;
      history.train.push([it, loss]);
      chart?.push("train", it, loss);
      bar?.update(it + 1, { loss: loss.toFixed(4), ms: Math.round(stepMs / steps) });
      if (mode === "lines" && ((it + 1) % logInterval === 0 || it + 1 === maxIters)) {
        // ETA from wall-clock time since the loop started, so evaluations and saves count too.
        const eta = (((performance.now() - loopStart) / steps) * (maxIters - it - 1)) / 1000;
        log(`step ${it + 1}/${maxIters}: loss ${loss.toFixed(4)}, lr ${lr.toExponential(2)}, ${Math.round(stepMs / steps)} ms/step, ETA ${formatSeconds(eta)}`);
      }
      opts.onStep?.({ step: it, loss, lr, gradNorm, ms });
      if (checkpointInterval > 0 && (it + 1) % checkpointInterval === 0 && it + 1 < maxIters) save(it + 1);
      // Give the event loop a turn (a few µs): chart messages to the notebook go out while training runs.
      await new Promise((r) => setImmediate(r));
    }

    await evaluate(Math.max(start, maxIters));
    save(Math.max(start, maxIters));
    bar?.stop();
    chart?.close();

    const trainLoss = lastEval?.trainLoss ?? lastLoss;
    const valLoss = lastEval?.valLoss ?? NaN;
    const summary: TrainSummary = {
      step: Math.max(start, maxIters),
      iters: steps,
      startStep: start,
      trainLoss,
      valLoss,
      trainPerplexity: Math.exp(trainLoss),
      valPerplexity: Math.exp(valLoss),
      seconds: (performance.now() - t0) / 1000,
      msPerStep: steps > 0 ? stepMs / steps : 0,
      threads: dp?.threads ?? 1,
      history,
    };
    if (resumedFrom !== undefined) summary.resumedFrom = resumedFrom;
    if (mode !== "none") {
      log(
        `trained ${steps} steps in ${formatSeconds(summary.seconds)} (${Math.round(summary.msPerStep)} ms/step)` +
          (Number.isNaN(valLoss) ? `, last loss ${trainLoss.toFixed(4)}` : `: train loss ${trainLoss.toFixed(4)}, val loss ${valLoss.toFixed(4)}`) +
          (opts.checkpointDir !== undefined ? `; checkpoint in ${opts.checkpointDir}` : ""),
      );
    }
    return summary;
  } finally {
    if (ownOptimizer) optimizer.dispose();
    await dp?.dispose();
  }
}

/** A batch as a record of tensors (what data parallelism can split), or a clear error. */
function tensorBatch(batch: unknown): TensorBatch {
  const ok = batch !== null && typeof batch === "object" && Object.keys(batch).length > 0 &&
    Object.values(batch as object).every((t) => t instanceof tf.Tensor);
  if (!ok) throw new Error("train: dataParallel needs getBatch to return a record of tensors ({x, y, …}) with the batch on axis 0");
  return batch as TensorBatch;
}

function info(step: number, trainLoss: number, valLoss: number): EvalInfo {
  return { step, trainLoss, valLoss, trainPerplexity: Math.exp(trainLoss), valPerplexity: Math.exp(valLoss) };
}

/** "auto" → bar on an interactive terminal outside notebooks, lines otherwise. */
export function progressMode(mode: ProgressMode, stderrIsTTY = process.stderr.isTTY === true, kernel = inKernel()): Exclude<ProgressMode, "auto"> {
  if (mode !== "auto") return mode;
  return stderrIsTTY && !kernel ? "bar" : "lines";
}

/** 75 → "1m15s", 3 → "3.0s". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s - m * 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

function trainingSettings(
  maxIters: number,
  schedule: TrainOptions<unknown>["schedule"],
  hyper: AdamWHyper,
  seed: number,
  evalInterval: number,
  evalIters: number,
  gradClip: number,
): Record<string, unknown> {
  return {
    maxIters,
    seed,
    evalInterval,
    evalIters,
    gradClip,
    optimizer: { type: "AdamW", ...hyper },
    schedule: typeof schedule === "function" ? "custom function" : (schedule ?? null),
  };
}
