// Chapter 06, supervised fine-tuning: the question-and-answer data, the chat format, SFT and LoRA.
export * from "./lora";
export * from "./sft";
