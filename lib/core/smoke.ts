/**
 * Smoke mode: `COURSE_SMOKE=1` makes every notebook and CLI pick tiny sizes so the
 * whole course executes in CI in minutes. Full mode is what a lecture shows.
 */
export function isSmoke(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.COURSE_SMOKE ?? "").trim().toLowerCase();
  return v !== "" && v !== "0" && v !== "false" && v !== "no";
}

/** Pick the smoke-mode or the full-mode value: `bySize({ smoke: 50, full: 2000 })`. */
export function bySize<T>(sizes: { smoke: T; full: T }, env: NodeJS.ProcessEnv = process.env): T {
  return isSmoke(env) ? sizes.smoke : sizes.full;
}
