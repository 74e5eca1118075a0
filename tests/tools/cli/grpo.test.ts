import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { loadPretrained, disposeParams } from "../../../lib/pretrain/pretrain";
import { saveSFTData } from "../../../lib/finetune/sft";
import { main as grpoMain, parseGRPOArgs } from "../../../lib/tools/cli/grpo";
import { tinyChatCli } from "../../rlhf/rlhfFixture";

// npm run grpo on a tiny untrained chat model: nothing needs build/artifacts.

describe("grpo CLI", function () {
  this.timeout(120000);
  const cli = tinyChatCli("grpo-cli-");
  const run = (...argv: string[]) => cli.run(grpoMain, ...argv);

  it("options: defaults from the artifacts folder and the library, bad values refused", () => {
    const a = parseGRPOArgs([], { COURSE_ARTIFACTS: "/x" });
    assert.equal(a.checkpoint, path.join("/x", "sft"));
    assert.equal(a.out, path.join("/x", "grpo"));
    assert.equal(a.task, "facts");
    assert.equal(a.beta, 0);
    assert.equal(parseGRPOArgs(["--task", "letters", "--beta", "0.04", "--group-size", "16"]).groupSize, 16);
    assert.throws(() => parseGRPOArgs(["--group-size", "1"]), /--group-size/);
    assert.throws(() => parseGRPOArgs(["--task", "maths"]), /--task must be facts or letters, got "maths"/);
    assert.throws(() => parseGRPOArgs(["--beta", "-1"]), /--beta/);
  });

  it("trains, saves a loadable policy, evaluates before and after; the JSON summary is the last line and agrees with itself", async () => {
    const out = path.join(cli.dir, "grpo");
    const r = await run("--checkpoint", cli.ckpt, "--data", cli.data, "--iters", "2", "--group-size", "3", "--eval-samples", "3", "--out", out, "--seed", "2", "--json");
    assert.equal(r.code, 0, r.err.join("\n"));
    const j = r.json;
    assert.equal(j.task, "facts");
    assert.equal(j.heldOutQuestions, 6, "smoke: the first 6 of val + test");
    assert.equal(j.passAtBefore.length, 3);
    assert.equal(j.passAtAfter.length, 3);
    for (const p of [j.pass1Before, j.pass1After]) {
      assert.equal(p.n, 6);
      assert.ok(p.lo <= p.mean && p.mean <= p.hi);
    }
    assert.equal(j.passAtBefore[0], j.pass1Before.mean);
    assert.ok(Math.abs(j.gain - (j.pass1After.mean - j.pass1Before.mean)) < 1e-12);
    assert.equal(j.separated, j.pass1After.lo > j.pass1Before.hi);
    assert.ok(Number.isFinite(j.kl));
    assert.equal(j.iterations, 2);
    assert.equal(j.checkpoint, path.relative(process.cwd(), out) || ".");
    const m = loadPretrained(out);
    disposeParams(m.params);
    assert.match(r.err.join("\n"), /evaluating the SFT model on 6 held-out facts questions, 3 sampled answers each/);
    assert.match(r.err.join("\n"), /iteration 2\/2: reward/);
  });

  it("refuses to overwrite its checkpoint, and a data set without the task's questions", async () => {
    const same = await run("--checkpoint", cli.ckpt, "--data", cli.data, "--out", cli.ckpt);
    assert.equal(same.code, 2);
    assert.match(same.err[0], /^grpo: --out is the same directory as --checkpoint/);
    const letters = await run("--checkpoint", cli.ckpt, "--data", cli.data, "--task", "letters", "--out", path.join(cli.dir, "x"));
    assert.equal(letters.code, 2);
    assert.match(letters.err[letters.err.length - 1], /^grpo: .*train\.jsonl: no letters questions to train on$/);
    const other = path.join(cli.dir, "other");
    for (const s of ["train", "val", "test"]) saveSFTData(path.join(other, `${s}.jsonl`), []);
    const none = await run("--checkpoint", cli.ckpt, "--data", path.join(other, "train.jsonl"), "--out", path.join(cli.dir, "y"));
    assert.equal(none.code, 2, none.err.join("\n"));
    assert.match(none.err[none.err.length - 1], /^grpo: cannot load the questions: .*train\.jsonl: no examples \(the file is empty\)$/);
    assert.ok(!fs.existsSync(path.join(cli.dir, "x")) && !fs.existsSync(path.join(cli.dir, "y")), "nothing written");
  });
});
