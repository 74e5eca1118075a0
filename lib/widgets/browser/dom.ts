/** Small DOM helpers shared by the widgets. */

type Attrs = Record<string, string | number | boolean | undefined>;

/** An element with attributes and children (strings become text). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? "" : String(v));
  }
  e.append(...children);
  return e;
}

/** A labelled control: "<label>text <control></label>". */
export function labelled(text: string, control: HTMLElement): HTMLLabelElement {
  return el("label", { class: "cw-field" }, el("span", {}, text), control);
}

/** Call `f` once input has paused for `ms`. */
export function debounce(f: () => void, ms: number): () => void {
  let t: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (t !== undefined) clearTimeout(t);
    t = setTimeout(f, ms);
  };
}

/** Let the browser draw (between sampled tokens, so text appears as it is made). */
export function nextFrame(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Where a widget shows that it is working, or what went wrong (one line). */
export function statusLine(): HTMLParagraphElement & { set(text: string, error?: boolean): void } {
  const p = el("p", { class: "cw-status", role: "status" }) as HTMLParagraphElement & { set(text: string, error?: boolean): void };
  p.set = (text, error = false) => {
    p.textContent = text;
    p.classList.toggle("cw-error", error);
  };
  return p;
}

/** An error as one line for a reader: a character the model's tokenizer lacks is said plainly. */
export function errorText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /character "(.+?)" \(U\+[0-9A-F]+\) at position (\d+) is not in the vocabulary/.exec(message);
  if (unknown) return `the model has no token for "${unknown[1]}" (character ${Number(unknown[2]) + 1}): its vocabulary is the characters of the text it was trained on`;
  return message;
}
