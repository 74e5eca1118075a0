/**
 * A worker thread of lib/pretrain/dataParallel.ts: its own tfjs backend and copy of the model; on
 * each message it loads the current weights from shared memory, computes the loss (and the
 * gradients, written to its shared gradient buffer) of the shard it was sent, and replies.
 */
import * as tf from "@tensorflow/tfjs";
import { parentPort, workerData } from "worker_threads";
import { initBackend } from "../core/backend";
import { ShardLossSpec, shardLossOf, TensorBatch } from "./dataParallel";
import type { Params } from "../core/optim";
import { createRng } from "../core/random";

interface Init {
  backend: string;
  /** COURSE_MATMUL for this worker: the main thread's engine. */
  matmul: string;
  loss: ShardLossSpec;
  names: string[];
  shapes: number[][];
  frozen: { name: string; shape: number[]; data: Float32Array }[];
  weights: Float32Array;
  grads: Float32Array;
}

interface Job {
  id: number;
  kind: "grad" | "loss";
  batch: Record<string, { data: Int32Array | Float32Array; shape: number[]; dtype: tf.DataType }>;
  step: number;
  training: boolean;
  seed: string;
}

async function main(): Promise<void> {
  const init = workerData as Init;
  const port = parentPort!;
  try {
    await initBackend({ quiet: true, env: { ...process.env, COURSE_BACKEND: init.backend, COURSE_MATMUL: init.matmul } });
    const lossFn = shardLossOf(init.loss);
    const params: Params = {};
    const offsets: number[] = [];
    let o = 0;
    init.names.forEach((n, i) => {
      offsets.push(o);
      const size = init.shapes[i].reduce((a, b) => a * b, 1);
      params[n] = tf.tidy(() => tf.variable(tf.zeros(init.shapes[i]), true, undefined, "float32"));
      o += size;
    });
    for (const f of init.frozen) params[f.name] = tf.tidy(() => tf.variable(tf.tensor(f.data, f.shape, "float32"), false));
    const vars = init.names.map((n) => params[n]);

    port.on("message", (job: Job) => {
      try {
        // The main thread published the current weights before sending the job.
        init.names.forEach((n, i) => {
          const v = params[n];
          tf.tidy(() => v.assign(tf.tensor(init.weights.slice(offsets[i], offsets[i] + v.size), v.shape, "float32")));
        });
        const reply = tf.tidy(() => {
          const batch: TensorBatch = {};
          for (const [k, w] of Object.entries(job.batch)) batch[k] = tf.tensor(w.data, w.shape, w.dtype);
          const weight = batch.mask === undefined ? job.batch[Object.keys(job.batch)[0]].shape[0] : tf.sum(tf.cast(batch.mask, "float32")).dataSync()[0];
          const ctx = { step: job.step, training: job.training, rng: createRng(job.seed) };
          if (job.kind === "loss") return { id: job.id, loss: lossFn(params, batch, init.loss.options, ctx).dataSync()[0], weight };
          const { value, grads } = tf.variableGrads(() => lossFn(params, batch, init.loss.options, ctx), vars);
          init.names.forEach((n, i) => init.grads.set(grads[params[n].name].dataSync() as Float32Array, offsets[i]));
          return { id: job.id, loss: value.dataSync()[0], weight };
        });
        port.postMessage(reply);
      } catch (e) {
        port.postMessage({ id: job.id, error: (e as Error).message });
      }
    });
    port.postMessage("ready");
  } catch (e) {
    port.postMessage({ id: 0, error: (e as Error).message });
  }
}

void main();
