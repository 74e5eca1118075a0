import { strict as assert } from "node:assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { Cell, Notebook } from "../../../lib/tools/course/notebook";
import { readNotebook } from "../../../lib/tools/course/notebook";
import { chapterStructure, COLLAPSED_HEADING, countExercises, notebookPieces, solutionCollapseProblems, solutionMarker, splitMarkdown } from "../../../lib/tools/course/notebookStructure";
import { chapterFromNotebook, renderMarkdownBlocks } from "../../../lib/tools/course/render";
import { buildSite, renderIndexPage, renderNotebookPage } from "../../../lib/tools/course/site";
import { cellAsDiv, chapterUnits, firstSentence, isSlideVisual, listItemUnits, relocateUrls, renderSlideDeck, splitSlides, type SlideUnit } from "../../../lib/tools/course/slides";
import { listDecks } from "../../../lib/tools/course/checkSite";

const md = (source: string, id = "m"): Cell => ({ cell_type: "markdown", id, metadata: {}, source });
const code = (source: string, outputs: any[] = [], id = "c"): Cell => ({ cell_type: "code", id, metadata: {}, source, execution_count: 1, outputs });
const nb = (cells: Cell[]): Notebook => ({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells });

const FIGURE = { data: [{ type: "scatter", x: [1, 2], y: [3, 4] }], layout: { height: 300 } };
const plot = { output_type: "display_data", data: { "application/vnd.plotly.v1+json": FIGURE, "text/plain": "<Figure>" }, metadata: {} };

/** A chapter that follows the conventions of lib/tools/course/notebookStructure.ts. */
function chapterNotebook(): Notebook {
  return nb([
    md("# 09 · Example\n\nIntro.\n\n**Learning objectives.** By the end you can\n\n1. do a;\n2. do b.", "a"),
    md("## First section\n\nText.", "b"),
    code("show(1)", [plot], "c"),
    md("## Recap\n\n- a\n\n## Exercises\n\n1. **One.** Do it.\n2. **Two.** Do that.", "d"),
    md("**Solution 1.** Like this:", "e"),
    code("console.log(1)", [{ output_type: "stream", name: "stdout", text: "1\n" }], "f"),
    md("That's it.\n\n**Solution 2.** And a plot:", "g"),
    code("show(2)", [plot], "h"),
  ]);
}

describe("notebook structure: pieces and solutions", () => {
  it("recognises solution markers", () => {
    assert.deepEqual(solutionMarker("**Solution 2.** The head"), { number: 2 });
    assert.deepEqual(solutionMarker("__Solution 3__: x"), { number: 3 });
    assert.deepEqual(solutionMarker("**Solution:** x"), { number: undefined });
    assert.deepEqual(solutionMarker("#### Solution 1"), { number: 1 });
    assert.equal(solutionMarker("### Solutions"), undefined);
    assert.equal(solutionMarker("**1.** The model"), undefined);
    assert.equal(solutionMarker("The **Solution 1.** in the middle"), undefined);
  });

  it("cuts markdown before headings of level 1–3 and solution markers, not inside code or math", () => {
    const src = "Intro\n\n## A\n\ntext\n```\n# not a heading\n```\n$$\n# TeX\n$$\n#### Deep\n\nx\n**Solution 1.** y\n\nz";
    assert.deepEqual(splitMarkdown(src), [
      { source: "Intro" },
      { source: "## A", heading: { level: 2, text: "A" }, marker: undefined },
      { source: "text\n```\n# not a heading\n```\n$$\n# TeX\n$$\n#### Deep\n\nx" },
      { source: "**Solution 1.** y\n\nz", marker: { number: 1 } },
    ]);
  });

  it("marks the pieces of each worked solution up to the next marker or heading", () => {
    const pieces = notebookPieces(chapterNotebook());
    assert.deepEqual(
      pieces.map((p) => [p.cell, p.type, p.source.slice(0, 16), p.solution?.label ?? ""]),
      [
        [0, "markdown", "# 09 · Example", ""],
        [0, "markdown", "Intro.\n\n**Learni", ""],
        [1, "markdown", "## First section", ""],
        [1, "markdown", "Text.", ""],
        [2, "code", "show(1)", ""],
        [3, "markdown", "## Recap", ""],
        [3, "markdown", "- a", ""],
        [3, "markdown", "## Exercises", ""],
        [3, "markdown", "1. **One.** Do i", ""],
        [4, "markdown", "**Solution 1.** ", "Solution 1"],
        [5, "code", "console.log(1)", "Solution 1"],
        [6, "markdown", "That's it.", "Solution 1"],
        [6, "markdown", "**Solution 2.** ", "Solution 2"],
        [7, "code", "show(2)", "Solution 2"],
      ],
    );
  });

  it("collapses everything under a 'Solutions' heading without markers into one block", () => {
    const pieces = notebookPieces(nb([md("## Exercises\n\n1. a\n2. b\n\n### Solutions"), code("x()"), code("y()"), md("## Next\n\nmore")]));
    assert.deepEqual(
      pieces.map((p) => p.solution?.label ?? ""),
      ["", "", "", "Solutions", "Solutions", "", ""],
    );
  });

  it("takes **N.** under a 'Solutions' heading for solution N", () => {
    const pieces = notebookPieces(nb([md("## Exercises\n\n**1.** a\n\n**2.** b\n\n### Solutions\n\n**1.** Like this:"), code("x()"), md("So.\n\n**2.** And:\n```\n**3.** not a marker\n```"), code("y()")]));
    assert.deepEqual(
      pieces.map((p) => [p.source.slice(0, 10), p.solution?.label ?? ""]),
      [
        ["## Exercis", ""],
        ["**1.** a\n\n", ""],
        ["### Soluti", ""],
        ["**1.** Lik", "Solution 1"],
        ["x()", "Solution 1"],
        ["So.", "Solution 1"],
        ["**2.** And", "Solution 2"],
        ["y()", "Solution 2"],
      ],
    );
    assert.deepEqual(chapterStructure(nb(pieces.length ? [md("# T\n\n**Learning objectives.** x\n\n## Recap\n\n- r\n\n## Exercises\n\n**1.** a\n\n**2.** b\n\n### Solutions\n\n**1.** A"), md("**2.** B")] : [])).problems, []);
  });

  it("counts exercises as a numbered list or as **N.** paragraphs", () => {
    assert.equal(countExercises("1. **A.** x\n   more\n2. y\n3. z"), 3);
    assert.equal(countExercises("**1.** x\n\n**2.** y"), 2);
    assert.equal(countExercises("Just text."), 0);
  });

  it("checks a chapter for objectives, recap and 2–3 exercises with solutions", () => {
    assert.deepEqual(chapterStructure(chapterNotebook()), { objectives: true, recap: true, exercises: 2, solutions: [1, 2], problems: [] });
    const bare = nb([md("# T\n\nIntro."), md("## Body\n\nx"), md("## Exercises\n\n1. a\n2. b\n3. c\n4. d"), md("**Solution 2.** y"), md("## Recap\n\n- z")]);
    assert.deepEqual(chapterStructure(bare).problems, [
      'no "Learning objectives" before the first ## section',
      '4 exercises under "Exercises"; expected 2 or 3 (a numbered list, or paragraphs starting **1.**)',
      "no worked solution for exercise 1, 3, 4 (a markdown line starting **Solution N.**)",
    ]);
    const late = nb([md("# T\n\n**Learning objectives.** x"), md("## Recap\n\n- r"), md("## More content\n\ny")]);
    assert.deepEqual(chapterStructure(late).problems, ['no "## Recap" section after the last content section', 'no "## Exercises" heading']);
  });
});

describe("course notebooks follow the chapter conventions", () => {
  const dir = path.join(__dirname, "..", "..", "..", "notebooks");
  const files = fs.readdirSync(dir).filter((f) => /^(\d|A\d).*\.ipynb$/.test(f)).sort(); // chapters and appendices
  it("there are notebooks to check", () => assert.ok(files.length > 0));
  for (const f of files) {
    it(`${f}: learning objectives at the top, a recap at the end, 2–3 exercises each with a worked solution`, () => {
      assert.deepEqual(chapterStructure(readNotebook(path.join(dir, f))).problems, []);
    });
    it(`${f}: every worked solution is folded in JupyterLab`, () => {
      assert.deepEqual(solutionCollapseProblems(readNotebook(path.join(dir, f))), []);
    });
    it(`${f}: shows at least one of the course's figures, each with alt text, each one that exists`, () => {
      const markdown = readNotebook(path.join(dir, f)).cells.filter((c) => c.cell_type === "markdown").map((c) => c.source).join("\n");
      const figures = [...markdown.matchAll(/!\[((?:[^[\]]|\[[^[\]]*\])*)\]\(\.\.\/images\/([^)\s]+)\)/g)]; // alt text may hold [B, T]
      assert.ok(figures.length > 0, "no ![…](../images/…) figure");
      for (const [, alt, file] of figures) {
        assert.ok(alt.trim().length >= 20, `${file}: the alt text should describe the figure`);
        assert.ok(fs.existsSync(path.join(dir, "..", "images", file)), `images/${file} does not exist`);
      }
    });
  }
});

describe("slides: splitting a chapter", () => {
  const h = (level: number, html: string): SlideUnit => ({ kind: "heading", level, html });
  const b = (html: string, height: number): SlideUnit => ({ kind: "block", html, height });

  it("starts a column at #/##, a slide at ###, and continues long sections on further slides", () => {
    const columns = splitSlides(
      [b("pre", 100), h(1, "Title"), b("intro", 200), h(2, "A"), b("a1", 300), b("a2", 300), b("a3", 50), h(3, "A.1"), b("x", 900), b("y", 10), h(2, "B")],
      600,
      80,
    );
    assert.deepEqual(columns, [
      [{ continued: false, blocks: ["pre"], notes: [] }],
      [{ title: "Title", level: 1, continued: false, blocks: ["intro"], notes: [] }],
      [
        { title: "A", level: 2, continued: false, blocks: ["a1"], notes: [] },
        { title: "A", level: 2, continued: true, blocks: ["a2", "a3"], notes: [] },
        { title: "A.1", level: 3, continued: false, blocks: ["x"], notes: [] },
        { title: "A.1", level: 3, continued: true, blocks: ["y"], notes: [] },
      ],
      [{ title: "B", level: 2, continued: false, blocks: [], notes: [] }],
    ]);
  });

  it("moves a lead-in paragraph on with the list it introduces", () => {
    const lead: SlideUnit = { kind: "block", html: "lead", height: 50, keepWithNext: true };
    assert.deepEqual(splitSlides([h(1, "T"), b("intro", 400), lead, b("list", 200)], 600, 80), [
      [
        { title: "T", level: 1, continued: false, blocks: ["intro"], notes: [] },
        { title: "T", level: 1, continued: true, blocks: ["lead", "list"], notes: [] },
      ],
    ]);
    assert.deepEqual(splitSlides([h(2, "A"), lead, b("list", 600)], 600, 80), [
      [
        { title: "A", level: 2, continued: false, blocks: ["lead"], notes: [] },
        { title: "A", level: 2, continued: true, blocks: ["list"], notes: [] },
      ],
    ]);
  });

  it("sends explanation to the speaker notes; a section's opening paragraph gives its slide a lead", () => {
    const n = (html: string, lead?: string): SlideUnit => (lead ? { kind: "notes", html, lead: { html: lead, height: 60 } } : { kind: "notes", html });
    assert.deepEqual(splitSlides([h(2, "A"), n("p1", "L1"), b("fig", 300), n("p2", "L2"), h(3, "B"), b("fig2", 300), n("p3", "L3"), h(3, "C"), n("code"), n("p4", "L4")], 600, 80), [
      [
        { title: "A", level: 2, continued: false, blocks: ["L1", "fig"], notes: ["p1", "p2"] },
        { title: "B", level: 3, continued: false, blocks: ["fig2"], notes: ["p3"] }, // a figure opened it: no lead
        { title: "C", level: 3, continued: false, blocks: ["L4"], notes: ["code", "p4"] }, // code notes do not use up the lead
      ],
    ]);
    // A continued slide gets no lead; notes follow the slide their text came with.
    assert.deepEqual(splitSlides([h(2, "A"), b("x", 500), b("y", 200), n("p", "L")], 600, 80), [
      [
        { title: "A", level: 2, continued: false, blocks: ["x"], notes: [] },
        { title: "A", level: 2, continued: true, blocks: ["y"], notes: ["p"] },
      ],
    ]);
  });

  it("takes a paragraph's first sentence for a lead, outside code and math, never too long or cutting a bold span", () => {
    assert.equal(firstSentence("Attention mixes positions. Then the MLP works alone."), "Attention mixes positions.");
    assert.equal(firstSentence("The whole path, from the text\nto the ids:"), "The whole path, from the text to the ids:");
    assert.equal(firstSentence("Use `a.b` and $x. y$ here, e.g. now. Next."), "Use `a.b` and $x. y$ here, e.g. now.");
    assert.equal(firstSentence("Version 3.5 works. Yes."), "Version 3.5 works.");
    assert.equal(firstSentence("**Pretraining** turns weights into a model. More."), "**Pretraining** turns weights into a model.");
    assert.equal(firstSentence("**A bold start. Still bold** here."), undefined);
    assert.equal(firstSentence("x".repeat(201) + "."), undefined);
  });

  it("shows figures, charts and tables; text outputs are for the notes", () => {
    assert.equal(isSlideVisual(plot as any), true);
    assert.equal(isSlideVisual({ output_type: "display_data", data: { "text/html": "<table></table>", "text/plain": "t" }, metadata: {} } as any), true);
    assert.equal(isSlideVisual({ output_type: "display_data", data: { "text/markdown": "**x**", "text/plain": "x" }, metadata: {} } as any), false);
    assert.equal(isSlideVisual({ output_type: "stream", name: "stdout", text: "x" } as any), false);
  });

  it("cuts a chapter into what a slide shows and what the speaker says", () => {
    const ch = chapterFromNotebook("09-example", nb([
      md(`## Sec\n\nFirst sentence here. ${"And a long explanation follows, ".repeat(6)}\n\n![A figure of it](images/x.svg)\n\n$$a = b$$\n\nTwo points:\n\n- point one\n- point two\n\n> A quote for the notes.`),
      code("show(1)", [plot, { output_type: "stream", name: "stdout", text: "log line\n" }]),
    ]));
    const units = chapterUnits(ch, { count: 0 }, { slugs: new Set() }, []);
    const kinds = units.map((u) => (u.kind === "heading" ? `h:${u.html}` : u.kind === "notes" ? `notes${u.lead ? "+lead" : ""}` : "block"));
    assert.deepEqual(kinds, ["h:Sec", "notes+lead", "block", "block", "block", "block", "notes", "notes", "block", "notes"]);
    assert.deepEqual(units[4], { kind: "block", html: "<p>Two points:</p>\n", height: 60, keepWithNext: true }, "a short lead-in stays with its list");
    const lead = units[1].kind === "notes" ? units[1].lead?.html : undefined;
    assert.equal(lead, '<p class="lead">First sentence here.</p>');
    assert.match((units[6] as { html: string }).html, /<blockquote>/, "a quote is told");
    const plain = (u: SlideUnit) => (u as { html: string }).html.replace(/<[^>]*>/g, "");
    assert.match(plain(units[7]), /show\(1\)/, "the code goes to the notes");
    assert.match((units[8] as { html: string }).html, /plotly-figure/, "its chart to the slide");
    assert.match((units[9] as { html: string }).html, /log line/, "its text output to the notes");
  });

  it("cuts a list too long for a slide into one list per item, keeping the numbering", () => {
    assert.deepEqual(listItemUnits(renderMarkdownBlocks("3. a **b**\n4. c\n   - d\n")[0].tokens), [
      { kind: "block", html: '<ol class="list-part" start="3">\n<li>a <strong>b</strong></li>\n</ol>\n', height: 50 },
      { kind: "block", html: '<ol class="list-part" start="4">\n<li>c\n<ul>\n<li>d</li>\n</ul>\n</li>\n</ol>\n', height: 96 },
    ]);
    assert.deepEqual(listItemUnits(renderMarkdownBlocks("- x\n- y")[0].tokens)?.map((u) => u.kind === "block" && u.html), [
      '<ul class="list-part">\n<li>x</li>\n</ul>\n',
      '<ul class="list-part">\n<li>y</li>\n</ul>\n',
    ]);
    assert.equal(listItemUnits(renderMarkdownBlocks("A paragraph.")[0].tokens), undefined);
  });

  it("turns a cell's <section> into a <div> (reveal would take it for a slide) and relocates URLs one folder down", () => {
    assert.equal(cellAsDiv('<section class="cell code-cell"><div>x</div></section>'), '<div class="cell code-cell"><div>x</div></div>');
    assert.equal(
      relocateUrls('<img src="images/a.svg"><a href="01-b.html#x">b</a><a href="#top">t</a><a href="https://x.org/">x</a><img src="data:image/png;base64,AA">'),
      '<img src="../images/a.svg"><a href="../01-b.html#x">b</a><a href="#top">t</a><a href="https://x.org/">x</a><img src="data:image/png;base64,AA">',
    );
  });

  it("renders a deck: one section per slide, a body to fit, speaker notes, solutions collapsed, plots as data for figures.js", () => {
    const ch = chapterFromNotebook("09-example", chapterNotebook());
    const deck = renderSlideDeck(ch, { courseTitle: "C", intro: "" });
    assert.equal((deck.html.match(/<div class="slide-body">/g) ?? []).length, 4);
    const notes = deck.html.match(/<aside class="notes">[\s\S]*?<\/aside>/g) ?? [];
    assert.match(notes[1]?.replace(/<[^>]*>/g, "") ?? "", /^\s*Text\.\s+\[1\]show\(1\)/, "the first section's prose and code are the speaker's");
    assert.match(deck.html, /<p class="lead">Text\.<\/p>/);
    assert.equal(deck.slides, 4);
    assert.equal(deck.figures, 2);
    const sections = deck.html.match(/<section class="[^"]*"/g);
    assert.deepEqual(sections, ['<section class="slide title-slide"', '<section class="slide"', '<section class="slide"', '<section class="slide"']);
    assert.deepEqual(deck.html.match(/<h[12] class="slide-title">[^<]*/g), ['<h1 class="slide-title">09 · Example', '<h2 class="slide-title">First section', '<h2 class="slide-title">Recap', '<h2 class="slide-title">Exercises']);
    assert.deepEqual(deck.html.match(/<summary>[^<]*<\/summary>/g), ["<summary>Solution 1</summary>", "<summary>Solution 2</summary>"]);
    assert.ok(!/<details[^>]* open/.test(deck.html), "solutions start collapsed");
    assert.match(deck.html, /<script src="\.\.\/assets\/reveal\/reveal\.js"><\/script>/);
    assert.match(deck.html, /<a href="\.\.\/09-example\.html">Read as a page<\/a>/);
    assert.match(deck.html, /<h2 class="slide-title">Exercises<\/h2>/);
  });
});

describe("solutions folded in JupyterLab", () => {
  const folded = (n: number, id: string): Cell => ({ ...md(`#### Solution ${n}`, id), metadata: { ...COLLAPSED_HEADING } });
  it("accepts solutions that start with a collapsed heading cell of their own", () => {
    const ok = nb([md("## Exercises\n\n1. a\n2. b\n\n### Solutions"), folded(1, "s1"), code("x()"), folded(2, "s2"), md("Because.")]);
    assert.deepEqual(solutionCollapseProblems(ok), []);
    assert.deepEqual(chapterStructure(ok).solutions, [1, 2]);
  });
  it("names each solution that JupyterLab would show open", () => {
    const bad = nb([
      md("## Exercises\n\n1. a\n2. b\n3. c"),
      md("**Solution 1.** inline marker"),
      md("#### Solution 2"), // a heading of its own, but not collapsed
      { ...md("#### Solution 3\n\nand the text in the same cell"), metadata: { ...COLLAPSED_HEADING } },
    ]);
    const want = (cell: number, n: number) =>
      `cell ${cell}: Solution ${n} is not folded in JupyterLab; expected a markdown cell of its own, "#### Solution ${n}", with metadata {"jp-MarkdownHeadingCollapsed":true,"heading_collapsed":true}`;
    assert.deepEqual(solutionCollapseProblems(bad), [want(2, 1), want(3, 2), want(4, 3)]);
  });
  it("renders a folded solution's heading once, as the summary of its collapsed block", () => {
    const ch = chapterFromNotebook("09-example", nb([md("# T\n\n## Exercises\n\n1. a"), folded(1, "s1"), md("Like this.", "t")]));
    const page = renderNotebookPage(ch, { index: 0, total: 1 }).html;
    assert.match(page, /<details class="solution"><summary>Solution 1<\/summary>\n<div class="solution-body">\n<section[^>]*>[\s\S]*Like this\.[\s\S]*<\/details>/);
    assert.equal(page.match(/Solution 1/g)?.length, 1, "no <h4>Solution 1</h4> inside the block");
  });
});

describe("site: solutions and presenter links", () => {
  it("wraps each worked solution, its code and outputs, in a collapsed <details>", () => {
    const ch = chapterFromNotebook("09-example", chapterNotebook());
    const page = renderNotebookPage(ch, { index: 0, total: 1 }).html;
    const details = page.match(/<details class="solution">[\s\S]*?<\/details>/g) ?? [];
    assert.equal(details.length, 2);
    assert.match(details[0], /^<details class="solution"><summary>Solution 1<\/summary>[\s\S]*<strong>Solution 1\.<\/strong> Like this:[\s\S]*console[\s\S]*<pre class="output stream stdout">1<\/pre>[\s\S]*That's it\./);
    assert.match(details[1], /<summary>Solution 2<\/summary>[\s\S]*id="figure-2"/);
    assert.ok(!details[1].includes("That's it"), "text before a marker stays with the solution before");
    assert.match(page, /<a class="present-link" href="slides\/09-example\.html"/);
    assert.match(renderIndexPage([ch]), /<a class="present-link" href="slides\/09-example\.html"/);
  });

  it("builds slides/<name>.html with reveal's files, and only those with slides: 'only'", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "slides-"));
    try {
      const file = path.join(dir, "09-example.ipynb");
      fs.writeFileSync(file, JSON.stringify(chapterNotebook()));
      const res = buildSite({ notebooks: [file], outDir: path.join(dir, "site"), imagesDir: path.join(dir, "none") });
      assert.deepEqual(res.decks, ["slides/09-example.html"]);
      assert.deepEqual(listDecks(path.join(dir, "site")), ["slides/09-example.html"]);
      for (const f of ["reveal/reveal.js", "reveal/reveal.css", "reveal/white.css", "reveal/notes.js", "slides.css", "slides.js", "figures.js"]) {
        assert.ok(fs.existsSync(path.join(dir, "site", "assets", f)), f);
      }
      const only = buildSite({ notebooks: [file], outDir: path.join(dir, "only"), imagesDir: path.join(dir, "none"), slides: "only" });
      assert.deepEqual([only.pages, only.decks], [[], ["slides/09-example.html"]]);
      assert.ok(!fs.existsSync(path.join(dir, "only", "index.html")));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
