import { strict as assert } from "node:assert";
import {
  artifactsNamed, chainMinutes, formatDuration, nextNotebook, notebookDependencies, parseBuildArgs, progressLine, runsAlone, runTimeWarning, selectNotebooks, slowestCell,
  statedMinutes,
} from "../../../lib/tools/course/buildCourse";

const ALL = ["00-what-is-an-llm", "01-tokens", "02-attention", "03-gpt", "10-dpo"];

describe("build-course: arguments", () => {
  it("defaults to a full build of everything", () => {
    const a = parseBuildArgs([]);
    assert.ok(a !== "help");
    assert.deepEqual([a.smoke, a.only, a.from, a.skipExec, a.verbose, a.jobs], [false, [], undefined, false, false, 2]);
    const one = parseBuildArgs(["--jobs", "1"]);
    assert.ok(one !== "help");
    assert.equal(one.jobs, 1);
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
    assert.throws(() => parseBuildArgs(["--jobs", "0"]), /^Error: --jobs must be a whole number >= 1, got "0"$/);
    assert.throws(() => parseBuildArgs(["--jobs", "two"]), /--jobs must be a whole number/);
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

describe("build-course: running times", () => {
  const md = (source: string) => ({ cell_type: "markdown" as const, id: "m", metadata: {}, source });
  const timed = (start: string, end: string) => ({
    cell_type: "code" as const, id: "c", source: "x", outputs: [], execution_count: 1,
    metadata: { execution: { "shell.execute_reply.started": start, "shell.execute_reply": end } },
  });

  it("reads the time a notebook's opening box promises", () => {
    assert.equal(statedMinutes({ cells: [md("# 07\n\n> **Before you run it.** Needs x.\n> Runs in about 5 minutes in full\n> mode on a 2-core machine.")] }), 5);
    assert.equal(statedMinutes({ cells: [md("# 05\n\nRuns in about 1.5 minutes in full mode.")] }), 1.5);
    assert.equal(statedMinutes({ cells: [md("# 01\n\nNo promise.")] }), undefined);
  });

  it("warns only when a full run is off by more than a factor of two", () => {
    assert.equal(runTimeWarning("07-reward-model", 9.9 * 60000, 5), undefined);
    assert.equal(runTimeWarning("07-reward-model", 2.5 * 60000, 5), undefined);
    assert.equal(runTimeWarning("07-reward-model", 11 * 60000, 5), '07-reward-model ran for 11m00s but its opening box says "about 5 minutes": update the box if this machine is typical');
    assert.match(runTimeWarning("05-pretraining", 20000, 1)!, /ran for 20s but its opening box says "about 1 minute"/);
    assert.equal(runTimeWarning("01-tokens", 1e9, undefined), undefined);
  });

  it("finds the slowest cell from the runner's timing metadata", () => {
    const nb = { cells: [md("# T"), timed("2026-12-03T10:00:00.000Z", "2026-12-03T10:00:02.500Z"), timed("2026-12-03T10:00:03.000Z", "2026-12-03T10:01:03.000Z"), { ...md("x"), metadata: {} }] };
    assert.deepEqual(slowestCell(nb), { index: 2, ms: 60000 });
    assert.equal(slowestCell({ cells: [md("# T")] }), undefined);
  });
});

describe("build-course: which notebook waits for which", () => {
  const code = (source: string) => ({ id: "c", cell_type: "code" as const, source, metadata: {}, outputs: [], execution_count: null });
  const md = (source: string) => ({ id: "m", cell_type: "markdown" as const, source, metadata: {} });
  const sft = {
    cells: [
      md('Prose may name artifactPath("ppo") without waiting for it.'),
      code('const base = loadPretrained(requireBaseModel());\nconst out = artifactPath("sft");'),
      code("const r = requireArtifact('reward'); // a later chapter's artifact"),
    ],
  };

  it("reads the artifacts a notebook's code names; requireBaseModel() names 'pretrained' only for the learner's own model", () => {
    assert.deepEqual(artifactsNamed(sft, {}), ["sft", "reward"]);
    assert.deepEqual(artifactsNamed(sft, { COURSE_SMOKE: "1" }), ["sft", "pretrained", "reward"]);
    assert.deepEqual(artifactsNamed(sft, { COURSE_BASE_MODEL: "own" }), ["sft", "pretrained", "reward"]);
    assert.deepEqual(artifactsNamed({ cells: [code('requireArtifact(`dpo`)')] }, {}), ["dpo"]);
  });

  it("a notebook waits for the earlier notebooks that make what it names, never for itself or a later one", () => {
    const names = ["00-intro", "05-pretraining", "06-sft", "07-reward-model", "08-rlhf-ppo", "09-dpo", "A1-performance"];
    const deps = notebookDependencies(names, {
      "05-pretraining": ["pretrained", "pretrained-hf"],
      "06-sft": ["sft", "pretrained"],
      "07-reward-model": ["sft", "reward", "preferences.jsonl"],
      "08-rlhf-ppo": ["sft", "reward", "ppo"],
      "09-dpo": ["dpo", "ppo", "preferences.jsonl", "sft"],
      "A1-performance": ["unknown"],
    });
    assert.deepEqual(deps, {
      "00-intro": [], "05-pretraining": [], "06-sft": ["05-pretraining"], "07-reward-model": ["06-sft"],
      "08-rlhf-ppo": ["06-sft", "07-reward-model"], "09-dpo": ["06-sft", "07-reward-model", "08-rlhf-ppo"], "A1-performance": [],
    });
    // --only 07,08: 06 is not being run, so nobody waits for it (its earlier artifact is used).
    assert.deepEqual(notebookDependencies(["07-reward-model", "08-rlhf-ppo"], { "07-reward-model": ["sft", "reward"], "08-rlhf-ppo": ["sft", "reward"] }),
      { "07-reward-model": [], "08-rlhf-ppo": ["07-reward-model"] });
  });

  it("starts the ready notebook with the longest chain of minutes after it; course order breaks ties", () => {
    const names = ["00-a", "01-b", "05-p", "06-s", "07-r", "08-ppo"];
    const deps = { "00-a": [], "01-b": [], "05-p": [], "06-s": [], "07-r": ["06-s"], "08-ppo": ["07-r"] };
    const chain = chainMinutes(names, deps, { "00-a": 0.5, "01-b": 0.5, "05-p": 2, "06-s": 6, "07-r": 6, "08-ppo": 6 });
    assert.deepEqual(chain, { "00-a": 0.5, "01-b": 0.5, "05-p": 2, "06-s": 18, "07-r": 12, "08-ppo": 6 });
    assert.equal(nextNotebook(names, new Set(), deps, chain), "06-s");
    assert.equal(nextNotebook(["00-a", "01-b", "05-p", "07-r", "08-ppo"], new Set(), deps, chain), "05-p"); // 07 waits for 06
    assert.equal(nextNotebook(["00-a", "01-b", "07-r", "08-ppo"], new Set(["06-s"]), deps, chain), "07-r");
    assert.equal(nextNotebook(["00-a", "01-b"], new Set(), deps, chain), "00-a");
    assert.equal(nextNotebook(["08-ppo"], new Set(["06-s"]), deps, chain), undefined);
  });

  it("a notebook that measures speed runs alone: it waits for an empty machine, and nothing starts beside it", () => {
    assert.equal(runsAlone({ metadata: { llm_course: { run_alone: true } } }), true);
    assert.equal(runsAlone({ metadata: {} }), false);
    const names = ["00-a", "06-s", "A1-perf"];
    const deps = { "00-a": [], "06-s": [], "A1-perf": [] };
    const chain = { "00-a": 0.5, "06-s": 6, "A1-perf": 9 };
    const alone = new Set(["A1-perf"]);
    assert.equal(nextNotebook(names, new Set(), deps, chain, new Set(), alone), "A1-perf"); // longest chain, machine empty
    assert.equal(nextNotebook(["00-a", "A1-perf"], new Set(), deps, chain, new Set(["06-s"]), alone), "00-a");
    assert.equal(nextNotebook(["00-a", "06-s"], new Set(), deps, chain, new Set(["A1-perf"]), alone), undefined);
  });
});
