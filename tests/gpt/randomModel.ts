import * as tf from "@tensorflow/tfjs";
import { GPTConfig, initGPT } from "../../lib/gpt/gpt";

/** Non-trivial weights: GPT-2 init leaves biases 0 and norms 1/0, which would hide bugs there. */
export function randomModel(config: GPTConfig, seed: number) {
  const params = initGPT(config, { seed });
  let s = seed;
  for (const p of Object.values(params)) if (p.rank === 1) p.assign(tf.tidy(() => tf.add(p, tf.randomNormal(p.shape, 0, 0.3, "float32", s++))));
  return params;
}
