import assert from "node:assert/strict";
import { ARCHITECTURE_VARIANTS, architectureFigures, architectureMarkdown, main } from "../../../lib/tools/cli/architectures";
import { parseTrainArgs, trainOptions } from "../../../lib/tools/cli/train";

describe("architectures CLI (chapter 10's comparison)", () => {
  it("every variant's flags are train's, and give the config the variant names", () => {
    const expected: Record<string, object> = {
      "gpt-2": {}, rmsnorm: { norm: "rmsnorm" }, swiglu: { mlp: "swiglu" }, rope: { positions: "rope" }, gqa: { nKvHead: 2 }, "no-bias": { bias: false }, llama: {},
    };
    for (const v of ARCHITECTURE_VARIANTS) {
      const opts = trainOptions(parseTrainArgs(["--data", "shakespeare", ...v.flags]), {});
      assert.deepEqual(opts.overrides, expected[v.name], v.name);
      assert.equal(opts.preset, v.name === "llama" ? "llama" : "nanogpt-cpu", v.name);
    }
  });

  it("figures per variant over its seeds, and the README's table with the difference to GPT-2's block", () => {
    const run = (variant: string, seed: number, valLoss: number) => ({ variant, seed, summary: { valLoss, msPerStep: 60, parameters: 1000 } });
    const figures = architectureFigures([run("gpt-2", 1, 1.9), run("gpt-2", 2, 1.92), run("rope", 1, 1.8), run("rope", 2, 1.78)]);
    assert.deepEqual(figures.map((f) => [f.name, f.valLoss.mean, f.valLoss.min, f.valLoss.max, f.seeds]), [["gpt-2", 1.91, 1.9, 1.92, [1, 2]], ["rope", 1.79, 1.78, 1.8, [1, 2]]]);
    const md = architectureMarkdown({ date: "d", command: "c", iters: 1, evalBatches: 1, data: "shakespeare", backend: "wasm", variants: figures });
    assert.equal(md.split("\n")[3], "| rotary positions instead of a learned table | 1.790 (−0.120) | 1.800 / 1.780 | 1,000 |");
  });

  it("an unknown variant is refused in one line", async () => {
    const errs: string[] = [];
    assert.equal(await main(["--only", "gpt-2,mamba"], () => {}, (l) => errs.push(l)), 2);
    assert.match(errs[0], /^architectures: --only: unknown variant "mamba"; expected one of gpt-2, rmsnorm, swiglu, rope, gqa, no-bias, llama/);
  });
});
