import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Readable } from "stream";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../../lib/core/backend";
import { CharTokenizer } from "../../../lib/tokens/charTokenizer";
import { saveCheckpoint } from "../../../lib/pretrain/checkpoint";
import { gptConfig, initGPT } from "../../../lib/gpt/gpt";
import { loadPretrained } from "../../../lib/pretrain/pretrain";
import { shippedBaseModelDir } from "../../../lib/core/paths";
import { CHAT_TOKENS, saveSFTData, SFTExample } from "../../../lib/finetune/sft";
import { main as sftMain, parseSFTArgs } from "../../../lib/tools/cli/sft";
import { main as chatMain } from "../../../lib/tools/cli/chat";

const QA: Array<[string, string]> = [["Who is Ahab?", "The captain."], ["Who is Stubb?", "A mate."], ["Hi!", "Hello."], ["Sea?", "Blue."]];
const examples: SFTExample[] = QA.map(([q, a], i) => ({ id: `t-${i}`, kind: "fact", messages: [{ role: "user", content: q }, { role: "assistant", content: a }] }));

describe("sft and chat CLIs", function () {
  this.timeout(120000);
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let ckpt: string;
  let data: string;
  before(async () => {
    await initBackend({ quiet: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sft-cli-"));
    env = { COURSE_SMOKE: "1", COURSE_ARTIFACTS: path.join(dir, "artifacts") };
    // A tiny "pretrained" checkpoint (random weights) with a char tokenizer.
    const tokenizer = CharTokenizer.fromText("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .?!");
    const config = gptConfig("tiny", { vocabSize: tokenizer.vocabSize, blockSize: 32, nEmbd: 32 });
    const params = initGPT(config, { seed: 1 });
    ckpt = path.join(dir, "pretrained");
    saveCheckpoint(ckpt, { params, config, tokenizer, step: 0 });
    tf.dispose(Object.values(params));
    for (const split of ["train", "val", "test"]) saveSFTData(path.join(dir, "sft", `${split}.jsonl`), examples);
    data = path.join(dir, "sft", "train.jsonl");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function sft(...argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await sftMain(argv, (l) => out.push(l), (l) => err.push(l), env);
    return { code, out, err };
  }

  it("defaults: the shipped base model in (the learner's with COURSE_BASE_MODEL=own or in smoke mode), artifactPath(\"sft\") out", () => {
    const a = parseSFTArgs([], { COURSE_ARTIFACTS: "/x" });
    assert.equal(a.checkpoint, shippedBaseModelDir);
    assert.equal(parseSFTArgs([], { COURSE_ARTIFACTS: "/x", COURSE_BASE_MODEL: "own" }).checkpoint, path.join("/x", "pretrained"));
    assert.equal(parseSFTArgs([], { COURSE_ARTIFACTS: "/x", COURSE_SMOKE: "1" }).checkpoint, path.join("/x", "pretrained"));
    assert.equal(a.out, path.join("/x", "sft"));
    assert.ok(a.data.endsWith(path.join("data", "sft", "train.jsonl")));
    assert.equal(parseSFTArgs(["--lora", "4"]).lora, 4);
  });

  it("fine-tunes, prints base and SFT metrics as JSON last, saves a checkpoint loadPretrained reads", async () => {
    const out = path.join(dir, "sft-out");
    const r = await sft("--checkpoint", ckpt, "--data", data, "--max-iters", "150", "--lr", "0.01", "--out", out, "--json");
    assert.equal(r.code, 0, r.err.join("\n"));
    const s = JSON.parse(r.out[r.out.length - 1]);
    for (const k of ["base", "sft", "mode", "trainableParams", "iterations", "checkpoint"]) assert.ok(k in s, k);
    assert.equal(s.iterations, 150);
    assert.equal(s.mode, "full");
    assert.equal(s.sft.n, 4);
    assert.ok(s.sft.exactMatch > s.base.exactMatch, `${s.base.exactMatch} → ${s.sft.exactMatch}`);
    assert.ok(s.sft.endsProperly >= 0.75);
    const m = loadPretrained(out);
    assert.ok(CHAT_TOKENS.end in m.tokenizer.specialTokens);
    assert.equal(m.config.vocabSize, m.tokenizer.vocabSize);
    tf.dispose(Object.values(m.params));
    // Chat with it: replies stream and stop at the end of turn; EOF (Ctrl-D) quits.
    let text = "";
    const errs: string[] = [];
    const code = await chatMain(["--checkpoint", out], Readable.from(["Who is Ahab?\n", "Sea?\n", "/reset\n", "Hi!\n"]), (t) => (text += t), (l) => errs.push(l), env);
    assert.equal(code, 0, errs.join("\n"));
    const replies = text.split("\n").filter((l) => l.startsWith("bot> "));
    assert.equal(replies.length, 3, text);
    assert.ok(errs.some((l) => l.includes("conversation forgotten")));
    // A message with a character the model does not know: an error line, the chat goes on.
    let t2 = "";
    const e2: string[] = [];
    assert.equal(await chatMain(["--checkpoint", out], Readable.from(["☃\n", "Hi!\n"]), (t) => (t2 += t), (l) => e2.push(l), env), 0);
    assert.ok(e2.some((l) => /cannot encode that message: .*"☃"/.test(l)), e2.join("\n"));
    assert.equal(t2.split("\n").filter((l) => l.startsWith("bot> ")).length, 1);
  });

  it("LoRA: fewer trainable parameters, merged checkpoint", async () => {
    const out = path.join(dir, "lora-out");
    const r = await sft("--checkpoint", ckpt, "--data", data, "--max-iters", "5", "--lora", "2", "--out", out, "--json");
    assert.equal(r.code, 0, r.err.join("\n"));
    const s = JSON.parse(r.out[r.out.length - 1]);
    assert.equal(s.mode, "lora");
    assert.equal(s.rank, 2);
    assert.ok(s.trainableParams < s.totalParams / 2);
    const m = loadPretrained(out);
    assert.equal(m.config.vocabSize, m.tokenizer.vocabSize);
    tf.dispose(Object.values(m.params));
  });

  it("bad input: one-line errors naming the file and line, the checkpoint, or the flag", async () => {
    const bad = path.join(dir, "bad", "train.jsonl");
    fs.mkdirSync(path.dirname(bad), { recursive: true });
    fs.writeFileSync(bad, JSON.stringify(examples[0]) + "\n" + JSON.stringify({ id: "x", kind: "fact", messages: [{ role: "user" }] }) + "\n");
    // Without held-out files beside it, the training file is not evaluated as if it were held out.
    const alone = await sft("--checkpoint", ckpt, "--data", bad, "--max-iters", "1");
    assert.equal(alone.code, 1);
    assert.match(alone.err[alone.err.length - 1], /^sft: .*bad\/val\.jsonl: no such file; the held-out questions go beside train\.jsonl as val\.jsonl and test\.jsonl/);
    for (const f of ["val.jsonl", "test.jsonl"]) fs.writeFileSync(path.join(dir, "bad", f), JSON.stringify(examples[0]) + "\n");
    const r1 = await sft("--checkpoint", ckpt, "--data", bad, "--max-iters", "1");
    assert.equal(r1.code, 1);
    assert.match(r1.err[r1.err.length - 1], /^sft: .*bad\/train\.jsonl:2: field "messages" must be an array of at least 2 messages/);
    // A checkpoint whose tokenizer has only part of the chat template.
    const odd = path.join(dir, "odd");
    const tokenizer = CharTokenizer.fromText("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .?!").addSpecialTokens([CHAT_TOKENS.user]);
    const config = gptConfig("tiny", { vocabSize: tokenizer.vocabSize, blockSize: 32 });
    const params = initGPT(config);
    saveCheckpoint(odd, { params, config, tokenizer, step: 0 });
    tf.dispose(Object.values(params));
    const r2 = await sft("--checkpoint", odd, "--data", data, "--max-iters", "1");
    assert.equal(r2.code, 2);
    assert.match(r2.err[r2.err.length - 1], /^sft: the checkpoint .*odd does not fit the chat template: .*has <\|user\|> but not <\|assistant\|>, <\|end\|>/);
    // Data with a character the checkpoint's tokenizer lacks.
    const snow = path.join(dir, "snow", "train.jsonl");
    saveSFTData(snow, [...examples, { id: "s", kind: "chat", messages: [{ role: "user", content: "snow ☃" }, { role: "assistant", content: "cold" }] }]);
    for (const f of ["val.jsonl", "test.jsonl"]) saveSFTData(path.join(dir, "snow", f), examples);
    const r3 = await sft("--checkpoint", ckpt, "--data", snow, "--max-iters", "1");
    assert.equal(r3.code, 1);
    assert.match(r3.err[r3.err.length - 1], /^sft: .*snow\/train\.jsonl:5: messages\[0\]: CharTokenizer\.encode: character "☃"/);
    for (const [argv, re] of [[["--lora", "0"], /^sft: --lora must be an integer >= 1, got "0"/], [["--bogus"], /^sft: unknown option --bogus/]] as Array<[string[], RegExp]>) {
      const r = await sft(...argv);
      assert.equal(r.code, 2);
      assert.equal(r.err.length, 1);
      assert.match(r.err[0], re);
    }
    let text = "";
    const errs: string[] = [];
    assert.equal(await chatMain(["--checkpoint", ckpt], Readable.from([]), (t) => (text += t), (l) => errs.push(l), env), 2);
    assert.match(errs[0], /^chat: .* is not a chat model/);
  });

  it("as a process: the last stdout line is the JSON summary", () => {
    const script = path.join(__dirname, "..", "..", "..", "lib", "tools", "cli", "sft.ts");
    const run = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", script, "--checkpoint", ckpt, "--data", data, "--max-iters", "3", "--out", path.join(dir, "proc"), "--json"], {
      env: { ...process.env, ...env }, encoding: "utf8", cwd: path.join(__dirname, "..", "..", ".."),
    });
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    const s = JSON.parse(lines[lines.length - 1]);
    assert.equal(s.iterations, 3);
    assert.ok("exactMatch" in s.base && "endsProperly" in s.sft);
  });
});
