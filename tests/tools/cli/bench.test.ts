import assert from "node:assert/strict";
import { formatBench, median, parseBenchArgs, runBench, UsageError } from "../../../lib/tools/cli/bench";

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

  it("times the training step per thread count and sampling, on a tiny model", async () => {
    const args = parseBenchArgs(["--preset", "tiny", "--steps", "2", "--warmup", "1", "--threads", "1,2", "--tokens", "5", "--batch-size", "4"]);
    const r = await runBench(args, () => {});
    assert.equal(r.preset, "tiny");
    assert.deepEqual(r.train.map((t) => t.threads), [1, 2]);
    for (const t of r.train) {
      assert.ok(t.msPerStep > 0 && Number.isFinite(t.msPerStep));
      assert.ok(Math.abs(t.tokensPerSecond - (4 * 8 * 1000) / t.msPerStep) < 1e-6);
    }
    assert.equal(r.sampling.sameOutput, true);
    assert.ok(r.sampling.kvCacheTokensPerSecond > 0);
    assert.ok(r.peakRssMB > 0);
    assert.equal(r.pytorch, undefined);
    assert.match(formatBench(r), /train step, 2 thread\(s\)/);
  });
});
