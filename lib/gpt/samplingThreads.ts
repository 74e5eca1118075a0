/**
 * Sampling on every core: a batch of prompts split between threads, each answering its rows.
 *
 * Sampling answers is most of the later chapters' work (the answers the labeller ranks, PPO's
 * rollouts, every held-out evaluation), and tfjs's wasm backend computes on one core. As data
 * parallelism does for training (lib/pretrain/dataParallel.ts), the rows are cut into contiguous shards:
 * the calling thread samples the first while worker threads (each with its own wasm backend and
 * a copy of the weights) sample the others, and the answers are put back in order.
 *
 * The call stays synchronous, so every function that samples keeps its plain signature: the
 * workers get their shard as a message and the weights through a SharedArrayBuffer, and the
 * calling thread, once its own shard is done, blocks on Atomics.wait until each worker has
 * signalled, then takes the answer with receiveMessageOnPort (as the synckit package does).
 *
 * Randomness: rows are split this way only when each row draws from its own random stream
 * (generateBatch's streams: "row") or nothing is drawn (greedy decoding), so the answers are the
 * same with any number of threads (lib/gpt/rollout.ts).
 */
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { MessageChannel, MessagePort, receiveMessageOnPort, Worker } from "worker_threads";
import { backendInfo, matmulRequestOfThisThread } from "../core/backend";
import type { GPTConfig, GPTParams } from "./gpt";

/** What a worker needs to sample its shard (everything plain: it travels as a message). */
export interface ShardJob {
  names: string[];
  shapes: number[][];
  /** All weights, one after the other in `names` order. */
  weights: Float32Array;
  config: GPTConfig;
  prompts: readonly number[][];
  /** BatchGenerateOptions without rng and threads. */
  options: Record<string, unknown>;
  /** Seeds of the rows' random streams (none for greedy decoding). */
  rowSeeds?: number[];
}

export interface ShardAnswer {
  responses?: number[][];
  ended?: boolean[];
  error?: string;
}

/** Longest a caller waits for a worker's shard before giving up with an error. */
const SHARD_TIMEOUT_MS = 10 * 60_000;

interface SamplingWorker {
  worker: Worker;
  port: MessagePort;
  /** [0]: 0 while a job runs, 1 when its answer is on the port (or the worker is ready). */
  flag: Int32Array;
}

/** The worker threads, started on first use and kept for the process (unref'd: they never keep it alive). */
const workers: SamplingWorker[] = [];
let weightBuffer = new Float32Array(new SharedArrayBuffer(4));

function workerScript(): { file: string; execArgv: string[] } {
  const ts = __filename.endsWith(".ts");
  return { file: path.join(__dirname, ts ? "samplingWorker.ts" : "samplingWorker.js"), execArgv: ts ? ["-r", "ts-node/register/transpile-only"] : [] };
}

function waitFor(w: SamplingWorker, what: string): void {
  if (Atomics.wait(w.flag, 0, 0, SHARD_TIMEOUT_MS) === "timed-out") throw new Error(`sampling thread: no answer after ${SHARD_TIMEOUT_MS / 60000} minutes ${what}`);
}

function startWorker(): SamplingWorker {
  const backend = backendInfo()?.name ?? tf.getBackend();
  // The same engines as this thread (onnxruntime, which the decoder's products use, is loaded with either native one).
  const matmul = matmulRequestOfThisThread();
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { file, execArgv } = workerScript();
  const worker = new Worker(file, { execArgv, workerData: { backend, matmul, port: port2, flag }, transferList: [port2] });
  worker.unref();
  const w = { worker, port: port1, flag };
  waitFor(w, "while starting");
  const hello = receiveMessageOnPort(port1)?.message as ShardAnswer | undefined;
  if (hello?.error !== undefined) {
    void worker.terminate();
    throw new Error(`sampling thread failed to start: ${hello.error}`);
  }
  return w;
}

/** One thread's share of a batch: its rows and, with per-row streams, their seeds. */
export interface SampleShard {
  prompts: readonly number[][];
  rowSeeds?: number[];
}

/**
 * Sample `shards.length` shards of rows: shard 0 here with `sampleHere`, each other one by a
 * worker thread (started on first use) with the same weights. Returns the shards' answers in order.
 */
export function sampleShardsOnThreads(
  params: GPTParams, config: GPTConfig, shards: SampleShard[], options: Record<string, unknown>,
  sampleHere: (shard: SampleShard) => { responses: number[][]; ended: boolean[] },
): { responses: number[][]; ended: boolean[] }[] {
  while (workers.length < shards.length - 1) workers.push(startWorker());
  const names = Object.keys(params);
  const total = names.reduce((s, n) => s + params[n].size, 0);
  if (weightBuffer.length < total) weightBuffer = new Float32Array(new SharedArrayBuffer(total * 4));
  let o = 0;
  for (const n of names) {
    weightBuffer.set(params[n].dataSync() as Float32Array, o);
    o += params[n].size;
  }
  const shapes = names.map((n) => params[n].shape);
  const busy = shards.slice(1).map((shard, i) => {
    const w = workers[i];
    Atomics.store(w.flag, 0, 0);
    const job: ShardJob = { names, shapes, weights: weightBuffer, config, prompts: shard.prompts, options, rowSeeds: shard.rowSeeds };
    w.worker.postMessage(job);
    return w;
  });
  let mine: { responses: number[][]; ended: boolean[] } | undefined;
  let failure: Error | undefined;
  try {
    mine = sampleHere(shards[0]);
  } catch (e) {
    failure = e as Error;
  }
  // Always collect every worker's answer, so none is left on its port for the next call.
  const theirs = busy.map((w) => {
    waitFor(w, "for its shard of the batch");
    const a = receiveMessageOnPort(w.port)?.message as ShardAnswer | undefined;
    if (a === undefined || a.error !== undefined || a.responses === undefined || a.ended === undefined) {
      failure ??= new Error(`sampling thread: ${a?.error ?? "no answer"}`);
      return { responses: [], ended: [] };
    }
    return { responses: a.responses, ended: a.ended };
  });
  if (failure !== undefined) throw failure;
  return [mine!, ...theirs];
}
