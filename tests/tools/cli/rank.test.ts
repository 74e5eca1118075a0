import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Readable } from "stream";
import { initBackend } from "../../../lib/core/backend";
import { readPreferences } from "../../../lib/rlhf/preferences";
import { main as rankMain, parseRankArgs, parseRanking } from "../../../lib/tools/cli/rank";
import { makeTinyChatModel } from "../../rlhf/rlhfFixture";

describe("rank CLI (a person ranks sampled answers)", function () {
  this.timeout(120000);
  let dir: string;
  let ckpt: string;
  let data: string;
  const env = { COURSE_SMOKE: "1" };
  before(async () => {
    await initBackend({ quiet: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rank-cli-"));
    ({ ckpt, data } = makeTinyChatModel(dir));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function rank(input: string[], ...argv: string[]) {
    let out = "";
    const err: string[] = [];
    const code = await rankMain(argv, Readable.from(input), (t) => (out += t), (l) => err.push(l), env);
    return { code, out, err };
  }

  it("parses a ranking: 1-based, best first, each answer once", () => {
    assert.deepEqual(parseRanking("2 1 3", 3), [1, 0, 2]);
    assert.deepEqual(parseRanking(" 3,1 , 2 ", 3), [2, 0, 1]);
    assert.match(parseRanking("1 2", 3) as string, /all 3 answer numbers/);
    assert.match(parseRanking("1 1 2", 3) as string, /appears twice/);
    assert.match(parseRanking("1 2 4", 3) as string, /"4" is not an answer number 1..3/);
    assert.match(parseRanking("a b c", 3) as string, /not an answer number/);
    const a = parseRankArgs([], { COURSE_ARTIFACTS: "/x", USER: "ann" });
    assert.equal(a.out, path.join("/x", "preferences-human.jsonl"));
    assert.equal(a.name, "ann");
    assert.throws(() => parseRankArgs(["--k", "1"]), /--k must be an integer >= 2/);
  });

  it("piped rankings are appended as human records; bad lines are asked again; skip and EOF", async () => {
    const file = path.join(dir, "human.jsonl");
    const r = await rank(["3 1 2\n", "1 1 2\n", "nonsense\n", "1 2 3\n", "s\n", "2 3 1\n"],
      "--checkpoint", ckpt, "--data", data, "--k", "3", "--prompts", "5", "--max-new-tokens", "5", "--name", "tester", "--out", file, "--json");
    assert.equal(r.code, 0, r.err.join("\n"));
    const recs = readPreferences(file).records;
    assert.equal(recs.length, 3);
    assert.deepEqual(recs.map((x) => x.ranking), [[2, 0, 1], [0, 1, 2], [1, 2, 0]]);
    assert.ok(recs.every((x) => x.rankedBy === "human:tester" && x.responses.length === 3 && typeof x.reference === "string"));
    assert.match(r.out, /appears twice; try again/);
    assert.match(r.out, /Question 1\/5: /);
    const last = JSON.parse(r.out.trim().split("\n").pop() as string);
    assert.deepEqual(last, { ranked: 3, skipped: 1, file, records: 3 });
    // A second session appends (after a torn line from a kill, which is cut off first).
    fs.appendFileSync(file, '{"prompt": "half a rec');
    const r2 = await rank(["1 2\n", "q\n", "2 1\n"], "--checkpoint", ckpt, "--data", data, "--k", "2", "--name", "bob", "--out", file, "--json");
    assert.equal(r2.code, 0, r2.err.join("\n"));
    const all = readPreferences(file);
    assert.equal(all.records.length, 4);
    assert.equal(all.tornTail, null);
    assert.equal(all.records[3].rankedBy, "human:bob");
    assert.ok(r2.err.some((l) => /removed \d+ bytes/.test(l)));
  });

  it("an --out file that cannot be written is refused before the first question, not at the first ranking's save", async () => {
    const blocker = path.join(dir, "a-file");
    fs.writeFileSync(blocker, "");
    const r = await rank(["1 2\n"], "--checkpoint", ckpt, "--data", data, "--k", "2", "--out", path.join(blocker, "prefs.jsonl"));
    assert.equal(r.code, 2);
    assert.match(r.err[r.err.length - 1], /^rank: --out .*a-file\/prefs\.jsonl: cannot write there \(a file stands where a folder should be\) \(see --help\)$/);
    assert.doesNotMatch(r.out, /Question 1/);
  });

  it("a missing checkpoint: one line, exit code 2", async () => {
    const r = await rank([], "--checkpoint", path.join(dir, "nope"), "--data", data);
    assert.equal(r.code, 2);
    assert.match(r.err[r.err.length - 1], /^rank: cannot load the checkpoint/);
  });
});
