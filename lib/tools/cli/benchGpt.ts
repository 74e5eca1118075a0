/**
 * Times the GPT on the current machine: one training step's forward + backward (gradients
 * of gptLoss w.r.t. every parameter) and generation with and without the KV cache.
 *
 *   npm run build && node lib/dist/tools/cli/benchGpt.js [--preset nanogpt-cpu] [--B 12] [--T 64]
 *     [--reps 10] [--tokens 200] [--profile]
 *
 * Defaults: the nanogpt-cpu preset (vocab 65), B=12, T=64, wasm backend with the course's
 * kernels (initBackend). For the comparison with PyTorch in one sitting, see `npm run bench -- --torch`.
 *
 * `--workers N` also times data parallelism: N worker threads, each with its own wasm
 * backend and copy of the model (tfjs's wasm backend runs one thread in Node), each
 * computes the gradients of B/N sequences; the main thread sends the current weights and
 * the batch, and sums the returned gradients (what a trainer would then feed AdamW).
 */
import * as tf from "@tensorflow/tfjs";
import { isMainThread, parentPort, Worker, workerData } from "worker_threads";
import { initBackend } from "../../core/backend";
import { flopsPerToken, GPTConfig, GPTPresetName, GPT_PRESETS, gptConfig, gptLoss, initGPT } from "../../gpt/gpt";
import { generate } from "../../gpt/sampling";
import { Command, runAsScript, commandMain } from "./cli";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface WorkerJob { weights: Float32Array[]; idx: Int32Array; targets: Int32Array; b: number; t: number }

/** Worker side of --workers: weights in, gradients (same order) out. */
async function workerMain(): Promise<void> {
  await initBackend({ quiet: true });
  const config = gptConfig(workerData.preset as GPTPresetName, workerData.overrides);
  const params = initGPT(config, { seed: 1 });
  const names = Object.keys(params);
  parentPort!.on("message", (job: WorkerJob) => {
    names.forEach((n, i) => params[n].assign(tf.tensor(job.weights[i], params[n].shape)));
    const idx = tf.tensor2d(job.idx, [job.b, job.t], "int32");
    const targets = tf.tensor2d(job.targets, [job.b, job.t], "int32");
    const { value, grads } = tf.variableGrads(() => gptLoss(params, config, idx, targets), names.map((n) => params[n]));
    const out = names.map((n) => grads[params[n].name].dataSync() as Float32Array);
    const loss = value.dataSync()[0];
    tf.dispose([idx, targets, value, ...Object.values(grads)]);
    parentPort!.postMessage({ loss, grads: out }, out.map((g) => g.buffer));
  });
  parentPort!.postMessage("ready");
}

/** Median wall time of a data-parallel forward+backward over `n` workers. */
async function timeWorkers(n: number, preset: string, overrides: object, config: GPTConfig, params: Record<string, tf.Variable>,
  idx: tf.Tensor, targets: tf.Tensor, reps: number): Promise<number> {
  const isTs = __filename.endsWith(".ts");
  const workers = Array.from({ length: n }, () => new Worker(__filename, {
    workerData: { preset, overrides }, execArgv: isTs ? ["-r", "ts-node/register/transpile-only"] : [],
  }));
  await Promise.all(workers.map((w) => new Promise((ok) => w.once("message", ok))));
  const [B, T] = idx.shape;
  const per = B / n;
  const ids = idx.dataSync() as Int32Array, tg = targets.dataSync() as Int32Array;
  const names = Object.keys(params);
  const step = async () => {
    const t0 = performance.now();
    const weights = names.map((k) => params[k].dataSync() as Float32Array);
    const results = await Promise.all(workers.map((w, i) => new Promise<{ grads: Float32Array[] }>((ok) => {
      w.once("message", ok);
      w.postMessage({ weights, idx: ids.slice(i * per * T, (i + 1) * per * T), targets: tg.slice(i * per * T, (i + 1) * per * T), b: per, t: T });
    })));
    const sum = results[0].grads.map((g) => Float32Array.from(g));
    for (const r of results.slice(1)) r.grads.forEach((g, j) => { for (let k = 0; k < g.length; k++) sum[j][k] += g[k]; });
    for (const g of sum) for (let k = 0; k < g.length; k++) g[k] /= n; // mean over the whole batch
    lastGrads = sum;
    return performance.now() - t0;
  };
  let lastGrads: Float32Array[] = [];
  for (let i = 0; i < 3; i++) await step();
  // Same gradients as one pass over the whole batch (float32 rounding aside)?
  const { value, grads } = tf.variableGrads(() => gptLoss(params, config, idx, targets), names.map((k) => params[k]));
  let maxDiff = 0;
  names.forEach((k, j) => {
    const ref = grads[params[k].name].dataSync();
    for (let e = 0; e < ref.length; e++) maxDiff = Math.max(maxDiff, Math.abs(ref[e] - lastGrads[j][e]));
  });
  tf.dispose([value, ...Object.values(grads)]);
  if (maxDiff > 1e-4) throw new Error(`data-parallel gradients differ from the single pass by ${maxDiff}`);
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push(await step());
  await Promise.all(workers.map((w) => w.terminate()));
  return median(times);
}

interface BenchGptArgs {
  preset: GPTPresetName;
  vocab: number;
  B: number;
  T?: number;
  reps: number;
  tokens: number;
  workers: number;
  profile: boolean;
  verbose: boolean;
}

const BENCH_GPT: Command<BenchGptArgs> = {
  name: "bench-gpt",
  summary: "Time one training step's forward + backward and generation with and without the KV cache (compare ratios from one sitting).",
  options: {
    preset: { kind: "choice", choices: Object.keys(GPT_PRESETS), value: "NAME", default: "nanogpt-cpu", help: "model size" },
    vocab: { kind: "integer", value: "N", min: 1, default: 65, help: "vocabulary of nanogpt-cpu (Shakespeare's characters)" },
    B: { kind: "integer", value: "N", min: 1, default: 12, help: "batch size" },
    T: { kind: "integer", value: "N", min: 1, defaultText: "the preset's context", help: "sequence length" },
    reps: { kind: "integer", value: "N", min: 1, default: 10, help: "timed steps (the median is reported)" },
    tokens: { kind: "integer", value: "N", min: 1, default: 200, help: "generated tokens" },
    workers: { kind: "integer", value: "N", min: 0, default: 0, help: "also time data parallelism over N worker threads" },
    profile: { kind: "boolean", help: "kernel times from tf.profile" },
    verbose: { kind: "boolean", help: "every step's time" },
  },
  backend: "announce",
  async run(args, { out, backend: info }) {
    const preset = args.preset;
    const config = gptConfig(preset, preset === "nanogpt-cpu" ? { vocabSize: args.vocab } : {});
    const B = args.B, T = args.T ?? config.blockSize;
    const reps = args.reps;
    const params = initGPT(config, { seed: 1 });
    const vars = Object.values(params);
    const idx = tf.randomUniform([B, T], 0, config.vocabSize, "int32", 2);
    const targets = tf.randomUniform([B, T], 0, config.vocabSize, "int32", 3);

    // Wall time, and this process's CPU time: on a shared machine the wall time includes the
    // time other processes held the core; the CPU time (wasm runs on one thread) does not.
    const cpuTimes: number[] = [];
    const step = () => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const { value, grads } = tf.variableGrads(() => gptLoss(params, config, idx, targets), vars);
      value.dataSync();
      for (const g of Object.values(grads)) g.dataSync(); // wait for every gradient
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      cpuTimes.push((c.user + c.system) / 1000);
      tf.dispose([value, ...Object.values(grads)]);
      return ms;
    };
    for (let i = 0; i < 3; i++) step(); // warm-up
    cpuTimes.length = 0;
    const before = tf.memory().numTensors;
    const times = Array.from({ length: reps }, step);
    const leaked = tf.memory().numTensors - before;
    const fwd = Array.from({ length: reps }, () => {
      const t0 = performance.now();
      const l = tf.tidy(() => gptLoss(params, config, idx, targets));
      l.dataSync();
      l.dispose();
      return performance.now() - t0;
    });
    if (args.verbose) out(`step times: ${times.map((t) => t.toFixed(0)).join(" ")}`);
    const ms = median(times);
    const flops = flopsPerToken(config, T) * B * T;
    out(`${info.name}: ${preset} B=${B} T=${T}: forward+backward median ${ms.toFixed(1)} ms (min ${Math.min(...times).toFixed(1)}; ` +
      `CPU time median ${median(cpuTimes).toFixed(1)} ms), ` +
      `forward only ${median(fwd).toFixed(1)} ms; ${(flops / median(cpuTimes) / 1e6).toFixed(2)} GFLOP/s of CPU time; tensors leaked/step ${leaked / reps}`);

    if (args.profile) {
      // Kernel times from tf.profile, per kernel name and input shapes; each is the MIN over
      // 5 profiled steps (a shared machine preempts us now and then; the min is the kernel's cost).
      const best = new Map<string, number>();
      for (let r = 0; r < 5; r++) {
        const prof = await tf.profile(() => {
          const { value, grads } = tf.variableGrads(() => gptLoss(params, config, idx, targets), vars);
          return [value, ...Object.values(grads)];
        });
        const step = new Map<string, number>();
        for (const k of prof.kernels) {
          if (k.name === "unnamed scope") continue; // customGrad scopes: their kernels are listed too
          const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
          step.set(key, (step.get(key) ?? 0) + (k.kernelTimeMs as number));
        }
        for (const [key, t] of step) best.set(key, Math.min(best.get(key) ?? Infinity, t));
      }
      const byName = new Map<string, number>();
      for (const [key, t] of best) { const n = key.split(" ")[0]; byName.set(n, (byName.get(n) ?? 0) + t); }
      const total = [...byName.values()].reduce((a, b) => a + b, 0);
      out(`kernel time (min of 5 profiles) ${total.toFixed(1)} ms:`);
      for (const [name, t] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 12)) out(`  ${name.padEnd(20)} ${t.toFixed(1).padStart(6)} ms`);
      out("largest kernel groups (name, input shapes):");
      for (const [key, t] of [...best].sort((a, b) => b[1] - a[1]).slice(0, 15)) out(`  ${t.toFixed(1).padStart(6)} ms  ${key}`);
    }

    const nWorkers = args.workers;
    if (nWorkers > 0) {
      if (B % nWorkers !== 0) throw new Error(`--workers ${nWorkers} must divide B=${B}`);
      const overrides = preset === "nanogpt-cpu" ? { vocabSize: config.vocabSize } : {};
      for (const n of [1, nWorkers]) {
        const wms = await timeWorkers(n, preset, overrides, config, params, idx, targets, reps);
        out(`data parallel, ${n} worker thread(s) × ${B / n} sequences: forward+backward median ${wms.toFixed(1)} ms per step of B=${B}`);
      }
    }

    const tokens = args.tokens;
    for (const useKvCache of [true, false]) {
      const n = Math.min(tokens, config.blockSize - 1);
      generate(params, config, [0], { maxNewTokens: 5, temperature: 0, useKvCache }); // warm-up
      const t0 = performance.now();
      generate(params, config, [0], { maxNewTokens: n, temperature: 0, useKvCache });
      const s = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      generate(params, config, [0], { maxNewTokens: tokens, temperature: 0, useKvCache });
      const s2 = (performance.now() - t1) / 1000;
      out(`generate ${useKvCache ? "with" : "without"} KV cache: ${(n / s).toFixed(0)} tokens/s within the context (${n} tokens), ` +
        `${(tokens / s2).toFixed(0)} tokens/s for ${tokens} tokens (past ${config.blockSize}: sliding window, no cache)`);
    }
  },
};

export const main = commandMain(BENCH_GPT);

// The same file is the --workers' thread (see timeWorkers).
if (!isMainThread) {
  workerMain().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else if (require.main === module) runAsScript(main);
