/**
 * The widgets' views as HTML strings: the same functions draw the build-time output (what
 * Jupyter and a page without scripts show) and the live one in the browser, so both look alike.
 * Styles: lib/tools/course/siteAssets/site.css (classes "cw-…"); Jupyter shows them unstyled
 * but readable (inline sizes and colours where it matters).
 */

import { escapeHtml } from "../show/display";

/** A token's text made visible: spaces as "␣", new lines as "↵", tabs as "⇥". */
export function visibleToken(s: string): string {
  return s.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥");
}

// ---------------------------------------------------------------------------------------
// Tokenizers (chapter 01)

export interface TokenizedRow {
  label: string;
  ids: number[];
  /** Each id's text (as decoded alone). */
  pieces: string[];
  /** Why the tokenizer could not encode the text. */
  error?: string;
}

const PIECE_COLOURS = ["#fde2e4", "#dbeafe", "#dcfce7", "#fef9c3", "#ede9fe", "#ffedd5"];

export function tokenizersView(text: string, rows: readonly TokenizedRow[]): string {
  const body = rows
    .map((r) => {
      const pieces = r.pieces
        .map((p, i) => `<span class="cw-piece" style="background:${PIECE_COLOURS[i % PIECE_COLOURS.length]}" title="id ${r.ids[i]}">${escapeHtml(visibleToken(p))}<sub>${r.ids[i]}</sub></span>`)
        .join("");
      if (r.error !== undefined) return `<tr><th scope="row">${escapeHtml(r.label)}</th><td class="cw-num">–</td><td class="cw-error">${escapeHtml(r.error)}</td></tr>`;
      return `<tr data-ids="${r.ids.join(" ")}"><th scope="row">${escapeHtml(r.label)}</th><td class="cw-num">${r.ids.length}</td><td class="cw-pieces">${pieces}</td></tr>`;
    })
    .join("");
  return `<table class="cw-table cw-tokens"><caption>${escapeHtml(JSON.stringify(text))}: ${[...text].length} characters</caption><thead><tr><th>tokenizer</th><th>tokens</th><th>pieces with their ids</th></tr></thead><tbody>${body}</tbody></table>`;
}

// ---------------------------------------------------------------------------------------
// Attention (chapters 03 and 05)

/** One head's weights [query][key] as an SVG heatmap with the tokens along both axes. */
export function attentionHeatmap(tokens: readonly string[], weights: readonly (readonly number[])[], title: string): string {
  const n = tokens.length;
  const cell = Math.max(6, Math.min(18, Math.floor(432 / Math.max(n, 1))));
  const label = 34;
  const size = label + n * cell;
  const fontSize = Math.min(11, cell - 1);
  const rects: string[] = [];
  for (let q = 0; q < n; q++) {
    for (let k = 0; k <= q; k++) {
      const w = weights[q]?.[k] ?? 0;
      if (w < 0.004) continue; // invisible against white: left out to keep the picture light
      const light = Math.round(255 - 215 * Math.min(1, w));
      rects.push(`<rect x="${label + k * cell}" y="${label + q * cell}" width="${cell}" height="${cell}" fill="rgb(${light},${light + Math.round((255 - light) * 0.3)},255)"><title>${escapeHtml(`query ${q} ${visibleToken(tokens[q])} → key ${k} ${visibleToken(tokens[k])}: ${w.toFixed(3)}`)}</title></rect>`);
    }
  }
  const labels = cell >= 9
    ? tokens.map((t, i) => {
      const c = escapeHtml(visibleToken(t));
      return `<text x="${label - 3}" y="${label + i * cell + cell * 0.75}" text-anchor="end">${c}</text><text x="${label + i * cell + cell / 2}" y="${label - 4}" text-anchor="middle">${c}</text>`;
    }).join("")
    : "";
  return `<svg class="cw-heatmap" role="img" aria-label="${escapeHtml(title)}" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}" font-size="${fontSize}" font-family="monospace"><rect x="${label}" y="${label}" width="${n * cell}" height="${n * cell}" fill="#fff" stroke="#ccc"/>${rects.join("")}${labels}</svg>`;
}

/** Layer and head pickers (buttons the browser wires; disabled in the build-time view) around one head's heatmap. */
export function attentionView(tokens: readonly string[], maps: number[][][][], layer: number, head: number, live = true): string {
  const L = maps.length, H = maps[0]?.length ?? 0;
  const buttons = (what: "layer" | "head", count: number, selected: number) =>
    Array.from({ length: count }, (_, i) => `<button type="button" class="cw-pick${i === selected ? " cw-selected" : ""}" data-${what}="${i}" aria-pressed="${i === selected}"${live ? "" : " disabled"}>${i + 1}</button>`).join("");
  const title = `layer ${layer + 1}, head ${head + 1}: row = a token, its weights over the tokens up to it`;
  return `<div class="cw-attention"><div class="cw-pickers"><span>layer</span>${buttons("layer", L, layer)}<span>head</span>${buttons("head", H, head)}</div>` +
    `<p class="cw-caption">${escapeHtml(title)} (darker = more weight; ${tokens.length} tokens)</p>${attentionHeatmap(tokens, maps[layer]?.[head] ?? [], title)}</div>`;
}

// ---------------------------------------------------------------------------------------
// Sampling (chapter 05)

export function sampleView(prompt: string, continuation: string, note = ""): string {
  return `<pre class="cw-sample"><span class="cw-prompt">${escapeHtml(prompt)}</span>${escapeHtml(continuation)}</pre>${note ? `<p class="cw-caption">${escapeHtml(note)}</p>` : ""}`;
}

// ---------------------------------------------------------------------------------------
// Answers side by side (chapters 06–09)

export interface AnswerRow {
  label: string;
  answer: string;
  /** The reward model's score. */
  reward?: number;
  /** The labeller's true score (lib/rlhf/labeller.ts), when the question has a reference. */
  trueScore?: number;
}

export function answersView(question: string, reference: string | undefined, rows: readonly AnswerRow[]): string {
  const fmt = (x: number | undefined) => (x === undefined ? "–" : x.toFixed(2));
  const body = rows
    .map((r) => `<tr><th scope="row">${escapeHtml(r.label)}</th><td class="cw-answer">${escapeHtml(visibleEnd(r.answer))}</td><td class="cw-num">${fmt(r.reward)}</td><td class="cw-num">${fmt(r.trueScore)}</td></tr>`)
    .join("");
  const ref = reference === undefined ? "no reference answer: the labeller cannot judge “correct”" : `reference answer: ${reference}`;
  return `<table class="cw-table cw-answers"><caption>${escapeHtml(question)} <span class="cw-reference">(${escapeHtml(ref)})</span></caption><thead><tr><th>model</th><th>answer</th><th>reward model</th><th>labeller's true score</th></tr></thead><tbody>${body}</tbody></table>`;
}

/** An answer on one line: "<|end|>" at its end shown as "⏎" (the model ended its turn), new lines as "↵". */
export function visibleEnd(answer: string): string {
  return answer.replace(/<\|end\|>$/, " ⏎").replace(/\n/g, "↵");
}
