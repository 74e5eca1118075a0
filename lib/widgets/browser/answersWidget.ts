/** Chapters 06–09: ask a question, see the base, SFT, PPO and DPO models answer, each scored. */
import { trueScore } from "../../rlhf/labeller";
import { answerQuestion, type LiveModel, rewardScore } from "../live";
import type { AnswersWidget } from "../spec";
import { type AnswerRow, answersView } from "../views";
import { el, errorText, labelled, nextFrame, statusLine } from "./dom";
import { loadModel } from "./models";

/** A drop-down of the chapter's held-out questions plus a free question box; returns the chosen question. */
export function questionPicker(root: HTMLElement, questions: AnswersWidget["questions"]): () => { prompt: string; reference?: string } {
  const select = el("select", { class: "cw-input", "aria-label": "question" });
  questions.forEach((q, i) => select.append(el("option", { value: i }, q.prompt)));
  select.append(el("option", { value: "own" }, "Your own question…"));
  const own = el("input", { type: "text", class: "cw-input", placeholder: "Ask anything (no reference answer: the labeller cannot judge “correct”)", hidden: true, "aria-label": "your question" });
  select.addEventListener("change", () => (own.hidden = select.value !== "own"));
  root.append(labelled("Question", select), own);
  return () => (select.value === "own" ? { prompt: own.value.trim() } : questions[Number(select.value)]);
}

export async function mountAnswers(root: HTMLElement, spec: AnswersWidget): Promise<void> {
  const pick = questionPicker(root, spec.questions);
  const go = el("button", { type: "button", class: "cw-button" }, "Ask every model");
  const status = statusLine();
  const out = el("div", { class: "cw-output" });
  root.append(go, status, out);
  status.set("Loading the models…");
  const [reward, ...models] = await Promise.all([loadModel(spec.reward), ...spec.models.map((m) => loadModel(m.model))]);
  status.set("");
  let seed = spec.seed;
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      const q = pick();
      if (q.prompt === "") throw new Error("type a question first");
      const rows: AnswerRow[] = spec.models.map((m) => ({ label: m.label, answer: "…" }));
      const start = performance.now();
      out.innerHTML = answersView(q.prompt, q.reference, rows);
      for (let i = 0; i < models.length; i++) {
        await nextFrame();
        rows[i] = answerRow(spec.models[i].label, models[i], reward, q, { maxNewTokens: spec.maxNewTokens, temperature: spec.temperature, seed });
        out.innerHTML = answersView(q.prompt, q.reference, rows);
      }
      out.dataset.answers = String(rows.length);
      status.set(`${rows.length} answers in ${((performance.now() - start) / 1000).toFixed(2)} s (temperature ${spec.temperature}, seed ${seed}); ask again for other samples`);
      seed += 1;
    } catch (err) {
      status.set(errorText(err), true);
    } finally {
      go.disabled = false;
    }
  });
}

function answerRow(label: string, model: LiveModel, reward: LiveModel, q: { prompt: string; reference?: string }, opts: { maxNewTokens: number; temperature: number; seed: number }): AnswerRow {
  const answer = answerQuestion(model, q.prompt, opts);
  return {
    label, answer,
    reward: answer === "" ? undefined : rewardScore(reward, q.prompt, answer),
    trueScore: q.reference === undefined ? undefined : trueScore(q.prompt, answer, q.reference),
  };
}
