// Chapter 05, pretraining: batches, the training loop on every core, checkpoints, the course's base model, Hugging Face's GPT-2 format
// (and chapter 10's Llama format).
export * from "./batches";
export * from "./checkpoint";
export * from "./dataParallel";
export * from "./trainer";
export * from "./pretrain";
export * from "./hfGpt2";
export * from "./hfLlama";
export * from "./modelDir";
