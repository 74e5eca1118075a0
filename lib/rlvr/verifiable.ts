/**
 * A task with an exact checker (chapter 11): the letter questions of the course's SFT data —
 * "What is the second letter of whale?", "How does hidden begin?" — whose answer is one letter
 * that a few lines of code can verify. The SFT model answers them often but not always when it
 * samples, which is what reinforcement learning from a verifiable reward can sharpen: the
 * reward is the checker's verdict, not a learned model's opinion, so it cannot be gamed.
 */

/** A letter question the checker understands: which word, which letter of it. */
export interface LetterQuestion {
  word: string;
  /** 0 for the first letter, 1 for the second, −1 for the last. */
  position: 0 | 1 | -1;
  /** The expected answer: that letter. */
  letter: string;
}

const WORD = "([a-z]+)";
const PATTERNS: ReadonlyArray<[RegExp, 0 | 1 | -1]> = [
  [new RegExp(`^(?:what is the |give the )?first letter of ${WORD}[.?]?$`), 0],
  [new RegExp(`^(?:what is the |give the )?second letter of ${WORD}[.?]?$`), 1],
  [new RegExp(`^which letter comes second in ${WORD}[.?]?$`), 1],
  [new RegExp(`^(?:what is the |give the )?last letter of ${WORD}[.?]?$`), -1],
  [new RegExp(`^how does ${WORD} begin[.?]?$`), 0],
  [new RegExp(`^how does ${WORD} end[.?]?$`), -1],
  [new RegExp(`^which letter does ${WORD} start with[.?]?$`), 0],
  [new RegExp(`^which letter does ${WORD} end with[.?]?$`), -1],
];

/** The letter question in `text`, or undefined when it is not one (facts, chat, anything else). */
export function parseLetterQuestion(text: string): LetterQuestion | undefined {
  const q = text.trim().toLowerCase();
  for (const [re, position] of PATTERNS) {
    const m = re.exec(q);
    if (!m) continue;
    const word = m[1];
    if (position === 1 && word.length < 2) return undefined;
    return { word, position, letter: position === -1 ? word[word.length - 1] : word[position] };
  }
  return undefined;
}

/**
 * The checker: does `answer` give the expected letter? The answer's first word must be that
 * letter alone ("h", "h.", "H. Happy to help." are right; "the letter h", "ha", "g" are not).
 * Strict on purpose: a reward that accepts the letter anywhere in the text would pay for
 * answers that list several letters.
 */
export function checkLetterAnswer(question: LetterQuestion, answer: string): boolean {
  const first = answer.trim().split(/\s+/)[0] ?? "";
  return first.replace(/[.!,;:]+$/, "").toLowerCase() === question.letter;
}
