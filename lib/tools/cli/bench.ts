#!/usr/bin/env node
/**
 * `npm run bench`: how fast this machine trains and samples the course's GPT.
 *
 *   npm run bench -- [--json] [--threads 1,2] [--steps 30] [--warmup 5] [--tokens 60]
 *                    [--preset nanogpt-cpu] [--batch-size 12] [--data FILE]
 *                    [--torch [--python python3] [--torch-script PATH]]
 *
 * Training: the real training step of lib/pretrain/trainer.ts (batch sampling, forward, backward,
 * gradient clipping, AdamW), on the active backend, for each thread count (data
 * parallelism, lib/pretrain/dataParallel.ts); median ms per step after warm-up, tokens/s, and GFLOP/s
 * (flopsPerToken, as nanoGPT's MFU estimate). Sampling: greedy tokens/s with the KV cache
 * (lib/gpt/decoder.ts, and through tfjs) and without (the outputs must be equal). Peak memory: the process's maximum resident set.
 *
 * --torch runs the PyTorch reference (../shared/bench/torch_reference.py: the same model,
 * batch and optimizer) IN THE SAME SITTING, before ours, and reports the ratio of our time
 * per step to its: compare ratios from one run, never times from different runs.
 * Needs python3 with torch (Debian: apt-get install -y python3-torch libopenblas0-pthread).
 *
 * Human-readable lines on stderr; stdout gets a summary, or with --json one JSON line (last).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../core/backend";
import { Batch, getBatch } from "../../pretrain/batches";
import { CharTokenizer } from "../../tokens/charTokenizer";
import { mobyDickText } from "../../tokens/corpus";
import { defaultThreads } from "../../core/backend";
import { flopsPerToken, gptConfig, gptLoss, GPT_PRESETS, GPTPresetName, initGPT, isDecayed } from "../../gpt/gpt";
import { repoRoot } from "../../core/paths";
import { disposeParams } from "../../pretrain/pretrain";
import { generate } from "../../gpt/sampling";
import { train } from "../../pretrain/trainer";
import { threadsProblem } from "../../core/backend";
import { Command, jsonOption, Options, parseOptions, runAsScript, commandMain, UsageError } from "./cli";

const BENCH_OPTIONS: Options = {
  json: jsonOption("the result as one JSON object"),
  threads: { kind: "integer", value: "N", list: true, min: 1, defaultText: "1 and this machine's default", help: "thread counts to time the training step with" },
  steps: { kind: "integer", value: "N", min: 1, default: 30, help: "timed steps (the median is reported)" },
  warmup: { kind: "integer", value: "N", min: 0, default: 5, help: "untimed steps first" },
  tokens: { kind: "integer", value: "N", min: 1, default: 60, help: "sampled tokens" },
  preset: { kind: "choice", choices: Object.keys(GPT_PRESETS), value: "NAME", default: "nanogpt-cpu", help: `model size: ${Object.keys(GPT_PRESETS).join(", ")}` },
  "batch-size": { kind: "integer", value: "N", min: 1, default: 12, help: "rows per step" },
  data: { kind: "string", value: "FILE", defaultText: "Moby-Dick's characters", help: "any UTF-8 text, e.g. ../shared/data/tinyshakespeare.txt" },
  torch: { kind: "boolean", help: "also run the PyTorch reference in the same sitting and report our ms/step ÷ PyTorch's" },
  python: { kind: "string", value: "CMD", default: "python3", help: "the Python with torch" },
  "torch-script": { kind: "string", value: "PATH", default: path.resolve(repoRoot, "..", "shared", "bench", "torch_reference.py"), help: "the PyTorch reference" },
};

export { UsageError };

export interface BenchArgs {
  json: boolean;
  threads?: number[];
  steps: number;
  warmup: number;
  tokens: number;
  preset: GPTPresetName;
  batchSize: number;
  data?: string;
  torch: boolean;
  python: string;
  torchScript: string;
  help: boolean;
}

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  return parseOptions<BenchArgs>({ options: BENCH_OPTIONS }, argv);
}

export const median = (xs: readonly number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export interface TrainTiming {
  threads: number;
  msPerStep: number;
  tokensPerSecond: number;
  gflopsPerSecond: number;
  ratioToPytorch?: number;
}

export interface BenchResult {
  backend: string;
  /** wasm only: what computes matrix products (BackendInfo.matmul; COURSE_MATMUL). */
  matmul?: string;
  machine: { cpus: number; model: string; node: string };
  preset: string;
  batchSize: number;
  context: number;
  parameters: number;
  /** Training FLOPs of one step (6N + attention, per nanoGPT's estimate). */
  flopsPerStep: number;
  train: TrainTiming[];
  sampling: { kvCacheTokensPerSecond: number; kvCacheTfjsTokensPerSecond: number; noCacheTokensPerSecond: number; tokens: number; sameOutput: boolean };
  peakRssMB: number;
  pytorch?: { msPerStep: number; version: string; threads: number } | { error: string };
  /** Our best ms/step ÷ PyTorch's (same sitting). */
  ratioToPytorch?: number;
  seconds: number;
}

/** Run the PyTorch reference; its last stdout line is JSON. */
function runTorch(args: BenchArgs, dataFile: string, log: (s: string) => void): BenchResult["pytorch"] {
  if (!fs.existsSync(args.torchScript)) return { error: `no PyTorch reference at ${args.torchScript}` };
  log(`PyTorch reference: ${args.python} ${args.torchScript} (${args.steps} steps)…`);
  const r = spawnSync(args.python, [args.torchScript, "--data", dataFile, "--steps", String(args.steps), "--warmup", String(args.warmup), "--batch", String(args.batchSize)], { encoding: "utf8" });
  if (r.error) return { error: `${args.python}: ${r.error.message}` };
  if (r.status !== 0) return { error: `${args.python} exited with ${r.status}: ${(r.stderr ?? "").trim().split("\n").pop()}` };
  try {
    const j = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
    return { msPerStep: j.ms_per_step, version: j.impl, threads: j.threads };
  } catch {
    return { error: `unexpected output from the PyTorch reference: ${r.stdout.slice(0, 200)}` };
  }
}

export async function runBench(args: BenchArgs, log: (s: string) => void = (s) => console.error(s)): Promise<BenchResult> {
  const t0 = performance.now();
  const info = await initBackend({ quiet: true });
  const text = args.data !== undefined ? fs.readFileSync(args.data, "utf8") : mobyDickText();
  let dataFile = args.data;
  if (args.torch && dataFile === undefined) {
    dataFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bench-")), "moby-dick.txt");
    fs.writeFileSync(dataFile, text);
  }
  const pytorch = args.torch ? runTorch(args, dataFile!, log) : undefined;
  if (pytorch && "error" in pytorch) log(`PyTorch reference skipped: ${pytorch.error}`);

  const tokenizer = CharTokenizer.fromText(text);
  const ids = Int32Array.from(tokenizer.encode(text));
  const config = gptConfig(args.preset, { vocabSize: tokenizer.vocabSize });
  const T = config.blockSize;
  const B = args.batchSize;
  const flopsPerStep = flopsPerToken(config, T) * B * T;
  const threadCounts = args.threads ?? [...new Set([1, defaultThreads()])];
  const timings: TrainTiming[] = [];
  let parameters = 0;
  for (const threads of threadCounts) {
    const params = initGPT(config, { seed: 1 });
    parameters = Object.values(params).reduce((s, p) => s + p.size, 0);
    const ms: number[] = [];
    try {
      await train({
        params,
        lossFn: (b: Batch) => gptLoss(params, config, b.x, b.y),
        dataParallel: { threads, loss: { builtin: "gpt", options: { config } } },
        getBatch: (_split, rng) => getBatch(ids, T, B, rng),
        optimizer: { lr: 1e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0.1, decay: isDecayed },
        maxIters: args.warmup + args.steps,
        evalIters: 0,
        gradClip: 1.0,
        chart: false,
        progress: "none",
        onStep: (s) => {
          if (s.step >= args.warmup) ms.push(s.ms);
        },
      });
    } finally {
      disposeParams(params);
    }
    const m = median(ms);
    const t: TrainTiming = { threads, msPerStep: m, tokensPerSecond: (B * T * 1000) / m, gflopsPerSecond: flopsPerStep / m / 1e6 };
    if (pytorch && !("error" in pytorch)) t.ratioToPytorch = m / pytorch.msPerStep;
    timings.push(t);
    log(`train step, ${threads} thread(s): ${m.toFixed(1)} ms (${t.tokensPerSecond.toFixed(0)} tokens/s, ${t.gflopsPerSecond.toFixed(1)} GFLOP/s)` +
      (t.ratioToPytorch !== undefined ? `, ${t.ratioToPytorch.toFixed(2)}x PyTorch` : ""));
  }

  // Sampling: greedy from one token, within the context (where the cache applies).
  const params = initGPT(config, { seed: 2 });
  const n = Math.min(args.tokens, T - 1);
  const rate = (useKvCache: boolean, engine: "auto" | "tfjs" = "auto"): { tps: number; out: number[] } => {
    // Warm-up: whole generations, so the JIT has compiled the loops (as the training steps' warm-up).
    for (let r = 0; r < 10; r++) generate(params, config, [0], { maxNewTokens: n, temperature: 0, useKvCache, engine });
    const times: number[] = [];
    let out: number[] = [];
    for (let r = 0; r < 5; r++) {
      const s0 = performance.now();
      out = generate(params, config, [0], { maxNewTokens: n, temperature: 0, useKvCache, engine });
      times.push(performance.now() - s0);
    }
    return { tps: (n * 1000) / median(times), out };
  };
  const cached = rate(true);
  const cachedTfjs = rate(true, "tfjs");
  const uncached = rate(false);
  disposeParams(params);
  const sampling = {
    kvCacheTokensPerSecond: cached.tps, kvCacheTfjsTokensPerSecond: cachedTfjs.tps, noCacheTokensPerSecond: uncached.tps, tokens: n,
    sameOutput: cached.out.join() === uncached.out.join() && cachedTfjs.out.join() === uncached.out.join(),
  };
  log(`sampling (batch 1, ${n} tokens): ${cached.tps.toFixed(0)} tokens/s with KV cache (lib/gpt/decoder.ts), ` +
    `${cachedTfjs.tps.toFixed(0)} with tfjs's KV cache, ${uncached.tps.toFixed(0)} without cache` + (sampling.sameOutput ? "" : " — OUTPUTS DIFFER"));
  const best = Math.min(...timings.map((t) => t.msPerStep));
  const result: BenchResult = {
    backend: info.name,
    matmul: info.matmul,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? "?", node: process.version },
    preset: args.preset,
    batchSize: B,
    context: T,
    parameters,
    flopsPerStep,
    train: timings,
    sampling,
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    seconds: (performance.now() - t0) / 1000,
  };
  if (pytorch) {
    result.pytorch = pytorch;
    if (!("error" in pytorch)) result.ratioToPytorch = best / pytorch.msPerStep;
  }
  void tf;
  return result;
}

export function formatBench(r: BenchResult): string {
  const lines = [
    `${r.preset} (${(r.parameters / 1e6).toFixed(2)}M parameters), batch ${r.batchSize} × context ${r.context}, backend ${r.backend}${r.matmul !== undefined ? ` (matmul: ${r.matmul})` : ""}, ${r.machine.cpus} × ${r.machine.model}`,
    ...r.train.map((t) => `  train step, ${t.threads} thread(s): ${t.msPerStep.toFixed(1)} ms, ${t.tokensPerSecond.toFixed(0)} tokens/s, ${t.gflopsPerSecond.toFixed(1)} GFLOP/s` +
      (t.ratioToPytorch !== undefined ? `, ${t.ratioToPytorch.toFixed(2)}x PyTorch's time` : "")),
    `  sampling: ${r.sampling.kvCacheTokensPerSecond.toFixed(0)} tokens/s with KV cache (${r.sampling.kvCacheTfjsTokensPerSecond.toFixed(0)} through tfjs), ${r.sampling.noCacheTokensPerSecond.toFixed(0)} without`,
    `  peak memory ${r.peakRssMB} MB`,
  ];
  if (r.pytorch) lines.push("error" in r.pytorch ? `  PyTorch: ${r.pytorch.error}` : `  PyTorch (${r.pytorch.version}, ${r.pytorch.threads} thread): ${r.pytorch.msPerStep.toFixed(1)} ms/step`);
  return lines.join("\n");
}

const BENCH: Command<BenchArgs> = {
  name: "bench",
  summary: "Times a training step (median after warm-up) for each thread count, sampling with and without KV cache, peak memory.",
  options: BENCH_OPTIONS,
  validate(args) {
    for (const t of args.threads ?? []) {
      const problem = threadsProblem(t, "--threads");
      if (problem !== undefined) throw new UsageError(problem);
    }
  },
  async run(args, { err }) {
    const r = await runBench(args, err);
    return { json: r, lines: [formatBench(r)] };
  },
};

export const main = commandMain(BENCH);

if (require.main === module) runAsScript(main, { exit: true });
