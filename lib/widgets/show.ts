/**
 * The notebook side of the live widgets: each `show…Widget` computes its view now (with
 * lib/widgets/live.ts, the code the browser runs too) and sends it as the output's `text/html`,
 * beside the widget's settings under WIDGET_MIME. Jupyter shows the view; the course site makes
 * it live (type a sentence, move a slider, ask a question).
 */
import { displayBundle, escapeHtml, htmlToText } from "../show/display";
import { trueScore } from "../rlhf/labeller";
import type { Tokenizer } from "../tokens/tokenizer";
import {
  answerQuestion, attentionForIds, isChatModel, isRewardModel, type LiveModel, rewardScore, sampleTokens, tokenizedRow,
} from "./live";
import {
  type AnswersWidget, type AttentionWidget, type RankingWidget, type SamplerWidget, type TokenizersWidget,
  WIDGET_MIME, type WidgetModelName, type WidgetQuestion, type WidgetSpec,
} from "./spec";
import { answersView, attentionView, sampleView, tokenizersView, visibleEnd } from "./views";

/** Send a widget: its settings for the site, the build-time view for everyone else. */
export function showWidget(spec: WidgetSpec, html: string): void {
  const view = `<div class="cw-static">${html}<p class="cw-note">Live in the course site: ${escapeHtml(LIVE_NOTE[spec.kind])}</p></div>`;
  displayBundle({ [WIDGET_MIME]: spec, "text/html": view, "text/plain": htmlToText(html) });
}

const LIVE_NOTE: Record<WidgetSpec["kind"], string> = {
  tokenizers: "type your own text and see every tokenizer split it.",
  attention: "type a sentence and pick any layer and head.",
  sampler: "write a prompt and sample with your own temperature, top-k and top-p.",
  answers: "ask a question and see every model answer, scored.",
  ranking: "rank the answers yourself and download the rankings for npm run reward.",
};

// ---------------------------------------------------------------------------------------
// One function per widget

/** Chapter 01: a text split by several tokenizers side by side. */
export function showTokenizersWidget(text: string, tokenizers: ReadonlyArray<{ label: string; tokenizer: Tokenizer }>): void {
  const spec: TokenizersWidget = { kind: "tokenizers", text, tokenizers: tokenizers.map((t) => ({ label: t.label, json: t.tokenizer.toJSON() })) };
  showWidget(spec, tokenizersView(text, tokenizers.map((t) => tokenizedRow(t.label, t.tokenizer, text))));
}

/** Chapters 03/05: every layer's and head's attention over a text (layer 1, head 1 drawn). */
export function showAttentionWidget(model: WidgetModelName, live: LiveModel, text: string): void {
  const ids = live.tokenizer.encode(text).slice(0, live.config.blockSize);
  const maps = attentionForIds(live, ids);
  const spec: AttentionWidget = { kind: "attention", model, text };
  showWidget(spec, attentionView(ids.map((id) => live.tokenizer.decode([id])), maps, 0, 0, false));
}

/** Chapter 05: a sample from the model, with the settings a reader can change. */
export function showSamplerWidget(model: WidgetModelName, live: LiveModel, settings: Omit<SamplerWidget, "kind" | "model">): void {
  const ids = [...sampleTokens(live, live.tokenizer.encode(settings.prompt), settings)];
  const spec: SamplerWidget = { kind: "sampler", model, ...settings };
  const note = `${ids.length} tokens, temperature ${settings.temperature}, top-k ${settings.topK}, top-p ${settings.topP}, seed ${settings.seed}`;
  showWidget(spec, sampleView(settings.prompt, live.tokenizer.decode(ids), note));
}

/** Chapters 06–09: every model's answer to a question, with the reward model's and the labeller's scores. */
export function showAnswersWidget(
  models: ReadonlyArray<{ label: string; model: WidgetModelName; live: LiveModel }>,
  reward: { model: WidgetModelName; live: LiveModel },
  questions: readonly WidgetQuestion[],
  settings: { maxNewTokens: number; temperature: number; seed: number },
): void {
  if (questions.length === 0) throw new Error("showAnswersWidget: give at least one question");
  if (!isRewardModel(reward.live)) throw new Error(`showAnswersWidget: "${reward.model}" has no reward head`);
  const q = questions[0];
  const rows = models.map((m) => {
    const answer = answerQuestion(m.live, q.prompt, settings);
    return {
      label: m.label, answer,
      reward: answer === "" ? undefined : rewardScore(reward.live, q.prompt, answer),
      trueScore: q.reference === undefined ? undefined : trueScore(q.prompt, answer, q.reference),
    };
  });
  const spec: AnswersWidget = { kind: "answers", models: models.map((m) => ({ label: m.label, model: m.model })), reward: reward.model, questions: [...questions], ...settings };
  showWidget(spec, answersView(q.prompt, q.reference, rows));
}

/** Chapter 07: answers to rank by hand; the site offers the rankings as preference JSONL. */
export function showRankingWidget(model: WidgetModelName, live: LiveModel, questions: readonly WidgetQuestion[], settings: { k: number; maxNewTokens: number; temperature: number; seed: number }): void {
  if (!isChatModel(live)) throw new Error(`showRankingWidget: "${model}" is not a chat model (fine-tune it first)`);
  if (questions.length === 0) throw new Error("showRankingWidget: give at least one question");
  if (!(Number.isInteger(settings.k) && settings.k >= 2)) throw new Error(`showRankingWidget: k must be an integer >= 2, got ${settings.k}`);
  const q = questions[0];
  const answers = Array.from({ length: settings.k }, (_, i) => answerQuestion(live, q.prompt, { ...settings, seed: `${settings.seed}:${i}` }));
  const spec: RankingWidget = { kind: "ranking", model, questions: [...questions], ...settings };
  const list = answers.map((a) => `<li>${escapeHtml(visibleEnd(a))}</li>`).join("");
  showWidget(spec, `<p class="cw-caption">${escapeHtml(q.prompt)}</p><ol class="cw-rank-list">${list}</ol>`);
}
