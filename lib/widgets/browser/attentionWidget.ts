/** Chapters 03/05: type a sentence, see the pretrained model's attention for any layer and head. */
import { attentionForIds, type LiveModel } from "../live";
import type { AttentionWidget } from "../spec";
import { attentionView } from "../views";
import { debounce, el, errorText, labelled, statusLine } from "./dom";
import { loadModel } from "./models";

export async function mountAttention(root: HTMLElement, spec: AttentionWidget): Promise<void> {
  const input = el("input", { class: "cw-input", type: "text", spellcheck: false, "aria-label": "sentence" });
  input.value = spec.text;
  const out = el("div", { class: "cw-output" });
  const status = statusLine();
  root.append(labelled("Your sentence", input), status, out);
  status.set("Loading the model…");
  const model: LiveModel = await loadModel(spec.model);
  let layer = 0, head = 0;
  let tokens: string[] = [], maps: number[][][][] = [];
  const draw = () => {
    out.innerHTML = attentionView(tokens, maps, layer, head);
    out.dataset.tokens = String(tokens.length);
  };
  const update = () => {
    try {
      const ids = model.tokenizer.encode(input.value).slice(0, model.config.blockSize);
      if (ids.length === 0) throw new Error("type at least one character");
      tokens = ids.map((id) => model.tokenizer.decode([id]));
      maps = attentionForIds(model, ids);
      const cut = model.tokenizer.encode(input.value).length > ids.length ? ` (the first ${ids.length}: the model's context)` : "";
      status.set(`${ids.length} tokens${cut}`);
      draw();
    } catch (err) {
      status.set(errorText(err), true);
    }
  };
  out.addEventListener("click", (e) => {
    const b = (e.target as HTMLElement).closest("button");
    if (!b) return;
    if (b.dataset.layer !== undefined) layer = Number(b.dataset.layer);
    if (b.dataset.head !== undefined) head = Number(b.dataset.head);
    draw();
  });
  input.addEventListener("input", debounce(update, 150));
  update();
}
