import { strict as assert } from "node:assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { Notebook } from "../../../lib/tools/course/notebook";
import { chapterFromNotebook, cleanTerminalText, firstHeadingAndParagraph, renderMarkdown, rewriteUrl } from "../../../lib/tools/course/render";
import { buildSite, renderIndexPage, renderNotebookPage } from "../../../lib/tools/course/site";

// A 1×1 PNG.
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

const FIGURE = {
  data: [{ type: "scatter", x: [1, 2, 3], y: [2, 1, 3], name: "loss</script>" }],
  layout: { title: { text: "Training loss" } },
};

/** An executed notebook as the runner writes it, with every kind of output the site handles. */
function executedNotebook(): Notebook {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: [
      {
        cell_type: "markdown",
        id: "intro",
        metadata: {},
        source: "# Attention, *from scratch*\n\nWe compute $\\mathrm{softmax}(QK^T/\\sqrt{d})V$ by hand.\n\n$$\nL = -\\sum_i \\log p_i\n$$\n\n![diagram](../images/attention.svg)",
      },
      {
        cell_type: "code",
        id: "code1",
        metadata: {},
        execution_count: 3,
        source: "const greeting: string = \"<b>hi</b>\";\nconsole.log(greeting);",
        outputs: [
          { output_type: "stream", name: "stdout", text: "<b>hi</b>\n" },
          { output_type: "stream", name: "stdout", text: "step 1\rstep 2\n" },
          { output_type: "stream", name: "stderr", text: "\x1b[31mwarning: slow\x1b[0m\n" },
          {
            output_type: "display_data",
            data: { "application/javascript": "/* plotly.js */", "text/html": "<script>/* PLOTLY-LOADER */</script>" },
            metadata: { llm_course: { role: "plotly-loader" } },
          },
          {
            output_type: "display_data",
            data: { "application/vnd.plotly.v1+json": FIGURE, "text/html": "<div>FALLBACK-HTML</div>", "text/plain": "Figure" },
            metadata: {},
          },
          { output_type: "display_data", data: { "text/html": "<table><tr><td>HTML-OUTPUT</td></tr></table>", "text/plain": "table" }, metadata: {} },
          { output_type: "display_data", data: { "image/png": PNG, "text/plain": "<image>" }, metadata: {} },
          { output_type: "execute_result", execution_count: 3, data: { "text/plain": "a < b" }, metadata: {} },
        ],
      },
    ],
  };
}

function markdownOnly(title: string, summary: string): Notebook {
  return { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ cell_type: "markdown", id: "m", metadata: {}, source: `# ${title}\n\n${summary}` }] };
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "site-test-"));
}

describe("site: markdown", () => {
  it("renders inline and display math with KaTeX at build time", () => {
    const html = renderMarkdown("Energy $E = mc^2$ and\n\n$$\n\\frac{a}{b}\n$$\n");
    assert.match(html, /<span class="katex">/);
    assert.match(html, /class="katex-display"/);
    assert.match(html, /<div class="math-block">/);
    assert.doesNotMatch(html, /\$E = mc\^2\$/);
  });

  it("leaves prices and escaped dollars alone", () => {
    const html = renderMarkdown("It costs $5 and $10, or \\$3.");
    assert.doesNotMatch(html, /katex/);
    assert.match(html, /\$5 and \$10, or \$3\./);
  });

  it("rewrites notebook-relative images and notebook links for the site", () => {
    const html = renderMarkdown('![x](../images/a.svg) [next](02-gpt.ipynb#loss) <img src="../images/b.png" width="200"> [ext](https://example.org/a.ipynb)');
    assert.match(html, /src="images\/a\.svg"/);
    assert.match(html, /href="02-gpt\.html#loss"/);
    assert.match(html, /src="images\/b\.png"/);
    assert.match(html, /href="https:\/\/example\.org\/a\.ipynb"/);
  });

  it("rewriteUrl keeps anchors, absolute and unknown relative URLs", () => {
    assert.equal(rewriteUrl("#top"), "#top");
    assert.equal(rewriteUrl("data:image/png;base64,xx"), "data:image/png;base64,xx");
    assert.equal(rewriteUrl("../images/sub/x.png?v=1"), "images/sub/x.png?v=1");
    assert.equal(rewriteUrl("./03-attention.ipynb"), "03-attention.html");
    assert.equal(rewriteUrl("../lib/gpt.ts"), "../lib/gpt.ts");
  });

  it("names the notebook and cell when a formula is invalid", () => {
    const nb = markdownOnly("T", "Fine $x$.");
    const ch = chapterFromNotebook("09-bad", { ...nb, cells: [nb.cells[0], { cell_type: "markdown", id: "b", metadata: {}, source: "$\\frac{1}$" }] }, "build/notebooks/09-bad.ipynb");
    assert.throws(() => renderNotebookPage(ch, { index: 0, total: 1 }), /^Error: build\/notebooks\/09-bad\.ipynb: cell 2: KaTeX parse error: .* in \$\\frac\{1\}\$$/);
    assert.throws(() => chapterFromNotebook("09-bad", markdownOnly("T", "Bad $\\frac{1}$"), "b.ipynb"), /^Error: b\.ipynb: title or first paragraph: KaTeX parse error/);
  });
});

describe("site: terminal text", () => {
  it("strips ANSI colours and applies carriage returns like a terminal", () => {
    assert.equal(cleanTerminalText("\x1b[1;32mok\x1b[0m\n"), "ok\n");
    assert.equal(cleanTerminalText("progress 10%\rprogress 100%\n"), "progress 100%\n");
    assert.equal(cleanTerminalText("abcdef\rXY"), "XYcdef");
    assert.equal(cleanTerminalText("\x1b[2K\x1b[1Gdone"), "done");
  });
});

describe("site: notebook page", () => {
  const ch = chapterFromNotebook("03-attention", executedNotebook());
  const prev = chapterFromNotebook("02-embeddings", markdownOnly("Embeddings", "Vectors."));
  const next = chapterFromNotebook("04-gpt", markdownOnly("GPT", "Blocks."));
  const page = renderNotebookPage(ch, { prev, next, index: 1, total: 3 });
  const html = page.html;

  it("takes the title from the first heading and the summary from the first paragraph", () => {
    assert.equal(ch.title, "Attention, from scratch");
    assert.match(ch.titleHtml, /Attention, <em>from scratch<\/em>/);
    assert.match(ch.summaryHtml, /^We compute <span class="katex">/);
    assert.match(html, /<title>Attention, from scratch — /);
  });

  it("renders markdown with math and rewritten image links", () => {
    assert.match(html, /<h1 id="attention-from-scratch">/);
    assert.match(html, /class="katex-display"/);
    assert.match(html, /src="images\/attention\.svg"/);
  });

  it("highlights code as TypeScript and shows the execution count", () => {
    assert.match(html, /<span class="hljs-keyword">const<\/span>/);
    assert.match(html, /<div class="prompt"[^>]*>\[3\]<\/div>/);
    assert.match(html, /<span class="hljs-string">&quot;&lt;b&gt;hi&lt;\/b&gt;&quot;<\/span>/);
  });

  it("escapes stream text, merges consecutive writes and styles stderr apart", () => {
    assert.match(html, /<pre class="output stream stdout">&lt;b&gt;hi&lt;\/b&gt;\nstep 2<\/pre>/);
    assert.match(html, /<pre class="output stream stderr">warning: slow<\/pre>/);
    assert.doesNotMatch(html, /\x1b/);
    assert.match(html, /<pre class="output output-text">a &lt; b<\/pre>/);
  });

  it("draws plotly figures from the JSON, not the HTML fallback, and drops the loader", () => {
    assert.equal(page.figures, 1);
    assert.match(html, /<div class="output plotly-figure" id="figure-1"><\/div>/);
    const m = /<script type="application\/json" class="plotly-data" data-target="figure-1">(.*?)<\/script>/.exec(html);
    assert.ok(m, "figure JSON script");
    assert.deepEqual(JSON.parse(m[1]).data, FIGURE.data);
    assert.doesNotMatch(m[1], /<\/script>/, "a </script> inside the JSON is escaped");
    assert.doesNotMatch(html, /FALLBACK-HTML/);
    assert.doesNotMatch(html, /PLOTLY-LOADER/);
    assert.match(html, /<script src="assets\/plotly\.min\.js"><\/script>/);
  });

  it("keeps html outputs as they are and embeds images", () => {
    assert.match(html, /<table><tr><td>HTML-OUTPUT<\/td><\/tr><\/table>/);
    assert.match(html, new RegExp(`<img alt="figure" src="data:image/png;base64,${PNG.replace(/[+/]/g, "\\$&")}">`));
  });

  it("links to the previous, next and contents pages", () => {
    assert.match(html, /<a class="nav-prev" rel="prev" href="02-embeddings\.html">/);
    assert.match(html, /<a class="nav-next" rel="next" href="04-gpt\.html">/);
    assert.match(html, /<a class="nav-index" href="index\.html">Contents<\/a>/);
    assert.match(html, /Chapter 2 of 3/);
  });

  it("does not load plotly.js on pages without figures", () => {
    const plain = renderNotebookPage(prev, { next: ch, index: 0, total: 3 });
    assert.equal(plain.figures, 0);
    assert.doesNotMatch(plain.html, /plotly\.min\.js/);
    assert.match(plain.html, /<span class="nav-prev nav-empty"><\/span>/);
  });

  it("rejects an output of unknown type, naming notebook, cell and output", () => {
    const nb = executedNotebook();
    (nb.cells[1] as any).outputs = [{ output_type: "widget", data: {} }];
    const bad = chapterFromNotebook("05-bad", nb, "x/05-bad.ipynb");
    assert.throws(() => renderNotebookPage(bad, { index: 0, total: 1 }), /^Error: x\/05-bad\.ipynb: cell 2, output 1: unknown output_type "widget"/);
  });

  it("skips, with a warning, a display output with no MIME type it can show", () => {
    const nb = executedNotebook();
    (nb.cells[1] as any).outputs = [{ output_type: "display_data", data: { "application/x-custom": "?" }, metadata: {} }];
    const p = renderNotebookPage(chapterFromNotebook("06-odd", nb), { index: 0, total: 1 });
    assert.deepEqual(p.warnings, ["06-odd.ipynb: cell 2, output 1: no renderable MIME type among application/x-custom; skipped"]);
  });

  it("skips banner-only paragraphs when looking for the summary", () => {
    const first = firstHeadingAndParagraph(["![banner](../images/b.png)\n\n# Course *title*", "Intro with `code`.\n\nMore."]);
    assert.deepEqual(first, { title: "Course title", titleSource: "Course *title*", paragraphSource: "Intro with `code`." });
  });

  it("falls back to the file name when a notebook has no heading", () => {
    const nb: Notebook = { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] };
    const c = chapterFromNotebook("07-empty", nb);
    assert.equal(c.title, "07-empty");
    assert.equal(c.summaryHtml, "");
  });
});

describe("site: index and build", () => {
  it("lists the chapters in the given order with titles and summaries", () => {
    const a = chapterFromNotebook("00-intro", markdownOnly("What is an LLM?", "A *next-token* predictor."));
    const b = chapterFromNotebook("01-tokens", markdownOnly("Tokens", "Text to integers."));
    const html = renderIndexPage([a, b], { courseTitle: "My course", intro: "Hello **class**." });
    assert.match(html, /<h1>My course<\/h1>/);
    assert.match(html, /<strong>class<\/strong>/);
    const first = html.indexOf('href="00-intro.html"');
    const second = html.indexOf('href="01-tokens.html"');
    assert.ok(first > 0 && second > first, "chapters in order");
    assert.match(html, /What is an LLM\?<\/span><\/a><p class="chapter-summary">A <em>next-token<\/em> predictor\.<\/p>/);
  });

  it("shows the chapter number once when the title already starts with it", () => {
    const a = chapterFromNotebook("00-intro", markdownOnly("00 · What is an LLM?", "Text."));
    const html = renderIndexPage([a]);
    assert.match(html, /<a href="00-intro\.html"><span class="chapter-title">00 · What is an LLM\?<\/span><\/a>/);
    const next = renderNotebookPage(chapterFromNotebook("01-b", markdownOnly("B", "b")), { prev: a, index: 1, total: 2 }).html;
    assert.match(next, /<a class="nav-prev" rel="prev" href="00-intro\.html">← 00 · What is an LLM\?<\/a>/);
  });

  it("writes pages, index, assets and images into the output folder", () => {
    const dir = tmpDir();
    try {
      const nbDir = path.join(dir, "nb");
      fs.mkdirSync(nbDir);
      fs.writeFileSync(path.join(nbDir, "01-b.ipynb"), JSON.stringify(markdownOnly("Second", "Two.")));
      fs.writeFileSync(path.join(nbDir, "00-a.ipynb"), JSON.stringify(executedNotebook()));
      const images = path.join(dir, "images");
      fs.mkdirSync(path.join(images, "sub"), { recursive: true });
      fs.writeFileSync(path.join(images, "sub", "x.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
      fs.writeFileSync(path.join(images, "make-figures.mjs"), "// the figures' generator: not a page asset");
      const out = path.join(dir, "site");
      const res = buildSite({ notebooks: [path.join(nbDir, "00-a.ipynb"), path.join(nbDir, "01-b.ipynb")], outDir: out, imagesDir: images });
      assert.deepEqual(res.pages, ["index.html", "00-a.html", "01-b.html"]);
      assert.equal(res.figures, 1);
      for (const f of ["index.html", "00-a.html", "01-b.html", "assets/site.css", "assets/figures.js", "assets/hljs.css", "assets/katex/katex.min.css", "assets/plotly.min.js", "images/sub/x.svg"]) {
        assert.ok(fs.existsSync(path.join(out, f)), f);
      }
      assert.ok(!fs.existsSync(path.join(out, "images/make-figures.mjs")), "only pictures are copied from images/");
      assert.ok(fs.readdirSync(path.join(out, "assets/katex/fonts")).some((f) => f.endsWith(".woff2")), "KaTeX fonts copied");
      // Every url(...) in the KaTeX CSS must point at a copied font.
      const css = fs.readFileSync(path.join(out, "assets/katex/katex.min.css"), "utf8");
      for (const m of css.matchAll(/url\(([^)]+)\)/g)) assert.ok(fs.existsSync(path.join(out, "assets/katex", m[1].replace(/["']/g, ""))), m[1]);
      assert.match(fs.readFileSync(path.join(out, "01-b.html"), "utf8"), /href="00-a\.html"/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails with the file name on a notebook file with an unknown output type", () => {
    const dir = tmpDir();
    try {
      const nb = executedNotebook();
      (nb.cells[1] as any).outputs = [{ output_type: "mystery" }];
      const file = path.join(dir, "02-broken.ipynb");
      fs.writeFileSync(file, JSON.stringify(nb));
      assert.throws(() => buildSite({ notebooks: [file], outDir: path.join(dir, "site") }), (err: Error) => {
        assert.ok(err.message.startsWith(file + ": "), err.message);
        assert.match(err.message, /output_type/);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
