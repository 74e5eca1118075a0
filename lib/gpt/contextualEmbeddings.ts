/**
 * Static and contextual embeddings of a word.
 *
 * A static embedding (word2vec, GloVe, or the first layer of any GPT) gives a token one vector,
 * the same in every sentence: "right" in "a right whale" and in "you are right" is one row of the
 * table. A transformer's hidden states are contextual: after attention has mixed in the tokens
 * before it, the vector at "right" depends on the sentence (ELMo and BERT made this the standard
 * in 2018; every GPT's hidden states are contextual in the same way, reading only leftwards).
 *
 *   static(word)     = mean of wte[id] over the word's tokens             [C], same everywhere
 *   contextual(word) = mean of the last hidden state over the word's tokens [C], per sentence
 */
import * as tf from "@tensorflow/tfjs";
import { gptForward, type GPTConfig, type GPTParams } from "./gpt";
import type { Tokenizer } from "../tokens/tokenizer";

export interface WordInContext {
  sentence: string;
  word: string;
  /** Token positions [start, end) of the word's first occurrence in the sentence. */
  span: [number, number];
  /** Mean of the word's rows of the token-embedding table: the same in every sentence. [C] */
  static: number[];
  /** Mean of the model's last hidden states (after the final norm) over the word's tokens. [C] */
  contextual: number[];
}

/**
 * The static and contextual vectors of `word` (its first occurrence) in each sentence.
 * The word's tokens are found by encoding the text before it and the text up to its end, so
 * it works for any tokenizer whose pieces do not straddle the word's start (characters always).
 */
export function wordInContext(
  model: { params: GPTParams; config: GPTConfig; tokenizer: Tokenizer },
  sentences: readonly string[],
  word: string,
): WordInContext[] {
  const { params, config, tokenizer } = model;
  return sentences.map((sentence) => {
    const at = sentence.indexOf(word);
    if (word === "" || at < 0) throw new Error(`wordInContext: "${word}" does not occur in "${sentence}"`);
    const ids = tokenizer.encode(sentence);
    if (ids.length > config.blockSize) {
      throw new Error(`wordInContext: "${sentence}" is ${ids.length} tokens; the model reads at most ${config.blockSize}`);
    }
    const start = tokenizer.encode(sentence.slice(0, at)).length;
    const end = tokenizer.encode(sentence.slice(0, at + word.length)).length;
    if (end <= start) throw new Error(`wordInContext: "${word}" has no tokens of its own in "${sentence}"`);
    const [stat, ctx] = tf.tidy(() => {
      const { logits, hidden } = gptForward(params, config, tf.tensor2d([ids], [1, ids.length], "int32"), { returnHidden: true });
      logits.dispose();
      const span = tf.tensor1d(ids.slice(start, end), "int32");
      const staticVec = tf.gather(params["wte.weight"], span).mean(0); // [C]
      const contextual = hidden.slice([0, start, 0], [1, end - start, config.nEmbd]).reshape([end - start, config.nEmbd]).mean(0); // [C]
      return [staticVec, contextual];
    });
    const out: WordInContext = {
      sentence, word, span: [start, end],
      static: Array.from(stat.dataSync()), contextual: Array.from(ctx.dataSync()),
    };
    tf.dispose([stat, ctx]);
    return out;
  });
}
