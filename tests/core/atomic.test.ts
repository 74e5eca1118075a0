import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readRegularFile } from "../../lib/core/atomic";
import { loadCorpus } from "../../lib/tokens/corpus";
import { loadSFTData } from "../../lib/finetune/sft";
import { readPreferences } from "../../lib/rlhf/preferences";

describe("reading data files: only regular files", () => {
  let dir: string, fifo: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "regular-"));
    fifo = path.join(dir, "pipe");
    execFileSync("mkfifo", [fifo]); // a pipe nobody writes to: reading it would block forever
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reads a regular file; names a missing one, a directory, a pipe and a device in one line", () => {
    const f = path.join(dir, "a.txt");
    fs.writeFileSync(f, "hello");
    assert.equal(readRegularFile(f, "text").toString(), "hello");
    assert.throws(() => readRegularFile(path.join(dir, "none"), "a text file"), { message: `${path.join(dir, "none")}: no such file; expected a text file` });
    assert.throws(() => readRegularFile(dir, "a text file"), { message: `${dir}: is a directory, not a regular file; expected a text file` });
    assert.throws(() => readRegularFile(fifo, "a text file"), { message: `${fifo}: is a pipe, not a regular file; expected a text file` });
    assert.throws(() => readRegularFile("/dev/zero", "a text file"), { message: "/dev/zero: is a device, not a regular file; expected a text file" });
  });

  it("the corpus, SFT data and rankings loaders refuse a pipe, a device or a directory instead of reading without end", async () => {
    await assert.rejects(loadCorpus(fifo), /^Error: loadCorpus: .*pipe: is a pipe, not a regular file; expected a UTF-8 text file/);
    await assert.rejects(loadCorpus("/dev/zero"), /^Error: loadCorpus: \/dev\/zero: is a device, not a regular file/);
    assert.throws(() => loadSFTData(fifo), /pipe: is a pipe, not a regular file; expected a JSONL file of conversations$/);
    assert.throws(() => loadSFTData(dir), /: is a directory, not a regular file; expected a JSONL file of conversations$/);
    assert.throws(() => readPreferences(fifo), /pipe: is a pipe, not a regular file; expected a JSONL file of rankings$/);
  });
});
