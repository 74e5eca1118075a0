import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { main as trainMain, parseTrainArgs } from "../../../lib/tools/cli/train";
import { main as sampleMain } from "../../../lib/tools/cli/sample";
import { projectPath } from "../../../lib/core/paths";
import { disposeParams, loadPretrained } from "../../../lib/pretrain/pretrain";
import { saveCheckpoint } from "../../../lib/pretrain/checkpoint";
import { initScalarHead } from "../../../lib/rlhf/rewardModel";

const CORPUS = "It was the best of times, it was the worst of times, it was the age of wisdom. ".repeat(40);

describe("train and sample CLIs", function () {
  this.timeout(120000);
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let corpus: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "train-cli-"));
    corpus = path.join(dir, "corpus.txt");
    fs.writeFileSync(corpus, CORPUS);
    env = { COURSE_SMOKE: "1", COURSE_ARTIFACTS: path.join(dir, "artifacts") };
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function train(...argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await trainMain(argv, (l) => out.push(l), (l) => err.push(l), env);
    return { code, out, err };
  }
  async function sample(...argv: string[]) {
    let out = "";
    const err: string[] = [];
    const code = await sampleMain(argv, (t) => (out += t), (l) => err.push(l), env);
    return { code, out, err };
  }

  it("defaults: moby-dick, char, nanogpt-cpu (tiny in smoke mode), out = artifactPath(\"pretrained\")", () => {
    const full = parseTrainArgs([], { COURSE_ARTIFACTS: "/x" });
    assert.equal(full.data, "moby-dick");
    assert.equal(full.tokenizer, "char");
    assert.equal(full.preset, "nanogpt-cpu");
    assert.equal(full.out, path.join("/x", "pretrained"));
    assert.equal(parseTrainArgs([], { COURSE_SMOKE: "1" }).preset, "tiny");
  });

  it("trains in smoke mode, prints a JSON summary last, and saves a checkpoint", async () => {
    const r = await train("--data", corpus, "--json");
    assert.equal(r.code, 0, r.err.join("\n"));
    const s = JSON.parse(r.out[r.out.length - 1]);
    for (const k of ["trainLoss", "valLoss", "iterations", "seconds", "msPerStep", "backend", "checkpoint"]) assert.ok(k in s, k);
    assert.equal(s.iterations, 20);
    assert.equal(s.backend, "wasm");
    assert.equal(s.checkpoint, path.join(dir, "artifacts", "pretrained"));
    assert.ok(s.valLoss < Math.log(s.vocabSize), `val loss ${s.valLoss} should be below ln V`);
    assert.ok(fs.existsSync(path.join(s.checkpoint, "model.json")));
    assert.match(r.err[0], /^backend: /);
    assert.ok(r.err.some((l) => /^step 20\/20: loss/.test(l)), "progress lines on stderr");
  });

  it("--resume continues from the checkpoint", async () => {
    const out = path.join(dir, "seg");
    const a = await train("--data", corpus, "--max-iters", "10", "--out", out, "--json");
    assert.equal(a.code, 0, a.err.join("\n"));
    const b = await train("--data", corpus, "--max-iters", "14", "--out", out, "--resume", "--json");
    assert.equal(b.code, 0, b.err.join("\n"));
    const s = JSON.parse(b.out[b.out.length - 1]);
    assert.equal(s.iterations, 14);
    assert.equal(s.itersThisRun, 4);
    assert.equal(s.resumedFrom, out);
    assert.ok(b.err.some((l) => l.startsWith(`resumed from ${out} at step 10`)));
  });

  it("never replaces a checkpoint silently: --out with one needs --resume or --force", async () => {
    const out = path.join(dir, "seg");
    const before = fs.readFileSync(path.join(out, "model.json"), "utf8");
    const r = await train("--data", corpus, "--max-iters", "2", "--out", out);
    assert.equal(r.code, 2);
    assert.deepEqual(r.err, [`train: --out ${projectPath(out)} already holds a checkpoint: continue it with --resume, replace it with --force, or give another --out (see --help)`]);
    assert.equal(fs.readFileSync(path.join(out, "model.json"), "utf8"), before, "untouched");
    const both = await train("--data", corpus, "--out", out, "--resume", "--force");
    assert.equal(both.code, 2);
    assert.match(both.err[0], /--resume continues the checkpoint in --out, --force replaces it: give one of them/);
    const forced = await train("--data", corpus, "--max-iters", "2", "--out", out, "--force", "--json");
    assert.equal(forced.code, 0, forced.err.join("\n"));
    assert.equal(JSON.parse(forced.out[forced.out.length - 1]).iterations, 2);
  });

  it("an --out that cannot be written is refused before training starts", async () => {
    const t0 = Date.now();
    const r = await train("--data", corpus, "--out", path.join(corpus, "sub"));
    assert.equal(r.code, 2);
    assert.deepEqual(r.err, [`train: --out ${projectPath(path.join(corpus, "sub"))}: cannot write there (a file stands where a folder should be) (see --help)`]);
    const f = await train("--data", corpus, "--out", corpus);
    assert.equal(f.code, 2);
    assert.match(f.err[0], /corpus\.txt is a file, expected a directory/);
    assert.ok(Date.now() - t0 < 10_000);
  });

  it("a batch, block or thread count this machine cannot hold is refused in one line before anything is allocated", async () => {
    const huge = await train("--data", corpus, "--out", path.join(dir, "huge"), "--batch-size", "100000000", "--threads", "1");
    assert.equal(huge.code, 1);
    assert.match(huge.err[huge.err.length - 1], /^train: pretrain: batch size 100000000: 100000000 sequences of 8 tokens per thread need about [\d.e+]+ GiB for a training step, more than the 4\.00 GiB a thread has; expected at most \d+ per thread \(\d+ sequences over 1 thread\)$/);
    const long = await train("--data", corpus, "--out", path.join(dir, "huge"), "--block-size", "100000000");
    assert.match(long.err[long.err.length - 1], /^train: pretrain: block size 100000000: even one sequence needs about [\d.e+]+ GiB for a training step with this model, more than the 4\.00 GiB a thread has; expected a smaller block size or model$/);
    const threads = await train("--data", corpus, "--out", path.join(dir, "huge"), "--threads", "100000");
    assert.equal(threads.code, 2);
    assert.match(threads.err[0], /^train: --threads 100000: expected at most \d+, one per core/);
    assert.ok(!fs.existsSync(path.join(dir, "huge")), "nothing written");
  });

  it("sample refuses a reward model (a score head) where a language model belongs", async () => {
    const ck = path.join(dir, "artifacts", "pretrained");
    const m = loadPretrained(ck);
    const rmDir = path.join(dir, "rm");
    saveCheckpoint(rmDir, { params: { ...m.params, ...initScalarHead("score", m.config, 1) }, config: m.config, tokenizer: m.tokenizer, step: 0 });
    disposeParams(m.params);
    const r = await sample("--checkpoint", rmDir, "--prompt", "it", "--tokens", "3");
    assert.equal(r.code, 2);
    assert.match(r.err[r.err.length - 1], /rm: a reward model \(it has a score head\), not a policy to answer with/);
  });

  it("samples from the checkpoint, streaming text and reporting tokens/s", async () => {
    const ck = path.join(dir, "artifacts", "pretrained");
    const r = await sample("--checkpoint", ck, "--prompt", "it was", "--tokens", "15", "--seed", "1");
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.ok(r.out.startsWith("it was"));
    assert.equal(r.out.length, "it was".length + 15 + 1); // char model: one character per token, then "\n"
    assert.match(r.err[r.err.length - 1], /^sample: 15 tokens in [\d.]+ s \([\d.]+ tokens\/s\) on wasm/);
    const again = await sample("--checkpoint", ck, "--prompt", "it was", "--tokens", "15", "--seed", "1");
    assert.equal(again.out, r.out, "same seed, same text");
    const greedy = await sample("--prompt", "it was", "--tokens", "5", "--temperature", "0", "--top-k", "3");
    assert.equal(greedy.code, 0, greedy.err.join("\n")); // default checkpoint: artifactPath("pretrained")
  });

  it("bad flags: one-line usage error, exit code 2", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["--max-iters", "x"], /^train: --max-iters must be an integer >= 0, got "x"/],
      [["--batch-size", "0"], /^train: --batch-size must be an integer >= 1/],
      [["--eval-iters", "0"], /^train: --eval-iters must be an integer >= 1, got "0"/], // 0 batches made NaN losses
      [["--tokenizer", "word"], /^train: --tokenizer must be char or bpe, got "word"/],
      [["--preset", "huge"], /^train: --preset must be one of gpt2, nanogpt-cpu, course-base, llama, tiny, got "huge"/],
      [["--out"], /^train: --out needs a value/],
      [["--frobnicate"], /^train: unknown option --frobnicate/],
      [["extra"], /^train: unexpected argument "extra"/],
    ];
    for (const [argv, expected] of cases) {
      const r = await train(...argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.equal(r.err.length, 1, r.err.join("\n"));
      assert.match(r.err[0], expected);
    }
    const missing = await train("--data", path.join(dir, "nope.txt"), "--out", path.join(dir, "fresh"));
    assert.equal(missing.code, 1);
    assert.match(missing.err[missing.err.length - 1], /^train: loadCorpus: .*nope\.txt: no such file/);
  });

  it("sample: clear one-line errors, exit code 2", async () => {
    const ck = path.join(dir, "artifacts", "pretrained");
    const trunc = path.join(dir, "trunc");
    fs.cpSync(ck, trunc, { recursive: true });
    const w = path.join(trunc, "weights.bin");
    fs.truncateSync(w, fs.statSync(w).size - 8);
    const cases: Array<[string[], RegExp]> = [
      [["--checkpoint", ck], /^sample: missing --prompt "TEXT"/],
      [["--checkpoint", path.join(dir, "none"), "--prompt", "it"], /^sample: cannot load the checkpoint: .*none: no checkpoint here/],
      [["--checkpoint", trunc, "--prompt", "it"], /^sample: cannot load the checkpoint: .*weights\.bin/],
      [["--checkpoint", ck, "--prompt", "it was ☃"], /^sample: the prompt cannot be encoded with the checkpoint's char tokenizer: .*"☃"/],
      [["--checkpoint", ck, "--prompt", "it", "--top-p", "2"], /^sample: --top-p must be a number in \(0, 1\], got "2"/],
      [["--checkpoint", ck, "--prompt", "it", "--tokens", "-1"], /^sample: --tokens must be an integer >= 1/],
      [["--bogus"], /^sample: unknown option --bogus/],
    ];
    for (const [argv, expected] of cases) {
      const r = await sample(...argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.equal(r.err.length, 1, r.err.join("\n"));
      assert.match(r.err[0], expected);
    }
  });

  it("as a process: the last stdout line is the JSON summary; bad flags exit 2", () => {
    const script = path.join(__dirname, "..", "..", "..", "lib", "tools", "cli", "train.ts");
    const run = (...argv: string[]) =>
      spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", script, ...argv], {
        env: { ...process.env, ...env }, encoding: "utf8", cwd: path.join(__dirname, "..", "..", ".."),
      });
    const ok = run("--data", corpus, "--max-iters", "3", "--out", path.join(dir, "proc"), "--json");
    assert.equal(ok.status, 0, ok.stderr);
    const lines = ok.stdout.trim().split("\n");
    assert.equal(JSON.parse(lines[lines.length - 1]).iterations, 3);
    const bad = run("--max-iters");
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr.trim().split("\n").length, 1);
  });
});
