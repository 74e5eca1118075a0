/**
 * The teaching structure of a course notebook, read from its markdown: sections (headings),
 * learning objectives, recap, exercises and their worked solutions.
 *
 * Conventions (checked for every notebook by tests/tools/course/slides.test.ts):
 *
 *  - **Learning objectives** at the top: the text "Learning objectives" (bold or a heading)
 *    before the first `##` heading.
 *  - **Recap** at the end: a heading "Recap" after every other `##` section except
 *    Exercises/Solutions.
 *  - **Exercises**: a heading "Exercises"; the exercises are its numbered list (`1. …`) or
 *    paragraphs starting with `**1.**`, `**2.**`, … — two or three of them.
 *  - **Solutions**: each worked solution starts with a markdown line beginning with
 *    `**Solution N.**` (or a heading `#### Solution N`), N the exercise's number. It runs over
 *    the following markdown and code cells until the next solution marker, the next heading of
 *    level 1–3, or the end of the notebook. A marker may sit in the middle of a markdown cell:
 *    the cell is split there.
 *  - Under a heading "Solutions" (plural), a line starting with a bold number `**N.**` is a
 *    marker for solution N too. A "Solutions" section with no markers at all becomes one block
 *    "Solutions" (everything up to the next heading of the same or a higher level).
 *  - The course's notebooks start every solution with a markdown cell of its own, the heading
 *    `#### Solution N`, collapsed in its metadata (COLLAPSED_HEADING): JupyterLab then shows the
 *    heading with its cells folded under it until a learner opens it (solutionCollapseProblems).
 *
 * The site shows every solution collapsed (<details>); the slides too.
 */
import type { Cell, Notebook } from "./notebook";

/** Jupyter stores long strings as lists of lines; accept both. */
export function cellSource(cell: Pick<Cell, "source"> | { source?: unknown }): string {
  const s = (cell as { source?: unknown }).source;
  if (typeof s === "string") return s;
  if (Array.isArray(s)) return s.join("");
  return "";
}

export interface Heading {
  level: number;
  /** The heading's markdown source (no #'s). */
  text: string;
}

/** An ATX heading line ("## Title ##"), or undefined. */
export function parseHeading(line: string): Heading | undefined {
  const m = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(line);
  if (!m) return undefined;
  return { level: m[1].length, text: (m[2] ?? "").trim() };
}

/** Plain words of a heading's markdown: "**Solutions** `x`" → "Solutions x". */
function plain(md: string): string {
  return md.replace(/[*_`~]/g, "").trim();
}

/**
 * A line that starts one worked solution: `**Solution 2.**` (also `__Solution 2__`, `**Solution 2:**`,
 * `**Solution.**`) at the start of the line, or a heading whose text starts with "Solution 2".
 * Returns the exercise number (undefined when the marker has none).
 */
export function solutionMarker(line: string): { number?: number } | undefined {
  const bold = /^ {0,3}(\*\*|__)Solution(?:\s+(\d+))?\s*[.:]?\s*\1/i.exec(line);
  if (bold) return { number: bold[2] !== undefined ? Number(bold[2]) : undefined };
  const h = parseHeading(line);
  if (h) {
    const m = /^Solution(?:\s+(\d+))?(?![a-z])/i.exec(plain(h.text));
    if (m) return { number: m[1] !== undefined ? Number(m[1]) : undefined };
  }
  return undefined;
}

/**
 * Cell metadata that folds a heading's section: JupyterLab and Notebook 7 read
 * "jp-MarkdownHeadingCollapsed", classic Notebook's collapsible_headings "heading_collapsed".
 */
export const COLLAPSED_HEADING = { "jp-MarkdownHeadingCollapsed": true, heading_collapsed: true } as const;

/** A solution's own heading ("#### Solution 2"): the collapsed block's summary already says it. */
export function isSolutionTitle(p: Pick<Piece, "marker" | "heading">): boolean {
  return p.marker !== undefined && p.heading !== undefined;
}

/** A "Solutions" / "Worked solutions" section heading. */
export function isSolutionsHeading(h: Heading): boolean {
  return /^(worked\s+)?solutions\b/i.test(plain(h.text));
}

export interface SolutionRef {
  /** 1, 2, … in notebook order (unique per notebook). */
  id: number;
  /** The exercise number from the marker, if it has one. */
  number?: number;
  /** What the collapsed block says: "Solution 2", "Solution", "Solutions". */
  label: string;
}

/**
 * A piece of a notebook: a whole code or raw cell, or part of a markdown cell. Markdown cells
 * are cut before every heading of level 1–3 and every solution marker (outside fenced code),
 * and a heading line is a piece of its own, so a piece is either a heading or body text.
 */
export interface Piece {
  /** Index of the cell in notebook.cells. */
  cell: number;
  type: Cell["cell_type"];
  source: string;
  /** Set when the piece is one heading line of level 1–3 (or a "Solution N" heading of any level). */
  heading?: Heading;
  /** Set when the piece starts a worked solution. */
  marker?: { number?: number };
  /** Set by findSolutions: the solution this piece belongs to. */
  solution?: SolutionRef;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

/** Split one markdown cell's source into pieces (see Piece); empty pieces are dropped. */
export function splitMarkdown(source: string): { source: string; heading?: Heading; marker?: { number?: number } }[] {
  const out: { source: string; heading?: Heading; marker?: { number?: number } }[] = [];
  let lines: string[] = [];
  let fence: string | undefined;
  let mathBlock = false;
  const flush = () => {
    const s = lines.join("\n").replace(/^\s*\n/, "").replace(/\s+$/, "");
    if (s !== "") out.push({ source: s });
    lines = [];
  };
  for (const line of source.split("\n")) {
    if (fence) {
      if (line.trim().startsWith(fence) && line.trim().replace(/[`~]/g, "") === "") fence = undefined;
      lines.push(line);
      continue;
    }
    const f = FENCE.exec(line);
    if (f) {
      fence = f[1][0].repeat(f[1].length);
      lines.push(line);
      continue;
    }
    // "$$ … $$" over several lines: a line starting with "#" there is TeX, not a heading.
    const dollars = (line.match(/\$\$/g) ?? []).length;
    if (mathBlock) {
      if (dollars % 2 === 1) mathBlock = false;
      lines.push(line);
      continue;
    }
    if (dollars % 2 === 1 && line.trimStart().startsWith("$$")) {
      mathBlock = true;
      lines.push(line);
      continue;
    }
    const marker = solutionMarker(line);
    const heading = parseHeading(line);
    if (heading && (heading.level <= 3 || marker)) {
      flush();
      out.push({ source: line.trim(), heading, marker });
    } else if (marker) {
      flush(); // the marker line starts a new body piece (attachMarkers tags it)
      lines.push(line);
    } else lines.push(line);
  }
  flush();
  return attachMarkers(out);
}

/** Body pieces whose first line is a solution marker get `marker` set. */
function attachMarkers(pieces: { source: string; heading?: Heading; marker?: { number?: number } }[]) {
  for (const p of pieces) {
    if (p.heading || p.marker) continue;
    const m = solutionMarker(p.source.split("\n")[0]);
    if (m) p.marker = m;
  }
  return pieces;
}

/** A notebook as pieces, in order, with `solution` set on the pieces inside a worked solution. */
export function notebookPieces(nb: Pick<Notebook, "cells">): Piece[] {
  const pieces: Piece[] = [];
  nb.cells.forEach((cell, i) => {
    if (cell.cell_type === "markdown") {
      for (const p of splitMarkdown(cellSource(cell))) pieces.push({ cell: i, type: "markdown", ...p });
    } else pieces.push({ cell: i, type: cell.cell_type, source: cellSource(cell) });
  });
  return findSolutions(pieces);
}

/** Mark the pieces that belong to a worked solution (the rules are at the top of this file). */
export function findSolutions(input: Piece[]): Piece[] {
  let nextId = 1;
  let current: SolutionRef | undefined;
  let block: { level: number; ref?: SolutionRef } | undefined;
  const pieces: Piece[] = [];
  for (const whole of input) {
    // Under a "Solutions" heading, "**2.**" at a line start also starts solution 2.
    const parts = block && whole.type === "markdown" && !whole.heading && !whole.marker ? splitAtNumbers(whole) : [whole];
    for (const p of parts) {
      pieces.push(p);
      if (p.marker) {
        const n = p.marker.number;
        current = { id: nextId++, number: n, label: n !== undefined ? `Solution ${n}` : "Solution" };
        p.solution = current;
        continue;
      }
      if (p.heading && p.heading.level <= 3) {
        current = undefined;
        if (block && p.heading.level <= block.level) block = undefined;
        if (isSolutionsHeading(p.heading)) block = { level: p.heading.level };
        continue;
      }
      if (current) p.solution = current;
      else if (block) p.solution = block.ref ??= { id: nextId++, label: "Solutions" };
    }
  }
  return pieces;
}

const NUMBERED = /^ {0,3}(\*\*|__)(\d+)[.:)]?\1/;

/** Cut a markdown piece before each line starting with a bold number ("**2.**"), outside code. */
function splitAtNumbers(p: Piece): Piece[] {
  const out: Piece[] = [];
  let lines: string[] = [];
  let fence: string | undefined;
  const flush = () => {
    const src = lines.join("\n").replace(/^\s*\n/, "").replace(/\s+$/, "");
    if (src !== "") {
      const m = NUMBERED.exec(src);
      out.push(m ? { cell: p.cell, type: p.type, source: src, marker: { number: Number(m[2]) } } : { cell: p.cell, type: p.type, source: src });
    }
    lines = [];
  };
  for (const line of p.source.split("\n")) {
    const f = FENCE.exec(line);
    if (fence) {
      if (line.trim().startsWith(fence) && line.trim().replace(/[`~]/g, "") === "") fence = undefined;
    } else if (f) fence = f[1][0].repeat(f[1].length);
    else if (NUMBERED.test(line)) flush();
    lines.push(line);
  }
  flush();
  return out;
}

// ---------------------------------------------------------------------------------------
// The chapter checklist

export interface ChapterStructure {
  objectives: boolean;
  recap: boolean;
  /** Number of exercises found under the Exercises heading (0 if none). */
  exercises: number;
  /** Exercise numbers of the numbered solutions, in order. */
  solutions: number[];
  /** What is missing, one line each ([] if the notebook follows the conventions). */
  problems: string[];
}

/**
 * The worked solutions that JupyterLab or classic Notebook would show open under their exercises:
 * each must start with a markdown cell holding only its heading ("#### Solution N") with every key of
 * COLLAPSED_HEADING in its metadata. One line per offending solution ([] when all fold).
 */
export function solutionCollapseProblems(nb: Pick<Notebook, "cells">): string[] {
  const problems: string[] = [];
  for (const p of notebookPieces(nb)) {
    if (!p.marker) continue;
    const cell = nb.cells[p.cell];
    const meta = (cell.metadata ?? {}) as Record<string, unknown>;
    const ownCell = p.heading !== undefined && cellSource(cell).trim() === p.source;
    if (ownCell && Object.entries(COLLAPSED_HEADING).every(([k, v]) => meta[k] === v)) continue;
    const label = p.solution?.label ?? "Solution";
    problems.push(
      `cell ${p.cell + 1}: ${label} is not folded in JupyterLab; expected a markdown cell of its own, "#### ${label}", ` +
        `with metadata ${JSON.stringify(COLLAPSED_HEADING)}`,
    );
  }
  return problems;
}

/** Count the exercises in the markdown under an Exercises heading. */
export function countExercises(markdown: string): number {
  const lines = markdown.split("\n");
  // A numbered list: top-level "1. …" items (continuation lines are indented).
  const listItems = lines.filter((l) => /^ {0,3}\d+[.)][ \t]+\S/.test(l)).length;
  const boldNumbers = lines.filter((l) => /^ {0,3}(\*\*|__)(Exercise\s+)?\d+[.:)]?\1/i.test(l)).length;
  return Math.max(listItems, boldNumbers);
}

export function chapterStructure(nb: Pick<Notebook, "cells">): ChapterStructure {
  const pieces = notebookPieces(nb);
  const md = pieces.filter((p) => p.type === "markdown");
  const firstSection = md.findIndex((p) => p.heading && p.heading.level === 2);
  const top = firstSection < 0 ? md : md.slice(0, firstSection);
  const objectives = top.some((p) => /learning objectives/i.test(p.source));

  const sections = md.filter((p) => p.heading && p.heading.level === 2).map((p) => plain(p.heading!.text));
  const isEndMatter = (t: string) => /^(exercises?|solutions?|worked solutions)\b/i.test(t);
  const recapAt = sections.findIndex((t) => /^recap\b/i.test(t));
  const lastContent = sections.reduce((last, t, i) => (isEndMatter(t) || /^recap\b/i.test(t) ? last : i), -1);
  const recap = recapAt >= 0 && recapAt > lastContent;

  const exIdx = md.findIndex((p) => p.heading && /^exercises?\b/i.test(plain(p.heading.text)));
  let exercises = 0;
  if (exIdx >= 0) {
    const body: string[] = [];
    for (const p of md.slice(exIdx + 1)) {
      if (p.heading || p.marker || p.solution) break;
      body.push(p.source);
    }
    exercises = countExercises(body.join("\n\n"));
  }
  const solutions = pieces.filter((p) => p.marker && p.marker.number !== undefined).map((p) => p.marker!.number!);

  const problems: string[] = [];
  if (!objectives) problems.push('no "Learning objectives" before the first ## section');
  if (!recap) problems.push('no "## Recap" section after the last content section');
  if (exIdx < 0) problems.push('no "## Exercises" heading');
  else if (exercises < 2 || exercises > 3) problems.push(`${exercises} exercises under "Exercises"; expected 2 or 3 (a numbered list, or paragraphs starting **1.**)`);
  const want = Array.from({ length: exercises }, (_, i) => i + 1);
  const missing = want.filter((n) => !solutions.includes(n));
  if (missing.length) problems.push(`no worked solution for exercise ${missing.join(", ")} (a markdown line starting **Solution N.**)`);
  const extra = solutions.filter((n) => !want.includes(n));
  if (exercises > 0 && extra.length) problems.push(`solutions for exercises that don't exist: ${extra.join(", ")}`);
  const dup = solutions.filter((n, i) => solutions.indexOf(n) !== i);
  if (dup.length) problems.push(`more than one solution marked ${dup.join(", ")}`);
  return { objectives, recap, exercises, solutions, problems };
}
