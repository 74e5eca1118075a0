import { strict as assert } from "node:assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { decodeMessage, encodeMessage, JupyterMessage, newMessage } from "../../../lib/tools/course/kernel";
import { clearOutputs, CodeCell, Notebook, Output, parseNotebook, readNotebook, serializeNotebook, splitLines } from "../../../lib/tools/course/notebook";
import {
  applyIopubMessage,
  cliOutputPath,
  DisplayMap,
  errorSummary,
  executeNotebook,
  failedPath,
  kernelEnv,
  NotebookRunError,
  parseCli,
  sourceSnippet,
} from "../../../lib/tools/course/runNotebooks";
import { repoRoot } from "../../../lib/core/paths";

// ---------------------------------------------------------------------------------------
// Fixtures

type FixtureCell = string | { markdown: string };

function makeNotebook(cells: FixtureCell[], kernelName = "tslab"): Record<string, unknown> {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: kernelName, display_name: "TypeScript", language: "typescript" } },
    cells: cells.map((c, i) =>
      typeof c === "string"
        ? // Stale outputs, to check that they are cleared before running.
          { id: `cell-${i}`, cell_type: "code", metadata: {}, source: c, execution_count: 42, outputs: [{ output_type: "stream", name: "stdout", text: "STALE\n" }] }
        : { id: `cell-${i}`, cell_type: "markdown", metadata: {}, source: c.markdown },
    ),
  };
}

function writeJson(file: string, value: unknown): string {
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
}

function codeCell(nb: Notebook, index: number): CodeCell {
  const cell = nb.cells[index];
  assert.equal(cell.cell_type, "code", `cell ${index} should be a code cell`);
  return cell as CodeCell;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function rejection(p: Promise<unknown>): Promise<NotebookRunError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof NotebookRunError, `expected a NotebookRunError, got ${err}`);
    return err;
  }
  assert.fail("expected the run to fail");
}

const msg = (type: string, content: unknown): JupyterMessage => ({ ...newMessage(type, content, "s"), content });

// ---------------------------------------------------------------------------------------
// Pure parts: no kernel

describe("notebook format", () => {
  it("joins multi-line strings on read and splits them like Jupyter on write", () => {
    const text = JSON.stringify({
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: "tslab", display_name: "TypeScript" } },
      cells: [
        {
          id: "a",
          cell_type: "code",
          metadata: {},
          source: ["let x = 1;\n", "x"],
          execution_count: 3,
          outputs: [
            { output_type: "stream", name: "stdout", text: ["1\n", "2\n"] },
            { output_type: "display_data", metadata: {}, data: { "text/html": ["<b>\n", "x</b>"], "application/vnd.plotly.v1+json": { data: [] }, "image/png": "AAAA" } },
          ],
        },
      ],
    });
    const nb = parseNotebook(text, "t.ipynb");
    const cell = codeCell(nb, 0);
    assert.equal(cell.source, "let x = 1;\nx");
    assert.deepEqual(cell.outputs[0], { output_type: "stream", name: "stdout", text: "1\n2\n" });
    assert.deepEqual((cell.outputs[1] as { data: unknown }).data, {
      "text/html": "<b>\nx</b>",
      "application/vnd.plotly.v1+json": { data: [] },
      "image/png": "AAAA",
    });
    const written = serializeNotebook(nb);
    assert.ok(written.endsWith("}\n"), "trailing newline");
    assert.ok(written.startsWith('{\n "cells": [\n  {\n   "cell_type": "code",'), "1-space indent, sorted keys");
    const back = JSON.parse(written);
    assert.deepEqual(back.cells[0].source, ["let x = 1;\n", "x"]);
    assert.deepEqual(back.cells[0].outputs[0].text, ["1\n", "2\n"]);
    assert.deepEqual(back.cells[0].outputs[1].data["text/html"], ["<b>\n", "x</b>"]);
    assert.equal(back.cells[0].outputs[1].data["image/png"], "AAAA", "base64 stays one string");
    assert.deepEqual(Object.keys(back), ["cells", "metadata", "nbformat", "nbformat_minor"]);
    // Round trip: reading what we wrote gives the same notebook.
    assert.deepEqual(parseNotebook(written, "t.ipynb"), nb);
  });

  it("splitLines keeps the newlines and drops nothing", () => {
    assert.deepEqual(splitLines(""), []);
    assert.deepEqual(splitLines("a"), ["a"]);
    assert.deepEqual(splitLines("a\n"), ["a\n"]);
    assert.deepEqual(splitLines("a\n\nb"), ["a\n", "\n", "b"]);
  });

  it("adds missing cell ids (unique, valid) and upgrades nbformat_minor to 5", () => {
    const nb = parseNotebook(
      JSON.stringify({ nbformat: 4, nbformat_minor: 2, metadata: {}, cells: [{ cell_type: "markdown", source: "x", metadata: {} }, { cell_type: "raw", source: "y", metadata: {} }] }),
      "old.ipynb",
    );
    assert.equal(nb.nbformat_minor, 5);
    const [a, b] = nb.cells.map((c) => c.id);
    assert.match(a, /^[a-zA-Z0-9_-]{1,64}$/);
    assert.notEqual(a, b);
  });

  it("rejects bad notebooks with one line naming the file and field", () => {
    const bad = (nb: unknown, re: RegExp) => {
      assert.throws(
        () => parseNotebook(typeof nb === "string" ? nb : JSON.stringify(nb), "x.ipynb"),
        (err: Error) => re.test(err.message) && !err.message.includes("\n"),
      );
    };
    bad("{ nope", /^x\.ipynb: invalid JSON: /);
    bad([], /^x\.ipynb: the notebook is an array; expected a JSON object$/);
    bad({ nbformat: 3, nbformat_minor: 0, worksheets: [] }, /^x\.ipynb: nbformat is 3; expected 4/);
    bad({ nbformat: 4, nbformat_minor: 5, metadata: {} }, /^x\.ipynb: cells is missing; expected a list of cells$/);
    bad({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ cell_type: "python", source: "" }] }, /^x\.ipynb: cells\[0\]\.cell_type is "python"/);
    bad({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ id: "a b", cell_type: "code", source: "" }] }, /^x\.ipynb: cells\[0\]\.id is "a b"/);
    bad(
      { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ id: "a", cell_type: "raw", source: "" }, { id: "a", cell_type: "raw", source: "" }] },
      /^x\.ipynb: cells\[1\]\.id "a" is used by an earlier cell/,
    );
    bad({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ cell_type: "code", source: 7 }] }, /^x\.ipynb: cells\[0\]\.source is 7; expected a string or a list of strings$/);
    bad(
      { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ cell_type: "code", source: "", outputs: [{ output_type: "bogus" }] }] },
      /^x\.ipynb: cells\[0\]\.outputs\[0\]\.output_type is "bogus"/,
    );
  });

  it("readNotebook names a missing file", () => {
    assert.throws(() => readNotebook("/nonexistent/dir/x.ipynb"), /^Error: \/nonexistent\/dir\/x\.ipynb: no such file$/);
  });

  it("clearOutputs empties code cells in place and returns the notebook", () => {
    const nb = parseNotebook(JSON.stringify(makeNotebook(["1", { markdown: "m" }])), "x.ipynb");
    assert.equal(codeCell(nb, 0).outputs.length, 1);
    codeCell(nb, 0).metadata = { execution: { "shell.execute_reply": "2026-12-03T00:00:00.000Z" }, tags: ["keep"] };
    assert.equal(clearOutputs(nb), nb);
    assert.deepEqual(codeCell(nb, 0).outputs, []);
    assert.equal(codeCell(nb, 0).execution_count, null);
    assert.deepEqual(codeCell(nb, 0).metadata, { tags: ["keep"] }, "a run's timing goes with its outputs; other metadata stays");
    assert.equal(nb.cells[1].source, "m");
  });
});

describe("Jupyter wire format", () => {
  it("signs and verifies messages; a bad signature is refused", () => {
    const m = newMessage("execute_request", { code: "1+1" }, "session-1");
    const frames = encodeMessage(m, "secret").map((f) => Buffer.from(f));
    // A PUB topic / ROUTER identity before the delimiter is skipped.
    const back = decodeMessage([Buffer.from("topic"), ...frames], "secret");
    assert.deepEqual(back, m);
    assert.equal(back.header.version, "5.3");
    assert.throws(() => decodeMessage(frames, "other key"), /invalid HMAC/);
    assert.throws(() => decodeMessage(frames.slice(1), "secret"), /delimiter/);
  });
});

describe("iopub messages → outputs", () => {
  it("merges consecutive chunks of the same stream only", () => {
    const outputs: Output[] = [];
    const displays: DisplayMap = new Map();
    assert.equal(applyIopubMessage(outputs, msg("stream", { name: "stdout", text: "a" }), displays), "a");
    applyIopubMessage(outputs, msg("stream", { name: "stdout", text: "b\n" }), displays);
    applyIopubMessage(outputs, msg("stream", { name: "stderr", text: "e\n" }), displays);
    applyIopubMessage(outputs, msg("stream", { name: "stdout", text: "c\n" }), displays);
    applyIopubMessage(outputs, msg("status", { execution_state: "idle" }), displays);
    assert.deepEqual(outputs, [
      { output_type: "stream", name: "stdout", text: "ab\n" },
      { output_type: "stream", name: "stderr", text: "e\n" },
      { output_type: "stream", name: "stdout", text: "c\n" },
    ]);
  });

  it("keeps every MIME type and updates displays in place, across cells", () => {
    const displays: DisplayMap = new Map();
    const cell1: Output[] = [];
    const cell2: Output[] = [];
    applyIopubMessage(cell1, msg("display_data", { data: { "text/html": "<b>1</b>", "text/plain": "1" }, metadata: { isolated: true }, transient: { display_id: "d" } }), displays);
    applyIopubMessage(cell1, msg("display_data", { data: { "text/plain": "other" }, metadata: {}, transient: {} }), displays);
    applyIopubMessage(cell2, msg("display_data", { data: { "text/plain": "again" }, metadata: {}, transient: { display_id: "d" } }), displays);
    applyIopubMessage(cell2, msg("update_display_data", { data: { "text/plain": "2" }, metadata: { m: 1 }, transient: { display_id: "d" } }), displays);
    applyIopubMessage(cell2, msg("update_display_data", { data: { "text/plain": "ignored" }, metadata: {}, transient: { display_id: "unknown" } }), displays);
    assert.deepEqual(cell1, [
      { output_type: "display_data", data: { "text/plain": "2" }, metadata: { m: 1 } },
      { output_type: "display_data", data: { "text/plain": "other" }, metadata: {} },
    ]);
    assert.deepEqual(cell2, [{ output_type: "display_data", data: { "text/plain": "2" }, metadata: { m: 1 } }]);
    assert.ok(!("transient" in cell1[0]), "transient is not stored in the notebook");
  });

  it("records execute_result with its count", () => {
    const outputs: Output[] = [];
    applyIopubMessage(outputs, msg("execute_result", { execution_count: 4, data: { "text/plain": "3" }, metadata: {} }), new Map());
    assert.deepEqual(outputs, [{ output_type: "execute_result", execution_count: 4, data: { "text/plain": "3" }, metadata: {} }]);
  });
});

describe("runner helpers", () => {
  it("errorSummary picks the line that names the error", () => {
    assert.equal(errorSummary(["1:7 - Type 'string' is not assignable to type 'number'.\n", "2:1 - other\n"]), "1:7 - Type 'string' is not assignable to type 'number'.");
    const runtime = 'evalmachine.<anonymous>:2\nthrow new Error("boom");\n^\n\nError: boom\n    at evalmachine.<anonymous>:2:7\n';
    assert.equal(errorSummary(["=====\nHi, looks like you are running TensorFlow.js in Node.js\n", runtime]), "Error: boom");
    assert.equal(errorSummary(["TypeError: x is not a function\n    at foo\n"]), "TypeError: x is not a function");
    assert.equal(errorSummary(["plain string\n"]), "plain string");
    assert.match(errorSummary([]), /no error text/);
  });

  it("sourceSnippet flattens and shortens", () => {
    assert.equal(sourceSnippet("const a = 1;\n\n  a + 1"), "const a = 1; a + 1");
    const long = sourceSnippet("x".repeat(200));
    assert.equal(long.length, 80);
    assert.ok(long.endsWith("…"));
  });

  it("failedPath and cliOutputPath", () => {
    assert.equal(failedPath("/o/03-attention.ipynb"), "/o/03-attention.failed.ipynb");
    const base = { cellTimeoutMs: 1, notebookTimeoutMs: 1, notebooks: [] };
    assert.equal(cliOutputPath({ ...base, smoke: true }, "nb/a.ipynb"), undefined);
    assert.equal(cliOutputPath({ ...base, smoke: false }, "nb/a.ipynb"), undefined, "never in place: committed notebooks stay output-free");
    assert.equal(cliOutputPath({ ...base, smoke: true, outDir: "out" }, "nb/a.ipynb"), path.join("out", "a.ipynb"));
  });

  it("kernelEnv: smoke sets COURSE_SMOKE and a separate artifacts folder; full mode removes COURSE_SMOKE", () => {
    const smoke = kernelEnv({ smoke: true, env: { EXTRA: "1" } }, { PATH: "/bin" });
    assert.equal(smoke.COURSE_SMOKE, "1");
    assert.equal(smoke.COURSE_ARTIFACTS, path.join(repoRoot, "build", "artifacts-smoke"));
    assert.equal(smoke.EXTRA, "1");
    assert.equal(smoke.PATH, "/bin");
    assert.equal(kernelEnv({ smoke: true }, { COURSE_ARTIFACTS: "/mine" }).COURSE_ARTIFACTS, "/mine");
    const full = kernelEnv({ smoke: false }, { COURSE_SMOKE: "1" });
    assert.equal(full.COURSE_SMOKE, undefined);
    assert.equal(full.COURSE_ARTIFACTS, undefined);
    assert.equal(kernelEnv({}, { COURSE_SMOKE: "1" }).COURSE_SMOKE, "1", "default follows the caller's COURSE_SMOKE");
  });

  it("parseCli reads flags and rejects bad ones", () => {
    const args = parseCli(["--smoke", "--out-dir", "o", "--cell-timeout", "1.5", "--timeout", "60", "b.ipynb", "a.ipynb"]);
    assert.deepEqual(args, { smoke: true, outDir: "o", cellTimeoutMs: 1500, notebookTimeoutMs: 60_000, notebooks: ["b.ipynb", "a.ipynb"] });
    assert.equal(parseCli(["--help"]), "help");
    assert.throws(() => parseCli(["--bogus", "a.ipynb"]), /bogus/);
    assert.throws(() => parseCli(["--timeout", "0", "a.ipynb"]), /--timeout must be a positive number of seconds, got "0"/);
    assert.throws(() => parseCli([]), /no notebooks given/);
    assert.throws(() => parseCli(["a.py"]), /"a.py" is not an .ipynb file/);
    assert.throws(() => parseCli(["--out-dir", "o", "x/a.ipynb", "y/a.ipynb"]), /would both be written/);
  });
});

// ---------------------------------------------------------------------------------------
// Against the real tslab kernel

describe("executeNotebook with the tslab kernel", function () {
  this.timeout(180_000); // a kernel start takes seconds; more when the machine is busy
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runner-test-"));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("runs a notebook inside the repo: outputs, displays, env, library import", async () => {
    // Inside the repo so Node resolves @llm-course/lib and tslab's own modules (build/ is git-ignored).
    fs.mkdirSync(path.join(repoRoot, "build"), { recursive: true });
    const dir = fs.mkdtempSync(path.join(repoRoot, "build", "runner-test-"));
    try {
      const jupyter = JSON.stringify(require.resolve("tslab/dist/jupyter"));
      const file = writeJson(
        path.join(dir, "ok.ipynb"),
        makeNotebook([
          { markdown: "# Title" },
          'console.log("a"); console.log("b"); console.error("warn")',
          `require(${jupyter}).lastWriteDisplayData({ data: { "text/html": "<b>x</b>", "text/plain": "x" }, metadata: { m: 1 }, transient: {} }, false);`,
          'import * as tslab from "tslab";\nconst d = tslab.newDisplay();\nd.text("first");\nd.text("second");',
          'd.text("third"); // updates the output of the cell above, adds none here',
          "   \n",
          'import { isSmoke } from "@llm-course/lib";\nconsole.log(`smoke=${isSmoke()} env=${process.env.COURSE_SMOKE} extra=${process.env.RUNNER_EXTRA} artifacts=${process.env.COURSE_ARTIFACTS}`);',
          "console.log(process.cwd());",
        ]),
      );
      const out = path.join(tmp, "out", "ok.ipynb");
      fs.mkdirSync(path.dirname(out));
      fs.writeFileSync(failedPath(out), "stale");
      const nb0 = readNotebook(file);
      const cells: number[] = [];
      let streamed = "";
      const nb = await executeNotebook(file, {
        smoke: true,
        outputPath: out,
        env: { RUNNER_EXTRA: "yes" },
        onCell: ({ index, total, source }) => {
          assert.equal(total, 8);
          assert.equal(source, (nb0.cells[index] as { source: string }).source);
          cells.push(index);
        },
        onOutput: (t) => (streamed += t),
      });

      assert.deepEqual(cells, [1, 2, 3, 4, 6, 7], "code cells in order; empty and markdown cells skipped");
      assert.deepEqual(codeCell(nb, 1).outputs, [
        { output_type: "stream", name: "stdout", text: "a\nb\n" },
        { output_type: "stream", name: "stderr", text: "warn\n" },
      ]);
      assert.equal(codeCell(nb, 1).execution_count, 1);
      assert.deepEqual(codeCell(nb, 2).outputs, [{ output_type: "display_data", data: { "text/html": "<b>x</b>", "text/plain": "x" }, metadata: { m: 1 } }]);
      assert.deepEqual(codeCell(nb, 3).outputs, [{ output_type: "display_data", data: { "text/plain": "third" }, metadata: {} }]);
      assert.deepEqual(codeCell(nb, 4).outputs, []);
      assert.equal(codeCell(nb, 4).execution_count, 4);
      assert.deepEqual(codeCell(nb, 5), { ...codeCell(nb0, 5), outputs: [], execution_count: null }, "empty cell not run, stale output cleared");
      for (const i of cells) {
        const t = codeCell(nb, i).metadata.execution as Record<string, string>;
        const [start, end] = [Date.parse(t["shell.execute_reply.started"]), Date.parse(t["shell.execute_reply"])];
        assert.ok(Number.isFinite(start) && end >= start, `cell ${i} records when it ran: ${JSON.stringify(t)}`);
      }
      assert.equal(codeCell(nb, 5).metadata.execution, undefined, "a cell that did not run has no timing");
      const artifacts = path.join(repoRoot, "build", "artifacts-smoke");
      assert.deepEqual(codeCell(nb, 6).outputs, [{ output_type: "stream", name: "stdout", text: `smoke=true env=1 extra=yes artifacts=${artifacts}\n` }]);
      assert.deepEqual(codeCell(nb, 7).outputs, [{ output_type: "stream", name: "stdout", text: `${dir}\n` }], "kernel runs in the notebook's folder");
      assert.ok(streamed.startsWith("a\nb\nwarn\n"), streamed);
      assert.equal(nb.cells[0].source, "# Title");
      assert.equal(nb.metadata.kernelspec?.name, "tslab");
      assert.equal((nb.metadata.language_info as { name: string }).name, "typescript");

      assert.equal(fs.readFileSync(out, "utf8"), serializeNotebook(nb), "written atomically, exactly what was returned");
      assert.ok(!fs.existsSync(failedPath(out)), "stale .failed.ipynb removed");
      assert.deepEqual(fs.readdirSync(path.dirname(out)), ["ok.ipynb"], "no temp files left");
      // Where Python's nbformat is installed (Debian: python3-nbformat), it must accept the
      // file and would write exactly the same bytes.
      const check = "import nbformat, sys; nb = nbformat.read(sys.argv[1], 4); nbformat.validate(nb); assert nbformat.writes(nb) + '\\n' == open(sys.argv[1], encoding='utf-8').read(), 'differs from nbformat.writes'";
      for (const python of ["/usr/bin/python3", "python3"]) {
        const py = spawnSync(python, ["-c", check, out], { encoding: "utf8" });
        if (py.error || /No module named .?nbformat/.test(py.stderr ?? "")) continue;
        assert.equal(py.status, 0, py.stderr);
        break;
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("stops at the first failing cell, names notebook and cell, leaves no success file", async () => {
    const file = writeJson(
      path.join(tmp, "bad.ipynb"),
      makeNotebook([{ markdown: "intro" }, 'console.log("ran 1")', 'const fs = require("fs");\nthrow new Error("boom at cell three")', 'require("fs").writeFileSync("later.txt", "x")']),
    );
    const out = path.join(tmp, "out.ipynb");
    fs.writeFileSync(out, "a stale, complete-looking result");
    const err = await rejection(executeNotebook(file, { outputPath: out }));
    const [first, ...rest] = err.message.split("\n");
    assert.equal(first, `${file}: cell 3 failed: Error: boom at cell three | source: const fs = require("fs"); throw new Error("boom at cell three")`);
    assert.ok(rest.join("\n").includes("Error: boom at cell three"), "full stderr follows");
    assert.equal(err.notebook, file);
    assert.equal(err.cellIndex, 2);
    assert.ok(!fs.existsSync(out), "no file at the success path");
    assert.ok(!fs.existsSync(path.join(tmp, "later.txt")), "later cells did not run");
    const partial = readNotebook(failedPath(out));
    assert.deepEqual(codeCell(partial, 1).outputs, [{ output_type: "stream", name: "stdout", text: "ran 1\n" }]);
    assert.equal(codeCell(partial, 3).execution_count, null);
  });

  it("runs in place: rewrites the notebook on success, leaves it untouched on failure", async () => {
    const good = writeJson(path.join(tmp, "good.ipynb"), makeNotebook(["console.log(6 * 7)"]));
    const nb = await executeNotebook(good, { outputPath: good });
    assert.equal(fs.readFileSync(good, "utf8"), serializeNotebook(nb));
    assert.deepEqual(codeCell(readNotebook(good), 0).outputs, [{ output_type: "stream", name: "stdout", text: "42\n" }]);

    const bad = writeJson(path.join(tmp, "bad.ipynb"), makeNotebook(['throw new Error("x")']));
    const before = fs.readFileSync(bad, "utf8");
    await rejection(executeNotebook(bad, { outputPath: bad }));
    assert.equal(fs.readFileSync(bad, "utf8"), before);
    assert.deepEqual(fs.readdirSync(tmp).sort(), ["bad.ipynb", "good.ipynb"], "no partial file among the sources");
  });

  it("reports a type error in a cell", async () => {
    const file = writeJson(path.join(tmp, "types.ipynb"), makeNotebook(['const n: number = "not a number";']));
    const err = await rejection(executeNotebook(file));
    assert.equal(
      err.message.split("\n")[0],
      `${file}: cell 1 failed: 1:7 - Type 'string' is not assignable to type 'number'. | source: const n: number = "not a number";`,
    );
  });

  it("a cell that prints thousands of lines in a burst finishes without a false timeout, and says when output went missing", async () => {
    // tslab sends each output message without waiting for the previous send (zeromq.js then drops
    // it), so past a few hundred messages in a burst some output, and its final "idle", never
    // arrive. The runner waits IOPUB_GRACE_MS after the cell's reply, says so, and goes on.
    const file = writeJson(path.join(tmp, "chatty.ipynb"), makeNotebook(['for (let i = 0; i < 5000; i++) console.log(`line ${i}`);', 'console.log("after")']));
    const warnings: string[] = [];
    const t0 = Date.now();
    const nb = await executeNotebook(file, { cellTimeoutMs: 60_000, onWarning: (l) => warnings.push(l) });
    assert.ok(Date.now() - t0 < 30_000, "no wait for the cell timeout");
    const text = (i: number) => (nb.cells[i] as CodeCell).outputs.map((o) => [].concat((o as { text?: never }).text ?? []).join("")).join("");
    const lines = text(0).trim().split("\n");
    assert.ok(lines.length > 100 && lines.every((l, i) => l === `line ${i}`), "what arrived arrived in order");
    if (lines.length < 5000) {
      assert.deepEqual(warnings, [`${file}: cell 1: the kernel's output after the cell finished did not all arrive within 5 s; the cell's outputs may be incomplete`]);
    } else assert.deepEqual(warnings, []);
    assert.equal(text(1), "after\n", "the next cell runs and its output arrives");
    // A burst of a few hundred lines arrives whole, without a warning.
    const small = writeJson(path.join(tmp, "small.ipynb"), makeNotebook(['for (let i = 0; i < 300; i++) console.log(`line ${i}`);']));
    const w2: string[] = [];
    const nb2 = await executeNotebook(small, { onWarning: (l) => w2.push(l) });
    assert.equal((nb2.cells[0] as CodeCell).outputs.map((o) => [].concat((o as { text?: never }).text ?? []).join("")).join("").trim().split("\n").length, 300);
    assert.deepEqual(w2, []);
  });

  it("an error thrown in a timer after the last cell returned fails the notebook, naming the cell; the runner waits for pending timers", async () => {
    const cell = 'setTimeout(() => { throw new Error("late boom"); }, 300); 1';
    const file = writeJson(path.join(tmp, "late.ipynb"), makeNotebook([cell]));
    const out = path.join(tmp, "late.out.ipynb");
    const err = await rejection(executeNotebook(file, { outputPath: out }));
    assert.equal(err.message, `${file}: an error was thrown after cell 1 returned, in a timer or an unawaited promise (of that cell or an earlier one): Error: late boom | source: ${cell}`);
    assert.equal(err.cellIndex, 0);
    assert.ok(!fs.existsSync(out), "no success file");
    const text = (codeCell(readNotebook(failedPath(out)), 0).outputs as { text?: string }[]).map((o) => o.text ?? "").join("");
    assert.match(text, /^UncaughtException: Error: late boom$/m, "the late output is kept in the cell, as Jupyter shows it");

    // A timer that ends well is waited for; one that never ends (an interval) is not waited for beyond the grace.
    const fine = writeJson(path.join(tmp, "fine.ipynb"), makeNotebook(['setTimeout(() => require("fs").writeFileSync("late.txt", "x"), 300); setInterval(() => {}, 50); 1']));
    const t0 = Date.now();
    await executeNotebook(fine);
    assert.ok(fs.existsSync(path.join(tmp, "late.txt")), "the pending timer ran before the kernel was shut down");
    assert.ok(Date.now() - t0 < 30_000);
  });

  it("an unawaited rejected promise or a timer that throws during a later cell fails the notebook there", async () => {
    const file = writeJson(path.join(tmp, "reject.ipynb"), makeNotebook(["1", 'Promise.reject(new Error("rej boom")); 2', 'await new Promise((r) => setTimeout(r, 3000));\nrequire("fs").writeFileSync("later.txt", "x")']));
    const err = await rejection(executeNotebook(file));
    // Whether tslab reports the rejection just before or just after the cell's reply is a race; the verdict is the same.
    assert.match(err.message, /^\S+reject\.ipynb: (cell 2: an error escaped while the cell ran, thrown|an error was thrown after cell 2 returned,) in a timer or an unawaited promise.*: Error: rej boom \| source: Promise\.reject/);
    assert.equal(err.cellIndex, 1);
    assert.ok(!fs.existsSync(path.join(tmp, "later.txt")), "a cell that started meanwhile is stopped");

    const during = writeJson(path.join(tmp, "during.ipynb"), makeNotebook(['setTimeout(() => { throw new Error("tick"); }, 200); 1', "await new Promise((r) => setTimeout(r, 1000)); 2"]));
    const err2 = await rejection(executeNotebook(during));
    assert.equal(err2.message.split("\n")[0], `${during}: cell 2: an error escaped while the cell ran, thrown in a timer or an unawaited promise: Error: tick | source: await new Promise((r) => setTimeout(r, 1000)); 2`);
  });

  it("with the wasm backend loaded, an escaped error kills the kernel: the error is reported, not only the death", async () => {
    // Emscripten's runtime rethrows from Node's uncaughtException hook, so the kernel exits.
    fs.mkdirSync(path.join(repoRoot, "build"), { recursive: true });
    const dir = fs.mkdtempSync(path.join(repoRoot, "build", "runner-test-"));
    try {
      const file = writeJson(
        path.join(dir, "wasm.ipynb"),
        makeNotebook([
          'import * as tf from "@tensorflow/tfjs";\nimport "@llm-course/lib";\nawait tf.ready();',
          'setTimeout(() => { throw new Error("late boom"); }, 300); 1',
          "await new Promise((r) => setTimeout(r, 3000)); 2",
        ]),
      );
      const err = await rejection(executeNotebook(file));
      assert.match(err.message.split("\n")[0], /^\S+wasm\.ipynb: cell 3: an error escaped the cell, in a timer or an unawaited promise, and kernel died \(exit code \d+\): Error: late boom \| source: await new Promise/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("kills the kernel when a cell times out", async () => {
    const file = writeJson(path.join(tmp, "slow.ipynb"), makeNotebook(['require("fs").writeFileSync("pid", String(process.pid))', "while (true) {}"]));
    const err = await rejection(executeNotebook(file, { cellTimeoutMs: 1500 }));
    assert.equal(err.message, `${file}: cell 2 timed out after 1.5 s (cell timeout) | source: while (true) {}`);
    assert.equal(err.cellIndex, 1);
    const pid = Number(fs.readFileSync(path.join(tmp, "pid"), "utf8"));
    assert.ok(pid > 0 && !isAlive(pid), "kernel process is gone");
  });

  it("enforces the notebook timeout across cells", async () => {
    const wait = "await new Promise((r) => setTimeout(r, 1000));";
    const file = writeJson(path.join(tmp, "long.ipynb"), makeNotebook([wait, wait, wait, wait]));
    // Each cell is well within the cell limit; together they are not. Timing only decides
    // which cell is hit (2 or 3, depending on kernel start-up), so the test checks the shape.
    const err = await rejection(executeNotebook(file, { cellTimeoutMs: 60_000, notebookTimeoutMs: 2500 }));
    assert.match(err.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: cell [234] hit the notebook timeout of 2.5 s \\| source: await new Promise`));
  });

  it("reports a kernel that dies mid-run, naming the cell", async () => {
    const file = writeJson(path.join(tmp, "die.ipynb"), makeNotebook(['require("fs").writeFileSync("pid", String(process.pid))', "process.exit(3)", 'require("fs").writeFileSync("later.txt", "x")']));
    const err = await rejection(executeNotebook(file, { outputPath: path.join(tmp, "die.out.ipynb") }));
    assert.equal(err.message.split("\n")[0], `${file}: cell 2: kernel died (exit code 3) while running the cell | source: process.exit(3)`);
    assert.equal(err.cellIndex, 1);
    assert.ok(!fs.existsSync(path.join(tmp, "die.out.ipynb")));
    assert.ok(!fs.existsSync(path.join(tmp, "later.txt")));
    assert.ok(!isAlive(Number(fs.readFileSync(path.join(tmp, "pid"), "utf8"))));
  });

  it("reports a kernel that cannot start", async () => {
    const file = writeJson(path.join(tmp, "nostart.ipynb"), makeNotebook(["1"]));
    const err = await rejection(executeNotebook(file, { env: { NODE_OPTIONS: "--no-such-node-flag" } }));
    const [first, ...rest] = err.message.split("\n");
    assert.match(first, /: the tslab kernel did not start: kernel died \(exit code \d+\)$/);
    assert.match(rest.join("\n"), /no-such-node-flag/, "the kernel's own stderr follows");
    assert.equal(err.cellIndex, undefined);
  });

  it("rejects bad input before starting a kernel, leaving no output file", async () => {
    const out = path.join(tmp, "out.ipynb");
    const cases: [string, string | object, RegExp][] = [
      ["json.ipynb", "{ this is not json", /: invalid JSON: /],
      ["v3.ipynb", { nbformat: 3, nbformat_minor: 0, metadata: {}, worksheets: [] }, /: nbformat is 3; expected 4/],
      ["py.ipynb", makeNotebook(["print(1)"], "python3"), /: metadata\.kernelspec\.name is "python3"; expected "tslab" \(the TypeScript kernel\)$/],
      ["nospec.ipynb", { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] }, /: metadata\.kernelspec\.name is missing; expected "tslab"/],
    ];
    for (const [name, content, re] of cases) {
      const file = path.join(tmp, name);
      fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
      fs.writeFileSync(out, "stale");
      const err = await rejection(executeNotebook(file, { outputPath: out }));
      assert.ok(err.message.startsWith(`${file}: `), err.message);
      assert.match(err.message, re);
      assert.ok(!err.message.includes("\n"), "one line");
      assert.equal(err.notebook, file);
      assert.ok(!fs.existsSync(out), `${name}: no output file`);
      assert.ok(!fs.existsSync(failedPath(out)), `${name}: nothing ran, no partial file`);
    }
    const missing = await rejection(executeNotebook(path.join(tmp, "missing.ipynb")));
    assert.equal(missing.message, `${path.join(tmp, "missing.ipynb")}: no such file`);
  });
});

describe("run-notebooks CLI", function () {
  this.timeout(180_000);
  const cli = path.join(repoRoot, "lib", "dist", "tools", "course", "runNotebooks.js");
  let tmp: string;
  before(function () {
    if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first`);
  });
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runner-cli-"));
  });
  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { cwd: tmp, encoding: "utf8", env: { ...process.env, COURSE_SMOKE: "" } });

  it("rejects unknown flags with a usage error; --help lists the options", () => {
    const r = run(["--frobnicate", "a.ipynb"]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, "run-notebooks: unknown option --frobnicate (see --help)\n");
    const h = run(["--help"]);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /^Usage: run-notebooks \[options\] NOTEBOOK\.ipynb\.\.\./);
    assert.match(h.stdout, /--cell-timeout SECONDS/);
  });

  it("runs notebooks in the order given, stops at the first failure with exit code 1", () => {
    writeJson(path.join(tmp, "2-ok.ipynb"), makeNotebook(["console.log(1)"]));
    writeJson(path.join(tmp, "1-bad.ipynb"), makeNotebook(['throw new Error("nope")']));
    writeJson(path.join(tmp, "3-never.ipynb"), makeNotebook(['require("fs").writeFileSync("ran3", "")']));
    const r = run(["--smoke", "--out-dir", "out", "2-ok.ipynb", "1-bad.ipynb", "3-never.ipynb"]);
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.match(lines[0], /^\[1\/3\] 2-ok\.ipynb … ok \(\d+\.\d s\)$/);
    assert.match(lines[1], /^\[2\/3\] 1-bad\.ipynb … FAILED \(\d+\.\d s\)$/);
    assert.equal(lines.length, 2);
    assert.equal(r.stderr.split("\n")[0], '1-bad.ipynb: cell 1 failed: Error: nope | source: throw new Error("nope")');
    assert.deepEqual(fs.readdirSync(path.join(tmp, "out")).sort(), ["1-bad.failed.ipynb", "2-ok.ipynb"]);
    assert.ok(!fs.existsSync(path.join(tmp, "ran3")));
  });

  it("in smoke mode without --out-dir writes nothing", () => {
    const nb = writeJson(path.join(tmp, "a.ipynb"), makeNotebook(["console.log(1)"]));
    const before = fs.readFileSync(nb, "utf8");
    const r = run(["--smoke", "a.ipynb"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(nb, "utf8"), before);
    assert.deepEqual(fs.readdirSync(tmp), ["a.ipynb"]);
  });
});
