import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { readPreferences } from "../../../lib/rlhf/preferences";
import { loadPretrained } from "../../../lib/pretrain/pretrain";
import { main as dpoMain, parseDPOArgs } from "../../../lib/tools/cli/dpo";
import { main as ppoMain, parsePPOArgs } from "../../../lib/tools/cli/ppo";
import { main as rewardMain, parseRewardArgs } from "../../../lib/tools/cli/reward";
import { tinyChatCli } from "../../rlhf/rlhfFixture";

// The CLIs must chain (reward → ppo, dpo), print their JSON summary last and save checkpoints,
// on a tiny untrained chat model: nothing needs build/artifacts.

describe("reward, ppo and dpo CLIs", function () {
  this.timeout(180000);
  const cli = tinyChatCli("rlhf-cli-");
  const run = cli.run;

  it("defaults chain through the artifacts folder", () => {
    const e = { COURSE_ARTIFACTS: "/x" };
    const r = parseRewardArgs([], e);
    assert.equal(r.checkpoint, path.join("/x", "sft"));
    assert.equal(r.prefs, path.join("/x", "preferences.jsonl"));
    assert.equal(r.out, path.join("/x", "reward"));
    const p = parsePPOArgs([], e);
    assert.equal(p.reward, path.join("/x", "reward"));
    assert.equal(p.out, path.join("/x", "ppo"));
    assert.equal(parsePPOArgs(["--adaptive-kl", "2"], e).adaptiveKL, 2);
    const d = parseDPOArgs([], e);
    assert.equal(d.prefs, path.join("/x", "preferences.jsonl"));
    assert.equal(d.out, path.join("/x", "dpo"));
    assert.throws(() => parsePPOArgs(["--beta", "x"]), /--beta must be a number/);
    assert.equal(parsePPOArgs(["--critic", "shared", "--eval-samples", "2"]).critic, "shared");
    assert.equal(parsePPOArgs([]).critic, undefined); // the library's default, detached
    assert.throws(() => parsePPOArgs(["--critic", "both"]), /--critic must be detached or shared, got "both"/);
    assert.throws(() => parseDPOArgs(["--eval-samples", "0"]), /--eval-samples/);
    assert.throws(() => parseRewardArgs(["--val-fraction", "1"]), /--val-fraction/);
    assert.throws(() => parseDPOArgs(["--bogus"]), /unknown option --bogus/);
  });

  it("reward → ppo → dpo: JSON summaries last, checkpoints saved and loadable", async () => {
    const prefs = path.join(cli.dir, "prefs.jsonl");
    const rm = await run(rewardMain, "--checkpoint", cli.ckpt, "--data", cli.data, "--prefs", prefs, "--simulate", "8", "--k", "3",
      "--max-iters", "3", "--max-new-tokens", "6", "--out", path.join(cli.dir, "reward"), "--json");
    assert.equal(rm.code, 0, rm.err.join("\n"));
    for (const k of ["accuracy", "trainAccuracy", "accuracyBefore", "valPairs", "trainPairs", "records", "seconds", "checkpoint"]) assert.ok(k in rm.json, k);
    assert.equal(rm.json.records, 8);
    assert.ok(rm.json.accuracy >= 0 && rm.json.accuracy <= 1);
    assert.equal(readPreferences(prefs).records.length, 8);
    assert.ok(readPreferences(prefs).records.every((r) => r.rankedBy.startsWith("simulated:") && r.responses.length === 3));
    const rmModel = loadPretrained(path.join(cli.dir, "reward"));
    assert.ok("score.weight" in rmModel.params);
    tf.dispose(Object.values(rmModel.params));

    const ppo = await run(ppoMain, "--checkpoint", cli.ckpt, "--data", cli.data, "--reward", path.join(cli.dir, "reward"), "--iters", "2",
      "--batch-size", "4", "--max-new-tokens", "6", "--eval-prompts", "4", "--eval-samples", "2", "--out", path.join(cli.dir, "ppo"), "--json");
    assert.equal(ppo.code, 0, ppo.err.join("\n"));
    for (const k of ["winRate", "wins", "ties", "losses", "meanKL", "rewardScore", "sftRewardScore", "trueScore", "sftTrueScore", "seconds", "checkpoint"]) assert.ok(k in ppo.json, k);
    assert.equal(ppo.json.evalAnswers, 8);
    assert.equal(ppo.json.evalQuestions, 4);
    assert.ok(ppo.json.trueScoreDiffInterval[0] <= ppo.json.trueScore - ppo.json.sftTrueScore + 1e-12);
    assert.ok(ppo.json.winRate >= 0 && ppo.json.winRate <= 1 && Number.isFinite(ppo.json.meanKL));
    assert.ok(ppo.err.some((l) => /^iteration 2\/2: score/.test(l)), "progress on stderr");
    const pol = loadPretrained(path.join(cli.dir, "ppo"));
    assert.ok("value.weight" in pol.params);
    tf.dispose(Object.values(pol.params));

    const dpo = await run(dpoMain, "--checkpoint", cli.ckpt, "--data", cli.data, "--prefs", prefs, "--reward", path.join(cli.dir, "reward"),
      "--max-iters", "2", "--batch-size", "4", "--max-new-tokens", "6", "--eval-prompts", "4", "--out", path.join(cli.dir, "dpo"), "--json");
    assert.equal(dpo.code, 0, dpo.err.join("\n"));
    for (const k of ["winRate", "meanKL", "rewardScore", "trueScore", "sftTrueScore", "valAccuracy", "seconds", "checkpoint"]) assert.ok(k in dpo.json, k);
    assert.ok(Number.isFinite(dpo.json.rewardScore));
    assert.ok(fs.existsSync(path.join(cli.dir, "dpo", "model.json")));
  });

  it("errors: a missing checkpoint or reward model is one line and exit code 2", async () => {
    const r = await run(ppoMain, "--checkpoint", path.join(cli.dir, "nope"), "--data", cli.data);
    assert.equal(r.code, 2);
    assert.match(r.err[r.err.length - 1], /^ppo: cannot load the SFT checkpoint/);
    const r2 = await run(ppoMain, "--checkpoint", cli.ckpt, "--data", cli.data, "--reward", path.join(cli.dir, "nope"));
    assert.equal(r2.code, 2);
    assert.match(r2.err[r2.err.length - 1], /^ppo: cannot load the reward model/);
    const r3 = await run(dpoMain, "--checkpoint", cli.ckpt, "--data", cli.data, "--prefs", path.join(cli.dir, "empty.jsonl"));
    assert.equal(r3.code, 2);
    assert.match(r3.err[r3.err.length - 1], /no rankings/);
  });

  it("never overwrite the model they read: --out equal to --checkpoint or --reward is refused; a reward model is no policy", async () => {
    const before = fs.readFileSync(path.join(cli.ckpt, "model.json"), "utf8");
    for (const [name, main] of [["reward", rewardMain], ["ppo", ppoMain], ["dpo", dpoMain]] as const) {
      const r = await run(main, "--checkpoint", cli.ckpt, "--data", cli.data, "--out", cli.ckpt);
      assert.equal(r.code, 2, name);
      assert.match(r.err[0], new RegExp(`^${name}: --out is the same directory as --checkpoint \\(.*\\): the model this run reads would be overwritten; give another --out \\(see --help\\)$`));
    }
    const rm = path.join(cli.dir, "reward"); // trained by the test above
    const same = await run(ppoMain, "--checkpoint", cli.ckpt, "--data", cli.data, "--reward", rm, "--out", rm);
    assert.equal(same.code, 2);
    assert.match(same.err[0], /--out is the same directory as --reward/);
    assert.equal(fs.readFileSync(path.join(cli.ckpt, "model.json"), "utf8"), before);
    // The reward model (trained above) given as the policy to start from.
    const asPolicy = await run(ppoMain, "--checkpoint", rm, "--data", cli.data, "--reward", rm, "--out", path.join(cli.dir, "x"));
    assert.equal(asPolicy.code, 2);
    assert.match(asPolicy.err[asPolicy.err.length - 1], /reward: a reward model \(it has a score head\), not a policy to answer with/);
  });

  it("a mistyped --prefs is refused instead of filled with simulated rankings; too few rankings are not called held out", async () => {
    const typo = path.join(cli.dir, "prefz.jsonl");
    const r = await run(rewardMain, "--checkpoint", cli.ckpt, "--data", cli.data, "--prefs", typo, "--out", path.join(cli.dir, "rm-typo"));
    assert.equal(r.code, 2);
    assert.match(r.err[r.err.length - 1], /^reward: --prefs .*prefz\.jsonl does not exist; to rank answers into it with the simulated labeller, add --simulate N$/);
    assert.ok(!fs.existsSync(typo), "no file made");
    const few = await run(rewardMain, "--checkpoint", cli.ckpt, "--data", cli.data, "--prefs", path.join(cli.dir, "few.jsonl"), "--simulate", "3", "--k", "4", "--seed", "1",
      "--max-iters", "1", "--max-new-tokens", "4", "--out", path.join(cli.dir, "rm-few"), "--json");
    assert.equal(few.code, 0, few.err.join("\n"));
    assert.equal(few.json.heldOut, false, "too few rankings to hold any out");
  });

  it("as a process: usage error → exit 2, JSON on the last stdout line", () => {
    const script = path.join(__dirname, "..", "..", "..", "lib", "tools", "cli", "dpo.ts");
    const proc = (...argv: string[]) =>
      spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", script, ...argv], {
        env: { ...process.env, ...cli.env }, encoding: "utf8", cwd: path.join(__dirname, "..", "..", ".."),
      });
    const bad = proc("--beta");
    assert.equal(bad.status, 2);
    assert.match(bad.stderr.trim(), /^dpo: --beta needs a value \(see --help\)$/);
    const ok = proc("--checkpoint", cli.ckpt, "--data", cli.data, "--prefs", path.join(cli.dir, "prefs.jsonl"), "--max-iters", "1", "--batch-size", "2",
      "--eval-prompts", "2", "--max-new-tokens", "4", "--out", path.join(cli.dir, "dpo2"), "--json");
    assert.equal(ok.status, 0, ok.stderr);
    const lines = ok.stdout.trim().split("\n");
    assert.equal(JSON.parse(lines[lines.length - 1]).iterations, 1);
  });
});
