// Chapter 11, reinforcement learning from verifiable rewards: a task with an exact checker, GRPO.
export * from "./verifiable";
export * from "./grpo";
