/**
 * Training batches from one long array of token ids, as nanoGPT's `get_batch`.
 *
 * A language model learns to predict each next token. Cut B random windows of T + 1
 * consecutive tokens from the corpus: the first T are the input x, the last T (shifted by
 * one) the targets y. Row b, position t: y[b][t] = x[b][t + 1] = the token after x[b][t].
 *
 *   data:  … 17 42  8 99  3 …        window starting at i = 1, T = 4
 *   x:        42  8 99  3
 *   y:         8 99  3 51
 *
 * Random windows (rather than walking the corpus in order) make consecutive batches
 * independent; every start 0 … len − T − 1 is equally likely.
 */
import * as tf from "@tensorflow/tfjs";
import type { Rng } from "../core/random";

export interface Batch {
  /** Inputs, [B, T] int32. */
  x: tf.Tensor2D;
  /** Targets: the inputs shifted left by one, [B, T] int32. */
  y: tf.Tensor2D;
}

export type TokenArray = Int32Array | Uint16Array | Uint32Array | number[];

/** The start positions of B windows: B draws of rng.int(len − T), as torch.randint(len(data) − block_size, (B,)). */
export function batchStarts(length: number, blockSize: number, batchSize: number, rng: Rng): number[] {
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error(`getBatch: blockSize must be a positive integer, got ${blockSize}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`getBatch: batchSize must be a positive integer, got ${batchSize}`);
  if (length < blockSize + 1) {
    throw new Error(`getBatch: the data has ${length} tokens, fewer than blockSize + 1 = ${blockSize + 1}`);
  }
  return Array.from({ length: batchSize }, () => rng.int(length - blockSize));
}

/** B random windows of `blockSize` tokens and their next-token targets (see the top of the file). */
export function getBatch(data: TokenArray, blockSize: number, batchSize: number, rng: Rng): Batch {
  const starts = batchStarts(data.length, blockSize, batchSize, rng);
  const xs = new Int32Array(batchSize * blockSize);
  const ys = new Int32Array(batchSize * blockSize);
  starts.forEach((i, b) => {
    for (let t = 0; t < blockSize; t++) {
      xs[b * blockSize + t] = data[i + t];
      ys[b * blockSize + t] = data[i + t + 1];
    }
  });
  return {
    x: tf.tensor2d(xs, [batchSize, blockSize], "int32"),
    y: tf.tensor2d(ys, [batchSize, blockSize], "int32"),
  };
}

export type Split = "train" | "val";

/**
 * Split token ids into training and validation parts (corpus.ts's trainValSplit does the same for text): the first `trainFraction` (default
 * 0.9, as nanoGPT) trains, the rest measures how well the model does on text it never saw.
 */
export function splitTokens<T extends TokenArray>(data: T, trainFraction = 0.9): { train: T; val: T } {
  if (!(trainFraction > 0 && trainFraction < 1)) throw new Error(`splitTokens: trainFraction must be in (0, 1), got ${trainFraction}`);
  const n = Math.floor(data.length * trainFraction);
  return { train: data.slice(0, n) as T, val: data.slice(n) as T };
}

/**
 * The `getBatch(split, rng)` function the trainer wants, over a train and a val array.
 *   train({ ..., getBatch: batcher(split.train, split.val, 64, 12) })
 */
export function batcher(
  train: TokenArray,
  val: TokenArray,
  blockSize: number,
  batchSize: number,
): (split: Split, rng: Rng) => Batch {
  return (split, rng) => getBatch(split === "train" ? train : val, blockSize, batchSize, rng);
}
