import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { gptConfig, initGPT, gptLoss } from "../../lib/gpt/gpt";
import {
  CHAT_TOKENS, ChatMessage, chatTokenIds, chatTokenizer, encodeChat, encodeSFTData, evaluateSFT, finetune, growContext, growVocabulary,
  loadSFTData, makeSFTData, normalizeAnswer, prepareChatModel, referenceAnswer, isCorrectAnswer, renderChat, sftBatch,
  sftBatcher, sftLoss, SFTExample, answer, packRows, sftSplitFiles,
} from "../../lib/finetune/sft";
import { createRng } from "../../lib/core/random";
import { rlhfPrompts } from "../../lib/rlhf/chat";
import { plainAnswer, politeAnswer, POLITE_CLOSINGS } from "../../lib/finetune/sftData";
import { loadCorpus } from "../../lib/tokens/corpus";

const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,?!'-";
const base = CharTokenizer.fromText(ALPHABET);
const tok = chatTokenizer(base);
const conv: ChatMessage[] = [
  { role: "user", content: "Hi?" },
  { role: "assistant", content: "Yo." },
];

function tinyModel(seed = 0, blockSize = 32) {
  const config = gptConfig("tiny", { vocabSize: base.vocabSize, blockSize, nEmbd: 32, nHead: 2, nLayer: 2 });
  return { params: initGPT(config, { seed }), config, tokenizer: base };
}

const dispose = (p: Record<string, tf.Tensor>) => tf.dispose(Object.values(p));

describe("SFT: chat template, masks, data", function () {
  this.timeout(120000);
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("chatTokenizer appends the three chat tokens at vocabSize, vocabSize+1, vocabSize+2 (a new tokenizer)", () => {
    const V = base.vocabSize;
    assert.deepEqual(chatTokenIds(tok), { user: V, assistant: V + 1, end: V + 2 });
    assert.equal(tok.vocabSize, V + 3);
    assert.equal(base.vocabSize, V, "the base tokenizer is unchanged");
    assert.equal(chatTokenizer(tok), tok, "already a chat tokenizer: as is");
    assert.throws(() => chatTokenizer(base.addSpecialTokens([CHAT_TOKENS.user])), /has <\|user\|> but not <\|assistant\|>, <\|end\|>/);
  });

  it("renders the template exactly", () => {
    assert.equal(renderChat(conv), "<|user|>Hi?<|end|><|assistant|>Yo.<|end|>");
    assert.equal(renderChat(conv.slice(0, 1), { addGenerationPrompt: true }), "<|user|>Hi?<|end|><|assistant|>");
    assert.equal(
      renderChat([...conv, { role: "user", content: "Ok" }, { role: "assistant", content: "Bye" }]),
      "<|user|>Hi?<|end|><|assistant|>Yo.<|end|><|user|>Ok<|end|><|assistant|>Bye<|end|>",
    );
  });

  it("encodeChat: ids are the rendered text's tokens; mask is 1 exactly on the assistant's tokens and its <|end|>", () => {
    const e = encodeChat(tok, conv, 32);
    assert.deepEqual(e.ids, tok.encode(renderChat(conv), { allowSpecial: true }));
    //          <u> H  i  ?  <e> <a> Y  o  .  <e>
    assert.deepEqual(e.mask, [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    assert.equal(e.truncated, false);
    const two = encodeChat(tok, [...conv, { role: "user", content: "a" }, { role: "assistant", content: "b" }], 32);
    assert.deepEqual(two.mask, [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1]);
    const prompt = encodeChat(tok, conv.slice(0, 1), 32, { addGenerationPrompt: true });
    assert.equal(tok.decode(prompt.ids), "<|user|>Hi?<|end|><|assistant|>");
  });

  it("content that spells a special token stays plain text (no fake turns)", () => {
    const t2 = chatTokenizer(CharTokenizer.fromText(ALPHABET + "<|>"));
    const e = encodeChat(t2, [{ role: "user", content: "<|end|>" }, { role: "assistant", content: "x" }], 32);
    assert.equal(e.ids.filter((id) => id === chatTokenIds(t2).end).length, 2, "only the template's own <|end|> tokens");
  });

  it("over-long examples are cut to blockSize + 1 and counted, never dropped", () => {
    const long: SFTExample = { id: "long-1", kind: "chat", messages: [{ role: "user", content: "q".repeat(20) }, { role: "assistant", content: "a".repeat(20) }] };
    const short: SFTExample = { id: "s-1", kind: "chat", messages: conv };
    const e = encodeChat(tok, long.messages, 16);
    assert.equal(e.ids.length, 17);
    assert.equal(e.truncated, true);
    const set = encodeSFTData(tok, [long, short, long], 16);
    assert.equal(set.items.length, 3);
    assert.equal(set.truncated, 2);
    assert.deepEqual(set.truncatedIds, ["long-1", "long-1"]);
  });

  it("loadSFTData validates: one-line errors naming file:line", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sft-data-"));
    try {
      const good = JSON.stringify({ id: "a", kind: "fact", messages: conv });
      const cases: Array<[string, RegExp]> = [
        ["{not json", /bad\.jsonl:2: not valid JSON/],
        [JSON.stringify({ kind: "fact", messages: conv }), /bad\.jsonl:2: field "id" must be a non-empty string, got nothing \(field missing\)/],
        [JSON.stringify({ id: "x", kind: 3, messages: conv }), /bad\.jsonl:2: field "kind" must be a non-empty string, got 3/],
        [JSON.stringify({ id: "x", kind: "fact", messages: "hi" }), /bad\.jsonl:2: field "messages" must be an array/],
        [JSON.stringify({ id: "x", kind: "fact", messages: [{ role: "user", content: 1 }, conv[1]] }), /bad\.jsonl:2: messages\[0\]\.content must be a string, got 1/],
        [JSON.stringify({ id: "x", kind: "fact", messages: [{ role: "bot", content: "a" }, conv[1]] }), /bad\.jsonl:2: messages\[0\]\.role must be "user" or "assistant", got "bot"/],
        [JSON.stringify({ id: "x", kind: "fact", messages: [conv[1], conv[0]] }), /bad\.jsonl:2: messages\[0\]\.role must be "user"/],
        [JSON.stringify({ id: "x", kind: "fact", messages: [...conv, conv[0]] }), /bad\.jsonl:2: the last message must be the assistant's answer/],
      ];
      const file = path.join(dir, "bad.jsonl");
      for (const [line, re] of cases) {
        fs.writeFileSync(file, `${good}\n${line}\n`);
        assert.throws(() => loadSFTData(file), (e: Error) => re.test(e.message) && !e.message.includes("\n"), line);
      }
      fs.writeFileSync(file, `${good}\n\n${good}\n`);
      assert.equal(loadSFTData(file).length, 2, "blank lines are skipped");
      assert.throws(() => loadSFTData(path.join(dir, "none.jsonl")), /none\.jsonl: no such file; expected a JSONL file of conversations/);
      // No held-out files beside the training file: refused, never evaluated on the training questions as if held out.
      const lone = path.join(dir, "lone", "train.jsonl");
      fs.mkdirSync(path.dirname(lone));
      fs.writeFileSync(lone, `${good}\n`);
      assert.throws(() => sftSplitFiles(lone), /lone\/val\.jsonl: no such file; the held-out questions go beside train\.jsonl as val\.jsonl and test\.jsonl/);
      fs.writeFileSync(path.join(dir, "lone", "val.jsonl"), `${good}\n`);
      assert.throws(() => sftSplitFiles(lone), /lone\/test\.jsonl: no such file/);
      fs.writeFileSync(path.join(dir, "lone", "test.jsonl"), `${good}\n`);
      assert.deepEqual(sftSplitFiles(lone), { train: lone, val: path.join(dir, "lone", "val.jsonl"), test: path.join(dir, "lone", "test.jsonl") });
      // A character the tokenizer cannot encode: the error names file and line.
      fs.writeFileSync(file, `${good}\n${JSON.stringify({ id: "z", kind: "chat", messages: [{ role: "user", content: "☃" }, conv[1]] })}\n`);
      assert.throws(() => encodeSFTData(tok, loadSFTData(file), 32), /bad\.jsonl:2: messages\[0\]: CharTokenizer\.encode: character "☃"/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the course's data set: deterministic, splits as documented, only Moby-Dick characters, fits 64 tokens", async () => {
    const a = makeSFTData(), b = makeSFTData();
    assert.deepEqual(a, b);
    const all = [...a.train, ...a.val, ...a.test];
    assert.ok(all.length >= 500 && all.length <= 5000, `${all.length} examples`);
    assert.equal(new Set(all.map((e) => e.id)).size, all.length, "ids are unique");
    const chars = new Set(Array.from(await loadCorpus("moby-dick")));
    for (const ex of all) {
      for (const m of ex.messages) for (const ch of m.content) assert.ok(chars.has(ch), `${ex.id}: ${JSON.stringify(ch)}`);
      assert.ok(ex.messages.reduce((n, m) => n + m.content.length + 2, 0) <= 65, ex.id);
    }
    // Test questions are held-out phrasings: never a training question.
    const trainQ = new Set(a.train.map((e) => e.messages[e.messages.length - 2].content));
    for (const ex of a.test.filter((e) => e.kind !== "chat" || e.messages.length === 2)) assert.ok(!trainQ.has(ex.messages[ex.messages.length - 2].content), ex.id);
    // Transformations: answers follow the rule; the test asks about words never transformed in training.
    const wordOf = (q: string) => /(?:of|does|in) ([a-z]+)(?:[ ?.]|$)/.exec(q)?.[1];
    const trainWords = new Set(a.train.filter((e) => e.kind === "transform").map((e) => wordOf(e.messages[0].content)));
    const testTransforms = a.test.filter((e) => e.kind === "transform");
    assert.ok(testTransforms.length >= 200, `${testTransforms.length} held-out transformations`);
    for (const ex of [...a.train, ...testTransforms].filter((e) => e.kind === "transform")) {
      const [q, ans] = [ex.messages[0].content, plainAnswer(ex.messages[1].content).replace(/\.$/, "")];
      const w = wordOf(q);
      assert.ok(w !== undefined, `${ex.id}: no word in ${JSON.stringify(q)}`);
      const template = q.replace(w, "X");
      const expected = /first|begin|start/i.test(template) ? w[0] : /last|end/i.test(template) ? w[w.length - 1] : /second/i.test(template) ? w[1] : "?";
      assert.equal(ans, expected, `${ex.id}: ${q}`);
      if (a.test.includes(ex)) assert.ok(!trainWords.has(w), `${ex.id}: "${w}" is also a training word`);
    }
    assert.ok(a.test.filter((e) => e.messages.length === 2).length >= 200, "at least 200 single-turn held-out questions (the RLHF evaluation)");
    // Polite closings: about a quarter of train's facts and transformations, none in test; the
    // RLHF prompts and referenceAnswer give the plain answer.
    const closings = (xs: SFTExample[]) => xs.filter((e) => POLITE_CLOSINGS.some((c) => e.messages[e.messages.length - 1].content.endsWith(" " + c)));
    const trainFT = a.train.filter((e) => e.kind !== "chat");
    const share = closings(trainFT).length / trainFT.length;
    assert.ok(share > 0.2 && share < 0.3, `polite share ${share}`);
    assert.equal(closings(a.test).length, 0);
    for (const ex of closings(a.train).slice(0, 50)) {
      const [q, ans] = [ex.messages[0].content, ex.messages[1].content];
      const plain = plainAnswer(ans);
      assert.ok(POLITE_CLOSINGS.some((c) => politeAnswer(plain, c) === ans || politeAnswer(plain.replace(/\.$/, ""), c) === ans), ans);
      assert.equal(referenceAnswer(q), plain);
      assert.equal(rlhfPrompts([ex])[0].reference, plain);
    }
    // The committed files are what the generator writes.
    for (const split of ["train", "val", "test"] as const) {
      const file = path.join(__dirname, "..", "..", "data", "sft", `${split}.jsonl`);
      assert.deepEqual(loadSFTData(file), a[split], `${split}.jsonl is up to date (node lib/dist/tools/cli/makeSftData.js)`);
    }
    assert.equal(referenceAnswer("who is the captain of the pequod"), "Ahab.");
    assert.equal(isCorrectAnswer("Who is the captain of the Pequod?", " ahab"), true);
    assert.equal(isCorrectAnswer("Who is the captain of the Pequod?", "Stubb."), false);
    assert.equal(referenceAnswer("What is the meaning of life?"), undefined);
    assert.equal(normalizeAnswer("  The  Pequod! "), "the pequod");
  });

  it("growing the vocabulary keeps every old embedding row bit-identical; new rows = mean", () => {
    const m = tinyModel(1);
    const g = growVocabulary(m.params, m.config, m.config.vocabSize + 3);
    const old = m.params["wte.weight"].arraySync() as number[][];
    const grown = g.params["wte.weight"].arraySync() as number[][];
    assert.equal(grown.length, old.length + 3);
    for (let i = 0; i < old.length; i++) assert.deepEqual(new Float32Array(grown[i]), new Float32Array(old[i]));
    const mean = old[0].map((_, c) => old.reduce((s, r) => s + r[c], 0) / old.length);
    for (let c = 0; c < mean.length; c++) assert.ok(Math.abs(grown[old.length][c] - mean[c]) < 1e-6);
    assert.equal(g.config.vocabSize, m.config.vocabSize + 3);
    for (const name of Object.keys(m.params)) {
      if (name !== "wte.weight") assert.deepEqual(g.params[name].dataSync(), m.params[name].dataSync(), name);
    }
    // prepareChatModel does the same from a base model, and refuses a mismatched tokenizer.
    const p = prepareChatModel(m);
    assert.equal(p.config.vocabSize, chatTokenizer(base).vocabSize);
    assert.throws(() => prepareChatModel({ ...m, tokenizer: tok }), /the tokenizer has the chat tokens \(\d+ ids\) but the model \d+ embedding rows/);
    dispose(m.params);
    dispose(g.params);
    dispose(p.params);
  });

  it("growContext adds position rows (old rows kept); prepareChatModel can grow both", () => {
    const m = tinyModel(5, 8);
    const p = prepareChatModel(m, { blockSize: 20 });
    assert.equal(p.config.blockSize, 20);
    assert.deepEqual(p.params["wpe.weight"].shape, [20, m.config.nEmbd]);
    assert.deepEqual(Array.from(p.params["wpe.weight"].dataSync().slice(0, 8 * m.config.nEmbd)), Array.from(m.params["wpe.weight"].dataSync()));
    assert.equal(p.config.vocabSize, m.config.vocabSize + 3);
    assert.throws(() => growContext(m.params, m.config, 4), /new context 4 is shorter than the model's 8/);
    dispose(m.params);
    dispose(p.params);
  });

  it("the loss counts only assistant tokens: changing a user token's target does not change it, an assistant's does", () => {
    const m = prepareChatModel(tinyModel(2));
    const e = encodeChat(m.tokenizer, conv, m.config.blockSize);
    const lossOf = (ids: number[]) =>
      tf.tidy(() => sftLoss(m.params, m.config, sftBatch([{ ids, mask: e.mask, truncated: false }], 0)).dataSync()[0]);
    const l0 = lossOf(e.ids);
    // Change one TARGET at a time (inputs fixed):
    const B = sftBatch([{ ids: e.ids, mask: e.mask, truncated: false }], 0);
    const yArr = B.y.arraySync();
    const withTarget = (t: number, id: number) => {
      const y = yArr.map((r) => [...r]);
      y[0][t] = id;
      return tf.tidy(() => gptLoss(m.params, m.config, B.x, tf.tensor2d(y, undefined, "int32"), { mask: B.mask }).dataSync()[0]);
    };
    const z = m.tokenizer.encode("z")[0];
    assert.equal(withTarget(1, z), l0, "user target (position 1 predicts 'i')");
    assert.equal(withTarget(4, z), l0, "the <|assistant|> marker is given, not learned");
    assert.notEqual(withTarget(5, z), l0, "assistant target (position 5 predicts 'Y')");
    assert.notEqual(withTarget(8, z), l0, "the final <|end|> is learned");
    // The mask seen by the loss: y positions whose targets are assistant tokens.
    assert.deepEqual(Array.from(B.mask.dataSync()), [0, 0, 0, 0, 0, 1, 1, 1, 1]);
    assert.ok(Number.isFinite(l0) && l0 > 0);
    tf.dispose([B.x, B.y, B.mask]);
    dispose(m.params);
  });

  it("batches pad to the longest conversation with mask 0", () => {
    const a = encodeChat(tok, conv, 32), b = encodeChat(tok, [{ role: "user", content: "Hello there" }, { role: "assistant", content: "Hi" }], 32);
    const B = sftBatch([a, b], 7);
    assert.deepEqual(B.x.shape, [2, b.ids.length - 1]);
    const x = B.x.arraySync(), m = B.mask.arraySync();
    assert.deepEqual(x[0].slice(a.ids.length - 1), new Array(b.ids.length - a.ids.length).fill(7));
    assert.deepEqual(m[0].slice(a.ids.length - 1), new Array(b.ids.length - a.ids.length).fill(0));
    tf.dispose([B.x, B.y, B.mask]);
  });

  it("tiny end to end: fine-tuning learns a toy Q&A (loss falls well below its start), no tensor leak, answers stop at <|end|>", async () => {
    const qa: Array<[string, string]> = [["Who is Ahab?", "Captain."], ["Who is Stubb?", "Mate."], ["Hi!", "Hello."], ["Sea?", "Blue."]];
    const data: SFTExample[] = qa.map(([q, a], i) => ({ id: `t-${i}`, kind: "fact", messages: [{ role: "user", content: q }, { role: "assistant", content: a }] }));
    const m = prepareChatModel(tinyModel(3));
    // No leak: numTensors is flat across training steps (measured on the trainer's step hook).
    const counts: number[] = [];
    const r = await finetune({
      model: m, train: data, val: data, maxIters: 300, batchSize: 8, lr: 1e-2, evalInterval: 100, evalIters: 2, chart: false, progress: "none",
      onStep: (s) => { if (s.step >= 5) counts.push(tf.memory().numTensors); },
    });
    assert.equal(Math.min(...counts), Math.max(...counts), "tensor count is flat across steps");
    const first = r.history.train[0][1], last = r.history.train.slice(-10).reduce((s, [, l]) => s + l, 0) / 10;
    assert.ok(last < first / 4, `loss ${first} → ${last}`);
    assert.equal(r.summary.mode, "full");
    assert.equal(r.summary.trainableParams, r.summary.totalParams);
    const ev = evaluateSFT(r.params, r.config, r.tokenizer, data);
    assert.ok(ev.exactMatch >= 0.75, JSON.stringify(ev.rows));
    assert.ok(ev.endsProperly >= 0.75);
    assert.equal(answer(r.params, r.config, r.tokenizer, "Who is Ahab?"), ev.rows[0].reply);
    // The base model (same template) does not know the answers.
    const b = evaluateSFT(m.params, m.config, m.tokenizer, data);
    assert.ok(b.exactMatch < ev.exactMatch);
    dispose(r.params);
    dispose(m.params);
  });

  it("packing fills rows with whole conversations, masks kept, never longer than the context", () => {
    const items = [conv, [{ role: "user", content: "Hello there" }, { role: "assistant", content: "Hi" }] as ChatMessage[]].map((m) => encodeChat(tok, m, 32));
    const rows = packRows(items, 4, 33, createRng(2));
    assert.equal(rows.length, 4);
    const starts = (r: number[]) => r.filter((id) => id === chatTokenIds(tok).user).length;
    for (const r of rows) {
      assert.ok(r.ids.length <= 33, `${r.ids.length}`);
      assert.equal(r.ids[0], chatTokenIds(tok).user);
      assert.equal(r.ids[r.ids.length - 1], chatTokenIds(tok).end, "whole conversations only");
      assert.equal(r.mask[0], 0);
    }
    assert.ok(rows.some((r) => starts(r.ids) >= 2), "several conversations share a row");
    // Each packed row's mask is the concatenation of its conversations' masks.
    const [a, b] = items;
    const row = rows.find((r) => r.ids.length === a.ids.length + b.ids.length && r.ids[a.ids.length] === chatTokenIds(tok).user);
    if (row) assert.deepEqual(row.mask, row.ids.slice(0, a.ids.length).every((id, i) => id === a.ids[i]) ? [...a.mask, ...b.mask] : [...b.mask, ...a.mask]);
  });

  it("sftBatcher draws batches with the given RNG (reproducible)", () => {
    const set = encodeSFTData(tok, [{ id: "a", kind: "x", messages: conv }], 32);
    const g = sftBatcher(set, set, 3, 0);
    const b1 = g("train", createRng(1)), b2 = g("train", createRng(1));
    assert.deepEqual(b1.x.arraySync(), b2.x.arraySync());
    tf.dispose([b1.x, b1.y, b1.mask, b2.x, b2.y, b2.mask]);
  });
});

