import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { saveCheckpoint } from "../../lib/pretrain/checkpoint";
import { gptConfig, initGPT } from "../../lib/gpt/gpt";
import { chatTokenizer, saveSFTData, SFTExample } from "../../lib/finetune/sft";

// Fixture of the RLHF CLI tests: a tiny untrained chat model and a tiny data set in a temp dir.
const QA: Array<[string, string]> = [
  ["Who is Ahab?", "The captain."], ["Who is Stubb?", "A mate."], ["Hi!", "Hello."], ["Sea?", "Blue."],
  ["Who is Ishmael?", "The narrator."], ["What is the Pequod?", "A ship."], ["Repeat sea.", "sea"], ["Thanks!", "Welcome."],
];
export const TINY_EXAMPLES: SFTExample[] = QA.map(([q, a], i) => ({ id: `t-${i}`, kind: "fact", messages: [{ role: "user", content: q }, { role: "assistant", content: a }] }));

/** A tiny chat checkpoint (random weights, char tokenizer with the chat tokens) and data files in `dir`. */
export function makeTinyChatModel(dir: string): { ckpt: string; data: string } {
  const base = CharTokenizer.fromText(QA.flat().join(" ") + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .?!,'");
  const tokenizer = chatTokenizer(base);
  const config = gptConfig("tiny", { vocabSize: tokenizer.vocabSize, blockSize: 40, nEmbd: 32 });
  const params = initGPT(config, { seed: 1 });
  const ckpt = path.join(dir, "sft");
  saveCheckpoint(ckpt, { params, config, tokenizer, step: 0 });
  tf.dispose(Object.values(params));
  for (const split of ["train", "val", "test"]) saveSFTData(path.join(dir, "data", `${split}.jsonl`), TINY_EXAMPLES);
  return { ckpt, data: path.join(dir, "data", "train.jsonl") };
}

