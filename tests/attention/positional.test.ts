import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import {
  addPositions, applyRope, bagOfEmbeddings, initPositionEmbedding, positionDotProducts, ropeAngles,
  sinusoidalEncoding, sinusoidalEncodingValues, positionSimilarity,
} from "../../lib/attention/positional";
import { useFastWasmSlicing } from "../../lib/core/kernels/slice";
import { createRng } from "../../lib/core/random";

const vals = (t: tf.Tensor): number[] => Array.from(t.dataSync());

function assertClose(a: number[], b: number[], tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths differ`);
  const d = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
  assert.ok(d <= tol, `${what}: max |diff| ${d} > ${tol}`);
}

const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);

describe("positional encodings (pure numbers)", () => {
  it("sinusoidal values match a hand computation", () => {
    // C = 4: frequencies 1 and 1/10000^(2/4) = 1/100.
    const pe = sinusoidalEncodingValues(3, 4);
    assert.deepEqual(pe[0], [0, 1, 0, 1]);
    assertClose(pe[1], [Math.sin(1), Math.cos(1), Math.sin(0.01), Math.cos(0.01)], 1e-15, "position 1");
    assertClose(pe[2], [Math.sin(2), Math.cos(2), Math.sin(0.02), Math.cos(0.02)], 1e-15, "position 2");
    // Odd C: the last dimension is a sine of frequency 1/10000^((C-1)/C).
    const odd = sinusoidalEncodingValues(2, 3);
    assertClose(odd[1], [Math.sin(1), Math.cos(1), Math.sin(1 / Math.pow(10000, 2 / 3))], 1e-15, "odd C");
    assert.throws(() => sinusoidalEncodingValues(0, 4), /sinusoidalEncoding: T must be a positive integer, got 0/);
    assert.throws(() => sinusoidalEncodingValues(4, 2.5), /C must be a positive integer/);
  });

  it("dot products between positions depend only on their distance", () => {
    const [T, C] = [40, 16];
    const from0 = positionDotProducts(T, C, 0);
    const from5 = positionDotProducts(T, C, 5);
    assert.ok(Math.abs(from0[0] - C / 2) < 1e-12, "|PE[p]|² = C/2");
    for (let k = 0; k < T - 5; k++) assert.ok(Math.abs(from5[5 + k] - from0[k]) < 1e-9, `distance ${k}`);
    for (let k = 1; k <= 5; k++) assert.ok(Math.abs(from5[5 - k] - from0[k]) < 1e-9, `distance -${k} is symmetric`);
    // Nearby positions are more alike than far ones (at the start).
    assert.ok(from0[1] > from0[2] && from0[2] > from0[3]);
    assert.throws(() => positionDotProducts(4, 4, 4), /position 4 is outside 0..3/);
  });
});

for (const backend of ["cpu", "wasm"]) {
  describe(`positional encodings (${backend})`, function () {
    this.timeout(60000);
    before(async () => {
      assert.ok(await tf.setBackend(backend));
      if (backend === "wasm") useFastWasmSlicing();
    });

    it("sinusoidalEncoding is the [T, C] tensor of those values", () => {
      tf.tidy(() => {
        const t = sinusoidalEncoding(5, 6);
        assert.deepEqual(t.shape, [5, 6]);
        assertClose(vals(t), sinusoidalEncodingValues(5, 6).flat(), 1e-7, "tensor");
      });
    });

    it("learned position embeddings: N(0, 0.02²), seeded; addPositions adds rows offset..offset+T-1", () => {
      const pos = initPositionEmbedding(64, 32, { seed: 7 });
      try {
        assert.deepEqual(pos.shape, [64, 32]);
        const v = vals(pos);
        const std = Math.sqrt(v.reduce((a, b) => a + b * b, 0) / v.length);
        assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
        const again = initPositionEmbedding(64, 32, { seed: 7 });
        assert.deepEqual(vals(again), v);
        const [r1, r2] = [initPositionEmbedding(4, 3, { rng: createRng(9) }), initPositionEmbedding(4, 3, { rng: createRng(9) })];
        assert.deepEqual(vals(r1), vals(r2));
        tf.dispose([again, r1, r2]);
      } finally {
        pos.dispose();
      }
      tf.tidy(() => {
        const table = tf.tensor2d([[1, 2], [3, 4], [5, 6]]); // 3 positions, C = 2
        const tok = tf.tensor3d([[[10, 10], [20, 20]], [[30, 30], [40, 40]]]); // [B=2, T=2, C=2]
        assert.deepEqual(addPositions(tok, table).arraySync(), [[[11, 12], [23, 24]], [[31, 32], [43, 44]]]);
        assert.deepEqual(addPositions(tok, table, 1).arraySync(), [[[13, 14], [25, 26]], [[33, 34], [45, 46]]]);
        assert.deepEqual(addPositions(tf.tensor2d([[0, 0]]), table, 2).arraySync(), [[5, 6]]);
        assert.throws(() => addPositions(tok, table, 2), /addPositions: positions 2..3 exceed the 3 positions of the table/);
        assert.throws(() => addPositions(tf.zeros([1, 2, 3]), table), /position table \[3,2\] does not match 3 channels/);
      });
    });

    it("ropeAngles tables match a hand computation", () => {
      tf.tidy(() => {
        // D = 4: θ = [1, 10000^(-2/4)] = [1, 0.01].
        const { cos, sin } = ropeAngles(3, 4);
        assert.deepEqual(cos.shape, [3, 2]);
        assertClose(vals(cos), [1, 1, Math.cos(1), Math.cos(0.01), Math.cos(2), Math.cos(0.02)], 1e-7, "cos");
        assertClose(vals(sin), [0, 0, Math.sin(1), Math.sin(0.01), Math.sin(2), Math.sin(0.02)], 1e-7, "sin");
        assert.throws(() => ropeAngles(3, 5), /ropeAngles: head size must be a positive even integer, got 5/);
      });
    });

    it("applyRope rotates pairs (i, i + D/2) by p·θᵢ; position 0 is unchanged; norms are kept", () => {
      tf.tidy(() => {
        const tables = ropeAngles(4, 4);
        // x = e0 at every position: pair (0, 2) turned by p·1 → [cos p, 0, sin p, 0].
        const e0 = tf.tile(tf.tensor2d([[1, 0, 0, 0]]), [4, 1]);
        const r = applyRope(e0, tables).arraySync() as number[][];
        r.forEach((row, p) => assertClose(row, [Math.cos(p), 0, Math.sin(p), 0], 1e-6, `position ${p}`));
        // e1 is paired with e3 and turns by p·0.01.
        const e1 = applyRope(tf.tensor2d([[0, 1, 0, 0], [0, 1, 0, 0]]), tables, 2).arraySync() as number[][];
        assertClose(e1[1], [0, Math.cos(0.03), 0, Math.sin(0.03)], 1e-6, "offset 2, row 1 = position 3");
        const x = tf.randomNormal([2, 3, 4, 4], 0, 1, "float32", 1); // [B, H, T, D]
        const y = applyRope(x, tables);
        assert.deepEqual(y.shape, [2, 3, 4, 4]);
        const first = (t: tf.Tensor) => vals(tf.slice(t, [0, 0, 0, 0], [-1, -1, 1, -1]));
        assert.deepEqual(first(y), first(x), "position 0 is not rotated");
        assertClose(vals(tf.norm(y, "euclidean", -1)), vals(tf.norm(x, "euclidean", -1)), 1e-5, "norms");
      });
    });

    it("rope(q, m)·rope(k, n) depends only on m − n", () => {
      tf.tidy(() => {
        const D = 8, T = 20;
        const tables = ropeAngles(T, D);
        const q = vals(tf.randomNormal([D], 0, 1, "float32", 2)), k = vals(tf.randomNormal([D], 0, 1, "float32", 3));
        /** The query rotated to position m, dotted with the key rotated to position n. */
        const score = (m: number, n: number) => {
          const rq = vals(applyRope(tf.tensor2d([q]), tables, m)), rk = vals(applyRope(tf.tensor2d([k]), tables, n));
          return dot(rq, rk);
        };
        for (const dist of [0, 1, 3, 7]) {
          const ref = score(dist, 0);
          for (const n of [1, 4, 9, 12]) assert.ok(Math.abs(score(n + dist, n) - ref) < 1e-4, `m − n = ${dist}, n = ${n}`);
        }
        assert.ok(Math.abs(score(3, 0) - score(0, 3)) > 1e-3, "the test must see the sign of the distance");
      });
    });

    it("applyRope with an offset equals the matching rows of the full sequence (KV cache)", () => {
      tf.tidy(() => {
        const tables = ropeAngles(10, 6);
        const x = tf.randomNormal([2, 10, 6], 0, 1, "float32", 4);
        const full = applyRope(x, tables);
        const tail = applyRope(tf.slice(x, [0, 7, 0], [-1, 3, -1]), tables, 7);
        assert.deepEqual(vals(tail), vals(tf.slice(full, [0, 7, 0], [-1, 3, -1])));
        assert.throws(() => applyRope(x, tables, 1), /applyRope: positions 1..10 exceed the 10 positions/);
        assert.throws(() => applyRope(tf.zeros([2, 4]), tables), /head size 4 does not match tables for head size 6/);
      });
    });

    it("a bag of embeddings cannot tell 'dog bites man' from 'man bites dog'", () => {
      tf.tidy(() => {
        const emb = { dog: [1, 0, 2], bites: [0, 3, 1], man: [4, 1, 0] }; // integer-valued: sums are exact
        const sentence = (words: (keyof typeof emb)[]) => tf.tensor2d(words.map((w) => emb[w]));
        const a = sentence(["dog", "bites", "man"]), b = sentence(["man", "bites", "dog"]);
        assert.deepEqual(vals(bagOfEmbeddings(a, "sum")), [5, 4, 3]);
        assert.deepEqual(vals(bagOfEmbeddings(a, "sum")), vals(bagOfEmbeddings(b, "sum")));
        assert.deepEqual(vals(bagOfEmbeddings(a)), vals(bagOfEmbeddings(b)));
        assertClose(vals(bagOfEmbeddings(a)), [5 / 3, 4 / 3, 1], 1e-6, "mean");
        // With positions added, the two sentences differ.
        const pe = sinusoidalEncoding(3, 3);
        assert.notDeepEqual(vals(bagOfEmbeddings(addPositions(a, pe))), vals(bagOfEmbeddings(addPositions(b, pe))));
        assert.deepEqual(bagOfEmbeddings(tf.zeros([2, 3, 4])).shape, [2, 4]);
        assert.throws(() => bagOfEmbeddings(tf.zeros([3])), /bagOfEmbeddings: embeddings must be \[..., T, C\]/);
      });
    });

    it("leaks no tensors", () => {
      const tables = ropeAngles(8, 4);
      const pos = tf.zeros([8, 4]) as tf.Tensor2D;
      const x = tf.ones([2, 8, 4]);
      const run = () => {
        tf.dispose([applyRope(x, tables, 0), addPositions(x, pos), bagOfEmbeddings(x)]);
        tf.dispose(tf.grads((t: tf.Tensor) => tf.sum(applyRope(t, tables)))([x]));
      };
      run();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) run();
      assert.equal(tf.memory().numTensors, before);
      tf.dispose([tables.cos, tables.sin, pos, x]);
    });
  });
}

describe("positionSimilarity", () => {
  it("is the cosine between rows, by hand: 1 on the diagonal, symmetric", () => {
    const t = tf.tensor2d([[1, 0], [1, 1], [0, -2]]);
    const sim = positionSimilarity(t);
    const r = Math.SQRT1_2;
    assertClose(sim.flat(), [1, r, 0, r, 1, -r, 0, -r, 1], 1e-6, "cosines");
    t.dispose();
    assert.throws(() => positionSimilarity(tf.zeros([2, 2, 2]) as unknown as tf.Tensor2D), /expected a \[T, C\] table, got shape \[2,2,2\]/);
  });
});
