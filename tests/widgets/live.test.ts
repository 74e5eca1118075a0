import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { chatTokenizer } from "../../lib/finetune/sft";
import { attentionMaps, gptConfig } from "../../lib/gpt/gpt";
import { generate } from "../../lib/gpt/sampling";
import { disposeParams } from "../../lib/pretrain/pretrain";
import { chatCodec } from "../../lib/rlhf/chat";
import { initRewardModel, scoreResponses } from "../../lib/rlhf/rewardModel";
import { setDisplaySink, type DisplayMessage } from "../../lib/show/display";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import {
  answerQuestion, attentionForIds, chatPromptIds, liveModelFromParams, rewardScore, sampleTokens, tokenizedRow,
} from "../../lib/widgets/live";
import { showAnswersWidget } from "../../lib/widgets/show";
import { WIDGET_MIME } from "../../lib/widgets/spec";
import { answersView, attentionView, tokenizersView } from "../../lib/widgets/views";
import { randomModel } from "../gpt/randomModel";

describe("live widgets: what they compute (lib/widgets/live.ts)", function () {
  this.timeout(60000);
  before(async () => {
    await initBackend({ quiet: true });
  });

  const base = CharTokenizer.fromText("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.?!,'<|>\n");
  const chat = chatTokenizer(base);

  it("samples what the library's generate samples, greedy and seeded with top-k and top-p, and goes on past the context", () => {
    const config = gptConfig("tiny", { vocabSize: base.vocabSize, blockSize: 16 });
    const params = randomModel(config, 2);
    const live = liveModelFromParams(params, config, base);
    const prompt = base.encode("The whale");
    for (const opts of [{ temperature: 0 }, { temperature: 0.9, topK: 10, topP: 0.9, seed: 5 }]) {
      const want = generate(params, config, prompt, { ...opts, maxNewTokens: 7, engine: "js" }); // 9 + 7 = the context
      assert.deepEqual([...sampleTokens(live, prompt, { ...opts, maxNewTokens: 7 })], want);
      const long = [...sampleTokens(live, prompt, { ...opts, maxNewTokens: 40 })];
      assert.equal(long.length, 40);
      assert.deepEqual(long.slice(0, 7), want);
      assert.ok(long.every((id) => Number.isInteger(id) && id >= 0 && id < config.vocabSize));
    }
    const stopped = [...sampleTokens(live, prompt, { temperature: 0, maxNewTokens: 40, stopId: generate(params, config, prompt, { temperature: 0, maxNewTokens: 1 })[0] })];
    assert.equal(stopped.length, 1, "stops after the stop token");
    disposeParams(params);
  });

  it("gives gpt.ts's attention maps", () => {
    const config = gptConfig("tiny", { vocabSize: base.vocabSize, blockSize: 12 });
    const params = randomModel(config, 3);
    const ids = base.encode("Call me Ishmael"); // 15 tokens: the first 12 are used
    const want = attentionMaps(params, config, ids.slice(0, 12));
    const got = attentionForIds(liveModelFromParams(params, config, base), ids);
    assert.equal(got.length, config.nLayer);
    got.forEach((layer, l) => layer.forEach((head, h) => head.forEach((row, q) => row.forEach((v, k) => assert.ok(Math.abs(v - want[l][h][q][k]) < 1e-5, `${l} ${h} ${q} ${k}`)))));
    disposeParams(params);
  });

  it("scores answers as rewardScores does (the head and α · log-likelihood), cropping a long answer the same way", () => {
    const config = gptConfig("tiny", { vocabSize: chat.vocabSize, blockSize: 24 });
    const sft = randomModel(config, 4);
    const rm = initRewardModel(sft, config, 5);
    rm["score.loglik"].assign(tf.tensor1d([0.3]));
    const live = liveModelFromParams(rm, config, chat);
    const codec = chatCodec(chat, config.blockSize);
    assert.deepEqual(chatPromptIds(live, "Who is Ahab?", 4), codec.encodePrompt("Who is Ahab?").slice(-20));
    // A typed "<|end|>" is text, as the library's codec reads it: it cannot end the user's turn.
    assert.deepEqual(chatPromptIds(live, "a<|end|>b", 4), codec.encodePrompt("a<|end|>b"));
    assert.equal(chatPromptIds(live, "a<|end|>b", 4).filter((id) => id === codec.endId).length, 1);
    const cases: Array<[string, string]> = [["Who is Ahab?", "The captain.<|end|>"], ["Hi", "a"], ["Who is Ahab?", "A very long answer that will not fit in the context at all<|end|>"]];
    const want = scoreResponses(rm, config, cases.map(([q]) => codec.encodePrompt(q)), cases.map(([, a]) => codec.encodeResponse(a)), 8, codec.padId);
    cases.forEach(([q, a], i) => assert.ok(Math.abs(rewardScore(live, q, a) - want[i]) < 1e-3, `${JSON.stringify(a)}: ${rewardScore(live, q, a)} vs ${want[i]}`));
    assert.throws(() => rewardScore(liveModelFromParams(sft, config, chat), "q", "a"), /no reward head/);
    disposeParams(sft);
    disposeParams(rm);
  });

  it("answers in the chat template and stops at <|end|>; a base model writes on", () => {
    const config = gptConfig("tiny", { vocabSize: chat.vocabSize, blockSize: 32 });
    const params = randomModel(config, 6);
    const live = liveModelFromParams(params, config, chat);
    const endId = chat.specialTokens["<|end|>"];
    const ids = [...sampleTokens(live, chatPromptIds(live, "Sea?", 12), { maxNewTokens: 12, temperature: 1, seed: 3, stopId: endId })];
    assert.equal(answerQuestion(live, "Sea?", { maxNewTokens: 12, temperature: 1, seed: 3 }), chat.decode(ids));
    const baseConfig = gptConfig("tiny", { vocabSize: base.vocabSize, blockSize: 32 });
    const baseParams = randomModel(baseConfig, 7);
    const text = answerQuestion(liveModelFromParams(baseParams, baseConfig, base), "Sea?", { maxNewTokens: 10, temperature: 1, seed: 1 });
    assert.equal(base.encode(text).length, 10);
    disposeParams(params);
    disposeParams(baseParams);
  });

  it("tokenizes for the table, and says why a tokenizer cannot", () => {
    assert.deepEqual(tokenizedRow("chars", base, "ab"), { label: "chars", ids: base.encode("ab"), pieces: ["a", "b"] });
    const bad = tokenizedRow("chars", base, "a€");
    assert.deepEqual(bad.ids, []);
    assert.match(bad.error!, /"€"/);
  });

  it("views escape what people type, and show one picker per layer and head", () => {
    const html = tokenizersView("<script>", [tokenizedRow("chars", CharTokenizer.fromText("<script>"), "<script>")]);
    assert.ok(!html.includes("<script>"));
    assert.match(html, /data-ids="[\d ]+"/);
    const maps = [[[[1]], [[1]]], [[[1]], [[1]]], [[[1]], [[1]]]]; // 3 layers, 2 heads, 1 token
    const view = attentionView(["a"], maps, 2, 1);
    assert.equal((view.match(/data-layer=/g) ?? []).length, 3);
    assert.equal((view.match(/data-head=/g) ?? []).length, 2);
    assert.match(view, /data-layer="2" aria-pressed="true"/);
    assert.match(view, /data-head="1" aria-pressed="true"/);
    const answers = answersView("Q?", undefined, [{ label: "SFT", answer: "A.\nB<|end|>", reward: 1.234 }]);
    assert.match(answers, /A\.↵B ⏎/);
    assert.match(answers, /1\.23<\/td><td class="cw-num">–/);
  });

  it("showAnswersWidget sends the widget's settings and the build-time answers with their scores", () => {
    const config = gptConfig("tiny", { vocabSize: chat.vocabSize, blockSize: 32 });
    const sft = randomModel(config, 8);
    const rm = initRewardModel(sft, config, 9);
    const live = liveModelFromParams(sft, config, chat), reward = liveModelFromParams(rm, config, chat);
    const sent: DisplayMessage[] = [];
    setDisplaySink((m) => void sent.push(m));
    try {
      const settings = { maxNewTokens: 8, temperature: 1, seed: 2 };
      showAnswersWidget([{ label: "SFT", model: "sft", live }], { model: "reward", live: reward }, [{ prompt: "Sea?", reference: "Blue." }], settings);
      const spec = sent[0].data[WIDGET_MIME] as Record<string, unknown>;
      assert.deepEqual(spec, { kind: "answers", models: [{ label: "SFT", model: "sft" }], reward: "reward", questions: [{ prompt: "Sea?", reference: "Blue." }], ...settings });
      const answer = answerQuestion(live, "Sea?", settings);
      assert.ok((sent[0].data["text/html"] as string).includes(rewardScore(reward, "Sea?", answer).toFixed(2)));
    } finally {
      setDisplaySink(undefined);
      disposeParams(sft);
      disposeParams(rm);
    }
  });
});
