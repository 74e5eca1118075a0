/**
 * Putting a course kernel in place of tfjs's, and back. tfjs keeps one global registry of
 * kernels keyed by (kernel name, backend); we remember what was there when ours went in,
 * whoever installed it (initBackend, a test, a benchmark), so it can be restored, and
 * installing twice never mistakes our own kernel for the original.
 */
import * as tf from "@tensorflow/tfjs";

// Keyed by our config, not by kernel name: two course kernels for one name (the two wasm
// BatchMatMuls) may be stacked, and each must restore what it replaced.
const originals = new Map<tf.KernelConfig, tf.KernelConfig | undefined>();

/** True while `config` is the registered kernel for its name and backend. */
export function kernelInstalled(config: tf.KernelConfig): boolean {
  return tf.getKernel(config.kernelName, config.backendName)?.kernelFunc === config.kernelFunc;
}

/** Register `config` in place of whatever is registered (idempotent). */
export function installKernel(config: tf.KernelConfig): void {
  if (kernelInstalled(config)) return;
  const current = tf.getKernel(config.kernelName, config.backendName);
  originals.set(config, current);
  if (current !== undefined) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

/** Put back the kernel `installKernel(config)` replaced (nothing if `config` is not installed). */
export function restoreKernel(config: tf.KernelConfig): void {
  if (!kernelInstalled(config)) return;
  tf.unregisterKernel(config.kernelName, config.backendName);
  const original = originals.get(config);
  originals.delete(config);
  if (original !== undefined) tf.registerKernel(original);
}
