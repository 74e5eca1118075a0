/**
 * Times forward + backward of causal multi-head attention on the wasm backend:
 * the textbook formulation (batched tf.matMul with transposeB, [B, H, T, D] head
 * transposes, tf.matMul's own gradients) on tfjs's kernels, the same on the course's
 * wasm BatchMatMul kernel, and the course's `multiHeadAttention`.
 *
 *   npm run build && node lib/dist/tools/cli/benchAttention.js [--backend wasm|cpu]
 *     [--B 12 --T 64 --C 128 --H 4] [--reps 20] [--profile]

 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import {
  initMultiHeadAttention, multiHeadAttention, multiHeadAttentionTextbook, MultiHeadAttentionParams,
} from "../../attention/attention";
import { restoreWasmMatMul, useFastWasmMatMul } from "../../core/kernels/batchMatmul";
import { Command, runAsScript, commandMain } from "./cli";

type Mha = (p: MultiHeadAttentionParams, x: tf.Tensor3D, o: { heads: number; causal: boolean }) => tf.Tensor3D;

/**
 * Wall times (ms) of `run` (which must leave no tensor behind), one per call of the
 * returned function; reads a scalar to wait for the result.
 */
function timer(run: () => tf.Scalar): { once: () => void; times: number[] } {
  const times: number[] = [];
  return {
    times,
    once: () => {
      const t0 = performance.now();
      const r = run();
      r.dataSync(); // tiny read, outside any tidy
      times.push(performance.now() - t0);
      r.dispose();
    },
  };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${s[0].toFixed(1).padStart(6)} / median ${s[Math.floor(s.length / 2)].toFixed(1).padStart(6)} ms`;
};

interface BenchAttentionArgs {
  backend: "wasm" | "cpu";
  B: number;
  T: number;
  C: number;
  H: number;
  reps: number;
  profile: boolean;
}

const BENCH_ATTENTION: Command<BenchAttentionArgs> = {
  name: "bench-attention",
  summary: "Time forward + backward of causal multi-head attention: the textbook formulation on tfjs's kernels, on the course's wasm BatchMatMul, and multiHeadAttention.",
  options: {
    backend: { kind: "choice", choices: ["wasm", "cpu"], default: "wasm", help: "the tfjs backend" },
    B: { kind: "integer", value: "N", min: 1, default: 12, help: "batch size" },
    T: { kind: "integer", value: "N", min: 1, default: 64, help: "sequence length" },
    C: { kind: "integer", value: "N", min: 1, default: 128, help: "channels" },
    H: { kind: "integer", value: "N", min: 1, default: 4, help: "heads" },
    reps: { kind: "integer", value: "N", min: 1, default: 20, help: "timed runs per variant" },
    profile: { kind: "boolean", help: "kernel times from tf.profile" },
  },
  async run(args, { out }) {
    const backend = args.backend;
    // This benchmark compares kernels on a chosen backend, so it does not start the course's (initBackend).
    await tf.setBackend(backend);
    const { B, T, C, H, reps } = args;
    const p = initMultiHeadAttention({ channels: C, heads: H, seed: 1 });
    const x = tf.randomNormal([B, T, C], 0, 1, "float32", 2) as tf.Tensor3D;
    const target = tf.randomNormal([B, T, C], 0, 1, "float32", 3);
    const vars = [p.wqkv, p.bqkv!, p.wproj, p.bproj!];

    const forward = (f: Mha) => () => tf.tidy(() => tf.sum(tf.mul(f(p, x, { heads: H, causal: true }), target)) as tf.Scalar);
    const forwardBackward = (f: Mha) => () =>
      tf.tidy(() => {
        // loss = Σ out ⊙ target; gradients w.r.t. x and all four parameters.
        const { value, grads } = tf.valueAndGrads((xx: tf.Tensor, wqkv: tf.Tensor, bqkv: tf.Tensor, wproj: tf.Tensor, bproj: tf.Tensor) =>
          tf.sum(tf.mul(f({ wqkv: wqkv as tf.Tensor2D, bqkv: bqkv as tf.Tensor1D, wproj: wproj as tf.Tensor2D, bproj: bproj as tf.Tensor1D },
            xx as tf.Tensor3D, { heads: H, causal: true }), target)) as tf.Scalar)([x, ...vars]);
        return tf.addN([value, ...grads.map((g) => tf.sum(g))]) as tf.Scalar; // one scalar depending on all gradients
      });

    out(`backend ${tf.getBackend()}, causal MHA B=${B} T=${T} C=${C} H=${H}, ${reps} interleaved runs`);
    const before = tf.memory().numTensors;
    // Baseline: the textbook formulation on tfjs's own kernels. Then the same with the
    // course's wasm BatchMatMul kernel, and the course's multiHeadAttention (which installs
    // that kernel itself).
    const wasm = backend === "wasm";
    const variants = ([
      ["textbook" + (wasm ? ", tfjs kernels" : ""), multiHeadAttentionTextbook, false],
      ...(wasm ? [["textbook, course kernels", multiHeadAttentionTextbook, true]] : []),
      ["multiHeadAttention", multiHeadAttention, true],
    ] as [string, Mha, boolean][]).map(([name, f, courseKernel]) =>
      ({ name, courseKernel, fwd: timer(forward(f)), fb: timer(forwardBackward(f)) }));
    // Interleave the variants so that load from other processes hits them alike; the
    // minimum is the least disturbed run.
    for (let i = 0; i < reps + 2; i++) {
      for (const v of variants) {
        if (wasm) (v.courseKernel ? useFastWasmMatMul : restoreWasmMatMul)();
        v.fwd.once();
        v.fb.once();
        if (i < 2) { v.fwd.times.length = 0; v.fb.times.length = 0; } // warm-up
      }
    }
    if (wasm) restoreWasmMatMul();
    for (const v of variants) {
      out(`${v.name.padEnd(25)} forward ${stats(v.fwd.times)}   forward+backward ${stats(v.fb.times)}`);
    }
    if (tf.memory().numTensors !== before) out(`warning: ${tf.memory().numTensors - before} tensors leaked`);
    if (args.profile) {
      for (const [name, f] of [["textbook", multiHeadAttentionTextbook], ["multiHeadAttention", multiHeadAttention]] as [string, Mha][]) {
        if (backend === "wasm") (f === multiHeadAttention ? useFastWasmMatMul : restoreWasmMatMul)();
        const info = await tf.profile(() => { forwardBackward(f)().dispose(); });
        const byKernel = new Map<string, { ms: number; n: number }>();
        for (const k of info.kernels) {
          const e = byKernel.get(k.name) ?? { ms: 0, n: 0 };
          e.ms += Number(await k.kernelTimeMs);
          e.n += 1;
          byKernel.set(k.name, e);
        }
        const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 10);
        out(`${name}: ${info.kernels.length} kernels; top: ` + rows.map(([k, e]) => `${k} ${e.ms.toFixed(1)}ms×${e.n}`).join(", "));
      }
    }
  },
};

export const main = commandMain(BENCH_ATTENTION);

if (require.main === module) runAsScript(main);
