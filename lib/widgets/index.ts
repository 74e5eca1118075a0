// Live widgets: the course's models in its web pages (chapters 01, 05, 07, 09).
export * from "./spec";
export * from "./live";
export * from "./views";
export * from "./show";
