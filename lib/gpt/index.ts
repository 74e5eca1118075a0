// Chapter 04, the full GPT: the model, its size, the KV-cache decoder, sampling, batched generation.
export * from "./modelSize";
export * from "./gpt";
export * from "./contextualEmbeddings";
export * from "./decoder";
export * from "./sampling";
export * from "./rollout";
