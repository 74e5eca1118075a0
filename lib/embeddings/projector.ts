/**
 * The projector view: look at embeddings by squashing their `dim` numbers down to 2 or 3.
 *
 *  - PCA keeps the directions along which the points spread most (a rotation followed by
 *    dropping axes): distances along those axes are faithful, fine structure is lost.
 *  - UMAP builds a graph of each point's nearest neighbours and lays it out in 2-D/3-D so
 *    neighbours stay neighbours: good at showing clusters, but distances between clusters
 *    and the axes themselves mean nothing.
 *
 * The TensorFlow Embedding Projector (projector.tensorflow.org → "Load") shows the same
 * views interactively from two files this module writes: `vectors.tsv` (one row of
 * tab-separated numbers per word) and `metadata.tsv` (one word per line, no header when
 * there is a single column).
 */
import * as path from "path";
import { PCA } from "ml-pca";
import { UMAP } from "umap-js";
import { writeFileAtomic } from "../core/atomic";
import type { Point2, Point3 } from "../show/plot";
import { createRng } from "../core/random";

function checkMatrix(vectors: readonly (readonly number[])[], where: string): void {
  if (vectors.length === 0) throw new Error(`${where}: no vectors`);
  const d = vectors[0].length;
  vectors.forEach((v, i) => {
    if (v.length !== d) throw new Error(`${where}: row ${i} has ${v.length} numbers, row 0 has ${d}`);
    v.forEach((x, j) => {
      if (!Number.isFinite(x)) throw new Error(`${where}: row ${i}, column ${j} is not a finite number (${x})`);
    });
  });
}

/**
 * English function words (and a few of Moby-Dick's archaic ones, and its ubiquitous "whale"): left
 * out when picking the content words to show in a projection, where they would crowd the picture.
 */
export const STOP_WORDS: ReadonlySet<string> = new Set(
  ("the of and a to in that his it i but as is with he was for all this at by not from him so on be " +
    "you one whale had have there or were now they which their me then are when an my what no some out into up more would like " +
    "them any been if upon who over these its old we such only down must those than very though other your even yet still did do " +
    "about thou ye ever should could after here thee can before where while through again will most thy has off way said see how " +
    "may much same two first too every go own great long last little never us let our against without whose whom why among " +
    "also himself shall nor nothing each round almost made seemed just once things something far that's he's it's don't i'll").split(" "),
);

export interface Projection {
  /** One row of `components` numbers per input vector. */
  coords: number[][];
  /** PCA only: fraction of the total variance each kept component explains. */
  explainedVariance?: number[];
}

/** Project onto the first `components` principal components (centred, not scaled). */
export function pcaProject(vectors: readonly (readonly number[])[], components: 2 | 3 = 2): Projection {
  checkMatrix(vectors, "pcaProject");
  const data = vectors.map((v) => [...v]);
  const pca = new PCA(data, { center: true, scale: false });
  const coords = pca.predict(data, { nComponents: components }).to2DArray();
  return { coords, explainedVariance: pca.getExplainedVariance().slice(0, components) };
}

export interface UmapOptions {
  nNeighbors?: number;
  minDist?: number;
  nEpochs?: number;
  seed?: number;
}

/** UMAP layout in 2 or 3 dimensions, seeded (umap-js takes its random numbers from our generator). */
export function umapProject(vectors: readonly (readonly number[])[], components: 2 | 3 = 2, opts: UmapOptions = {}): Projection {
  checkMatrix(vectors, "umapProject");
  const rng = createRng(opts.seed ?? 0);
  const umap = new UMAP({
    nComponents: components,
    nNeighbors: Math.min(opts.nNeighbors ?? 15, vectors.length - 1),
    minDist: opts.minDist ?? 0.1,
    nEpochs: opts.nEpochs,
    random: () => rng.next(),
  });
  return { coords: umap.fit(vectors.map((v) => [...v])) };
}

/** 2-D coordinates + labels → points for `scatter2d`. */
export function toPoints2(coords: readonly number[][], labels: readonly string[], groups?: readonly string[]): Point2[] {
  if (coords.length !== labels.length) throw new Error(`toPoints2: ${coords.length} coordinates but ${labels.length} labels`);
  return coords.map((c, i) => ({ x: c[0], y: c[1], label: labels[i], ...(groups ? { group: groups[i] } : {}) }));
}

/** 3-D coordinates + labels → points for `scatter3d`. */
export function toPoints3(coords: readonly number[][], labels: readonly string[], groups?: readonly string[]): Point3[] {
  if (coords.length !== labels.length) throw new Error(`toPoints3: ${coords.length} coordinates but ${labels.length} labels`);
  return coords.map((c, i) => ({ x: c[0], y: c[1], z: c[2], label: labels[i], ...(groups ? { group: groups[i] } : {}) }));
}

/** `vectors.tsv` content: one line per vector, numbers separated by tabs, final newline. */
export function vectorsTsv(vectors: readonly (readonly number[])[]): string {
  checkMatrix(vectors, "vectorsTsv");
  return vectors.map((v) => v.map((x) => String(Math.fround(x))).join("\t")).join("\n") + "\n";
}

/**
 * `metadata.tsv` content: one label per line. The Projector reads a single column without
 * a header; a tab or newline inside a label would break the format, so they are refused.
 */
export function metadataTsv(labels: readonly string[]): string {
  labels.forEach((l, i) => {
    if (/[\t\r\n]/.test(l)) throw new Error(`metadataTsv: label ${i} (${JSON.stringify(l)}) contains a tab or newline`);
  });
  return labels.join("\n") + "\n";
}

/** Write `vectors.tsv` and `metadata.tsv` into `dir` (atomically); returns their paths. */
export function exportProjectorFiles(
  dir: string,
  vectors: readonly (readonly number[])[],
  labels: readonly string[],
): { vectorsFile: string; metadataFile: string } {
  if (vectors.length !== labels.length) throw new Error(`exportProjectorFiles: ${vectors.length} vectors but ${labels.length} labels`);
  const vectorsFile = path.join(dir, "vectors.tsv");
  const metadataFile = path.join(dir, "metadata.tsv");
  const v = vectorsTsv(vectors);
  const m = metadataTsv(labels);
  writeFileAtomic(vectorsFile, v);
  writeFileAtomic(metadataFile, m);
  return { vectorsFile, metadataFile };
}
