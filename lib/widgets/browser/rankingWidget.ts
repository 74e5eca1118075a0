/**
 * Chapter 07: rank a few sampled answers yourself; the rankings download as the preference
 * JSONL that `npm run reward -- --prefs FILE` reads (lib/rlhf/preferences.ts), one record per
 * ranked question, rankedBy "human:<your name>".
 */
import { type PreferenceRecord, validatePreference } from "../../rlhf/preferences";
import { answerQuestion } from "../live";
import type { RankingWidget } from "../spec";
import { escapeHtml } from "../../show/display";
import { visibleEnd } from "../views";
import { el, errorText, labelled, nextFrame, statusLine } from "./dom";
import { questionPicker } from "./answersWidget";
import { loadModel } from "./models";

export async function mountRanking(root: HTMLElement, spec: RankingWidget): Promise<void> {
  const pick = questionPicker(root, spec.questions);
  const name = el("input", { type: "text", class: "cw-input cw-short", value: "reader", "aria-label": "your name" });
  const sample = el("button", { type: "button", class: "cw-button" }, `Sample ${spec.k} answers`);
  const status = statusLine();
  const list = el("ol", { class: "cw-rank-list cw-output" });
  const save = el("button", { type: "button", class: "cw-button", disabled: true }, "Save this ranking");
  const download = el("button", { type: "button", class: "cw-button", disabled: true }, "Download rankings (0)");
  root.append(labelled("Your name", name), sample, status, list, el("div", { class: "cw-controls" }, save, download));
  status.set("Loading the model…");
  const model = await loadModel(spec.model);
  status.set("Sample answers, put them in order (1 = best), save; repeat; then download.");
  const records: PreferenceRecord[] = [];
  let current: { prompt: string; reference?: string; id?: string; answers: string[] } | undefined;
  let round = 0;

  sample.addEventListener("click", async () => {
    sample.disabled = true;
    try {
      const q = pick();
      if (q.prompt === "") throw new Error("type a question first");
      list.innerHTML = "";
      const answers: string[] = [];
      for (let i = 0; i < spec.k; i++) {
        await nextFrame();
        answers.push(answerQuestion(model, q.prompt, { maxNewTokens: spec.maxNewTokens, temperature: spec.temperature, seed: `${spec.seed + round}:${i}` }));
      }
      round += 1;
      current = { ...q, answers };
      list.innerHTML = answers
        .map((a, i) => `<li><select class="cw-rank" aria-label="rank of answer ${i + 1}">${answers.map((_, r) => `<option value="${r}"${r === i ? " selected" : ""}>${r + 1}</option>`).join("")}</select> <span class="cw-answer">${escapeHtml(visibleEnd(a))}</span></li>`)
        .join("");
      save.disabled = false;
      status.set("Give each answer its place (1 = best, each place once), then save.");
    } catch (err) {
      status.set(errorText(err), true);
    } finally {
      sample.disabled = false;
    }
  });

  save.addEventListener("click", () => {
    try {
      if (!current) throw new Error("sample answers first");
      const places = [...list.querySelectorAll<HTMLSelectElement>("select.cw-rank")].map((s) => Number(s.value));
      if (new Set(places).size !== places.length) throw new Error("each place (1, 2, …) must be given to exactly one answer");
      const ranking = places.map((_, i) => i).sort((a, b) => places[a] - places[b]); // answer indices, best first
      const who = name.value.trim();
      const record = validatePreference({
        prompt: current.prompt, responses: current.answers, ranking, rankedBy: `human:${who}`,
        ...(current.id ? { id: current.id } : {}), ...(current.reference ? { reference: current.reference } : {}), time: new Date().toISOString(),
      }, "your ranking");
      records.push(record);
      current = undefined;
      save.disabled = true;
      download.disabled = false;
      download.textContent = `Download rankings (${records.length})`;
      status.set(`Saved: ${records.length} ranking${records.length === 1 ? "" : "s"}. Sample another question, or download.`);
    } catch (err) {
      status.set(errorText(err).replace(/^your ranking: field "rankedBy".*/, "type your name first (the file says who ranked)"), true);
    }
  });

  download.addEventListener("click", () => {
    const jsonl = records.map((r) => JSON.stringify(r)).join("\n") + "\n";
    const url = URL.createObjectURL(new Blob([jsonl], { type: "application/jsonl" }));
    const a = el("a", { href: url, download: "my-preferences.jsonl" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    status.set(`Downloaded my-preferences.jsonl (${records.length} rankings): train on it with npm run reward -- --prefs my-preferences.jsonl`);
  });
}
