// Showing results in a notebook: tables, markdown, live charts.
export * from "./display";
export * from "./plot";
