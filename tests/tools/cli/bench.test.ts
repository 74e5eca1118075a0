import assert from "node:assert/strict";
import { gptConfig } from "../../../lib/gpt/gpt";
import {
  checkTargets, formatBench, formatSpread, LLAMA_TORCH_SCRIPT, median, ourConfigs, parseBenchArgs, type PresetSitting, runBench, spread,
  summarisePreset, torchConfigs, torchReferenceFor, UsageError,
} from "../../../lib/tools/cli/bench";

describe("bench CLI", function () {
  this.timeout(120_000);

  it("parses its options and rejects bad ones in one line", () => {
    const a = parseBenchArgs(["--json", "--threads", "1,2", "--steps", "7", "--torch", "--python", "/usr/bin/python3"]);
    assert.equal(a.json, true);
    assert.deepEqual(a.threads, [1, 2]);
    assert.equal(a.steps, 7);
    assert.equal(a.torch, true);
    assert.equal(a.python, "/usr/bin/python3");
    assert.throws(() => parseBenchArgs(["--threads", "0"]), UsageError);
    assert.throws(() => parseBenchArgs(["--preset", "huge"]), /--preset must be one of/);
    assert.throws(() => parseBenchArgs(["--steps"]), /needs a value/);
  });

  it("median of odd and even counts", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  it("rejects an unknown preset in a list, naming it", () => {
    assert.equal(parseBenchArgs(["--preset", "nanogpt-cpu,llama"]).preset, "nanogpt-cpu,llama");
    assert.throws(() => parseBenchArgs(["--preset", "nanogpt-cpu,huge"]), /--preset must be one of .*got "huge"/);
    assert.throws(() => parseBenchArgs(["--sittings", "0"]), /--sittings must be an integer >= 1/);
  });

  it("spread: median and range of the finite values", () => {
    assert.deepEqual(spread([3, 1, NaN, 2]), { median: 2, min: 1, max: 3, n: 3 });
    assert.equal(spread([NaN]).n, 0);
    assert.equal(formatSpread(spread([1.5, 1.25, 2]), 2, "x"), "1.50x (1.25x–2.00x)");
    assert.equal(formatSpread(spread([61.62]), 1, " ms"), "61.6 ms");
  });

  it("configurations: one core, data parallelism sharing the BLAS, one thread with the BLAS on every core", () => {
    assert.deepEqual(ourConfigs([1, 2], undefined).map((c) => [c.threads, c.blasThreads, c.cores]), [[1, undefined, 1], [2, undefined, 2]]);
    assert.deepEqual(ourConfigs([1, 2], 2).map((c) => [c.threads, c.blasThreads, c.cores]), [[1, 1, 1], [2, 1, 2], [1, 2, 2]]);
    assert.deepEqual(ourConfigs([1, 4], 8).map((c) => [c.threads, c.blasThreads, c.cores]), [[1, 1, 1], [4, 2, 8], [1, 8, 8]]);
    assert.deepEqual(torchConfigs([1, 2], 2).map((c) => [c.threads, c.blasThreads]), [[1, 1], [2, 2], [1, 2]]);
    assert.deepEqual(torchConfigs([1], 1).map((c) => [c.threads, c.blasThreads]), [[1, 1]]);
  });

  it("summarises sittings and checks the issue's targets on the medians", () => {
    const config = (label: string, cores: number) => ({ label, threads: cores, cores });
    const sitting = (one: number, two: number, torch: number): PresetSitting => ({
      train: [
        { ...config("1 thread", 1), msPerStep: one, tokensPerSecond: 0, gflopsPerSecond: 0, ratioToPytorch: one / torch },
        { ...config("2 threads", 2), msPerStep: two, tokensPerSecond: 0, gflopsPerSecond: 0, ratioToPytorch: two / torch },
      ],
      sampling: { kvCacheTokensPerSecond: 1000, kvCacheTfjsTokensPerSecond: 0, noCacheTokensPerSecond: 0, tokens: 60, sameOutput: true },
      pytorch: { version: "pytorch", runs: [{ ...config("1 thread", 1), msPerStep: torch }], best: { ...config("1 thread", 1), msPerStep: torch } },
      ratioToPytorch: Math.min(one, two) / torch,
      threadSpeedup: one / two,
    });
    const summary = summarisePreset([sitting(80, 50, 50), sitting(90, 45, 50), sitting(70, 40, 40)]);
    assert.deepEqual(summary.train[1].msPerStep, { median: 45, min: 40, max: 50, n: 3 });
    assert.deepEqual(summary.ratioToPytorch, { median: 1, min: 0.9, max: 1, n: 3 });
    assert.deepEqual(summary.threadSpeedup, { median: 1.75, min: 1.6, max: 2, n: 3 });
    const targets = checkTargets([{ preset: "nanogpt-cpu", context: 64, parameters: 1, flopsPerStep: 1, sittings: [], summary }]);
    assert.deepEqual(targets.map((t) => [t.target, t.met]), [["<= 1.0", true], ["<= 0.75", false], [">= 1.7", true], [">= 430", true]]);
  });

  it("the PyTorch script and its arguments for each architecture; none for others", () => {
    const gpt = torchReferenceFor(gptConfig("nanogpt-cpu"), "/ref.py");
    assert.deepEqual(gpt, { script: "/ref.py", args: ["--layers", "4", "--heads", "4", "--channels", "128", "--context", "64"] });
    const llama = torchReferenceFor(gptConfig("llama"), "/ref.py");
    assert.ok("script" in llama && llama.script === LLAMA_TORCH_SCRIPT);
    assert.deepEqual("args" in llama && llama.args.slice(-2), ["--kv-heads", "2"]);
    assert.match((torchReferenceFor(gptConfig("nanogpt-cpu", { bias: false }), "/ref.py") as { error: string }).error, /no PyTorch reference/);
  });

  it("times the training step per configuration and sampling, on a tiny model, over two sittings", async () => {
    const args = parseBenchArgs(["--preset", "tiny", "--steps", "2", "--warmup", "1", "--threads", "1,2", "--tokens", "5", "--batch-size", "4", "--sittings", "2"]);
    const r = await runBench(args, () => {});
    assert.equal(r.sittings, 2);
    assert.equal(r.presets.length, 1);
    const p = r.presets[0];
    assert.equal(p.preset, "tiny");
    assert.equal(p.sittings.length, 2);
    for (const s of p.sittings) {
      assert.ok(s.train.some((t) => t.cores === 1) && s.train.some((t) => t.threads === 2));
      for (const t of s.train) {
        assert.ok(t.msPerStep > 0 && Number.isFinite(t.msPerStep));
        assert.ok(Math.abs(t.tokensPerSecond - (4 * 8 * 1000) / t.msPerStep) < 1e-6);
      }
      assert.equal(s.sampling.sameOutput, true);
      assert.equal(s.pytorch, undefined);
    }
    assert.equal(p.summary.train[0].msPerStep.n, 2);
    assert.ok(r.peakRssMB > 0);
    assert.match(formatBench(r), /train step, 2 threads \(data parallel\)/);
    assert.ok(r.targets.some((t) => t.target === ">= 430"));
  });
});
