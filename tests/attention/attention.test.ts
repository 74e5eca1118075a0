import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import {
  MASKED_SCORE, applyMask, attentionScores, causalMask, initMultiHeadAttention, multiHeadAttention,
  multiHeadAttentionTextbook, MultiHeadAttentionParams, scaledDotProductAttention, softmaxRows,
} from "../../lib/attention/attention";
import { batchMatMul, linear, matMul2d, matMulTransposeB } from "../../lib/core/linalg";
import { registerWasmKernels } from "../../lib/core/kernels";
import { createRng } from "../../lib/core/random";

// ---------------------------------------------------------------------------------------
// Helpers: plain numbers, and a plain-loop (float64) reference of attention

const vals = (t: tf.Tensor): number[] => Array.from(t.dataSync());
const rand = (shape: number[], seed: number, std = 1): tf.Tensor => tf.randomNormal(shape, 0, std, "float32", seed);

function maxAbsDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length, "lengths differ");
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

function assertClose(a: number[], b: number[], tol: number, what: string): void {
  const d = maxAbsDiff(a, b);
  assert.ok(d <= tol, `${what}: max |diff| ${d} > ${tol}`);
}

type M = number[][];
const matmul = (a: M, b: M): M => a.map((row) => b[0].map((_, j) => row.reduce((s, x, k) => s + x * b[k][j], 0)));
const toM = (flat: number[], rows: number, cols: number): M =>
  Array.from({ length: rows }, (_, i) => flat.slice(i * cols, (i + 1) * cols));

/** One head: softmax(q·kᵀ·scale, masked)·v with loops; allowed(i, j) says whether query i sees key j. */
function refHead(q: M, k: M, v: M, scale: number, allowed: (i: number, j: number) => boolean): { y: M; w: M } {
  const w = q.map((qi, i) => {
    const s = k.map((kj, j) => (allowed(i, j) ? qi.reduce((acc, x, d) => acc + x * kj[d], 0) * scale : -Infinity));
    const max = Math.max(...s);
    if (max === -Infinity) return s.map(() => 0); // fully masked row: attends to nothing
    const e = s.map((x) => Math.exp(x - max));
    const z = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / z);
  });
  return { y: matmul(w, v), w };
}

/** Multi-head attention with loops, GPT-2 layout (see MultiHeadAttentionParams). */
function refMha(
  p: { wqkv: M; bqkv: number[]; wproj: M; bproj: number[] }, x: number[][][], heads: number,
  o: { causal?: boolean; kv?: number[][][]; mask?: (b: number, h: number, i: number, j: number) => boolean },
): number[][][] {
  const c = x[0][0].length, d = c / heads;
  return x.map((xb, b) => {
    const src = o.kv ? o.kv[b] : xb;
    const t = xb.length, s = src.length;
    const proj = (rows: M, col0: number) =>
      matmul(rows, p.wqkv.map((r) => r.slice(col0, col0 + c))).map((r) => r.map((val, j) => val + p.bqkv[col0 + j]));
    const q = proj(xb, 0), k = proj(src, c), v = proj(src, 2 * c);
    const y: M = xb.map(() => new Array<number>(c).fill(0));
    for (let h = 0; h < heads; h++) {
      const cols = (m: M) => m.map((r) => r.slice(h * d, (h + 1) * d));
      const allowed = (i: number, j: number) =>
        (!o.causal || j <= i + s - t) && (!o.mask || o.mask(b, h, i, j));
      const { y: yh } = refHead(cols(q), cols(k), cols(v), 1 / Math.sqrt(d), allowed);
      yh.forEach((r, i) => r.forEach((val, j) => (y[i][h * d + j] = val)));
    }
    return matmul(y, p.wproj).map((r) => r.map((val, j) => val + p.bproj[j]));
  });
}

function paramsAsArrays(p: MultiHeadAttentionParams) {
  const c = p.wqkv.shape[0];
  return {
    wqkv: p.wqkv.arraySync() as M, bqkv: p.bqkv ? vals(p.bqkv) : new Array(3 * c).fill(0),
    wproj: p.wproj.arraySync() as M, bproj: p.bproj ? vals(p.bproj) : new Array(c).fill(0),
  };
}

/** Params with non-zero biases (fresh ones are zero, which would hide bias bugs). */
function testParams(c: number, heads: number, seed: number): MultiHeadAttentionParams {
  return {
    wqkv: rand([c, 3 * c], seed, 0.5) as tf.Tensor2D, bqkv: rand([3 * c], seed + 1, 0.5) as tf.Tensor1D,
    wproj: rand([c, c], seed + 2, 0.5) as tf.Tensor2D, bproj: rand([c], seed + 3, 0.5) as tf.Tensor1D,
  };
}

const flat3 = (a: number[][][]): number[] => a.flat(2);

type Mha = typeof multiHeadAttention;
/**
 * loss(x, wqkv, bqkv, wproj, bproj[, kv]) = Σ f(...) ⊙ target, as a function of a list of
 * tensors, for tf.grads; kv is an input only for cross-attention.
 */
function mhaLoss(f: Mha, heads: number, target: tf.Tensor, opts: { causal?: boolean; mask?: tf.Tensor }) {
  return (...t: tf.Tensor[]): tf.Scalar =>
    tf.sum(tf.mul(f({ wqkv: t[1] as tf.Tensor2D, bqkv: t[2] as tf.Tensor1D, wproj: t[3] as tf.Tensor2D, bproj: t[4] as tf.Tensor1D },
      t[0] as tf.Tensor3D, { heads, ...opts, kv: t[5] as tf.Tensor3D | undefined }), target)) as tf.Scalar;
}

for (const backend of ["cpu", "wasm"]) {
  describe(`attention (${backend})`, function () {
    this.timeout(120000);
    before(async () => {
      assert.ok(await tf.setBackend(backend), `backend ${backend} failed to start`);
      if (backend === "wasm") registerWasmKernels();
    });

    describe("linalg", () => {
      it("matMul2d, matMulTransposeB and batchMatMul equal tf.matMul in values and gradients", () => {
        tf.tidy(() => {
          const a = rand([5, 3], 1), b = rand([3, 4], 2), bt = rand([4, 3], 3), g = rand([5, 4], 4);
          assertClose(vals(matMul2d(a as tf.Tensor2D, b as tf.Tensor2D)), vals(tf.matMul(a, b)), 1e-6, "matMul2d");
          assertClose(vals(matMulTransposeB(a as tf.Tensor2D, bt as tf.Tensor2D)), vals(tf.matMul(a, bt, false, true)), 1e-6, "A·Bᵀ");
          const loss = (f: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x, y), g));
          const ours = tf.grads(loss((x, y) => matMul2d(x as tf.Tensor2D, y as tf.Tensor2D)))([a, b]);
          const theirs = tf.grads(loss((x, y) => tf.matMul(x, y)))([a, b]);
          ours.forEach((o, i) => assertClose(vals(o), vals(theirs[i]), 1e-5, `matMul2d grad ${i}`));
          const oursT = tf.grads(loss((x, y) => matMulTransposeB(x as tf.Tensor2D, y as tf.Tensor2D)))([a, bt]);
          const theirsT = tf.grads(loss((x, y) => tf.matMul(x, y, false, true)))([a, bt]);
          oursT.forEach((o, i) => assertClose(vals(o), vals(theirsT[i]), 1e-5, `matMulTransposeB grad ${i}`));

          const a3 = rand([2, 3, 5, 4], 5), b3 = rand([2, 3, 4, 6], 6), b3t = rand([2, 3, 6, 4], 7), g3 = rand([2, 3, 5, 6], 8);
          assert.deepEqual(batchMatMul(a3, b3).shape, [2, 3, 5, 6]);
          assertClose(vals(batchMatMul(a3, b3)), vals(tf.matMul(a3, b3)), 1e-5, "batchMatMul");
          assertClose(vals(batchMatMul(a3, b3t, true)), vals(tf.matMul(a3, b3t, false, true)), 1e-5, "batchMatMul transposeB");
          const bl = (f: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x, y), g3));
          const ob = tf.grads(bl((x, y) => batchMatMul(x, y)))([a3, b3]);
          const tb = tf.grads(bl((x, y) => tf.matMul(x, y)))([a3, b3]);
          ob.forEach((o, i) => assertClose(vals(o), vals(tb[i]), 1e-5, `batchMatMul grad ${i}`));
        });
      });

      it("linear flattens leading axes into one product and adds the bias", () => {
        tf.tidy(() => {
          const x = tf.tensor3d([[[1, 2]], [[3, 4]]]); // [2, 1, 2]
          const w = tf.tensor2d([[1, 0, 2], [0, 1, 3]]); // [2, 3]
          const y = linear(x, w, tf.tensor1d([10, 20, 30]));
          assert.deepEqual(y.shape, [2, 1, 3]);
          assert.deepEqual(vals(y), [11, 22, 38, 13, 24, 48]);
          // Gradients (hand-written for the biased case) equal those of plain tf ops.
          const [xr, wr, br, g] = [rand([2, 3, 4], 1), rand([4, 5], 2), rand([5], 3), rand([2, 3, 5], 4)];
          const ours = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(linear(a, b as tf.Tensor2D, c as tf.Tensor1D), g)))([xr, wr, br]);
          const theirs = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
            tf.sum(tf.mul(tf.add(tf.matMul(a.reshape([6, 4]), b), c).reshape([2, 3, 5]), g)))([xr, wr, br]);
          ours.forEach((o, i) => assertClose(vals(o), vals(theirs[i]), 1e-5, `linear grad ${i}`));
          const noBias = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(linear(a, b as tf.Tensor2D), g)))([xr, wr]);
          noBias.forEach((o, i) => assertClose(vals(o), vals(theirs[i]), 1e-5, `linear (no bias) grad ${i}`));
        });
      });

      it("rejects mismatched shapes with one-line errors", () => {
        tf.tidy(() => {
          assert.throws(() => matMul2d(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([2, 3]) as tf.Tensor2D), /matMul2d: inner dimensions differ/);
          assert.throws(() => matMul2d(tf.zeros([2, 3, 1]) as unknown as tf.Tensor2D, tf.zeros([3, 3]) as tf.Tensor2D), /matMul2d: expected 2-D/);
          assert.throws(() => matMulTransposeB(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([2, 4]) as tf.Tensor2D), /inner dimensions/);
          assert.throws(() => batchMatMul(tf.zeros([2, 2, 3]), tf.zeros([3, 3, 2])), /batch dimensions differ/);
          assert.throws(() => linear(tf.zeros([2, 3]), tf.zeros([4, 5]) as tf.Tensor2D), /linear: input features 3/);
          assert.throws(() => linear(tf.zeros([2, 3]), tf.zeros([3, 5]) as tf.Tensor2D, tf.zeros([4]) as tf.Tensor1D), /linear: bias shape/);
        });
      });
    });

    describe("scaled dot-product attention", () => {
      it("causalMask is the lower triangle, aligned bottom-right when S > T", () => {
        tf.tidy(() => {
          assert.deepEqual(causalMask(3).arraySync(), [[1, 0, 0], [1, 1, 0], [1, 1, 1]]);
          assert.deepEqual(causalMask(2, 4).arraySync(), [[1, 1, 1, 0], [1, 1, 1, 1]]);
          assert.throws(() => causalMask(3, 2), /causalMask: need integers 1 <= T <= S/);
        });
      });

      it("matches a hand computation", () => {
        tf.tidy(() => {
          // One query [1, 0] against keys [1, 0] and [0, 1], scale 1: scores [1, 0],
          // weights [e/(e+1), 1/(e+1)], output = weights · [[1, 2], [3, 4]].
          const q = tf.tensor2d([[1, 0]]), k = tf.tensor2d([[1, 0], [0, 1]]), v = tf.tensor2d([[1, 2], [3, 4]]);
          const { output, weights } = scaledDotProductAttention(q, k, v, { scale: 1, returnWeights: true });
          const w0 = Math.E / (Math.E + 1), w1 = 1 / (Math.E + 1);
          assertClose(vals(weights), [w0, w1], 1e-6, "weights");
          assertClose(vals(output), [w0 * 1 + w1 * 3, w0 * 2 + w1 * 4], 1e-6, "output");
          // Default scale 1/√D = 1/√2.
          const s = 1 / Math.sqrt(2);
          const wd = vals(scaledDotProductAttention(q, k, v, { returnWeights: true }).weights);
          assertClose(wd, [Math.exp(s) / (Math.exp(s) + 1), 1 / (Math.exp(s) + 1)], 1e-6, "default scale");
          // Pieces for the notebook compose to the same weights.
          const scores = attentionScores(q, k, 1);
          assertClose(vals(scores), [1, 0], 0, "scores");
          assertClose(vals(softmaxRows(scores)), [w0, w1], 1e-6, "softmaxRows");
        });
      });

      it("equals the plain-loop reference (batch dims, causal, masks, Dv != D, Tq < Tk)", () => {
        tf.tidy(() => {
          const [n1, n2, tq, tk, d, dv] = [2, 3, 4, 6, 5, 3];
          const q = rand([n1, n2, tq, d], 1), k = rand([n1, n2, tk, d], 2), v = rand([n1, n2, tk, dv], 3);
          const maskVals = Array.from({ length: tq * tk }, (_, i) => (i * 7) % 5 !== 0 ? 1 : 0); // some masked
          const mask = tf.tensor2d(maskVals, [tq, tk]);
          for (const opts of [{}, { causal: true }, { mask }, { causal: true, mask }, { scale: 0.3 }]) {
            const { output, weights } = scaledDotProductAttention(q, k, v, { ...opts, returnWeights: true });
            assert.deepEqual(output.shape, [n1, n2, tq, dv]);
            assert.deepEqual(weights.shape, [n1, n2, tq, tk]);
            const qa = q.arraySync() as number[][][][], ka = k.arraySync() as number[][][][], va = v.arraySync() as number[][][][];
            const refY: number[] = [], refW: number[] = [];
            for (let a = 0; a < n1; a++) for (let b = 0; b < n2; b++) {
              const o = opts as { causal?: boolean; mask?: tf.Tensor; scale?: number };
              const allowed = (i: number, j: number) => (!o.causal || j <= i + tk - tq) && (!o.mask || maskVals[i * tk + j] === 1);
              const r = refHead(qa[a][b], ka[a][b], va[a][b], o.scale ?? 1 / Math.sqrt(d), allowed);
              refY.push(...r.y.flat());
              refW.push(...r.w.flat());
            }
            assertClose(vals(output), refY, 2e-5, `output ${JSON.stringify(Object.keys(opts))}`);
            assertClose(vals(weights), refW, 2e-6, `weights ${JSON.stringify(Object.keys(opts))}`);
          }
        });
      });

      it("masked weights are exactly 0, rows sum to 1, fully masked rows give 0 and no NaN", () => {
        tf.tidy(() => {
          const q = rand([2, 4, 3], 11, 3), k = rand([2, 5, 3], 12, 3), v = rand([2, 5, 2], 13);
          // Row 1 fully masked; others partly.
          const m = [[1, 0, 1, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 1, 1, 1, 1]];
          const mask = tf.tensor2d(m).cast("bool");
          const { output, weights } = scaledDotProductAttention(q, k, v, { mask, returnWeights: true });
          const w = weights.arraySync() as number[][][];
          for (const wb of w) {
            wb.forEach((row, i) => {
              row.forEach((x, j) => { if (m[i][j] === 0) assert.equal(x, 0, `weight [${i}, ${j}] must be exactly 0`); });
              const sum = row.reduce((a, b) => a + b, 0);
              if (i === 1) assert.equal(sum, 0);
              else assert.ok(Math.abs(sum - 1) < 1e-6, `row ${i} sums to ${sum}`);
            });
          }
          const y = output.arraySync() as number[][][];
          assert.deepEqual(y[0][1], [0, 0]);
          assert.ok(vals(output).every(Number.isFinite));
          const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
            tf.sum(scaledDotProductAttention(a, b, c, { mask })))([q, k, v]);
          for (const g of grads) assert.ok(vals(g).every(Number.isFinite), "gradients must be finite");
          // Causal: strictly upper triangle exactly 0, rows sum to 1.
          const wc = scaledDotProductAttention(q, q, q, { causal: true, returnWeights: true }).weights.arraySync() as number[][][];
          for (const wb of wc) wb.forEach((row, i) => {
            row.forEach((x, j) => { if (j > i) assert.equal(x, 0); });
            assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-6);
          });
          // applyMask: scores unchanged where allowed, pushed to ~MASKED_SCORE elsewhere.
          const sc = tf.tensor2d([[1, 2], [3, 4]]);
          const am = vals(applyMask(sc, tf.tensor2d([[1, 0], [0, 1]])));
          assert.equal(am[0], 1);
          assert.equal(am[3], 4);
          assert.ok(am[1] <= MASKED_SCORE + 10 && am[2] <= MASKED_SCORE + 10);
        });
      });

      it("rejects bad shapes", () => {
        tf.tidy(() => {
          const q = tf.zeros([2, 3, 4]), k = tf.zeros([2, 5, 4]), v = tf.zeros([2, 5, 6]);
          assert.throws(() => scaledDotProductAttention(q, tf.zeros([2, 5, 3]), v), /query size 4 != key size 3/);
          assert.throws(() => scaledDotProductAttention(q, tf.zeros([3, 5, 4]), v), /batch dimensions/);
          assert.throws(() => scaledDotProductAttention(q, k, tf.zeros([2, 4, 6])), /v \[2,4,6\] must match k/);
          assert.throws(() => scaledDotProductAttention(q, k, v, { mask: tf.ones([3, 4]) }), /mask shape \[3,4\] does not broadcast/);
          assert.throws(() => scaledDotProductAttention(k, q, tf.zeros([2, 3, 6]), { causal: true }), /causal attention needs Tq <= Tk/);
        });
      });
    });

    describe("multi-head attention", () => {
      const [B, T, C, H] = [2, 5, 8, 2];

      it("initMultiHeadAttention: GPT-2 shapes, N(0, 0.02²) weights, zero biases, seeded", () => {
        const p = initMultiHeadAttention({ channels: 64, heads: 4, seed: 3 });
        try {
          assert.deepEqual([p.wqkv.shape, p.bqkv!.shape, p.wproj.shape, p.bproj!.shape], [[64, 192], [192], [64, 64], [64]]);
          const w = vals(p.wqkv);
          const mean = w.reduce((a, b) => a + b, 0) / w.length;
          const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
          assert.ok(Math.abs(std - 0.02) < 0.002 && Math.abs(mean) < 0.002, `std ${std}, mean ${mean}`);
          assert.ok(vals(p.bqkv!).every((x) => x === 0));
          const again = initMultiHeadAttention({ channels: 64, heads: 4, seed: 3 });
          assert.deepEqual(vals(again.wqkv), w);
          const noBias = initMultiHeadAttention({ channels: 8, heads: 2, bias: false, projStd: 0.01 });
          assert.equal(noBias.bqkv, undefined);
          const r1 = initMultiHeadAttention({ channels: 8, heads: 2, rng: createRng(5) });
          const r2 = initMultiHeadAttention({ channels: 8, heads: 2, rng: createRng(5) });
          assert.deepEqual(vals(r1.wqkv), vals(r2.wqkv));
          assert.deepEqual(vals(r1.wproj), vals(r2.wproj));
          assert.notDeepEqual(vals(r1.wqkv).slice(0, 8), vals(r1.wproj).slice(0, 8));
          tf.dispose([again.wqkv, again.wproj, again.bqkv!, again.bproj!, noBias.wqkv, noBias.wproj,
            r1.wqkv, r1.wproj, r1.bqkv!, r1.bproj!, r2.wqkv, r2.wproj, r2.bqkv!, r2.bproj!]);
        } finally {
          tf.dispose([p.wqkv, p.wproj, p.bqkv!, p.bproj!]);
        }
        assert.throws(() => initMultiHeadAttention({ channels: 130, heads: 4 }), /channels 130 not divisible by heads 4/);
      });

      it("equals the plain-loop reference: bidirectional, causal, masked, cross-attention, 1-4 heads", () => {
        tf.tidy(() => {
          for (const heads of [1, 2, 4]) {
            const p = testParams(C, heads, 20 + heads);
            const x = rand([B, T, C], 30 + heads) as tf.Tensor3D;
            const kv = rand([B, 7, C], 40 + heads) as tf.Tensor3D;
            const pa = paramsAsArrays(p);
            const xa = x.arraySync(), kva = kv.arraySync();
            const padMask = tf.tensor4d([[[[1, 1, 1, 0, 0]]], [[[1, 1, 1, 1, 1]]]]); // [B, 1, 1, S]: key padding
            const padFn = (b: number, _h: number, _i: number, j: number) => b === 1 || j < 3;
            const cases: [string, object, object][] = [
              ["bidirectional", {}, {}],
              ["causal", { causal: true }, { causal: true }],
              ["padding mask", { mask: padMask }, { mask: padFn }],
              ["causal + padding", { causal: true, mask: padMask }, { causal: true, mask: padFn }],
              ["cross", { kv }, { kv: kva }],
            ];
            for (const [name, opts, refOpts] of cases) {
              const y = multiHeadAttention(p, x, { heads, ...opts });
              const ref = refMha(pa, xa, heads, refOpts);
              assert.deepEqual(y.shape, [B, T, C]);
              assertClose(vals(y), flat3(ref), 1e-4, `${name}, ${heads} heads`);
            }
          }
        });
      });

      it("is causal: changing future tokens leaves earlier outputs exactly unchanged", () => {
        tf.tidy(() => {
          const p = testParams(C, H, 50);
          const x = rand([B, T, C], 51) as tf.Tensor3D;
          const noise = tf.concat([tf.zeros([B, 3, C]), rand([B, T - 3, C], 52, 5)], 1);
          const y1 = multiHeadAttention(p, x, { heads: H, causal: true }).arraySync();
          const y2 = multiHeadAttention(p, tf.add(x, noise) as tf.Tensor3D, { heads: H, causal: true }).arraySync();
          for (let b = 0; b < B; b++) {
            for (let t = 0; t < 3; t++) assert.deepEqual(y2[b][t], y1[b][t], `position ${t} changed`);
            assert.notDeepEqual(y2[b][3], y1[b][3], "the test must change later outputs");
          }
          // Without the causal mask, earlier outputs do see the future.
          const z1 = multiHeadAttention(p, x, { heads: H }).arraySync();
          const z2 = multiHeadAttention(p, tf.add(x, noise) as tf.Tensor3D, { heads: H }).arraySync();
          assert.notDeepEqual(z2[0][0], z1[0][0]);
        });
      });

      it("is permutation-equivariant without mask or positions", () => {
        tf.tidy(() => {
          const p = testParams(C, H, 60);
          const x = rand([B, T, C], 61) as tf.Tensor3D;
          const perm = tf.tensor1d([3, 0, 4, 1, 2], "int32");
          const yPermuted = tf.gather(multiHeadAttention(p, x, { heads: H }), perm, 1);
          const yOfPermuted = multiHeadAttention(p, tf.gather(x, perm, 1) as tf.Tensor3D, { heads: H });
          assertClose(vals(yOfPermuted), vals(yPermuted), 1e-5, "MHA(perm x) vs perm MHA(x)");
        });
      });

      it("equals independent single heads, concatenated, then the output projection", () => {
        tf.tidy(() => {
          const p = testParams(C, H, 70);
          const x = rand([B, T, C], 71) as tf.Tensor3D;
          const d = C / H;
          const qkv = tf.add(tf.matMul(x.reshape([B * T, C]), p.wqkv), p.bqkv!).reshape([B, T, 3 * C]);
          const heads: tf.Tensor[] = [];
          for (let h = 0; h < H; h++) {
            const part = (i: number) => tf.slice(qkv, [0, 0, i * C + h * d], [B, T, d]); // [B, T, D]
            heads.push(scaledDotProductAttention(part(0), part(1), part(2), { causal: true }));
          }
          const y = tf.add(tf.matMul(tf.concat(heads, 2).reshape([B * T, C]), p.wproj), p.bproj!).reshape([B, T, C]);
          assertClose(vals(multiHeadAttention(p, x, { heads: H, causal: true })), vals(y), 1e-5, "heads");
        });
      });

      it("returns weights [B, H, T, S] whose rows sum to 1", () => {
        tf.tidy(() => {
          const p = testParams(C, H, 80);
          const x = rand([B, T, C], 81) as tf.Tensor3D, kv = rand([B, 3, C], 82) as tf.Tensor3D;
          const { output, weights } = multiHeadAttention(p, x, { heads: H, kv, returnWeights: true });
          assert.deepEqual(output.shape, [B, T, C]);
          assert.deepEqual(weights.shape, [B, H, T, 3]);
          const sums = vals(tf.sum(weights, -1));
          assert.ok(sums.every((s) => Math.abs(s - 1) < 1e-6));
          assertClose(vals(output), vals(multiHeadAttention(p, x, { heads: H, kv })), 0, "same output");
          const tb = multiHeadAttentionTextbook(p, x, { heads: H, kv, returnWeights: true });
          assertClose(vals(weights), vals(tb.weights), 1e-6, "weights vs textbook");
        });
      });

      it("has the textbook version's outputs and gradients (x and all weights)", () => {
        tf.tidy(() => {
          const p = testParams(C, H, 90);
          const x = rand([B, T, C], 91) as tf.Tensor3D, kv = rand([B, 6, C], 92) as tf.Tensor3D;
          const target = rand([B, T, C], 93);
          const mask = tf.tensor2d([[1, 1, 0, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [0, 1, 1, 1, 1]]);
          for (const [name, opts, cross] of [["causal", { causal: true }, false], ["bidirectional", {}, false], ["cross", {}, true],
            ["mask", { mask }, false], ["mask + causal", { mask, causal: true }, false]] as [string, object, boolean][]) {
            const inputs = [x, p.wqkv, p.bqkv!, p.wproj, p.bproj!, ...(cross ? [kv] : [])];
            const fast = tf.valueAndGrads(mhaLoss(multiHeadAttention, H, target, opts))(inputs);
            const book = tf.valueAndGrads(mhaLoss(multiHeadAttentionTextbook as Mha, H, target, opts))(inputs);
            assertClose(vals(fast.value), vals(book.value), 1e-4, `loss, ${name}`);
            fast.grads.forEach((g, i) => assertClose(vals(g), vals(book.grads[i]), 2e-4, `grad ${i}, ${name}`));
          }
        });
      });

      it("gradients equal central finite differences", () => {
        tf.tidy(() => {
          const [b, t, c, h] = [2, 3, 4, 2];
          const p = testParams(c, h, 100);
          const x = rand([b, t, c], 101) as tf.Tensor3D, kv = rand([b, 2, c], 102) as tf.Tensor3D;
          const target = rand([b, t, c], 103);
          for (const [name, opts, cross] of [["causal", { causal: true }, false], ["cross", {}, true]] as [string, object, boolean][]) {
            const f = mhaLoss(multiHeadAttention, h, target, opts);
            const inputs = [x, p.wqkv, p.bqkv!, p.wproj, p.bproj!, ...(cross ? [kv] : [])];
            const grads = tf.grads(f)(inputs);
            const eps = 1e-2; // float32: big enough that rounding (~1e-7 · |loss| / eps) stays small
            inputs.forEach((inp, which) => {
              const base = vals(inp);
              const g = vals(grads[which]);
              for (let i = 0; i < base.length; i++) {
                const at = (delta: number) => tf.tidy(() => {
                  const moved = base.slice();
                  moved[i] += delta;
                  return f(...inputs.map((u, j) => (j === which ? tf.tensor(moved, inp.shape) : u))).dataSync()[0];
                });
                const fd = (at(eps) - at(-eps)) / (2 * eps);
                assert.ok(Math.abs(fd - g[i]) <= 2e-3 + 2e-2 * Math.abs(fd),
                  `input ${which}[${i}], ${name}: autodiff ${g[i]} vs finite difference ${fd}`);
              }
            });
          }
        });
      });

      it("rejects bad configurations with clear errors", () => {
        tf.tidy(() => {
          const p = testParams(C, H, 110);
          const x = tf.zeros([B, T, C]) as tf.Tensor3D;
          const p130 = testParams(130, 2, 1);
          assert.throws(() => multiHeadAttention(p130, tf.zeros([1, 2, 130]) as tf.Tensor3D, { heads: 4 }),
            /^Error: multiHeadAttention: channels 130 not divisible by heads 4$/);
          assert.throws(() => multiHeadAttention(p, tf.zeros([T, C]) as unknown as tf.Tensor3D, { heads: H }), /x must be \[B, T, C\]/);
          assert.throws(() => multiHeadAttention(p, tf.zeros([B, T, 6]) as tf.Tensor3D, { heads: H }), /wqkv must be \[6, 18\]/);
          assert.throws(() => multiHeadAttention({ ...p, wproj: tf.zeros([C, 4]) as tf.Tensor2D }, x, { heads: H }), /wproj must be \[8, 8\]/);
          assert.throws(() => multiHeadAttention({ ...p, bqkv: tf.zeros([C]) as tf.Tensor1D }, x, { heads: H }), /bqkv must be \[24\]/);
          assert.throws(() => multiHeadAttention(p, x, { heads: H, kv: tf.zeros([B, 3, 4]) as tf.Tensor3D }), /kv must be \[2, S, 8\]/);
          assert.throws(() => multiHeadAttention(p, x, { heads: H, causal: true, kv: tf.zeros([B, 3, C]) as tf.Tensor3D }), /causal attention needs T <= S/);
          assert.throws(() => multiHeadAttention(p, x, { heads: 0 }), /heads must be a positive integer/);
          assert.throws(() => multiHeadAttention(p, x, { heads: H, mask: tf.ones([T, 4]) }), /mask shape \[5,4\] does not broadcast/);
        });
      });

      it("leaks no tensors (forward, weights, forward + backward)", () => {
        const p = testParams(C, H, 120);
        const x = rand([B, T, C], 121) as tf.Tensor3D;
        const mask = causalMask(T);
        const run = () => {
          multiHeadAttention(p, x, { heads: H, causal: true }).dispose();
          const r = multiHeadAttention(p, x, { heads: H, mask, returnWeights: true });
          tf.dispose([r.output, r.weights]);
          tf.dispose(tf.grads((xx: tf.Tensor, w: tf.Tensor) =>
            tf.sum(multiHeadAttention({ ...p, wqkv: w as tf.Tensor2D }, xx as tf.Tensor3D, { heads: H, causal: true })))([x, p.wqkv]));
          tf.dispose(tf.grads((xx: tf.Tensor) => tf.sum(scaledDotProductAttention(xx, xx, xx, { mask })))([x]));
        };
        run();
        const before = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) run();
        assert.equal(tf.memory().numTensors, before);
        tf.dispose([p.wqkv, p.bqkv!, p.wproj, p.bproj!, x, mask]);
      });
    });
  });
}
