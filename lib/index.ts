// The course library: one module per concept of the lesson. Notebooks import from here:
//   import { ... } from "@llm-course/lib";
// Each line below is one module; keep one export line per module.
export * from "./smoke";
export * from "./atomic";
export * from "./paths";
export * from "./display";
export * from "./plot";
export * from "./corpus";
export * from "./modelSize";
export * from "./bigram";
export * from "./tokenizer";
export * from "./wordTokenizer";
export * from "./charTokenizer";
export * from "./bpe";
export * from "./gpt2Tokenizer";
export * from "./backend";
export * from "./kernels";
export * from "./random";
export * from "./linalg";
export * from "./positional";
export * from "./attention";
export * from "./optim";
export * from "./schedule";
export * from "./batches";
export * from "./checkpoint";
export * from "./trainer";
