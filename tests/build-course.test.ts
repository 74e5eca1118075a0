import { strict as assert } from "node:assert";
import { formatDuration, parseBuildArgs, progressLine, selectNotebooks } from "../lib/tools/build-course";

const ALL = ["00-what-is-an-llm", "01-tokens", "02-attention", "03-gpt", "10-dpo"];

describe("build-course: arguments", () => {
  it("defaults to a full build of everything", () => {
    const a = parseBuildArgs([]);
    assert.ok(a !== "help");
    assert.deepEqual([a.smoke, a.only, a.from, a.skipExec, a.verbose], [false, [], undefined, false, false]);
    assert.match(a.notebooksDir, /notebooks$/);
    assert.match(a.buildDir, /build$/);
  });

  it("accepts --only repeated or comma-separated, and --smoke", () => {
    const a = parseBuildArgs(["--smoke", "--only", "01,02", "--only", "10"]);
    assert.ok(a !== "help");
    assert.equal(a.smoke, true);
    assert.deepEqual(a.only, ["01", "02", "10"]);
  });

  it("accepts --slides (npm run slides: re-render from the executed copies, list the decks)", () => {
    const a = parseBuildArgs(["--skip-exec", "--slides"]);
    assert.ok(a !== "help");
    assert.deepEqual([a.skipExec, a.slides], [true, true]);
    const b = parseBuildArgs([]);
    assert.ok(b !== "help");
    assert.equal(b.slides, false);
  });

  it("rejects contradictory or stray arguments with one line", () => {
    assert.throws(() => parseBuildArgs(["--only", "01", "--from", "02"]), /^Error: use --only or --from, not both$/);
    assert.throws(() => parseBuildArgs(["--skip-exec", "--only", "01"]), /--skip-exec executes nothing/);
    assert.throws(() => parseBuildArgs(["notebooks/01.ipynb"]), /unexpected argument "notebooks\/01\.ipynb"/);
    assert.throws(() => parseBuildArgs(["--only", ","]), /--only needs a notebook name prefix/);
    assert.throws(() => parseBuildArgs(["--frobnicate"]), /frobnicate/);
    assert.equal(parseBuildArgs(["--help"]), "help");
  });
});

describe("build-course: which notebooks run", () => {
  it("runs all in order by default, nothing with --skip-exec", () => {
    assert.deepEqual(selectNotebooks(ALL, { only: [], skipExec: false }), ALL);
    assert.deepEqual(selectNotebooks(ALL, { only: [], skipExec: true }), []);
  });

  it("--only picks by prefix, keeping course order", () => {
    assert.deepEqual(selectNotebooks(ALL, { only: ["02", "00"], skipExec: false }), ["00-what-is-an-llm", "02-attention"]);
    assert.deepEqual(selectNotebooks(ALL, { only: ["1"], skipExec: false }), ["10-dpo"]);
  });

  it("--from runs that notebook and every later one", () => {
    assert.deepEqual(selectNotebooks(ALL, { only: [], from: "02", skipExec: false }), ["02-attention", "03-gpt", "10-dpo"]);
  });

  it("names the prefix and the notebooks when nothing matches", () => {
    assert.throws(() => selectNotebooks(ALL, { only: ["01", "07"], skipExec: false }), /^Error: --only 07 matches no notebook \(notebooks: 00-what-is-an-llm, 01-tokens/);
    assert.throws(() => selectNotebooks(ALL, { only: [], from: "99", skipExec: false }), /^Error: --from 99 matches no notebook/);
  });
});

describe("build-course: progress", () => {
  it("formats durations compactly", () => {
    assert.equal(formatDuration(4_200), "4s");
    assert.equal(formatDuration(72_000), "1m12s");
    assert.equal(formatDuration(3_725_000), "1h02m");
  });

  it("says which notebook and cell are running", () => {
    assert.equal(
      progressLine({ i: 2, n: 10, name: "01-tokens-and-embeddings", cell: 5, cells: 23, elapsedMs: 72_000 }),
      "notebook 2 of 10: 01-tokens-and-embeddings — cell 5/23 — elapsed 1m12s",
    );
    assert.equal(progressLine({ i: 1, n: 1, name: "00-x", elapsedMs: 0 }), "notebook 1 of 1: 00-x — starting kernel — elapsed 0s");
  });
});
