import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { checkLetterAnswer, parseLetterQuestion } from "../../lib/rlvr/verifiable";
import { repoRoot } from "../../lib/core/paths";

describe("the verifiable letter task (chapter 11)", () => {
  it("parses every phrasing of the SFT data's letter questions, and nothing else", () => {
    assert.deepEqual(parseLetterQuestion("What is the second letter of whale?"), { word: "whale", position: 1, letter: "h" });
    assert.deepEqual(parseLetterQuestion("How does hidden begin?"), { word: "hidden", position: 0, letter: "h" });
    assert.deepEqual(parseLetterQuestion("Give the last letter of spouting."), { word: "spouting", position: -1, letter: "g" });
    assert.deepEqual(parseLetterQuestion("Which letter comes second in ship?"), { word: "ship", position: 1, letter: "h" });
    assert.deepEqual(parseLetterQuestion("Which letter does plank start with?"), { word: "plank", position: 0, letter: "p" });
    assert.deepEqual(parseLetterQuestion("Which letter does plank end with?"), { word: "plank", position: -1, letter: "k" });
    assert.equal(parseLetterQuestion("Who was Starbuck?"), undefined);
    assert.equal(parseLetterQuestion("What is the second letter of a?"), undefined, "a one-letter word has no second letter");
  });

  it("the checker accepts the letter as the answer's first word, and only that", () => {
    const q = parseLetterQuestion("What is the last letter of whale?")!;
    for (const ok of ["e", "e.", "E. Happy to help.", "  e "]) assert.equal(checkLetterAnswer(q, ok), true, ok);
    for (const bad of ["the letter e", "ea", "a", "", "e-", "h e"]) assert.equal(checkLetterAnswer(q, bad), false, bad);
  });

  it("agrees with the data: every letter question of data/sft has a reference answer the checker accepts", () => {
    for (const split of ["train", "val", "test"]) {
      const rows = fs.readFileSync(path.join(repoRoot, "data", "sft", `${split}.jsonl`), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      const letters = rows.filter((r) => r.kind === "transform");
      assert.ok(letters.length >= 80, `${split}: ${letters.length} letter questions`);
      for (const r of letters) {
        const q = parseLetterQuestion(r.messages[0].content);
        assert.ok(q, `${split} ${r.id}: "${r.messages[0].content}" not parsed`);
        assert.ok(checkLetterAnswer(q!, r.messages[1].content), `${split} ${r.id}: reference "${r.messages[1].content}" rejected`);
      }
    }
  });
});
