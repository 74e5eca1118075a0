// Chapters 07–09, learning from preferences: rankings, the simulated labeller, the chat format, the reward model, PPO, DPO, and the honest evaluation.
export * from "./preferences";
export * from "./labeller";
export * from "./chat";
export * from "./rewardModel";
export * from "./ppo";
export * from "./dpo";
export * from "./evaluate";
