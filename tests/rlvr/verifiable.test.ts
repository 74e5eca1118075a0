import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { checkFactAnswer, checkLetterAnswer, parseLetterQuestion, verifiablePrompts } from "../../lib/rlvr/verifiable";
import { loadSFTData } from "../../lib/finetune/sft";
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

  it("the fact checker: the reference up to case, punctuation and a polite closing; nothing looser", () => {
    for (const ok of ["The cabin boy.", "the cabin boy", "The cabin boy. Glad to help!", "  THE CABIN BOY!  "]) assert.equal(checkFactAnswer("The cabin boy.", ok), true, ok);
    for (const bad of ["A cabin boy.", "The cabin boy of the Pequod.", "cabin boy", "", "The cabin boy. The cook."]) assert.equal(checkFactAnswer("The cabin boy.", bad), false, bad);
  });

  it("verifiablePrompts: every fact (letter) question of each split, and its reference passes its own checker", () => {
    for (const split of ["train", "val", "test"]) {
      const examples = loadSFTData(path.join(repoRoot, "data", "sft", `${split}.jsonl`));
      const facts = verifiablePrompts(examples, "facts"), letters = verifiablePrompts(examples, "letters");
      assert.equal(facts.length, examples.filter((e) => e.kind === "fact" && e.messages.length === 2).length);
      assert.equal(letters.length, examples.filter((e) => e.kind === "transform").length);
      const byQuestion = new Map(examples.map((e) => [e.messages[0].content, e.messages[1].content]));
      for (const p of [...facts, ...letters]) {
        assert.ok(p.check(byQuestion.get(p.question)!), `${split}: "${p.question}"`);
        assert.equal(p.check("Glad to help!"), false, `${split}: "${p.question}" accepts a non-answer`);
      }
    }
  });
});
