/**
 * The course site's live widgets (built by esbuild into assets/course-widgets.js). Each widget
 * on a page is a <div class="course-widget"> holding its settings as JSON and the build-time
 * view (lib/tools/course/render.ts); this script replaces the view with live controls, and says
 * what the computation runs on. Without scripts the build-time view stays.
 */
import type { WidgetSpec } from "../spec";
import { validateWidgetSpec } from "../spec";
import { mountAnswers } from "./answersWidget";
import { mountAttention } from "./attentionWidget";
import { el, errorText } from "./dom";
import { mountRanking } from "./rankingWidget";
import { mountSampler } from "./samplerWidget";
import { mountTokenizers } from "./tokenizersWidget";

const RUNS_ON: Record<WidgetSpec["kind"], string> = {
  tokenizers: "the course's tokenizers (lib/tokens) in your browser's JavaScript",
  attention: "the course's decoder (lib/gpt/decoder.ts) in your browser's JavaScript, float16 weights",
  sampler: "the course's decoder (lib/gpt/decoder.ts) in your browser's JavaScript, float16 weights",
  answers: "the course's decoder (lib/gpt/decoder.ts) in your browser's JavaScript, float16 weights",
  ranking: "the course's decoder (lib/gpt/decoder.ts) in your browser's JavaScript, float16 weights",
};

async function mount(container: HTMLElement): Promise<void> {
  const data = container.querySelector<HTMLScriptElement>("script.widget-spec");
  const fallback = container.querySelector<HTMLElement>(".widget-fallback");
  const live = el("div", { class: "widget-live" });
  const spec = validateWidgetSpec(JSON.parse(data?.textContent ?? "null"), "widget");
  live.append(el("p", { class: "cw-runs-on" }, el("strong", {}, "Live"), ` · runs on ${RUNS_ON[spec.kind]}; nothing leaves this page`));
  container.append(live);
  try {
    const body = el("div", { class: "cw-body" });
    live.append(body);
    if (fallback) fallback.hidden = true;
    if (spec.kind === "tokenizers") await mountTokenizers(body, spec);
    else if (spec.kind === "attention") await mountAttention(body, spec);
    else if (spec.kind === "sampler") await mountSampler(body, spec);
    else if (spec.kind === "answers") await mountAnswers(body, spec);
    else await mountRanking(body, spec);
    container.dataset.ready = "true";
  } catch (err) {
    // Back to the build-time view, with the reason on one line.
    live.replaceChildren(el("p", { class: "cw-status cw-error" }, `This widget could not start: ${errorText(err)}`));
    if (fallback) fallback.hidden = false;
    container.dataset.ready = "error";
    console.warn(err);
  }
}

function mountAll(): void {
  for (const c of document.querySelectorAll<HTMLElement>(".course-widget")) void mount(c);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
else mountAll();
