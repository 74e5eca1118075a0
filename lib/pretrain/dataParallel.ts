/**
 * Data parallelism: one training step's batch split across threads.
 *
 * tfjs's wasm backend computes on ONE core in Node (its threaded build is disabled there),
 * so a laptop's other cores sit idle while the model trains. Data parallelism is how large
 * models are trained on many GPUs, and it works the same here with threads:
 *
 *   1. cut the batch [B, …] into shards along the batch axis (rows);
 *   2. every thread holds a copy of the weights and computes the loss and the gradients of
 *      its shard: the main thread one shard, each worker thread (its own wasm backend) another;
 *   3. the gradients are averaged, weighted by how much each shard counts (its rows, or the
 *      positions its mask keeps), which gives exactly the gradient of the whole batch's loss;
 *   4. the optimizer updates the main thread's weights, which the workers copy before the
 *      next step.
 *
 * The maths is unchanged: only the order of float additions differs (tests compare with a
 * single-thread step to 1e-5). Weights go to the workers and gradients come back through
 * SharedArrayBuffers (no copies through messages); batches are small and travel as messages.
 *
 * A worker cannot receive a JavaScript closure, so the loss a worker computes is named: a
 * built-in one ("gpt": next-token cross-entropy with an optional mask, used by pretraining
 * and SFT) or `{ module, name }`: an absolute module path and the name of the loss function
 * it exports, with the ShardLossFn signature. The main thread calls the very same function.
 */
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { Worker } from "worker_threads";
import { backendInfo, checkThreads, defaultTrainingThreads, matmulRequestOfThisThread, shardSizes } from "../core/backend";
import { blasDefaultThreads, setBlasThreads } from "../core/kernels";
import type { GPTConfig } from "../gpt/gpt";
import { gptLoss } from "../gpt/gpt";
import type { NamedTensors, Params } from "../core/optim";
import { createRng, Rng } from "../core/random";

/** A batch whose tensors all have the batch on axis 0 (e.g. {x, y, mask}). */
export type TensorBatch = Record<string, tf.Tensor>;

/** What a shard's loss is told about the call. */
export interface ShardContext {
  step: number;
  training: boolean;
  /** Randomness (dropout) of this shard: its own stream, seeded by step and shard. */
  rng: Rng;
}

/**
 * The loss of one shard: a scalar, the mean over what the shard counts. `params` holds the
 * trained weights and, under their own names, the frozen ones (DataParallelOptions.frozen).
 */
export type ShardLossFn = (params: Record<string, tf.Tensor>, batch: TensorBatch, options: unknown, ctx: ShardContext) => tf.Scalar;

/** Which loss the threads compute: a built-in one by name, or an exported function of a module. */
export type ShardLossSpec = { builtin: "gpt"; options: { config: GPTConfig } } | { module: string; name: string; options?: unknown };

/** Next-token cross-entropy of a GPT on {x, y, mask?} (mask: SFT's "answer tokens only"). */
export const gptShardLoss: ShardLossFn = (params, batch, options, ctx) => {
  const { config } = options as { config: GPTConfig };
  return gptLoss(params as never, config, batch.x, batch.y, { mask: batch.mask, training: ctx.training, rng: ctx.rng });
};

/** Resolve a spec to its function (the same in the main thread and in the workers). */
export function shardLossOf(spec: ShardLossSpec): ShardLossFn {
  if ("builtin" in spec) {
    if (spec.builtin === "gpt") return gptShardLoss;
    throw new Error(`dataParallel: unknown built-in loss "${String((spec as { builtin: unknown }).builtin)}"; use "gpt" or { module, name }`);
  }
  if (!path.isAbsolute(spec.module)) throw new Error(`dataParallel: the loss module must be an absolute path, got "${spec.module}"`);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const mod = require(spec.module) as Record<string, unknown>;
  const fn = mod[spec.name];
  if (typeof fn !== "function") throw new Error(`dataParallel: ${spec.module} exports no function "${spec.name}"`);
  return fn as ShardLossFn;
}

/** A record's weights renamed `${prefix}${name}`, to go beside others in one record (DataParallelOptions.frozen). */
export function withPrefix<T>(prefix: string, weights: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(weights).map(([k, v]) => [prefix + k, v]));
}

/** withPrefix undone: the weights named `${prefix}…` (prefix removed), and the others. */
export function splitPrefix<T>(weights: Record<string, T>, prefix: string): { prefixed: Record<string, T>; rest: Record<string, T> } {
  const prefixed: Record<string, T> = {}, rest: Record<string, T> = {};
  for (const [k, v] of Object.entries(weights)) {
    if (k.startsWith(prefix)) prefixed[k.slice(prefix.length)] = v;
    else rest[k] = v;
  }
  return { prefixed, rest };
}

interface WireTensor {
  data: Int32Array | Float32Array | Uint8Array;
  shape: number[];
  dtype: tf.DataType;
}

/** Rows [start, start + n) of every tensor of a batch, as plain arrays for a message. */
function sliceToWire(batch: TensorBatch, start: number, n: number): Record<string, WireTensor> {
  const out: Record<string, WireTensor> = {};
  for (const [k, t] of Object.entries(batch)) {
    const rowSize = t.size / t.shape[0];
    const all = t.dataSync();
    const data = (all as Int32Array).slice(start * rowSize, (start + n) * rowSize);
    out[k] = { data: data as WireTensor["data"], shape: [n, ...t.shape.slice(1)], dtype: t.dtype };
  }
  return out;
}

function sliceRows(batch: TensorBatch, start: number, n: number): TensorBatch {
  const out: TensorBatch = {};
  for (const [k, t] of Object.entries(batch)) {
    out[k] = n === t.shape[0] ? t : tf.slice(t, [start], [n]);
  }
  return out;
}

/** Each shard's randomness: its own stream, from the run's seed, the step and the shard. */
const shardSeed = (ctx: { step: number; seed: string | number }, shard: number): string => `${ctx.seed}:${ctx.step}:shard${shard}`;

/** Each shard's share of the mean (its weight over the total; equal shares when nothing counts). */
function shares(weights: number[]): number[] {
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => (total > 0 ? w / total : 1 / weights.length));
}

/** How much a shard counts in the mean: the positions its mask keeps, else its rows. */
function shardWeight(batch: TensorBatch): number {
  const mask = batch.mask;
  if (mask === undefined) return batch[Object.keys(batch)[0]].shape[0];
  return tf.tidy(() => tf.sum(tf.cast(mask, "float32")).dataSync()[0]);
}

export interface DataParallelOptions {
  /** Threads in all, the main thread included (default: defaultTrainingThreads()). 1 = no workers. */
  threads?: number;
  /** The shard loss (see the top of the file). */
  loss: ShardLossSpec;
  /**
   * Weights the loss reads but nobody trains (DPO's reference model, the base model under LoRA's
   * adapters), copied to each worker once, at start. Their names must differ from the trained ones'.
   */
  frozen?: Record<string, tf.Tensor>;
}

interface WorkerReply {
  id: number;
  loss?: number;
  weight?: number;
  error?: string;
}

interface Slot {
  worker: Worker;
  grads: Float32Array;
  pending: Map<number, { ok: (r: WorkerReply) => void; fail: (e: Error) => void }>;
}

/** Where the worker script is: next to this file (.js when compiled, .ts under ts-node). */
function workerScript(): { file: string; execArgv: string[] } {
  const ts = __filename.endsWith(".ts");
  return {
    file: path.join(__dirname, ts ? "dataParallelWorker.ts" : "dataParallelWorker.js"),
    execArgv: ts ? ["-r", "ts-node/register/transpile-only"] : [],
  };
}

/**
 * The BLAS's threads per product while data parallelism runs (lib/core/kernels/blas.ts): its
 * default (every core) shared out between the threads that multiply at the same time, at
 * least 1 each, so that T threads do not start T × cores BLAS threads. The setting is one
 * per process, so the largest running DataParallel decides; the default comes back when the
 * last one is disposed. `threads` 0 = `dp` is done. No effect without a BLAS.
 */
const running = new Map<DataParallel, number>();
function shareBlasThreads(dp: DataParallel, threads: number): void {
  if (threads > 0) running.set(dp, threads);
  else running.delete(dp);
  if (running.size === 0) {
    setBlasThreads("default");
    return;
  }
  const cores = blasDefaultThreads();
  if (cores !== undefined) setBlasThreads(blasThreadsPerShare(cores, Math.max(...running.values())));
}

/** Each of `threads` data-parallel threads' BLAS threads per product, out of the BLAS's `cores`. */
export function blasThreadsPerShare(cores: number, threads: number): number {
  return Math.max(1, Math.floor(cores / threads));
}

/**
 * Gradients of a loss over a batch split across threads (see the top of the file). Create
 * with `await DataParallel.start(params, opts)`, call `gradients` each step, `dispose` at the end.
 */
export class DataParallel {
  readonly threads: number;
  private readonly names: string[];
  private readonly sizes: number[];
  private readonly offsets: number[];
  private readonly weights: Float32Array;
  private readonly slots: Slot[];
  private readonly lossFn: ShardLossFn;
  private readonly options: unknown;
  private nextId = 1;
  private disposed = false;
  private failure: Error | null = null;

  private constructor(private readonly params: Params, private readonly lossParams: Record<string, tf.Tensor>, threads: number, lossFn: ShardLossFn, options: unknown, slots: Slot[], names: string[], weights: Float32Array) {
    this.threads = threads;
    this.lossFn = lossFn;
    this.options = options;
    this.slots = slots;
    this.names = names;
    this.sizes = names.map((n) => params[n].size);
    this.offsets = [];
    let o = 0;
    for (const s of this.sizes) {
      this.offsets.push(o);
      o += s;
    }
    this.weights = weights;
  }

  /** Start the worker threads (threads − 1 of them), each loading the weights. */
  static async start(params: Params, opts: DataParallelOptions): Promise<DataParallel> {
    const threads = opts.threads ?? defaultTrainingThreads();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`dataParallel: threads must be an integer >= 1, got ${threads}`);
    checkThreads(threads, "dataParallel: threads");
    const lossFn = shardLossOf(opts.loss);
    const names = Object.keys(params).filter((k) => params[k].trainable);
    const extra = opts.frozen ?? {};
    const clash = Object.keys(extra).find((k) => k in params);
    if (clash !== undefined) throw new Error(`dataParallel: frozen weight "${clash}" has the name of a trained one; prefix the frozen names`);
    // Everything the loss reads: the trained weights and the frozen ones.
    const lossParams: Record<string, tf.Tensor> = { ...params, ...extra };
    const frozen = Object.keys(lossParams).filter((k) => !(k in params) || !params[k].trainable);
    const total = names.reduce((s, n) => s + params[n].size, 0);
    const weights = new Float32Array(new SharedArrayBuffer(Math.max(1, total) * 4));
    const backend = backendInfo()?.name ?? tf.getBackend();
    // Workers compute with the same matmul engine as this thread (its choice may have come
    // from initBackend's env option rather than process.env).
    const matmul = matmulRequestOfThisThread();
    const { file, execArgv } = workerScript();
    const slots: Slot[] = [];
    try {
      for (let w = 1; w < threads; w++) {
        const grads = new Float32Array(new SharedArrayBuffer(Math.max(1, total) * 4));
        const worker = new Worker(file, {
          execArgv,
          workerData: {
            backend,
            matmul,
            loss: opts.loss,
            names,
            shapes: names.map((n) => params[n].shape),
            frozen: frozen.map((n) => ({ name: n, shape: lossParams[n].shape, data: lossParams[n].dataSync() })),
            weights,
            grads,
          },
        });
        const slot: Slot = { worker, grads, pending: new Map() };
        slots.push(slot);
        await new Promise<void>((ok, fail) => {
          const onMsg = (m: WorkerReply | "ready") => {
            if (m === "ready") {
              worker.off("error", onErr);
              ok();
            } else if (m.error !== undefined) fail(new Error(`dataParallel worker ${w}: ${m.error}`));
          };
          const onErr = (e: Error) => fail(new Error(`dataParallel worker ${w} failed to start: ${e.message}`));
          worker.once("message", onMsg);
          worker.once("error", onErr);
        });
      }
    } catch (e) {
      await Promise.all(slots.map((s) => s.worker.terminate()));
      throw e;
    }
    const dp = new DataParallel(params, lossParams, threads, lossFn, opts.loss.options, slots, names, weights);
    if (threads > 1) shareBlasThreads(dp, threads);
    for (const slot of slots) {
      slot.worker.on("message", (m: WorkerReply) => {
        const p = slot.pending.get(m.id);
        if (p === undefined) return;
        slot.pending.delete(m.id);
        if (m.error !== undefined) p.fail(new Error(`dataParallel worker: ${m.error}`));
        else p.ok(m);
      });
      slot.worker.on("error", (e) => dp.fail(new Error(`dataParallel worker crashed: ${e.message}`)));
      slot.worker.on("exit", (code) => {
        if (!dp.disposed) dp.fail(new Error(`dataParallel worker exited (code ${code})`));
      });
    }
    return dp;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const s of this.slots) {
      for (const p of s.pending.values()) p.fail(e);
      s.pending.clear();
    }
  }

  /** Copy the main thread's current weights where the workers read them. */
  private publishWeights(): void {
    this.names.forEach((n, i) => this.weights.set(this.params[n].dataSync() as Float32Array, this.offsets[i]));
  }

  private ask(slot: Slot, msg: object): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((ok, fail) => {
      slot.pending.set(id, { ok, fail });
      slot.worker.postMessage({ ...msg, id });
    });
  }

  private check(): void {
    if (this.disposed) throw new Error("dataParallel: used after dispose()");
    if (this.failure) throw this.failure;
  }

  /**
   * Loss and gradients (by parameter name, trainable ones) of the whole batch, computed by
   * every thread on its shard and averaged. The caller disposes the gradients.
   */
  async gradients(batch: TensorBatch, ctx: { step: number; training: boolean; seed: string | number }): Promise<{ loss: number; grads: NamedTensors }> {
    const { mainRows, asked } = this.scatter(batch, "grad", ctx.training, ctx);
    // The main thread's shard, while the workers compute theirs.
    const vars = this.names.map((n) => this.params[n]);
    const mine = tf.tidy(() => {
      const main = sliceRows(batch, 0, mainRows);
      const { value, grads } = tf.variableGrads(() => this.lossFn(this.lossParams, main, this.options, { step: ctx.step, training: ctx.training, rng: createRng(shardSeed(ctx, 0)) }), vars);
      return { value, grads, weight: shardWeight(main) };
    });
    let replies: WorkerReply[];
    try {
      replies = await Promise.all(asked);
    } catch (e) {
      tf.dispose([mine.value, ...Object.values(mine.grads)]);
      throw e;
    }
    const share = shares([mine.weight, ...replies.map((r) => r.weight as number)]);
    const loss = share[0] * mine.value.dataSync()[0] + replies.reduce((s, r, i) => s + share[i + 1] * (r.loss as number), 0);
    const grads: NamedTensors = tf.tidy(() => {
      const out: NamedTensors = {};
      this.names.forEach((n, j) => {
        const v = this.params[n];
        let g = tf.mul(mine.grads[v.name], share[0]);
        replies.forEach((_, i) => {
          const view = this.slots[i].grads.subarray(this.offsets[j], this.offsets[j] + this.sizes[j]);
          g = tf.add(g, tf.mul(tf.tensor(new Float32Array(view), v.shape, "float32"), share[i + 1]));
        });
        out[n] = g;
      });
      return out;
    });
    tf.dispose([mine.value, ...Object.values(mine.grads)]);
    return { loss, grads };
  }

  /** Loss of the whole batch (no gradients), shards computed in parallel: evaluation. */
  async loss(batch: TensorBatch, ctx: { step: number; seed: string | number }): Promise<number> {
    const { mainRows, asked } = this.scatter(batch, "loss", false, ctx);
    const mine = tf.tidy(() => {
      const main = sliceRows(batch, 0, mainRows);
      const l = this.lossFn(this.lossParams, main, this.options, { step: ctx.step, training: false, rng: createRng(shardSeed(ctx, 0)) });
      return { loss: l.dataSync()[0], weight: shardWeight(main) };
    });
    const replies = await Promise.all(asked);
    const weights = [mine.weight, ...replies.map((r) => r.weight as number)];
    if (weights.every((w) => w === 0)) return 0; // nothing counts anywhere
    const share = shares(weights);
    return share[0] * mine.loss + replies.reduce((sum, r, i) => sum + share[i + 1] * (r.loss as number), 0);
  }

  /**
   * Cut the batch into shards, publish the weights and send shards 1… to the workers; shard 0,
   * the batch's first `mainRows` rows, stays with the main thread (sliced inside its tidy).
   */
  private scatter(batch: TensorBatch, kind: "grad" | "loss", training: boolean, ctx: { step: number; seed: string | number }): { mainRows: number; asked: Promise<WorkerReply>[] } {
    this.check();
    const sizes = shardSizes(batch[Object.keys(batch)[0]].shape[0], this.threads);
    if (this.slots.length > 0) this.publishWeights();
    let start = sizes[0];
    const asked = sizes.slice(1).map((n, i) => {
      const msg = { kind, batch: sliceToWire(batch, start, n), step: ctx.step, training, seed: shardSeed(ctx, i + 1) };
      start += n;
      return this.ask(this.slots[i], msg);
    });
    return { mainRows: sizes[0], asked };
  }

  /** Stop the workers. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    // Only a DataParallel that shared the BLAS's threads out gives them back (one thread never does).
    if (running.has(this)) shareBlasThreads(this, 0);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
