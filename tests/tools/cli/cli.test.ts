import assert from "node:assert/strict";
import { Command, fail, parseOptions, runCommand, usage, UsageError } from "../../../lib/tools/cli/cli";

interface DemoArgs {
  steps: number;
  lr?: number;
  mode: "fast" | "slow";
  out?: string;
  tag: string[];
  topP?: number;
  json: boolean;
  crash?: string;
}

const STEPS_DEFAULT = 30;

/** A command with one option of each kind; its run ends in whichever way --crash says. */
const DEMO: Command<DemoArgs> = {
  name: "demo",
  summary: "A command for testing the runner.",
  options: {
    steps: { kind: "integer", value: "N", min: 1, default: STEPS_DEFAULT, help: "how many steps" },
    lr: { kind: "number", value: "LR", min: 0, minExclusive: true, defaultText: "the library's", help: "learning rate" },
    mode: { kind: "choice", choices: ["fast", "slow"], default: "fast", help: "speed" },
    out: { kind: "string", value: "DIR", help: "where to write" },
    tag: { kind: "string", value: "T", multiple: true, help: "a label (repeatable)" },
    "top-p": { kind: "number", value: "P", min: 0, minExclusive: true, max: 1, help: "nucleus" },
    crash: { kind: "choice", choices: ["error", "input"], help: "how the run ends" },
    json: { kind: "boolean", help: "the last line of stdout is {steps}" },
  },
  notes: () => "Notes come last.",
  async run(args, { err }) {
    err("working");
    if (args.crash === "error") throw new Error("disk full\nsecond line");
    if (args.crash === "input") fail("cannot load the checkpoint: nope");
    return { json: { steps: args.steps }, lines: [`${args.steps} steps`, "done"] };
  },
};

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCommand(DEMO, argv, { out: (l) => out.push(l), err: (l) => err.push(l), env: {} });
  return { code, out, err };
}

describe("CLI runner (lib/tools/cli/cli.ts)", () => {
  it("--help and -h print usage generated from the option definitions, exit 0", async () => {
    const expected = [
      "Usage: demo [options]",
      "  A command for testing the runner.",
      "",
      "Options:",
      "  --steps N            how many steps (default: 30)",
      "  --lr LR              learning rate (default: the library's)",
      "  --mode fast|slow     speed (default: fast)",
      "  --out DIR            where to write",
      "  --tag T              a label (repeatable)",
      "  --top-p P            nucleus",
      "  --crash error|input  how the run ends",
      "  --json               the last line of stdout is {steps}",
      "  -h, --help           this help",
      "",
      "Notes come last.",
    ].join("\n");
    // As the tools always did: a mistake on the command line is reported even next to --help.
    assert.equal((await run("--help", "--steps", "x")).code, 2);
    for (const flag of ["--help", "-h"]) {
      const r = await run(flag);
      assert.equal(r.code, 0);
      assert.deepEqual(r.out, [expected]);
      assert.deepEqual(r.err, []);
    }
    assert.equal(usage(DEMO as Command<unknown>, {}), expected);
  });

  it("parses every kind and fills in the declared defaults", () => {
    const d = parseOptions<DemoArgs>(DEMO, [], {});
    assert.equal(d.steps, STEPS_DEFAULT);
    assert.equal(d.lr, undefined);
    assert.equal(d.mode, "fast");
    assert.deepEqual(d.tag, []);
    assert.equal(d.json, false);
    const a = parseOptions<DemoArgs>(DEMO, ["--steps", "7", "--lr=0.5", "--mode", "slow", "--tag", "a", "--tag", "b", "--top-p", "1", "--json"], {});
    assert.deepEqual(
      { steps: a.steps, lr: a.lr, mode: a.mode, tag: a.tag, topP: a.topP, json: a.json },
      { steps: 7, lr: 0.5, mode: "slow", tag: ["a", "b"], topP: 1, json: true },
    );
  });

  it("usage errors: exactly one line on stderr, `<command>: <message> (see --help)`, exit 2", async () => {
    const cases: Array<[string[], string]> = [
      [["--frob"], 'demo: unknown option --frob (see --help)'],
      [["-x"], "demo: unknown option -x (see --help)"],
      [["extra"], 'demo: unexpected argument "extra" (see --help)'],
      [["--out"], "demo: --out needs a value (see --help)"],
      [["--out", "--json"], "demo: --out needs a value (see --help)"],
      [["--steps", "x"], 'demo: --steps must be an integer >= 1, got "x" (see --help)'],
      [["--steps", "0"], 'demo: --steps must be an integer >= 1, got "0" (see --help)'],
      [["--steps", "2.5"], 'demo: --steps must be an integer >= 1, got "2.5" (see --help)'],
      [["--steps", "-1"], 'demo: --steps must be an integer >= 1, got "-1" (see --help)'],
      [["--lr", "0"], 'demo: --lr must be a number > 0, got "0" (see --help)'],
      [["--lr", ""], 'demo: --lr must be a number > 0, got "" (see --help)'],
      [["--top-p", "2"], 'demo: --top-p must be a number in (0, 1], got "2" (see --help)'],
      [["--mode", "medium"], 'demo: --mode must be fast or slow, got "medium" (see --help)'],
      [["--json=yes"], 'demo: --json takes no value, got "yes" (see --help)'],
    ];
    for (const [argv, line] of cases) {
      const r = await run(...argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.deepEqual(r.err, [line], argv.join(" "));
      assert.deepEqual(r.out, [], argv.join(" "));
    }
    assert.throws(() => parseOptions(DEMO, ["--mode", "x"], {}), UsageError);
  });

  it("a successful run: exit 0, its lines, or with --json the JSON summary as the last stdout line", async () => {
    const text = await run("--steps", "3");
    assert.equal(text.code, 0);
    assert.deepEqual(text.out, ["3 steps", "done"]);
    assert.deepEqual(text.err, ["working"]);
    const json = await run("--steps", "3", "--json");
    assert.equal(json.code, 0);
    assert.deepEqual(json.out, ['{"steps":3}']);
  });

  it("a failed run: `<command>: <first line of the message>`, exit 1; fail(): exit 2", async () => {
    const e = await run("--crash", "error");
    assert.equal(e.code, 1);
    assert.deepEqual(e.err, ["working", "demo: disk full"]);
    assert.deepEqual(e.out, []);
    const f = await run("--crash", "input");
    assert.equal(f.code, 2);
    assert.deepEqual(f.err, ["working", "demo: cannot load the checkpoint: nope"]);
  });

  it("positionals only for a command that takes them; validate runs unless --help", async () => {
    const withText: Command<{ positionals: string[] }> = {
      name: "echo", summary: "Echo.", options: {}, positionals: "TEXT...",
      validate: (a) => { if (a.positionals.length === 0) throw new UsageError("missing the text"); },
      async run(a, { out }) { out(a.positionals.join(" ")); },
    };
    const lines: string[] = [];
    const errs: string[] = [];
    const io = { out: (l: string) => lines.push(l), err: (l: string) => errs.push(l), env: {} };
    assert.equal(await runCommand(withText, ["a", "--", "--b"], io), 0);
    assert.deepEqual(lines, ["a --b"]);
    assert.equal(await runCommand(withText, [], io), 2);
    assert.deepEqual(errs, ["echo: missing the text (see --help)"]);
    assert.equal(await runCommand(withText, ["--help"], io), 0);
    assert.match(lines[lines.length - 1], /^Usage: echo \[options\] TEXT\.\.\.\n/);
  });
});
