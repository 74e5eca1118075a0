// Chapter 01, tokens: the corpus, and text to ids and back (characters, words, byte-pair encoding, GPT-2's tokenizer).
export * from "./corpus";
export * from "./tokenizer";
export * from "./wordTokenizer";
export * from "./charTokenizer";
export * from "./bpe";
export * from "./gpt2Tokenizer";
export * from "./tokenizerFiles";
