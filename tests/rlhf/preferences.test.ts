import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  appendPreference, PreferenceRecord, preferencePairs, rankingToPairs, readPreferences, repairPreferenceFile, validatePreference,
} from "../../lib/rlhf/preferences";

const rec = (i: number): PreferenceRecord => ({
  prompt: `Who is Ahab? #${i}`, responses: ["The captain.", "A whale.", "Ishmael"], ranking: [0, 2, 1], rankedBy: "human:test", id: `p${i}`,
});

describe("preferences", () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "prefs-")); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it("rankingToPairs gives every implied pair, best first: K(K−1)/2", () => {
    assert.deepEqual(rankingToPairs([2, 0, 1]), [{ chosen: 2, rejected: 0 }, { chosen: 2, rejected: 1 }, { chosen: 0, rejected: 1 }]);
    assert.equal(rankingToPairs([0, 1]).length, 1);
    assert.equal(rankingToPairs([3, 1, 0, 2]).length, 6);
    const pairs = preferencePairs([rec(0)]);
    assert.deepEqual(pairs.map((p) => [p.chosen, p.rejected]), [["The captain.", "Ishmael"], ["The captain.", "A whale."], ["Ishmael", "A whale."]]);
  });

  it("validation names the file:line and the field", () => {
    const bad: Array<[unknown, RegExp]> = [
      [[1], /f:3: expected a JSON object/],
      [{ ...rec(0), prompt: 3 }, /f:3: field "prompt" must be a string, got 3/],
      [{ ...rec(0), responses: ["x"] }, /field "responses" must be an array of at least 2 strings/],
      [{ ...rec(0), ranking: [0, 1] }, /field "ranking" must be an array of 3 indices/],
      [{ ...rec(0), ranking: [0, 0, 1] }, /each response once, 0 appears twice/],
      [{ ...rec(0), ranking: [0, 1, 3] }, /field "ranking\[2\]" must be an integer in 0..2, got 3/],
      [{ ...rec(0), rankedBy: "bob" }, /field "rankedBy" must be "simulated:<rule>" or "human:<name>", got "bob"/],
    ];
    for (const [v, re] of bad) assert.throws(() => validatePreference(v, "f:3"), re);
    const file = path.join(dir, "p.jsonl");
    fs.writeFileSync(file, JSON.stringify(rec(0)) + "\n" + JSON.stringify({ ...rec(1), ranking: "x" }) + "\n");
    assert.throws(() => readPreferences(file), (e: Error) => e.message.startsWith(`${file}:2: field "ranking"`) && !e.message.includes("\n"));
    fs.writeFileSync(file, "{oops\n");
    assert.throws(() => readPreferences(file), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:1: not valid JSON`));
  });

  it("appends and reads back; a missing file is empty", () => {
    const file = path.join(dir, "sub", "p.jsonl");
    assert.deepEqual(readPreferences(file).records, []);
    appendPreference(file, rec(0));
    appendPreference(file, rec(1));
    const got = readPreferences(file);
    assert.deepEqual(got.records, [rec(0), rec(1)]);
    assert.equal(got.tornTail, null);
    assert.throws(() => appendPreference(file, { ...rec(2), ranking: [0] }), /field "ranking"/);
    assert.equal(readPreferences(file).records.length, 2);
  });

  it("a torn last line is ignored with a warning, and the next append cuts it off", () => {
    const file = path.join(dir, "p.jsonl");
    appendPreference(file, rec(0));
    const half = JSON.stringify(rec(1)).slice(0, 25);
    fs.appendFileSync(file, half); // what a kill in the middle of write() leaves
    const r = readPreferences(file);
    assert.equal(r.records.length, 1);
    assert.equal(r.tornTail, half);
    assert.match(r.warnings[0], /:2: ignored an incomplete last line of 25 bytes/);
    assert.equal(appendPreference(file, rec(2)), 25);
    const after = readPreferences(file);
    assert.deepEqual(after.records, [rec(0), rec(2)]);
    assert.equal(after.tornTail, null);
    // a file that is nothing but a torn line
    fs.writeFileSync(file, "{\"prompt\":");
    assert.equal(repairPreferenceFile(file), 10);
    assert.equal(fs.readFileSync(file, "utf8"), "");
  });

  it("a complete record on a last line without its newline is kept, and the next append ends it instead of cutting it", () => {
    const file = path.join(dir, "p.jsonl");
    fs.writeFileSync(file, JSON.stringify(rec(0)) + "\n" + JSON.stringify(rec(1))); // e.g. saved by an editor that drops the final newline
    const r = readPreferences(file);
    assert.deepEqual(r.records, [rec(0), rec(1)]);
    assert.equal(r.tornTail, null);
    assert.deepEqual(r.warnings, []);
    assert.equal(appendPreference(file, rec(2)), 0, "nothing removed");
    assert.deepEqual(readPreferences(file).records, [rec(0), rec(1), rec(2)]);
    // the same when the file is that one line
    fs.writeFileSync(file, JSON.stringify(rec(3)));
    assert.equal(repairPreferenceFile(file), 0);
    assert.equal(fs.readFileSync(file, "utf8"), JSON.stringify(rec(3)) + "\n");
  });

  it("survives a real SIGKILL of a process appending in a loop", async function () {
    this.timeout(60000);
    const file = path.join(dir, "p.jsonl");
    const lib = path.resolve(__dirname, "../../lib/rlhf/preferences.ts");
    // Big responses (≈ 200 KB per line) so the kill has a fair chance to land inside a write.
    const script = `
      const { appendPreference } = require(${JSON.stringify(lib)});
      const big = "x".repeat(200000);
      for (let i = 0; ; i++) appendPreference(${JSON.stringify(file)}, { prompt: "p" + i, responses: [big, "b" + i], ranking: [1, 0], rankedBy: "human:child", id: String(i) });
    `;
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => { stderr += d; });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, sig) => resolve(sig)));
    const t0 = Date.now();
    while (!(fs.existsSync(file) && fs.statSync(file).size > 5_000_000)) {
      if (Date.now() - t0 > 45000) { child.kill("SIGKILL"); assert.fail(`the child wrote too little: ${stderr}`); }
      if (child.exitCode !== null) assert.fail(`the child exited: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    assert.equal(await exited, "SIGKILL");
    const r = readPreferences(file); // never throws: complete lines are complete records
    assert.ok(r.records.length >= 20, `only ${r.records.length} records`);
    r.records.forEach((x, i) => assert.equal(x.id, String(i)));
    const lines = fs.readFileSync(file, "utf8").split("\n").length - 1;
    assert.equal(r.records.length, lines);
    appendPreference(file, rec(99));
    const after = readPreferences(file);
    assert.equal(after.tornTail, null);
    assert.equal(after.records.length, r.records.length + 1);
    assert.deepEqual(after.records[after.records.length - 1], rec(99));
  });
});
