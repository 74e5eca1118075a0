import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../lib/core/backend";
import { batcher, batchStarts, getBatch, splitTokens } from "../../lib/pretrain/batches";
import { createRng } from "../../lib/core/random";

describe("batches", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  it("cuts B windows of T tokens; y is x shifted by one", () => {
    const data = Uint16Array.from({ length: 100 }, (_, i) => i * 3); // token at i is 3i
    const { x, y } = getBatch(data, 8, 4, createRng(1));
    assert.deepEqual(x.shape, [4, 8]);
    assert.deepEqual(y.shape, [4, 8]);
    assert.equal(x.dtype, "int32");
    assert.equal(y.dtype, "int32");
    const xs = x.arraySync();
    const ys = y.arraySync();
    const starts = batchStarts(100, 8, 4, createRng(1)); // same RNG stream → same windows
    for (let b = 0; b < 4; b++) {
      assert.deepEqual(xs[b], Array.from({ length: 8 }, (_, t) => 3 * (starts[b] + t)));
      assert.deepEqual(ys[b], Array.from({ length: 8 }, (_, t) => 3 * (starts[b] + t + 1)));
    }
    tf.dispose([x, y]);
  });

  it("draws every start 0 … len − T − 1 (as torch.randint(len − T)) and nothing past the end", () => {
    const rng = createRng(7);
    const seen = new Set<number>();
    for (let k = 0; k < 200; k++) for (const s of batchStarts(12, 8, 4, rng)) seen.add(s);
    assert.deepEqual([...seen].sort((a, b) => a - b), [0, 1, 2, 3]);
    // Exactly T + 1 tokens: the only window.
    const { x, y } = getBatch(Int32Array.from([5, 6, 7]), 2, 3, createRng(0));
    assert.deepEqual(x.arraySync(), [[5, 6], [5, 6], [5, 6]]);
    assert.deepEqual(y.arraySync(), [[6, 7], [6, 7], [6, 7]]);
    tf.dispose([x, y]);
  });

  it("is reproducible from the RNG and explains bad arguments", () => {
    const data = Int32Array.from({ length: 50 }, (_, i) => i);
    const a = getBatch(data, 4, 2, createRng(3));
    const b = getBatch(data, 4, 2, createRng(3));
    assert.deepEqual(a.x.arraySync(), b.x.arraySync());
    tf.dispose([a.x, a.y, b.x, b.y]);
    assert.throws(() => getBatch(data, 50, 2, createRng(3)), /the data has 50 tokens, fewer than blockSize \+ 1 = 51/);
    assert.throws(() => getBatch(data, 0, 2, createRng(3)), /blockSize must be a positive integer/);
  });

  it("splits train/val 90/10 and makes the trainer's getBatch", () => {
    const data = Int32Array.from({ length: 100 }, (_, i) => i);
    const { train, val } = splitTokens(data);
    assert.equal(train.length, 90);
    assert.equal(val[0], 90);
    const get = batcher(train, val, 4, 2);
    const v = get("val", createRng(1));
    assert.ok(v.x.arraySync().flat().every((t) => t >= 90));
    const t = get("train", createRng(1));
    assert.ok(t.y.arraySync().flat().every((tok) => tok < 90));
    tf.dispose([v.x, v.y, t.x, t.y]);
  });
});
