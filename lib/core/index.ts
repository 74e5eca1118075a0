// The shared core: the backend and its kernels, numbers (random, linear algebra), the optimiser and its schedule, files written safely.
export * from "./smoke";
export * from "./atomic";
export * from "./paths";
export * from "./backend";
export * from "./kernels";
export * from "./random";
export * from "./linalg";
export * from "./optim";
export * from "./schedule";
export * from "./safetensors";
