/**
 * The site check's part for live widgets (lib/widgets/): in a page or on a slide, each widget must
 * start, then is used as a reader would use it, and what comes back is compared with what the
 * library computes in Node from the same files the page loaded (assets/models/*.js):
 *
 * - tokenizers: a typed text gives, per tokenizer, exactly the library's ids (or its error);
 * - attention: a typed sentence, the last layer and head picked: the heatmap's weights are the library's;
 * - sampler: a continuation of the requested length, the library's for the same settings and seed;
 * - answers: four answers with the library's reward-model and labeller scores;
 * - ranking: answers sampled, ranked and downloaded; the file is read by lib/rlhf/preferences.ts
 *   (what `npm run reward -- --prefs FILE` reads) and holds the ranking given.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { Locator, Page } from "playwright-core";
import { readPreferences } from "../../rlhf/preferences";
import { trueScore } from "../../rlhf/labeller";
import { tokenizerFromJSON } from "../../tokens/tokenizerFiles";
import { answerQuestion, attentionForIds, type LiveModel, rewardScore, sampleTokens, tokenizedRow } from "../../widgets/live";
import { validateWidgetSpec, type WidgetSpec } from "../../widgets/spec";
import { escapeHtml } from "../../show/display";
import { attentionView } from "../../widgets/views";
import { readWidgetModelScript } from "./widgetAssets";

const READY_TIMEOUT_MS = 30_000;
const ANSWER_TIMEOUT_MS = 60_000;

/** What the check types into the widgets: a digit run, punctuation and a character outside Moby-Dick's. */
export const TYPED_TEXT = "Call me Ishmael, 1851! Über";
export const TYPED_SENTENCE = "Call me Ishmael.";
/** Enough tokens for a rate worth reporting (the issue's target: 200 tokens per second). */
const SAMPLE = { tokens: 200, seed: 3 };

export interface WidgetCheck {
  kind: string;
  problems: string[];
  /** Timings worth reporting (the sampler's tokens per second, the answers' time after the click). */
  notes: string[];
}

/** Check every widget inside `scope` (a page's main, or the slide on screen). */
export async function checkWidgets(tab: Page, scope: string, siteDir: string, pageFile: string): Promise<WidgetCheck[]> {
  const widgets = tab.locator(`${scope} .course-widget`);
  const n = await widgets.count();
  const out: WidgetCheck[] = [];
  const models = new Map<string, LiveModel>();
  const model = (name: string) => {
    if (!models.has(name)) models.set(name, readWidgetModelScript(path.join(siteDir, "assets", "models", `${name}.js`)));
    return models.get(name)!;
  };
  for (let i = 0; i < n; i++) {
    const w = widgets.nth(i);
    const spec = validateWidgetSpec(JSON.parse((await w.locator("script.widget-spec").textContent()) ?? "null"), `${pageFile}: widget ${i + 1}`);
    const problems: string[] = [];
    const notes: string[] = [];
    try {
      await tab.waitForFunction((el) => el?.getAttribute("data-ready") !== null, await w.elementHandle(), { timeout: READY_TIMEOUT_MS });
      if ((await w.getAttribute("data-ready")) !== "true") {
        problems.push(`did not start: ${(await w.locator(".cw-status").first().textContent())?.trim()}`);
      } else {
        const live = w.locator(".widget-live");
        if (!(await live.locator(".cw-runs-on").textContent())?.includes("runs on")) problems.push("does not say what it runs on");
        problems.push(...(await exercise(tab, live, spec, model, notes)));
      }
    } catch (err) {
      problems.push((err as Error).message.split("\n")[0]);
    }
    out.push({ kind: spec.kind, problems, notes });
  }
  return out;
}

/** With scripts off, each widget of the page must show its build-time view (what a notebook showed). */
export async function fallbackProblems(tab: Page): Promise<string[]> {
  const views = await tab.$$eval(".course-widget", (ws) => ws.map((w) => {
    const f = w.querySelector(".widget-fallback") as HTMLElement | null;
    return { kind: w.getAttribute("data-kind"), shown: f !== null && f.offsetHeight > 0 && (f.textContent ?? "").trim() !== "" };
  }));
  return views.filter((v) => !v.shown).map((v) => `${v.kind} widget: with scripts off, its build-time view is not shown`);
}

async function exercise(tab: Page, live: Locator, spec: WidgetSpec, model: (name: string) => LiveModel, notes: string[]): Promise<string[]> {
  const problems: string[] = [];
  switch (spec.kind) {
    case "tokenizers": {
      await live.locator("textarea").fill(TYPED_TEXT);
      const rows = live.locator(".cw-output tbody tr");
      await tab.waitForFunction(([el, text]) => el?.querySelector("caption")?.textContent?.includes(text as string) === true, [await live.elementHandle(), JSON.stringify(TYPED_TEXT)] as const, { timeout: READY_TIMEOUT_MS });
      const got = await rows.evaluateAll((rs) => rs.map((r) => (r as HTMLElement).dataset.ids ?? null));
      const want = spec.tokenizers.map((t) => tokenizedRow(t.label, tokenizerFromJSON(t.json, t.label), TYPED_TEXT, { loneSurrogates: "replace" }));
      if (got.length !== want.length) problems.push(`${got.length} tokenizer rows, expected ${want.length}`);
      want.forEach((w, j) => {
        const ids = w.error === undefined ? w.ids.join(" ") : null;
        if (got[j] !== ids) problems.push(`${w.label}: ids ${got[j] ?? "(an error)"}, the library gives ${ids ?? `an error (${w.error})`}`);
      });
      return problems;
    }
    case "attention": {
      const m = model(spec.model);
      await live.locator("input").fill(TYPED_SENTENCE);
      const ids = m.tokenizer.encode(TYPED_SENTENCE).slice(0, m.config.blockSize);
      await tab.waitForFunction(([el, n]) => el?.querySelector(".cw-output")?.getAttribute("data-tokens") === String(n), [await live.elementHandle(), ids.length] as const, { timeout: READY_TIMEOUT_MS });
      const L = m.config.nLayer - 1, H = m.config.nHead - 1;
      await live.locator(`.cw-output button[data-layer="${L}"]`).click();
      await live.locator(`.cw-output button[data-head="${H}"]`).click();
      const got = await live.locator(".cw-output svg.cw-heatmap title").allTextContents();
      const want = [...attentionView(ids.map((id) => m.tokenizer.decode([id])), attentionForIds(m, ids), L, H).matchAll(/<title>([^<]*)<\/title>/g)].map((x) => x[1]);
      if (got.map((t) => escapeHtml(t)).join("\n") !== want.join("\n")) problems.push(`layer ${L + 1}, head ${H + 1}: the heatmap's ${got.length} weights differ from the library's ${want.length}`);
      return problems;
    }
    case "sampler": {
      const m = model(spec.model);
      await live.locator('input[name="tokens"]').fill(String(SAMPLE.tokens));
      await live.locator('input[name="seed"]').fill(String(SAMPLE.seed));
      await live.locator("button.cw-button").click();
      const out = live.locator(".cw-output[data-tokens]");
      await out.waitFor({ timeout: ANSWER_TIMEOUT_MS });
      const n = Number(await out.getAttribute("data-tokens"));
      if (n !== SAMPLE.tokens) problems.push(`sampled ${n} tokens, asked for ${SAMPLE.tokens}`);
      const ids = [...sampleTokens(m, m.tokenizer.encode(spec.prompt), { maxNewTokens: SAMPLE.tokens, temperature: spec.temperature, topK: spec.topK, topP: spec.topP, seed: SAMPLE.seed })];
      const want = spec.prompt + m.tokenizer.decode(ids);
      const got = await out.textContent();
      if (got !== want) problems.push(`sampled ${JSON.stringify(got)}, the library samples ${JSON.stringify(want)} with the same settings`);
      const rate = Number(await out.getAttribute("data-tokens-per-second"));
      if (!(rate > 0)) problems.push("no tokens per second shown");
      else notes.push(`sampler: ${n} tokens at ${rate} tokens/s`);
      return problems;
    }
    case "answers": {
      const t0 = Date.now();
      await live.locator("button.cw-button").click();
      await tab.waitForFunction((el) => {
        const td = el?.querySelector(".cw-output td.cw-answer");
        return td !== null && td !== undefined && td.textContent !== "…";
      }, await live.elementHandle(), { timeout: ANSWER_TIMEOUT_MS, polling: 10 });
      const first = Date.now() - t0;
      const out = live.locator(".cw-output[data-answers]");
      await out.waitFor({ timeout: ANSWER_TIMEOUT_MS });
      notes.push(`answers: the first ${(first / 1000).toFixed(2)} s after the click, all ${spec.models.length} (with scores) ${((Date.now() - t0) / 1000).toFixed(2)} s`);
      const got = await out.locator("tbody tr").evaluateAll((rs) => rs.map((r) => Array.from(r.children, (c) => c.textContent ?? "")));
      if (got.length !== spec.models.length) problems.push(`${got.length} answers, expected ${spec.models.length}`);
      const q = spec.questions[0];
      const reward = model(spec.reward);
      spec.models.forEach((entry, j) => {
        const answer = answerQuestion(model(entry.model), q.prompt, { maxNewTokens: spec.maxNewTokens, temperature: spec.temperature, seed: spec.seed });
        const scores = [answer === "" ? "–" : rewardScore(reward, q.prompt, answer).toFixed(2), q.reference === undefined ? "–" : trueScore(q.prompt, answer, q.reference).toFixed(2)];
        const row = got[j] ?? [];
        if (row[2] !== scores[0] || row[3] !== scores[1]) problems.push(`${entry.label}: scores ${row[2]} and ${row[3]}, the library gives ${scores[0]} and ${scores[1]}`);
      });
      return problems;
    }
    case "ranking": {
      await live.locator("button", { hasText: "Sample" }).click();
      const selects = live.locator("select.cw-rank");
      await selects.first().waitFor({ timeout: ANSWER_TIMEOUT_MS });
      const k = await selects.count();
      if (k !== spec.k) problems.push(`${k} answers to rank, expected ${spec.k}`);
      for (let j = 0; j < k; j++) await selects.nth(j).selectOption({ value: String(k - 1 - j) }); // the last answer best
      await live.locator("button", { hasText: "Save" }).click();
      const [download] = await Promise.all([tab.waitForEvent("download", { timeout: READY_TIMEOUT_MS }), live.locator("button", { hasText: "Download" }).click()]);
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "course-rankings-")), download.suggestedFilename());
      try {
        await download.saveAs(file);
        const records = readPreferences(file).records;
        const want = Array.from({ length: k }, (_, j) => answerQuestion(model(spec.model), spec.questions[0].prompt, { maxNewTokens: spec.maxNewTokens, temperature: spec.temperature, seed: `${spec.seed}:${j}` }));
        if (records.length !== 1) problems.push(`the downloaded file holds ${records.length} rankings, expected 1`);
        else {
          const r = records[0];
          if (JSON.stringify(r.ranking) !== JSON.stringify(Array.from({ length: k }, (_, j) => k - 1 - j))) problems.push(`downloaded ranking ${JSON.stringify(r.ranking)}, given the reverse order`);
          if (JSON.stringify(r.responses) !== JSON.stringify(want)) problems.push("the downloaded answers are not the library's for the same seeds");
          if (!r.rankedBy.startsWith("human:")) problems.push(`rankedBy is ${r.rankedBy}`);
        }
      } finally {
        fs.rmSync(path.dirname(file), { recursive: true, force: true });
      }
      return problems;
    }
  }
}
