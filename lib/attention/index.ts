// Chapters 02–03: positional encodings and attention.
export * from "./positional";
export * from "./attention";
