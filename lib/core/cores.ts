/** How many cores this process may use (os.availableParallelism where Node has it: it respects CPU affinity). */
import * as os from "os";

export function availableCores(): number {
  const o = os as unknown as { availableParallelism?: () => number };
  return typeof o.availableParallelism === "function" ? o.availableParallelism() : os.cpus().length;
}
