import assert from "node:assert/strict";
import { createRng, RngState, seedFor } from "../../lib/core/random";

const draw = (rng: ReturnType<typeof createRng>, n: number) =>
  Array.from({ length: n }, () => [rng.next(), rng.int(1000), rng.normal()]);

describe("random", () => {
  it("matches seedrandom's published first value for the seed 'hello.'", () => {
    // seedrandom's README: Math.seedrandom('hello.'); Math.random() === 0.9282578795792454
    assert.equal(createRng("hello.").next(), 0.9282578795792454);
  });

  it("is deterministic per seed, and different seeds give different streams", () => {
    assert.deepEqual(draw(createRng(1337), 50), draw(createRng(1337), 50));
    assert.deepEqual(draw(createRng(7), 5), draw(createRng("7"), 5)); // numbers are seeded by their text
    assert.notDeepEqual(draw(createRng(1337), 5), draw(createRng(1338), 5));
  });

  it("next() is in [0, 1) and int(n) in [0, n) covering every value", () => {
    const rng = createRng(1);
    const seen = new Set<number>();
    for (let k = 0; k < 2000; k++) {
      const u = rng.next();
      assert.ok(u >= 0 && u < 1);
      const i = rng.int(7);
      assert.ok(Number.isInteger(i) && i >= 0 && i < 7);
      seen.add(i);
    }
    assert.equal(seen.size, 7);
  });

  it("normal() has mean ~0 and variance ~1", () => {
    const rng = createRng(2024);
    const n = 20000;
    const xs = Array.from({ length: n }, () => rng.normal());
    const mean = xs.reduce((a, b) => a + b, 0) / n;
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
    // Standard errors: 1/sqrt(n) = 0.007 for the mean, sqrt(2/n) = 0.01 for the variance.
    assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.04, `variance ${variance}`);
    assert.ok(xs.every(Number.isFinite));
  });

  it("shuffle is an in-place permutation, reproducible per seed", () => {
    const a = Array.from({ length: 100 }, (_, i) => i);
    const out = createRng(5).shuffle(a);
    assert.equal(out, a); // same array object
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
    assert.notDeepEqual(a, Array.from({ length: 100 }, (_, i) => i));
    const b = Array.from({ length: 100 }, (_, i) => i);
    createRng(5).shuffle(b);
    assert.deepEqual(a, b);
    assert.deepEqual(createRng(5).shuffle([]), []);
    assert.deepEqual(createRng(5).shuffle(["x"]), ["x"]);
  });

  it("shuffle reaches every ordering of 3 items about equally often", () => {
    const rng = createRng(99);
    const counts = new Map<string, number>();
    for (let k = 0; k < 6000; k++) {
      const key = rng.shuffle([0, 1, 2]).join("");
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    assert.equal(counts.size, 6);
    for (const c of counts.values()) assert.ok(c > 850 && c < 1150, `count ${c}`); // expected 1000
  });

  it("choice samples indices with the given probabilities", () => {
    const rng = createRng(42);
    const probs = [0.1, 0, 0.2, 0.7];
    const counts = [0, 0, 0, 0];
    for (let k = 0; k < 10000; k++) counts[rng.choice(probs)]++;
    // Exact counts for this seed pin down the algorithm (a change of sampling shows here)…
    assert.deepEqual(counts, [990, 0, 1997, 7013]);
    // …and they are within ~3 standard deviations of the expectation.
    assert.equal(counts[1], 0);
    assert.ok(Math.abs(counts[0] - 1000) < 100);
    assert.ok(Math.abs(counts[2] - 2000) < 130);
    assert.ok(Math.abs(counts[3] - 7000) < 140);
  });

  it("choice accepts unnormalised weights and typed arrays", () => {
    const a = createRng(3);
    const b = createRng(3);
    for (let k = 0; k < 200; k++) {
      assert.equal(a.choice(new Float32Array([1, 3, 0, 6])), b.choice([0.1, 0.3, 0, 0.6]));
    }
    assert.equal(createRng(3).choice([0, 0, 5]), 2);
  });

  it("choice rejects negative, NaN and all-zero probabilities", () => {
    const rng = createRng(0);
    assert.throws(() => rng.choice([0.5, -0.1]), /finite and >= 0.*index 1/);
    assert.throws(() => rng.choice([NaN, 1]), /finite and >= 0/);
    assert.throws(() => rng.choice([0, 0]), /all be zero/);
    assert.throws(() => rng.choice([]), /all be zero/);
  });

  it("int rejects non-positive or fractional n; createRng rejects NaN seeds", () => {
    const rng = createRng(0);
    assert.throws(() => rng.int(0), /positive integer/);
    assert.throws(() => rng.int(2.5), /positive integer/);
    assert.throws(() => createRng(NaN), /finite/);
  });

  it("state() restores a generator that continues identically (also through JSON)", () => {
    const rng = createRng("checkpoint");
    draw(rng, 17); // advance somewhere in the middle
    const saved = rng.state();
    const fromJson = JSON.parse(JSON.stringify(saved)) as RngState;
    const expected = draw(rng, 40);
    assert.deepEqual(draw(createRng("checkpoint", saved), 40), expected);
    assert.deepEqual(draw(createRng("anything", fromJson), 40), expected);
    // The state is a copy: using the restored generator doesn't alter the saved object.
    const again = createRng("x", saved);
    draw(again, 5);
    assert.deepEqual(draw(createRng("x", saved), 40), expected);
  });

  it("rejects a state that is not from rng.state()", () => {
    assert.throws(() => createRng(1, { algorithm: "arc4", i: 0, j: 0, S: [1, 2] }), /not an RngState/);
    assert.throws(() => createRng(1, {} as RngState), /not an RngState/);
  });

  it("seedFor gives reproducible integer seeds in [0, 2^31)", () => {
    const a = createRng(11);
    const b = createRng(11);
    const seeds = Array.from({ length: 100 }, () => seedFor(a));
    assert.deepEqual(seeds, Array.from({ length: 100 }, () => seedFor(b)));
    for (const s of seeds) assert.ok(Number.isInteger(s) && s >= 0 && s < 2 ** 31);
    assert.ok(new Set(seeds).size > 95);
  });
});
