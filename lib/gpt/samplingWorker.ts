/**
 * A worker thread of lib/gpt/samplingThreads.ts: its own tfjs backend and copy of the weights; for
 * each job it loads the weights from shared memory, samples its shard of prompts, puts the
 * answer on its port and raises the flag the calling thread waits on.
 */
import * as tf from "@tensorflow/tfjs";
import { MessagePort, parentPort, workerData } from "worker_threads";
import { initBackend } from "../core/backend";
import type { GPTParams } from "./gpt";
import { generateRows } from "./rollout";
import type { ShardAnswer, ShardJob } from "./samplingThreads";

const { backend, matmul, port, flag } = workerData as { backend: string; matmul: string; port: MessagePort; flag: Int32Array };

function reply(answer: ShardAnswer): void {
  port.postMessage(answer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

let params: GPTParams = {};
let layout = "";

/** The job's weights in this thread's variables (made again only when the names or shapes change). */
function loadWeights(job: ShardJob): void {
  const key = JSON.stringify([job.names, job.shapes]);
  if (key !== layout) {
    tf.dispose(Object.values(params));
    params = {};
    job.names.forEach((n, i) => (params[n] = tf.tidy(() => tf.variable(tf.zeros(job.shapes[i]), false, undefined, "float32"))));
    layout = key;
  }
  let o = 0;
  for (const n of job.names) {
    const v = params[n];
    tf.tidy(() => v.assign(tf.tensor(job.weights.slice(o, o + v.size), v.shape, "float32")));
    o += v.size;
  }
}

async function main(): Promise<void> {
  try {
    await initBackend({ quiet: true, env: { ...process.env, COURSE_BACKEND: backend, COURSE_MATMUL: matmul } });
  } catch (e) {
    reply({ error: (e as Error).message });
    return;
  }
  parentPort!.on("message", (job: ShardJob) => {
    try {
      loadWeights(job);
      const g = generateRows(params, job.config, job.prompts, { ...(job.options as { maxNewTokens: number }), rowSeeds: job.rowSeeds });
      reply({ responses: g.responses, ended: g.ended });
    } catch (e) {
      reply({ error: (e as Error).message });
    }
  });
  reply({});
}

void main();
