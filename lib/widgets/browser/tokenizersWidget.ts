/** Chapter 01: type text, see it split by the character, word, course-BPE and GPT-2 tokenizers. */
import type { TokenizersWidget } from "../spec";
import { tokenizedRow } from "../live";
import { tokenizersView } from "../views";
import { debounce, el, errorText, labelled, statusLine } from "./dom";
import { tokenizerFromJSON } from "./models";

export async function mountTokenizers(root: HTMLElement, spec: TokenizersWidget): Promise<void> {
  const input = el("textarea", { class: "cw-input", rows: 2, spellcheck: false, "aria-label": "text to tokenize" });
  input.value = spec.text;
  const out = el("div", { class: "cw-output" });
  const status = statusLine();
  root.append(labelled("Your text", input), status, out);
  status.set("Loading the tokenizers…");
  const tokenizers = await Promise.all(spec.tokenizers.map(async (t) => ({ label: t.label, tokenizer: await tokenizerFromJSON(t.json, t.label) })));
  const update = () => {
    try {
      out.innerHTML = tokenizersView(input.value, tokenizers.map((t) => tokenizedRow(t.label, t.tokenizer, input.value, { loneSurrogates: "replace" })));
      status.set("");
    } catch (err) {
      status.set(errorText(err), true);
    }
  };
  input.addEventListener("input", debounce(update, 120));
  update();
}
