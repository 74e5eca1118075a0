// The course library, one folder per stage of the lesson, in lesson order; a stage imports
// only the stages before it (tests/imports.test.ts checks). Notebooks import from here:
//   import { ... } from "@llm-course/lib";
// The command-line tools and the course builder (tools/) are not part of it.
export * from "./core";
export * from "./show";
export * from "./tokens";
export * from "./embeddings";
export * from "./attention";
export * from "./gpt";
export * from "./pretrain";
export * from "./finetune";
export * from "./rlhf";
export * from "./rlvr";
export * from "./widgets";
