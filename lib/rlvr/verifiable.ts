/**
 * Tasks with an exact checker (chapter 11): questions of the course's SFT data whose answers a
 * few lines of code can verify. The reward is the checker's verdict, not a learned model's
 * opinion, so it cannot be gamed the way a reward model can.
 *
 * - Letter questions ("What is the second letter of whale?"): one letter, checked by its
 *   position in the word. The SFT model already samples the right letter almost every time, so
 *   reinforcement learning has little left to sharpen here.
 * - Fact questions ("Who was Pip?"): the reference answer of the data set, compared after
 *   normalisation (case, punctuation, a polite closing). The SFT model samples the right answer
 *   sometimes but not reliably: this is the task that GRPO improves.
 */
import type { SFTExample } from "../finetune/sft";
import { normalizeAnswer, plainAnswer } from "../finetune/sftData";

/** A prompt whose answers a checker verifies. */
export interface VerifiablePrompt {
  question: string;
  check: (answer: string) => boolean;
}

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

/**
 * The fact checker: is `answer` the reference answer, up to case, punctuation and a polite
 * closing? ("the cabin boy", "The cabin boy. Glad to help!" are right for "The cabin boy.";
 * "A cabin boy.", "The cabin boy of the Pequod." are not.) Exact match, as TriviaQA's and
 * Tülu 3's checkers: a partial match would pay for answers that list several guesses.
 */
export function checkFactAnswer(reference: string, answer: string): boolean {
  return normalizeAnswer(plainAnswer(answer.trim())) === normalizeAnswer(plainAnswer(reference.trim()));
}

/** The task a course chapter trains on: which questions of the SFT data, checked how. */
export type VerifiableTask = "facts" | "letters";

/**
 * The single-turn questions of `examples` that `task` covers, each with its checker (fact
 * questions against their own reference answer, letter questions by parseLetterQuestion).
 */
export function verifiablePrompts(examples: readonly SFTExample[], task: VerifiableTask): VerifiablePrompt[] {
  const out: VerifiablePrompt[] = [];
  for (const e of examples) {
    if (e.messages.length !== 2) continue;
    const question = e.messages[0].content, reference = e.messages[1].content;
    if (task === "facts" && e.kind === "fact") out.push({ question, check: (a) => checkFactAnswer(reference, a) });
    if (task === "letters") {
      const q = parseLetterQuestion(question);
      if (q !== undefined) out.push({ question, check: (a) => checkLetterAnswer(q, a) });
    }
  }
  return out;
}
