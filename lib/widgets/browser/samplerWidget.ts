/** Chapter 05: a prompt box that samples from the pretrained model, with temperature, top-k and top-p. */
import { sampleTokens } from "../live";
import type { SamplerWidget } from "../spec";
import { escapeHtml } from "../../show/display";
import { el, errorText, labelled, nextFrame, statusLine } from "./dom";
import { loadModel } from "./models";

function slider(value: number, min: number, max: number, step: number, name: string): { input: HTMLInputElement; field: HTMLElement } {
  const input = el("input", { type: "range", min, max, step, name, "aria-label": name });
  input.value = String(value);
  const shown = el("output", {}, String(value));
  input.addEventListener("input", () => (shown.textContent = input.value));
  return { input, field: labelled(name, el("span", { class: "cw-slider" }, input, shown)) };
}

export async function mountSampler(root: HTMLElement, spec: SamplerWidget): Promise<void> {
  const prompt = el("textarea", { class: "cw-input", rows: 2, spellcheck: false, "aria-label": "prompt" });
  prompt.value = spec.prompt;
  const temperature = slider(spec.temperature, 0, 2, 0.05, "temperature");
  const status = statusLine();
  const out = el("pre", { class: "cw-sample cw-output" });
  root.append(labelled("Prompt", prompt));
  const model = await loadModel(spec.model);
  const topK = slider(spec.topK, 1, model.config.vocabSize, 1, "top-k");
  const topP = slider(spec.topP, 0.05, 1, 0.05, "top-p");
  const length = el("input", { type: "number", min: 1, max: 2000, step: 1, name: "tokens", "aria-label": "tokens" });
  length.value = String(spec.maxNewTokens);
  const seed = el("input", { type: "number", step: 1, name: "seed", "aria-label": "seed" });
  seed.value = String(spec.seed);
  const go = el("button", { type: "button", class: "cw-button" }, "Sample");
  root.append(el("div", { class: "cw-controls" }, temperature.field, topK.field, topP.field, labelled("tokens", length), labelled("seed", seed), go), status, out);
  let running = false;
  go.addEventListener("click", async () => {
    if (running) {
      running = false; // the loop below sees it and stops
      return;
    }
    try {
      const n = Number(length.value);
      if (!(Number.isInteger(n) && n >= 1 && n <= 2000)) throw new Error("tokens must be a whole number from 1 to 2000");
      const ids = model.tokenizer.encode(prompt.value);
      if (ids.length === 0) throw new Error("write a prompt first");
      running = true;
      go.textContent = "Stop";
      out.innerHTML = `<span class="cw-prompt">${escapeHtml(prompt.value)}</span>`;
      const text = document.createTextNode("");
      out.append(text);
      const made: number[] = [];
      const start = performance.now();
      let shown = start;
      const tokens = sampleTokens(model, ids, {
        maxNewTokens: n, temperature: Number(temperature.input.value), topK: Number(topK.input.value), topP: Number(topP.input.value), seed: Number(seed.value),
      });
      for (const id of tokens) {
        made.push(id);
        if (!running) break;
        if (performance.now() - shown > 50) { // draw about 20 times a second, not after every token
          text.data = model.tokenizer.decode(made);
          await nextFrame();
          shown = performance.now();
        }
      }
      const seconds = (performance.now() - start) / 1000;
      text.data = model.tokenizer.decode(made);
      out.dataset.tokens = String(made.length);
      out.dataset.tokensPerSecond = (made.length / seconds).toFixed(0);
      status.set(`${made.length} tokens in ${seconds.toFixed(2)} s: ${(made.length / seconds).toFixed(0)} tokens per second`);
    } catch (err) {
      status.set(errorText(err), true);
    } finally {
      running = false;
      go.textContent = "Sample";
    }
  });
}
