#!/usr/bin/env node
/**
 * `npm run bench`: how fast this machine trains and samples the course's GPT, against PyTorch.
 *
 *   npm run bench -- [--json] [--preset nanogpt-cpu[,course-base,llama]] [--sittings 5]
 *                    [--threads 1,2] [--steps 30] [--warmup 5] [--tokens 60] [--batch-size 12] [--data FILE]
 *                    [--torch [--torch-threads 1,2] [--python python3] [--torch-script PATH]]
 *
 * Training: the real training step of lib/pretrain/trainer.ts (batch sampling, forward, backward,
 * gradient clipping, AdamW), on the active backend, for each thread count (data
 * parallelism, lib/pretrain/dataParallel.ts); median ms per step after warm-up, tokens/s, and GFLOP/s
 * (flopsPerToken, as nanoGPT's MFU estimate). Where a BLAS computes the products
 * (lib/core/kernels/blas.ts), its own threads are a second way to use the cores, so the
 * configurations are: one thread on one core (BLAS 1 thread), each --threads count with data
 * parallelism sharing the BLAS's threads, and one thread whose products use every core.
 * Sampling: greedy tokens/s with the KV cache (lib/gpt/decoder.ts, and through tfjs) and
 * without (the outputs must be equal). Peak memory: the process's maximum resident set.
 *
 * --torch runs a PyTorch reference of the same model, batch and optimizer IN THE SAME SITTING,
 * just before ours, and reports the ratio of our best time per step to PyTorch's best: compare
 * ratios from one sitting, never times from different runs (this machine's speed moves by 2x
 * from one session to the next). PyTorch's configurations are alike: for each --torch-threads
 * count N, N intra-op threads with its BLAS limited to N threads (OPENBLAS_NUM_THREADS, as
 * torch.set_num_threads does not limit a system OpenBLAS), and one intra-op thread with the
 * BLAS on every core, which is what `torch.set_num_threads(1)` gives by default on Debian. GPT-2-style presets use
 * ../shared/bench/torch_reference.py, the llama preset lib/tools/cli/reference/torch_llama_step.py;
 * the parameter counts must agree, or the comparison is refused. Needs python3 with torch
 * (Debian: apt-get install -y python3-torch libopenblas0-pthread).
 *
 * --sittings N repeats the whole comparison N times and reports each figure's median and
 * range over the sittings, and whether the median meets the targets of the performance issue:
 * ≤ 1.0x PyTorch's time per preset (0.75x the moonshot), two threads ≥ 1.7x one, sampling
 * ≥ 10x nanoGPT's 43 tokens/s.
 *
 * Human-readable lines on stderr; stdout gets a summary, or with --json one JSON line (last).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BackendInfo, defaultThreads, describeMatmul, initBackend, threadsProblem } from "../../core/backend";
import { blasDefaultThreads, MATMUL_ENGINE_NAMES, setBlasThreads } from "../../core/kernels";
import { Batch, getBatch } from "../../pretrain/batches";
import { CharTokenizer } from "../../tokens/charTokenizer";
import { mobyDickText } from "../../tokens/corpus";
import { flopsPerToken, GPTConfig, gptConfig, gptLoss, GPT_PRESETS, GPTPresetName, initGPT, isDecayed, kvHeads, usesRms, usesRope, usesSwiglu } from "../../gpt/gpt";
import { projectPath, repoRoot } from "../../core/paths";
import { disposeParams } from "../../pretrain/pretrain";
import { blasThreadsPerShare } from "../../pretrain/dataParallel";
import { generate } from "../../gpt/sampling";
import { formatSeconds, train } from "../../pretrain/trainer";
import { Command, jsonOption, Options, parseOptions, runAsScript, commandMain, UsageError } from "./cli";

const PRESET_NAMES = Object.keys(GPT_PRESETS) as GPTPresetName[];
const SHARED_TORCH_SCRIPT = path.resolve(repoRoot, "..", "shared", "bench", "torch_reference.py");
/** The llama preset's PyTorch step (the shared reference is GPT-2's block only). */
export const LLAMA_TORCH_SCRIPT = path.join(repoRoot, "lib", "tools", "cli", "reference", "torch_llama_step.py");

const BENCH_OPTIONS: Options = {
  json: jsonOption("the result as one JSON object"),
  preset: {
    kind: "string", value: "NAME[,…]", default: "nanogpt-cpu", help: `model sizes, comma-separated: ${PRESET_NAMES.join(", ")}`,
    check: (v: string, flag) => {
      const bad = v.split(",").find((n) => !PRESET_NAMES.includes(n as GPTPresetName));
      return bad === undefined ? undefined : `${flag} must be one of ${PRESET_NAMES.join(", ")} (comma-separated), got "${bad}"`;
    },
  },
  sittings: { kind: "integer", value: "N", min: 1, default: 1, help: "repeat the whole comparison N times; figures are reported as median and range" },
  threads: { kind: "integer", value: "N", list: true, min: 1, defaultText: "1 and this machine's default", help: "thread counts to time the training step with" },
  steps: { kind: "integer", value: "N", min: 1, default: 30, help: "timed steps (the median is reported)" },
  warmup: { kind: "integer", value: "N", min: 0, default: 5, help: "untimed steps first" },
  tokens: { kind: "integer", value: "N", min: 1, default: 60, help: "sampled tokens" },
  "batch-size": { kind: "integer", value: "N", min: 1, default: 12, help: "rows per step" },
  data: { kind: "string", value: "FILE", defaultText: "Moby-Dick's characters", help: "any UTF-8 text, e.g. ../shared/data/tinyshakespeare.txt" },
  torch: { kind: "boolean", help: "also run the PyTorch reference in the same sitting and report our ms/step ÷ PyTorch's best" },
  "torch-threads": { kind: "integer", value: "N", list: true, min: 1, defaultText: "1 and this machine's cores", help: "PyTorch's intra-op thread counts, each with as many BLAS threads (its best configuration is compared with)" },
  python: { kind: "string", value: "CMD", default: "python3", help: "the Python with torch" },
  "torch-script": { kind: "string", value: "PATH", default: SHARED_TORCH_SCRIPT, defaultText: "../shared/bench/torch_reference.py", help: "the PyTorch reference of GPT-2-style presets" },
};

export { UsageError };

export interface BenchArgs {
  json: boolean;
  preset: string;
  sittings: number;
  threads?: number[];
  steps: number;
  warmup: number;
  tokens: number;
  batchSize: number;
  data?: string;
  torch: boolean;
  torchThreads?: number[];
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

/** A figure over several sittings: its median, smallest and largest value, and how many. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(xs: readonly number[]): Spread {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), n: ok.length };
}

/** A way to use the cores: threads (data parallelism), and BLAS threads per product where it applies. */
export interface CoreConfig {
  /** E.g. "1 thread, 1 core", "2 threads (data parallel)", "1 thread, BLAS on 2 cores". */
  label: string;
  threads: number;
  /** Threads per product of the BLAS (undefined: no BLAS, or its own default). */
  blasThreads?: number;
  /** Cores it keeps busy. */
  cores: number;
}

export interface TrainTiming extends CoreConfig {
  msPerStep: number;
  tokensPerSecond: number;
  gflopsPerSecond: number;
  /** This thread count's ms/step ÷ PyTorch's best in the same sitting. */
  ratioToPytorch?: number;
}

export interface SamplingTiming {
  kvCacheTokensPerSecond: number;
  kvCacheTfjsTokensPerSecond: number;
  noCacheTokensPerSecond: number;
  tokens: number;
  sameOutput: boolean;
}

export interface TorchTiming extends CoreConfig {
  msPerStep: number;
}

/** One sitting of one preset: PyTorch just before ours, then ours per thread count, then sampling. */
export interface PresetSitting {
  train: TrainTiming[];
  sampling: SamplingTiming;
  pytorch?: { version: string; runs: TorchTiming[]; best: TorchTiming } | { error: string };
  /** Our best ms/step ÷ PyTorch's best (same sitting). */
  ratioToPytorch?: number;
  /** ms/step on one core ÷ the best ms/step on all the cores timed (when both were). */
  threadSpeedup?: number;
}

export interface PresetBench {
  preset: string;
  context: number;
  parameters: number;
  /** Training FLOPs of one step (6N + attention, per nanoGPT's estimate). */
  flopsPerStep: number;
  /** Which PyTorch script was compared with (relative to the project), when --torch. */
  pytorchScript?: string;
  sittings: PresetSitting[];
  /** Each figure's median and range over the sittings. */
  summary: {
    train: { label: string; cores: number; msPerStep: Spread; ratioToPytorch?: Spread }[];
    pytorch?: { label: string; cores: number; msPerStep: Spread }[];
    pytorchBestMsPerStep?: Spread;
    ratioToPytorch?: Spread;
    threadSpeedup?: Spread;
    samplingTokensPerSecond: Spread;
  };
}

/** A target of the performance issue, and whether the median over the sittings meets it. */
export interface TargetCheck {
  name: string;
  preset: string;
  measured: Spread;
  /** E.g. "<= 1.0" (a ratio to PyTorch's time) or ">= 1.7". */
  target: string;
  met: boolean;
}

export interface BenchResult {
  backend: string;
  /** wasm only: what computes matrix products (describeMatmul: the engine, and the BLAS's name and threads). */
  matmul?: string;
  machine: { cpus: number; model: string; node: string };
  date: string;
  sittings: number;
  batchSize: number;
  presets: PresetBench[];
  targets: TargetCheck[];
  peakRssMB: number;
  seconds: number;
}

/** nanoGPT's sample.py on this kind of machine (no KV cache), the issue's yardstick for sampling. */
export const NANOGPT_SAMPLING_TOKENS_PER_SECOND = 43;

/** The PyTorch script for a preset and its model arguments, or why there is none. */
export function torchReferenceFor(config: GPTConfig, sharedScript: string): { script: string; args: string[] } | { error: string } {
  const shape = ["--layers", String(config.nLayer), "--heads", String(config.nHead), "--channels", String(config.nEmbd), "--context", String(config.blockSize)];
  const gpt2 = !usesRms(config) && !usesSwiglu(config) && !usesRope(config) && kvHeads(config) === config.nHead && config.bias && config.tiedHead !== false;
  if (gpt2) return { script: sharedScript, args: shape };
  const llama = usesRms(config) && usesSwiglu(config) && usesRope(config) && !config.bias && config.tiedHead !== false &&
    config.mlpHidden === undefined && (config.ropeBase ?? 10000) === 10000;
  if (llama) return { script: LLAMA_TORCH_SCRIPT, args: [...shape, "--kv-heads", String(kvHeads(config))] };
  return { error: "no PyTorch reference for this architecture (GPT-2's block with biases, or the llama preset's)" };
}

/** Run a PyTorch reference once; its last stdout line is JSON. */
function runTorch(args: BenchArgs, script: string, modelArgs: string[], config: CoreConfig, dataFile: string, parameters: number): { msPerStep: number; version: string } | { error: string } {
  if (!fs.existsSync(script)) return { error: `no PyTorch reference at ${projectPath(script)}` };
  const blas = String(config.blasThreads ?? config.threads);
  const env = { ...process.env, OPENBLAS_NUM_THREADS: blas, MKL_NUM_THREADS: blas, OMP_NUM_THREADS: String(config.threads) };
  const r = spawnSync(args.python, [script, "--data", dataFile, ...modelArgs, "--steps", String(args.steps), "--warmup", String(args.warmup), "--batch", String(args.batchSize), "--threads", String(config.threads)], { encoding: "utf8", env });
  if (r.error) return { error: `${args.python}: ${r.error.message}` };
  if (r.status !== 0) return { error: `${args.python} ${projectPath(script)} exited with ${r.status}: ${(r.stderr ?? "").trim().split("\n").pop()}` };
  let j: { ms_per_step?: unknown; impl?: unknown; params?: unknown };
  try {
    j = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
  } catch {
    return { error: `unexpected output from ${projectPath(script)}: ${r.stdout.slice(0, 200)}` };
  }
  if (typeof j.ms_per_step !== "number") return { error: `${projectPath(script)} printed no ms_per_step` };
  if (typeof j.params === "number" && j.params !== parameters) {
    return { error: `${projectPath(script)} built a model of ${j.params} parameters, the course's has ${parameters}: not the same model` };
  }
  return { msPerStep: j.ms_per_step, version: String(j.impl) };
}

interface PresetSetup {
  name: GPTPresetName;
  config: GPTConfig;
  parameters: number;
  flopsPerStep: number;
  torch?: { script: string; args: string[] } | { error: string };
}

/**
 * Our configurations: each thread count as training runs it (data parallelism sharing the
 * BLAS's threads), and where a BLAS can be told its threads, one thread on one core and one
 * thread whose products use every core.
 */
export function ourConfigs(threadCounts: readonly number[], blasCores: number | undefined): CoreConfig[] {
  const out: CoreConfig[] = [];
  const add = (c: CoreConfig) => {
    if (!out.some((o) => o.threads === c.threads && o.blasThreads === c.blasThreads)) out.push(c);
  };
  if (blasCores === undefined) {
    for (const t of threadCounts) add({ label: `${t} thread${t === 1 ? "" : "s"}${t > 1 ? " (data parallel)" : ""}`, threads: t, cores: t });
    return out;
  }
  add({ label: "1 thread, BLAS 1 thread", threads: 1, blasThreads: 1, cores: 1 });
  for (const t of threadCounts) {
    if (t === 1) continue;
    const b = blasThreadsPerShare(blasCores, t);
    add({ label: `${t} threads (data parallel), BLAS ${b} thread${b === 1 ? "" : "s"} each`, threads: t, blasThreads: b, cores: t * b });
  }
  if (threadCounts.includes(1) && blasCores > 1) add({ label: `1 thread, BLAS ${blasCores} threads`, threads: 1, blasThreads: blasCores, cores: blasCores });
  return out;
}

/** PyTorch's: N intra-op threads with N BLAS threads for each count, and 1 intra-op thread with the BLAS on every core. */
export function torchConfigs(threadCounts: readonly number[], cores: number): CoreConfig[] {
  const out: CoreConfig[] = threadCounts.map((t) => ({ label: `${t} thread${t === 1 ? "" : "s"}, BLAS ${t}`, threads: t, blasThreads: t, cores: t }));
  if (cores > 1 && !out.some((c) => c.threads === 1 && c.blasThreads === cores)) {
    out.push({ label: `1 thread, BLAS ${cores} (its default)`, threads: 1, blasThreads: cores, cores });
  }
  return out;
}

/** Time our training step in each configuration (fresh weights, seed 1, each time). */
async function timeTraining(setup: PresetSetup, ids: Int32Array, args: BenchArgs, configs: readonly CoreConfig[]): Promise<TrainTiming[]> {
  const { config } = setup;
  const T = config.blockSize, B = args.batchSize;
  const out: TrainTiming[] = [];
  for (const c of configs) {
    const threads = c.threads;
    const params = initGPT(config, { seed: 1 });
    const ms: number[] = [];
    // One thread: the BLAS's threads as configured; data parallelism shares them out itself.
    if (threads === 1 && c.blasThreads !== undefined) setBlasThreads(c.blasThreads);
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
      setBlasThreads("default");
    }
    const m = median(ms);
    out.push({ ...c, msPerStep: m, tokensPerSecond: (B * T * 1000) / m, gflopsPerSecond: setup.flopsPerStep / m / 1e6 });
  }
  return out;
}

/** Greedy sampling from one token within the context (where the cache applies), with and without the KV cache. */
function timeSampling(config: GPTConfig, tokens: number): SamplingTiming {
  const params = initGPT(config, { seed: 2 });
  const n = Math.min(tokens, config.blockSize - 1);
  try {
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
    return {
      kvCacheTokensPerSecond: cached.tps, kvCacheTfjsTokensPerSecond: cachedTfjs.tps, noCacheTokensPerSecond: uncached.tps, tokens: n,
      sameOutput: cached.out.join() === uncached.out.join() && cachedTfjs.out.join() === uncached.out.join(),
    };
  } finally {
    disposeParams(params);
  }
}

/** One preset's sittings summarised: medians and ranges of every figure. */
export function summarisePreset(sittings: readonly PresetSitting[]): PresetBench["summary"] {
  const configs = sittings[0]?.train ?? [];
  const at = (s: PresetSitting, label: string) => s.train.find((t) => t.label === label);
  const summary: PresetBench["summary"] = {
    train: configs.map(({ label, cores }) => {
      const row: PresetBench["summary"]["train"][number] = { label, cores, msPerStep: spread(sittings.map((s) => at(s, label)?.msPerStep ?? NaN)) };
      const ratios = sittings.map((s) => at(s, label)?.ratioToPytorch ?? NaN);
      if (ratios.some(Number.isFinite)) row.ratioToPytorch = spread(ratios);
      return row;
    }),
    samplingTokensPerSecond: spread(sittings.map((s) => s.sampling.kvCacheTokensPerSecond)),
  };
  const torchRuns = sittings.flatMap((s) => (s.pytorch !== undefined && "runs" in s.pytorch ? [s.pytorch] : []));
  if (torchRuns.length > 0) {
    summary.pytorch = torchRuns[0].runs.map(({ label, cores }) => ({ label, cores, msPerStep: spread(torchRuns.map((p) => p.runs.find((r) => r.label === label)?.msPerStep ?? NaN)) }));
    summary.pytorchBestMsPerStep = spread(torchRuns.map((p) => p.best.msPerStep));
    summary.ratioToPytorch = spread(sittings.map((s) => s.ratioToPytorch ?? NaN));
  }
  const speedups = sittings.map((s) => s.threadSpeedup ?? NaN);
  if (speedups.some(Number.isFinite)) summary.threadSpeedup = spread(speedups);
  return summary;
}

/** The performance issue's targets, checked on the medians over the sittings. */
export function checkTargets(presets: readonly PresetBench[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  for (const p of presets) {
    const r = p.summary.ratioToPytorch;
    if (r !== undefined && r.n > 0) {
      out.push({ name: "training step time ÷ PyTorch's (best thread counts)", preset: p.preset, measured: r, target: "<= 1.0", met: r.median <= 1.0 });
      if (p.preset === "nanogpt-cpu") out.push({ name: "training step time ÷ PyTorch's, the moonshot", preset: p.preset, measured: r, target: "<= 0.75", met: r.median <= 0.75 });
    }
    const su = p.summary.threadSpeedup;
    const most = Math.max(...p.summary.train.map((t) => t.cores));
    if (su !== undefined && su.n > 0 && most === 2) {
      out.push({ name: "two cores' speed-up over one", preset: p.preset, measured: su, target: ">= 1.7", met: su.median >= 1.7 });
    }
    const sampling = p.summary.samplingTokensPerSecond;
    const floor = 10 * NANOGPT_SAMPLING_TOKENS_PER_SECOND;
    out.push({ name: "sampling tokens/s with the KV cache (10x nanoGPT's 43)", preset: p.preset, measured: sampling, target: `>= ${floor}`, met: sampling.median >= floor });
  }
  return out;
}

export async function runBench(args: BenchArgs, log: (s: string) => void = (s) => console.error(s)): Promise<BenchResult> {
  const t0 = performance.now();
  const info: BackendInfo = await initBackend({ quiet: true });
  const text = args.data !== undefined ? fs.readFileSync(args.data, "utf8") : mobyDickText();
  let dataFile = args.data;
  let tmpDir: string | undefined;
  if (args.torch && dataFile === undefined) {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-"));
    dataFile = path.join(tmpDir, "moby-dick.txt");
    fs.writeFileSync(dataFile, text);
  }
  try {
    const tokenizer = CharTokenizer.fromText(text);
    const ids = Int32Array.from(tokenizer.encode(text));
    const B = args.batchSize;
    const threadCounts = args.threads ?? [...new Set([1, defaultThreads()])];
    const blas = info.name === "wasm" && info.matmul === MATMUL_ENGINE_NAMES.blas ? blasDefaultThreads() : undefined;
    const configs = ourConfigs(threadCounts, blas);
    const cores = os.cpus().length;
    const torchRunConfigs = torchConfigs(args.torchThreads ?? [...new Set([1, cores])], cores);
    const setups: PresetSetup[] = (args.preset.split(",") as GPTPresetName[]).map((name) => {
      const config = gptConfig(name, { vocabSize: tokenizer.vocabSize });
      const params = initGPT(config, { seed: 1 });
      const parameters = Object.values(params).reduce((s, p) => s + p.size, 0);
      disposeParams(params);
      const setup: PresetSetup = { name, config, parameters, flopsPerStep: flopsPerToken(config, config.blockSize) * B * config.blockSize };
      if (args.torch) setup.torch = torchReferenceFor(config, args.torchScript);
      return setup;
    });
    const sittings: PresetSitting[][] = setups.map(() => []);
    for (let s = 0; s < args.sittings; s++) {
      const elapsed = (performance.now() - t0) / 1000;
      const eta = s === 0 ? "" : `, about ${formatSeconds((elapsed / s) * (args.sittings - s))} left`;
      if (args.sittings > 1) log(`sitting ${s + 1}/${args.sittings} (${formatSeconds(elapsed)} elapsed${eta})`);
      for (const [i, setup] of setups.entries()) {
        const sitting: PresetSitting = { train: [], sampling: undefined as unknown as SamplingTiming };
        if (setup.torch !== undefined) {
          if ("error" in setup.torch) sitting.pytorch = { error: setup.torch.error };
          else {
            const runs: TorchTiming[] = [];
            let version = "";
            for (const c of torchRunConfigs) {
              const r = runTorch(args, setup.torch.script, setup.torch.args, c, dataFile!, setup.parameters);
              if ("error" in r) {
                sitting.pytorch = { error: r.error };
                break;
              }
              version = r.version;
              runs.push({ ...c, msPerStep: r.msPerStep });
              log(`  ${setup.name}: PyTorch, ${c.label}: ${r.msPerStep.toFixed(1)} ms`);
            }
            if (sitting.pytorch === undefined) {
              const best = runs.reduce((a, b) => (b.msPerStep < a.msPerStep ? b : a));
              sitting.pytorch = { version, runs, best };
            }
          }
          if (sitting.pytorch !== undefined && "error" in sitting.pytorch) log(`  ${setup.name}: PyTorch reference skipped: ${sitting.pytorch.error}`);
        }
        sitting.train = await timeTraining(setup, ids, args, configs);
        const torchBest = sitting.pytorch !== undefined && "best" in sitting.pytorch ? sitting.pytorch.best.msPerStep : undefined;
        for (const t of sitting.train) {
          if (torchBest !== undefined) t.ratioToPytorch = t.msPerStep / torchBest;
          log(`  ${setup.name}: train step, ${t.label}: ${t.msPerStep.toFixed(1)} ms (${t.tokensPerSecond.toFixed(0)} tokens/s, ${t.gflopsPerSecond.toFixed(1)} GFLOP/s)` +
            (t.ratioToPytorch !== undefined ? `, ${t.ratioToPytorch.toFixed(2)}x PyTorch's best` : ""));
        }
        const best = Math.min(...sitting.train.map((t) => t.msPerStep));
        if (torchBest !== undefined) sitting.ratioToPytorch = best / torchBest;
        const one = sitting.train.find((t) => t.cores === 1);
        const most = Math.max(...sitting.train.map((t) => t.cores));
        if (one !== undefined && most > 1) sitting.threadSpeedup = one.msPerStep / Math.min(...sitting.train.filter((t) => t.cores === most).map((t) => t.msPerStep));
        sitting.sampling = timeSampling(setup.config, args.tokens);
        const sm = sitting.sampling;
        log(`  ${setup.name}: sampling (batch 1, ${sm.tokens} tokens): ${sm.kvCacheTokensPerSecond.toFixed(0)} tokens/s with KV cache (lib/gpt/decoder.ts), ` +
          `${sm.kvCacheTfjsTokensPerSecond.toFixed(0)} with tfjs's KV cache, ${sm.noCacheTokensPerSecond.toFixed(0)} without cache` + (sm.sameOutput ? "" : " — OUTPUTS DIFFER"));
        sittings[i].push(sitting);
      }
    }
    const presets: PresetBench[] = setups.map((setup, i) => {
      const p: PresetBench = {
        preset: setup.name, context: setup.config.blockSize, parameters: setup.parameters, flopsPerStep: setup.flopsPerStep,
        sittings: sittings[i], summary: summarisePreset(sittings[i]),
      };
      if (setup.torch !== undefined && "script" in setup.torch) p.pytorchScript = projectPath(setup.torch.script);
      return p;
    });
    return {
      backend: info.name,
      matmul: describeMatmul(info),
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? "?", node: process.version },
      date: new Date().toISOString().slice(0, 10),
      sittings: args.sittings,
      batchSize: B,
      presets,
      targets: checkTargets(presets),
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    if (tmpDir !== undefined) fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

/** "63.5 ms (61.6–68.7)": the median and, over several sittings, the range. */
export function formatSpread(s: Spread, digits = 1, unit = ""): string {
  if (s.n === 0) return "—";
  const f = (x: number) => x.toFixed(digits) + unit;
  return s.n === 1 ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

export function formatBench(r: BenchResult): string {
  const lines = [
    `${r.date}, backend ${r.backend}${r.matmul !== undefined ? ` (matmul: ${r.matmul})` : ""}, ${r.machine.cpus} × ${r.machine.model}, batch ${r.batchSize}` +
      (r.sittings > 1 ? `; median (range) over ${r.sittings} sittings` : ""),
  ];
  for (const p of r.presets) {
    const s = p.summary;
    lines.push(`${p.preset} (${(p.parameters / 1e6).toFixed(2)}M parameters), context ${p.context}:`);
    for (const t of s.train) {
      lines.push(`  train step, ${t.label}: ${formatSpread(t.msPerStep, 1, " ms")}` + (t.ratioToPytorch !== undefined ? `, ${formatSpread(t.ratioToPytorch, 2, "x")} PyTorch's best` : ""));
    }
    for (const t of s.pytorch ?? []) lines.push(`  PyTorch, ${t.label}: ${formatSpread(t.msPerStep, 1, " ms")}`);
    const err = p.sittings.find((x) => x.pytorch !== undefined && "error" in x.pytorch)?.pytorch as { error: string } | undefined;
    if (err !== undefined) lines.push(`  PyTorch: ${err.error}`);
    if (s.threadSpeedup !== undefined) lines.push(`  speed-up of ${Math.max(...s.train.map((t) => t.cores))} cores over 1 (best configuration): ${formatSpread(s.threadSpeedup, 2, "x")}`);
    lines.push(`  sampling with KV cache: ${formatSpread(s.samplingTokensPerSecond, 0, " tokens/s")}`);
  }
  for (const t of r.targets) lines.push(`target ${t.preset}, ${t.name}: ${formatSpread(t.measured, 2)} against ${t.target}: ${t.met ? "met" : "NOT met"}`);
  lines.push(`peak memory ${r.peakRssMB} MB, ${formatSeconds(r.seconds)}`);
  return lines.join("\n");
}

const BENCH: Command<BenchArgs> = {
  name: "bench",
  summary: "Times a training step (median after warm-up) for each preset and thread count, and sampling; with --torch, against PyTorch in the same sitting; with --sittings, medians and ranges and the performance targets.",
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
