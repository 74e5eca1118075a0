import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { exportProjectorFiles, metadataTsv, pcaProject, STOP_WORDS, toPoints2, toPoints3, umapProject, vectorsTsv } from "../../lib/embeddings/projector";

describe("projector", () => {
  it("PCA of points on a line: the first component explains ~100% and orders the points", () => {
    // Points t·(1, 2, −1, 0.5) + (3, 0, 1, 1) for t = 0..9.
    const pts = Array.from({ length: 10 }, (_, t) => [3 + t, 2 * t, 1 - t, 1 + 0.5 * t]);
    const { coords, explainedVariance } = pcaProject(pts, 2);
    assert.ok(explainedVariance![0] > 0.999999, `${explainedVariance}`);
    assert.equal(coords.length, 10);
    assert.equal(coords[0].length, 2);
    // Along the line, consecutive points are equally spaced: |Δ| = ‖(1, 2, −1, 0.5)‖ = 2.5.
    for (let i = 1; i < 10; i++) assert.ok(Math.abs(Math.abs(coords[i][0] - coords[i - 1][0]) - 2.5) < 1e-9);
    for (const c of coords) assert.ok(Math.abs(c[1]) < 1e-9);
    assert.equal(pcaProject(pts, 3).coords[0].length, 3);
  });

  it("UMAP is seeded and separates two far-apart clusters", () => {
    const rng = (i: number) => Math.sin(i * 12.9898) * 0.01;
    const pts = Array.from({ length: 30 }, (_, i) => (i < 15 ? [0, 0, 0] : [10, 10, 10]).map((x, j) => x + rng(i * 3 + j)));
    const a = umapProject(pts, 2, { seed: 4, nNeighbors: 5, nEpochs: 50 }).coords;
    const b = umapProject(pts, 2, { seed: 4, nNeighbors: 5, nEpochs: 50 }).coords;
    assert.deepEqual(a, b);
    const centre = (xs: number[][]) => [0, 1].map((d) => xs.reduce((s, p) => s + p[d], 0) / xs.length);
    const c0 = centre(a.slice(0, 15));
    const c1 = centre(a.slice(15));
    const spread = Math.max(...a.slice(0, 15).map((p) => Math.hypot(p[0] - c0[0], p[1] - c0[1])));
    assert.ok(Math.hypot(c0[0] - c1[0], c0[1] - c1[1]) > spread, "clusters overlap");
    assert.equal(umapProject(pts, 3, { seed: 1, nNeighbors: 5, nEpochs: 20 }).coords[0].length, 3);
  });

  it("makes labelled scatter points", () => {
    assert.deepEqual(toPoints2([[1, 2]], ["whale"]), [{ x: 1, y: 2, label: "whale" }]);
    assert.deepEqual(toPoints3([[1, 2, 3]], ["sea"], ["nature"]), [{ x: 1, y: 2, z: 3, label: "sea", group: "nature" }]);
    assert.throws(() => toPoints2([[1, 2]], []), /1 coordinates but 0 labels/);
  });

  it("writes the TensorFlow Projector's TSV files exactly (no header for one metadata column)", () => {
    assert.equal(vectorsTsv([[1, -0.5], [0.25, 2]]), "1\t-0.5\n0.25\t2\n");
    assert.equal(metadataTsv(["whale", "sea"]), "whale\nsea\n");
    assert.throws(() => metadataTsv(["a\tb"]), /label 0 \("a\\tb"\) contains a tab or newline/);
    assert.throws(() => vectorsTsv([[1, 2], [3]]), /row 1 has 1 numbers, row 0 has 2/);
    assert.throws(() => vectorsTsv([[1, NaN]]), /row 0, column 1 is not a finite number/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "projector-"));
    const { vectorsFile, metadataFile } = exportProjectorFiles(path.join(dir, "emb"), [[0.5, 1]], ["ahab"]);
    assert.equal(fs.readFileSync(vectorsFile, "utf8"), "0.5\t1\n");
    assert.equal(fs.readFileSync(metadataFile, "utf8"), "ahab\n");
    assert.deepEqual(fs.readdirSync(path.join(dir, "emb")).sort(), ["metadata.tsv", "vectors.tsv"]); // no temp files left
    assert.throws(() => exportProjectorFiles(dir, [[1]], ["a", "b"]), /1 vectors but 2 labels/);
    fs.rmSync(dir, { recursive: true });
  });
  it("STOP_WORDS holds function words, not the book's content words", () => {
    for (const w of ["the", "of", "thou", "upon", "that's"]) assert.ok(STOP_WORDS.has(w), w);
    for (const w of ["ahab", "sea", "harpoon", "starbuck", ""]) assert.ok(!STOP_WORDS.has(w), w);
  });
});
