/**
 * The course's own instruction-tuning data set (chapter 06), written by code, no download:
 *
 *   fact       questions over a fixed knowledge table about Moby-Dick (characters, ships,
 *              places), each fact asked in several phrasings;
 *   transform  questions whose answer is read off the question: the first, second or last
 *              letter of a word of the book;
 *   chat       short conversational turns (greetings, thanks, who are you), a few two-turn
 *              conversations, and hand-written free-form questions.
 *
 * As if written by several people, a quarter of the fact and transformation answers of train and
 * val end with a polite closing ("w. Glad to help!"): the fine-tuned model learns to write both
 * styles, and the labeller of chapters 07–09, who likes polite answers, has a preference the
 * rankings can teach.
 *
 * Split (deterministic, seeded): for every fact ONE phrasing is held out for test and one for
 * validation, the others train — so the test asks facts the model was taught, in words it was
 * not taught them in; transformations are tested on words never transformed in training.
 * Everything uses only characters of Moby-Dick (the char tokenizer of the pretrained model
 * knows nothing else), and every example is short: the model's context is 64 characters.
 *
 * `makeSFTData` builds the three splits; lib/tools/cli/makeSftData.ts writes them to
 * data/sft/{train,val,test}.jsonl (schema: data/sft/README.md). `referenceAnswer` looks a
 * question of the table up (the RLHF chapters' "true preference" rule uses it).
 */
import { mobyDickText } from "../tokens/corpus";
import { createRng } from "../core/random";

export interface SFTDataMessage {
  role: "user" | "assistant";
  content: string;
}

export interface SFTDataExample {
  id: string;
  kind: "fact" | "transform" | "chat";
  messages: SFTDataMessage[];
}

export interface SFTDataSplits {
  train: SFTDataExample[];
  val: SFTDataExample[];
  test: SFTDataExample[];
}

/** One fact of the table: every phrasing asks the same thing, `answer` is the reference reply. */
export interface SFTFact {
  /** Short key, e.g. "role:Ahab". */
  key: string;
  questions: string[];
  answer: string;
}

// ---------------------------------------------------------------------------------------
// The knowledge table

/** Who each character is (short, as a tiny model must write it out letter by letter). */
const ROLES: Array<[string, string]> = [
  ["Ahab", "The captain."],
  ["Ishmael", "The narrator."],
  ["Queequeg", "A harpooneer."],
  ["Starbuck", "The first mate."],
  ["Stubb", "The second mate."],
  ["Flask", "The third mate."],
  ["Tashtego", "A harpooneer."],
  ["Daggoo", "A harpooneer."],
  ["Fedallah", "A harpooneer."],
  ["Pip", "The cabin boy."],
  ["Fleece", "The cook."],
  ["Perth", "The blacksmith."],
  ["Peleg", "An owner."],
  ["Bildad", "An owner."],
  ["Father Mapple", "A preacher."],
  ["Elijah", "A prophet."],
  ["Moby Dick", "A white whale."],
  ["Gardiner", "A captain."],
  ["Boomer", "A captain."],
  ["Bulkington", "A sailor."],
];

const ROLE_TEMPLATES = [
  "Who is X?",
  "Who was X?",
  "Tell me who X is.",
  "What is X's role?",
  "Describe X briefly.",
  "Do you know who X is?",
];

/** Position on the ship → who holds it. */
const POSTS: Array<[string, string]> = [
  ["captain of the Pequod", "Ahab."],
  ["first mate of the Pequod", "Starbuck."],
  ["second mate of the Pequod", "Stubb."],
  ["third mate of the Pequod", "Flask."],
  ["cook of the Pequod", "Fleece."],
  ["blacksmith of the Pequod", "Perth."],
  ["cabin boy of the Pequod", "Pip."],
  ["narrator of the book", "Ishmael."],
  ["harpooneer of Starbuck", "Queequeg."],
  ["harpooneer of Stubb", "Tashtego."],
  ["harpooneer of Flask", "Daggoo."],
  ["captain of the Rachel", "Gardiner."],
];

const POST_TEMPLATES = [
  "Who is the X?",
  "Who was the X?",
  "Name the X.",
  "Who is X?",
  "Tell me the X.",
];

/** Where a character comes from. */
const HOMES: Array<[string, string]> = [
  ["Queequeg", "Kokovoko."],
  ["Starbuck", "Nantucket."],
  ["Tashtego", "Gay Head."],
  ["Daggoo", "Africa."],
  ["Stubb", "Cape Cod."],
  ["Flask", "Martha's Vineyard."],
  ["Bulkington", "Virginia."],
  ["Ishmael", "Manhattan."],
];

const HOME_TEMPLATES = [
  "Where is X from?",
  "Where does X come from?",
  "What is X's home?",
  "Where was X born?",
  "Which place is X from?",
];

/** Other facts of the book, each with hand-written phrasings. */
const MISC: Array<[string, string[], string]> = [
  ["author", ["Who wrote Moby-Dick?", "Who is the author of Moby-Dick?", "Who wrote the book?", "Which writer wrote Moby-Dick?", "Whose book is Moby-Dick?"], "Melville."],
  ["first-line", ["What is the first line of the book?", "How does Moby-Dick begin?", "What are the first words of the book?", "Quote the opening line.", "What is the opening line?"], "Call me Ishmael."],
  ["whale-color", ["What color is Moby Dick?", "What colour is the whale?", "Is Moby Dick black or white?", "What is the color of Moby Dick?", "What colour is Moby Dick?"], "White."],
  ["whale-kind", ["What kind of whale is Moby Dick?", "What sort of whale is Moby Dick?", "Which kind of whale is he?", "What species is Moby Dick?", "Moby Dick is what kind of whale?"], "A sperm whale."],
  ["port", ["From which port does the Pequod sail?", "Where does the Pequod sail from?", "What is the Pequod's home port?", "Where does the voyage begin?", "Which port does the Pequod leave?"], "Nantucket."],
  ["inn", ["Where does Ishmael meet Queequeg?", "In which inn do they meet?", "What is the name of the inn?", "Where do Ishmael and Queequeg meet?", "Which inn does Ishmael stay at?"], "The Spouter-Inn."],
  ["ahab-goal", ["What does Ahab want?", "What is Ahab's goal?", "What is Ahab hunting?", "Why does Ahab sail?", "What does Ahab seek?"], "Moby Dick."],
  ["ahab-leg", ["What is Ahab's leg made of?", "What is Ahab's false leg made of?", "Of what is Ahab's leg made?", "What material is Ahab's leg?", "What is his ivory leg made from?"], "Whale bone."],
  ["lost-leg", ["How did Ahab lose his leg?", "What took Ahab's leg?", "Who bit off Ahab's leg?", "What happened to Ahab's leg?", "Who took Ahab's leg?"], "Moby Dick."],
  ["survivor", ["Who survives at the end?", "Who lives at the end of the book?", "Who is the only survivor?", "Who is left alive at the end?", "Who survives the wreck?"], "Ishmael."],
  ["saved-by", ["What saves Ishmael?", "What keeps Ishmael afloat?", "How is Ishmael saved?", "What does Ishmael float on?", "What does Ishmael cling to?"], "A coffin."],
  ["rescue", ["Which ship rescues Ishmael?", "What ship finds Ishmael?", "Who picks up Ishmael?", "Which ship saves Ishmael?", "What ship rescues the survivor?"], "The Rachel."],
  ["doubloon", ["What does Ahab nail to the mast?", "What is nailed to the mast?", "What coin is on the mast?", "What reward does Ahab offer?", "What prize is on the mainmast?"], "A doubloon."],
  ["end", ["How does the book end?", "What happens to the Pequod?", "What is the fate of the Pequod?", "How does the voyage end?", "What does the whale do?"], "It sinks."],
  ["chapel", ["Who preaches in the chapel?", "Who gives the sermon?", "Who is the preacher?", "Who preaches about Jonah?", "Who speaks from the pulpit?"], "Father Mapple."],
  ["sermon", ["What is the sermon about?", "Which story does Mapple preach?", "What does Father Mapple preach?", "What is Mapple's sermon on?", "Whose story is the sermon?"], "Jonah."],
  ["owners", ["Who owns the Pequod?", "Who are the owners of the Pequod?", "Whose ship is the Pequod?", "Who owns the ship?", "Name the owners of the Pequod."], "Peleg and Bildad."],
  ["whale-name", ["What is the white whale called?", "What is the name of the whale?", "Name the white whale.", "What do they call the white whale?", "What is the whale's name?"], "Moby Dick."],
  ["ship-name", ["What is the name of Ahab's ship?", "What ship does Ahab command?", "Name Ahab's ship.", "What is the ship called?", "Which ship does Ishmael join?"], "The Pequod."],
  ["oil", ["What do whalers get from whales?", "Why do they hunt whales?", "What is taken from a whale?", "What do whalemen seek?", "What do whales give the ship?"], "Oil."],
];

/** Every fact of the table, in a fixed order. */
export function sftFacts(): SFTFact[] {
  const facts: SFTFact[] = [];
  for (const [who, answer] of ROLES) facts.push({ key: `role:${who}`, questions: ROLE_TEMPLATES.map((t) => t.replace("X", who)), answer });
  for (const [post, answer] of POSTS) facts.push({ key: `post:${post}`, questions: POST_TEMPLATES.map((t) => t.replace("X", post)), answer });
  for (const [who, answer] of HOMES) facts.push({ key: `home:${who}`, questions: HOME_TEMPLATES.map((t) => t.replace("X", who)), answer });
  for (const [key, questions, answer] of MISC) facts.push({ key, questions, answer });
  return facts;
}

// ---------------------------------------------------------------------------------------
// Transformations

/** A word must occur this often in the book (written in lower case) to be transformed. */
export const TRANSFORM_MIN_COUNT = 10;
/** Words held out for the test and validation sets (each asked once, never seen in training). */
export const TRANSFORM_TEST_WORDS = 240;
export const TRANSFORM_VAL_WORDS = 80;

/**
 * Words of the book to transform: lower case, 3–8 letters, at least TRANSFORM_MIN_COUNT
 * occurrences (about 1,800 words), most frequent first. Every one of them is a word the
 * pretrained model has read many times; the answer is read off the question, so a small
 * model can learn the rule from a few thousand examples and apply it to words it was never
 * asked about.
 */
export function transformWords(text: string = mobyDickText()): string[] {
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/[A-Za-z]+/g)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  return [...counts]
    .filter(([w, n]) => /^[a-z]{3,8}$/.test(w) && n >= TRANSFORM_MIN_COUNT)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([w]) => w);
}

interface TransformKind {
  name: string;
  templates: string[];
  apply: (w: string) => string;
}

const TRANSFORMS: TransformKind[] = [
  // Each answer is one letter copied from the question: a rule a small model can learn from
  // examples and apply to any word (attention finds the word and the place, the head copies).
  { name: "first", templates: ["What is the first letter of X?", "First letter of X?", "Which letter does X start with?", "How does X begin?", "Give the first letter of X."], apply: (w) => w[0] },
  { name: "last", templates: ["What is the last letter of X?", "Last letter of X?", "Which letter does X end with?", "How does X end?", "Give the last letter of X."], apply: (w) => w[w.length - 1] },
  { name: "second", templates: ["What is the second letter of X?", "Second letter of X?", "Which letter comes second in X?", "Give the second letter of X."], apply: (w) => w[1] },
];

// ---------------------------------------------------------------------------------------
// Conversation

/** Single-turn chat: phrasings → one reply. */
const CHAT: Array<[string, string[], string]> = [
  ["hello", ["Hello!", "Hi!", "Hi there.", "Good morning!", "Hey!", "Hello there."], "Hello!"],
  ["thanks", ["Thanks!", "Thank you.", "Thank you very much!", "Many thanks.", "Thanks a lot.", "Cheers, thanks!"], "You are welcome."],
  ["bye", ["Goodbye.", "Bye!", "See you later.", "Farewell!", "Good night.", "I must go now."], "Farewell!"],
  ["who", ["Who are you?", "What are you?", "Are you a person?", "What is your name?", "Tell me about yourself.", "Are you human?"], "A small model."],
  ["how", ["How are you?", "How are you today?", "How do you do?", "Are you well?", "How is it going?", "How do you feel?"], "Very well."],
  ["help", ["What can you do?", "How can you help me?", "What do you know?", "What can I ask you?", "What are you good at?", "Can you help me?"], "I answer questions."],
];

/** Hand-written free-form questions with one reference answer each. */
const FREE: Array<[string, string]> = [
  ["What is a harpoon?", "A spear thrown at whales."],
  ["What is a harpooneer?", "The man who throws the harpoon."],
  ["What is ambergris?", "A waxy stuff found in whales."],
  ["What is a whaleboat?", "A small boat to chase whales."],
  ["What is spermaceti?", "Oil from a sperm whale's head."],
  ["What is a mast?", "The tall pole that holds the sails."],
  ["What is a mate on a ship?", "An officer under the captain."],
  ["What is a voyage?", "A long journey by sea."],
  ["What does a cook do?", "He makes the food of the crew."],
  ["What is a coffin?", "A box for the dead."],
  ["What is a sermon?", "A talk given by a preacher."],
  ["Is a whale a fish?", "Ishmael says it is."],
  ["What is a spout?", "The spray a whale blows."],
  ["What is a squid?", "A sea creature with arms."],
  ["Is the sea large?", "Yes, very large."],
  ["Where do whales live?", "In the sea."],
  ["What do sailors fear?", "Storms and the white whale."],
  ["What is a lance?", "A long spear to kill a whale."],
];

/** Two-turn conversations: greeting, then a question of the table. */
const TWO_TURN_OPENERS: Array<[string, string]> = [
  ["Hi!", "Hello!"],
  ["Hello.", "Hello!"],
  ["Hey!", "Hi!"],
];

// ---------------------------------------------------------------------------------------
// Building the splits

const pad = (n: number) => String(n).padStart(4, "0");
const turn = (q: string, a: string): SFTDataMessage[] => [{ role: "user", content: q }, { role: "assistant", content: a }];

/** Deterministic: the same seed gives the same files, byte for byte. */
export function makeSFTData(seed = 1337): SFTDataSplits {
  const rng = createRng(`sft-data:${seed}`);
  const out: SFTDataSplits = { train: [], val: [], test: [] };
  const counters = { fact: 0, transform: 0, chat: 0 };
  const add = (split: keyof SFTDataSplits, kind: SFTDataExample["kind"], messages: SFTDataMessage[]) => {
    counters[kind] += 1;
    out[split].push({ id: `${kind}-${pad(counters[kind])}`, kind, messages });
  };

  // Facts: one phrasing to test, one to val, the rest twice to train (the facts are the core).
  const facts = sftFacts();
  const trainQuestions = new Map<string, string[]>();
  for (const f of facts) {
    const qs = rng.shuffle([...f.questions]);
    trainQuestions.set(f.key, qs.slice(2));
    add("test", "fact", turn(qs[0], f.answer));
    add("val", "fact", turn(qs[1], f.answer));
    for (const q of qs.slice(2)) add("train", "fact", turn(q, f.answer));
  }
  // Transformations: test and validation words held out; each (word, transformation) once, in a
  // random phrasing.
  const words = rng.shuffle(transformWords());
  const testWords = new Set(words.slice(0, TRANSFORM_TEST_WORDS));
  const valWords = new Set(words.slice(TRANSFORM_TEST_WORDS, TRANSFORM_TEST_WORDS + TRANSFORM_VAL_WORDS));
  for (const w of words) {
    const split = testWords.has(w) ? "test" : valWords.has(w) ? "val" : "train";
    // One transformation per held-out word, two per training word.
    const kinds = rng.shuffle([...TRANSFORMS]).slice(0, split === "train" ? 2 : 1);
    for (const t of kinds) add(split, "transform", turn(t.templates[rng.int(t.templates.length)].replace("X", w), t.apply(w)));
  }
  // Chat: one phrasing of each to test and val, the rest to train.
  for (const [, phrasings, reply] of CHAT) {
    const qs = rng.shuffle([...phrasings]);
    add("test", "chat", turn(qs[0], reply));
    add("val", "chat", turn(qs[1], reply));
    for (const q of qs.slice(2)) add("train", "chat", turn(q, reply));
  }
  // Free-form, hand-written: all train (one phrasing each: nothing to hold out).
  for (const [q, a] of FREE) add("train", "chat", turn(q, a));
  // Two-turn: a greeting, then a short fact question (from the facts' TRAIN phrasings).
  const shortFacts = facts.filter((f) => f.answer.length <= 18);
  for (let i = 0; i < 40; i++) {
    const [hi, hello] = TWO_TURN_OPENERS[rng.int(TWO_TURN_OPENERS.length)];
    const f = shortFacts[rng.int(shortFacts.length)];
    const q = trainQuestions.get(f.key)!.filter((x) => x.length <= 26);
    if (q.length === 0) continue;
    const split = i % 10 === 0 ? "test" : i % 10 === 1 ? "val" : "train";
    add(split, "chat", [...turn(hi, hello), ...turn(q[rng.int(q.length)], f.answer)]);
  }
  // Demonstrations by several writers: some end their answer with a polite word. The test keeps
  // the plain references (its metric is exact match).
  const politeRng = createRng(`sft-polite:${seed}`);
  for (const split of ["train", "val"] as const) {
    for (const ex of out[split]) {
      if (ex.kind === "chat" || ex.messages.length !== 2 || politeRng.next() >= POLITE_FRACTION) continue;
      const content = politeAnswer(ex.messages[1].content, POLITE_CLOSINGS[politeRng.int(POLITE_CLOSINGS.length)]);
      // Only where the conversation still fits the 64-token context with its 4 chat markers.
      if ([...ex.messages[0].content].length + [...content].length + 4 <= 65) ex.messages[1] = { role: "assistant", content };
    }
  }
  for (const split of ["train", "val", "test"] as const) rng.shuffle(out[split]);
  return out;
}

/** Share of the fact and transformation answers of train and val written with a polite closing. */
export const POLITE_FRACTION = 0.25;
export const POLITE_CLOSINGS = ["Glad to help!", "Happy to help.", "Thank you for asking."];

/** The answer without its polite closing: "w. Glad to help!" → "w.", "The captain." → "The captain." */
export function plainAnswer(answer: string): string {
  for (const c of POLITE_CLOSINGS) if (answer.endsWith(" " + c)) return answer.slice(0, answer.length - c.length - 1);
  return answer;
}

/** "w" + "Glad to help!" → "w. Glad to help!"; "The captain." + … → "The captain. Glad to help!" */
export function politeAnswer(answer: string, closing: string): string {
  return `${/[.!?]$/.test(answer) ? answer : answer + "."} ${closing}`;
}

// ---------------------------------------------------------------------------------------
// Lookup

/** Lower case, letters/digits/spaces only, spaces collapsed: "Ahab." and " ahab" compare equal. */
export function normalizeAnswer(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9 ]+/g, " ").replace(/\s+/g, " ").trim();
}

let lookup: Map<string, string> | undefined;

/**
 * The reference answer to a question of the data set (any phrasing, any split; compared after
 * normalizeAnswer), or undefined when the question is not one of the table's.
 */
export function referenceAnswer(question: string): string | undefined {
  if (lookup === undefined) {
    lookup = new Map();
    const d = makeSFTData();
    for (const ex of [...d.train, ...d.val, ...d.test]) {
      const last = ex.messages.length - 1;
      lookup.set(normalizeAnswer(ex.messages[last - 1].content), plainAnswer(ex.messages[last].content));
    }
  }
  return lookup.get(normalizeAnswer(question));
}

/** Is `reply` correct for `question` (normalised exact match with the reference)? undefined: unknown question. */
export function isCorrectAnswer(question: string, reply: string): boolean | undefined {
  const ref = referenceAnswer(question);
  return ref === undefined ? undefined : normalizeAnswer(ref) === normalizeAnswer(reply);
}

