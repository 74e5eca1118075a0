import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { embeddingLookup, embeddingModel, modelSummaryLines, oneHotRows, oneHotTimesMatrix, tableRows } from "../../lib/embeddings/embedding";

describe("embedding layer", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  // A table whose entries are exact in float32: row i = [10i, 10i+1, 10i+2].
  const tableValues = [
    [0, 1, 2],
    [10, 11, 12],
    [20, 21, 22],
    [30, 31, 32],
  ];

  it("looks up rows by id", () => {
    const table = tf.tensor2d(tableValues);
    const out = embeddingLookup(table, [2, 0, 2]);
    assert.deepEqual(out.shape, [3, 3]);
    assert.deepEqual(out.arraySync(), [tableValues[2], tableValues[0], tableValues[2]]);
    tf.dispose([table, out]);
  });

  it("one-hot × matrix gives exactly the same numbers, for ids of any shape", () => {
    const table = tf.randomNormal([7, 5], 0, 1, "float32", 3);
    const ids = tf.tensor2d([[1, 6, 0], [3, 3, 2]], undefined, "int32");
    const a = embeddingLookup(table, ids);
    const b = oneHotTimesMatrix(table, ids);
    assert.deepEqual(a.shape, [2, 3, 5]);
    assert.deepEqual(b.shape, [2, 3, 5]);
    // Each output is a sum with a single non-zero term, so equality is exact.
    assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
    tf.dispose([table, ids, a, b]);
  });

  it("the gather gradient works on wasm and equals the one-hot path's gradient", () => {
    assert.equal(tf.getBackend(), "wasm");
    const table = tf.tensor2d(tableValues);
    const ids = [1, 3, 1, 0];
    const weights = tf.tensor2d([[1, 2, 3], [4, 5, 6], [7, 8, 9], [-1, -2, -3]]); // [N, D]
    const loss = (f: typeof embeddingLookup) => (t: tf.Tensor) => tf.sum(tf.mul(f(t, ids), weights));
    const gGather = tf.grad(loss(embeddingLookup))(table);
    const gOneHot = tf.grad(loss(oneHotTimesMatrix))(table);
    // Row r's gradient = sum of the weight rows of the positions that read row r.
    const expected = [[-1, -2, -3], [8, 10, 12], [0, 0, 0], [4, 5, 6]];
    assert.deepEqual(gGather.arraySync(), expected);
    assert.deepEqual(gOneHot.arraySync(), expected);
    tf.dispose([table, weights, gGather, gOneHot]);
  });

  it("lookups do not leak tensors", () => {
    const table = tf.randomNormal([6, 4], 0, 1, "float32", 1);
    const step = () => {
      const g = tf.grad((t: tf.Tensor) => tf.sum(embeddingLookup(t, [1, 2, 5])))(table);
      g.dispose();
      oneHotTimesMatrix(table, [0, 1]).dispose();
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    assert.equal(tf.memory().numTensors, before);
    table.dispose();
  });

  it("rejects ids outside the table", () => {
    const table = tf.zeros([4, 2]);
    assert.throws(() => embeddingLookup(table, [0, 4]), /position 1 must be an integer in \[0, 4\), got 4/);
    assert.throws(() => oneHotTimesMatrix(table, [1.5]), /position 0 .* got 1.5/);
    assert.throws(() => embeddingLookup(tf.zeros([4]), [0]), /\[vocabSize, dim\] matrix, got shape \[4\]/);
    table.dispose();
  });

  it("oneHotRows and tableRows give plain numbers to print", () => {
    assert.deepEqual(oneHotRows([2, 0], 3), [[0, 0, 1], [1, 0, 0]]);
    const t = tf.tensor2d([[0.12345, -1.98765]]);
    assert.deepEqual(tableRows(t, 2), [[0.12, -1.99]]);
    t.dispose();
  });

  it("the Keras twin: 10,000 × 15 table, [batch, 100] ids → [batch, 100, 15], summary lines", () => {
    const model = embeddingModel({ inputDim: 10000, outputDim: 15, inputLength: 100 });
    assert.equal(model.countParams(), 150000);
    const x = tf.zeros([2, 100], "int32");
    const y = model.predict(x) as tf.Tensor;
    assert.deepEqual(y.shape, [2, 100, 15]);
    const lines = modelSummaryLines(model);
    const text = lines.join("\n");
    assert.match(text, /\[null,100,15\]/);
    assert.match(text, /Total params: 150,?000/);
    assert.match(text, /Trainable params: 150,?000/);
    tf.dispose([x, y]);
    model.dispose();
    assert.throws(() => embeddingModel({ inputDim: 0, outputDim: 15, inputLength: 100 }), /inputDim must be a positive integer, got 0/);
  });
});
