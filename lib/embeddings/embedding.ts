/**
 * The embedding layer: a table with one learned vector per token id.
 *
 * A model cannot read text; the tokenizer turns text into ids. The embedding layer turns
 * each id into a vector of `dim` numbers — a point in a `dim`-dimensional space — by
 * reading row `id` of a [vocabSize, dim] matrix. The rows are parameters: training moves
 * them so that tokens used alike end up close together.
 *
 * Reading a row is the same as multiplying a one-hot vector by the matrix:
 *
 *   onehot(id) · E = E[id]        onehot(id) is [vocabSize] with a single 1 at `id`
 *
 * Frameworks use the row lookup (gather) because the one-hot product wastes vocabSize × dim
 * multiplications per token, nearly all by zero. Both give the same numbers and the same
 * gradient, which `embeddingLookup` / `oneHotTimesMatrix` let a notebook show.
 */
import * as tf from "@tensorflow/tfjs";

/** Check every id is an integer in [0, vocabSize): a bad id would silently read garbage. */
function checkIds(ids: readonly number[] | tf.Tensor, vocabSize: number, where: string): void {
  const values = ids instanceof tf.Tensor ? Array.from(ids.dataSync()) : ids;
  values.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(`${where}: id at position ${i} must be an integer in [0, ${vocabSize}), got ${id}`);
    }
  });
}

function toIdTensor(ids: readonly number[] | tf.Tensor): tf.Tensor {
  return ids instanceof tf.Tensor ? ids.toInt() : tf.tensor1d(ids as number[], "int32");
}

function checkTable(table: tf.Tensor, where: string): void {
  if (table.rank !== 2) throw new Error(`${where}: table must be a [vocabSize, dim] matrix, got shape [${table.shape}]`);
}

/**
 * Embedding lookup by row selection: table [V, D], ids [...] → [..., D].
 * Differentiable with respect to `table` (the gradient of gather scatters each output
 * row's gradient back into the row it came from; on wasm that needs the course's
 * UnsortedSegmentSum kernel, which `initBackend()` registers).
 */
export function embeddingLookup(table: tf.Tensor, ids: readonly number[] | tf.Tensor): tf.Tensor {
  checkTable(table, "embeddingLookup");
  checkIds(ids, table.shape[0], "embeddingLookup");
  return tf.tidy(() => tf.gather(table, toIdTensor(ids)));
}

/**
 * The same lookup written as a product: one-hot rows [N, V] times the table [V, D] → [N, D]
 * (ids of any shape [...] give [..., D]). Costs N·V·D multiplications instead of N·D copies.
 */
export function oneHotTimesMatrix(table: tf.Tensor, ids: readonly number[] | tf.Tensor): tf.Tensor {
  checkTable(table, "oneHotTimesMatrix");
  checkIds(ids, table.shape[0], "oneHotTimesMatrix");
  const [V, D] = table.shape;
  return tf.tidy(() => {
    const idT = toIdTensor(ids);
    const flat = idT.reshape([-1]) as tf.Tensor1D; // [N]
    const oneHot = tf.oneHot(flat, V).toFloat(); // [N, V], one 1 per row
    const rows = tf.matMul(oneHot, table as tf.Tensor2D); // [N, D]
    return rows.reshape([...idT.shape, D]);
  });
}

/** The one-hot vectors themselves ([N, V] as plain numbers), for display on a tiny table. */
export function oneHotRows(ids: readonly number[], vocabSize: number): number[][] {
  checkIds(ids, vocabSize, "oneHotRows");
  return ids.map((id) => Array.from({ length: vocabSize }, (_, j) => (j === id ? 1 : 0)));
}

export interface EmbeddingModelOptions {
  /** Vocabulary size: ids are 0..inputDim-1 (the lesson: 10,000). */
  inputDim: number;
  /** Length of each vector (the lesson: 15). */
  outputDim: number;
  /** Tokens per input sequence (the lesson: 100). */
  inputLength: number;
}

/**
 * The lesson's Keras snippet, in TensorFlow.js:
 *
 *   model = Sequential()
 *   model.add(Embedding(input_dim=10000, output_dim=15, input_length=100))
 *   model.compile('adam', 'mse')
 *
 * Input [batch, inputLength] of ids → output [batch, inputLength, outputDim].
 */
export function embeddingModel(opts: EmbeddingModelOptions): tf.Sequential {
  for (const k of ["inputDim", "outputDim", "inputLength"] as const) {
    if (!Number.isInteger(opts[k]) || opts[k] <= 0) throw new Error(`embeddingModel: ${k} must be a positive integer, got ${opts[k]}`);
  }
  const model = tf.sequential();
  model.add(tf.layers.embedding({ inputDim: opts.inputDim, outputDim: opts.outputDim, inputLength: opts.inputLength }));
  model.compile({ optimizer: "adam", loss: "meanSquaredError" });
  return model;
}

/** `model.summary()` as lines of text (tfjs prints it to the console; this captures it). */
export function modelSummaryLines(model: tf.LayersModel, lineLength = 70): string[] {
  const lines: string[] = [];
  model.summary(lineLength, undefined, (...msg: unknown[]) => {
    lines.push(msg.map(String).join(" "));
  });
  return lines;
}

/** Rows of a table as plain numbers rounded to `digits`, for printing a tiny example. */
export function tableRows(table: tf.Tensor, digits = 3): number[][] {
  checkTable(table, "tableRows");
  const f = 10 ** digits;
  return (table.arraySync() as number[][]).map((r) => r.map((x) => Math.round(x * f) / f));
}
