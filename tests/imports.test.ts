import { strict as assert } from "node:assert";
import * as fs from "fs";
import * as path from "path";

/**
 * The library's import graph: lib/**\/*.ts (not lib/dist), each file's relative imports that
 * exist at run time (`import type` is erased by the compiler, so it is left out).
 */
const LIB = path.join(__dirname, "..", "lib");
const SKIP = new Set(["dist", "node_modules", "siteAssets", "reference"]);

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return SKIP.has(e.name) ? [] : sourceFiles(p);
    return p.endsWith(".ts") && !p.endsWith(".d.ts") ? [p] : [];
  });
}

export function importGraph(root: string, opts: { types?: boolean } = {}): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(root)) {
    const src = fs.readFileSync(file, "utf8");
    const deps = new Set<string>();
    for (const m of src.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^;]*?\bfrom\s+["'](\.[^"']+)["']/gms)) {
      if (m[1] && !opts.types) continue;
      const base = path.resolve(path.dirname(file), m[2]);
      const target = [`${base}.ts`, path.join(base, "index.ts")].find((c) => fs.existsSync(c));
      if (target) deps.add(target);
    }
    graph.set(file, [...deps]);
  }
  return graph;
}

/**
 * The library's stages in lesson order (lib/index.ts exports them in this order). A file may
 * import its own stage and earlier ones; tools/ (CLIs, course builder) may import any stage.
 */
export const STAGES = ["core", "show", "tokens", "embeddings", "attention", "gpt", "pretrain", "finetune", "rlhf", "rlvr", "widgets", "tools"];

/** "a/x.ts imports b/y.ts" for every import of a later stage (stage = first folder under root; files at the root are not checked). */
export function laterStageImports(graph: Map<string, string[]>, root: string, stages: readonly string[] = STAGES): string[] {
  const stageOf = (f: string) => stages.indexOf(path.relative(root, f).split(path.sep)[0]);
  const wrong: string[] = [];
  for (const [file, deps] of graph) {
    const own = stageOf(file);
    if (own < 0) continue;
    for (const d of deps) if (stageOf(d) > own) wrong.push(`${path.relative(root, file)} imports ${path.relative(root, d)}`);
  }
  return wrong;
}

/** Groups of files that import each other, directly or round a loop (Tarjan's strongly connected components). */
export function importCycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      group.push(w);
    } while (w !== v);
    if (group.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(group.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

describe("the library's imports", () => {
  const graph = importGraph(LIB);
  const rel = (f: string) => path.relative(LIB, f);

  it("finds a cycle when there is one (a loop of three files, a file importing itself)", () => {
    const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]], ["e", ["e"]], ["f", []]]);
    assert.deepEqual(importCycles(g), [["a", "b", "c"], ["e"]]);
  });

  it("has no import cycles", () => {
    assert.ok(graph.size > 50, `read only ${graph.size} files`);
    const cycles = importCycles(graph).map((c) => c.map(rel).join(" → "));
    assert.deepEqual(cycles, [], `files that import each other: ${cycles.join("; ")}`);
  });

  it("finds a file that imports a later stage, and lets a stage import itself and earlier ones", () => {
    const r = (...p: string[]) => path.join("/r", ...p);
    const g = new Map([
      [r("core", "a.ts"), [r("core", "b.ts")]],
      [r("gpt", "m.ts"), [r("core", "a.ts"), r("gpt", "n.ts")]],
      [r("core", "b.ts"), [r("gpt", "m.ts")]],
      [r("index.ts"), [r("gpt", "m.ts")]],
      [r("tools", "t.ts"), [r("gpt", "m.ts")]],
    ]);
    assert.deepEqual(laterStageImports(g, "/r", ["core", "gpt", "tools"]), [`${path.join("core", "b.ts")} imports ${path.join("gpt", "m.ts")}`]);
  });

  it("is laid out by stage in lesson order: every library file is in a stage's folder, and none imports a later stage (types included)", () => {
    const folders = fs.readdirSync(LIB, { withFileTypes: true }).filter((e) => e.isDirectory() && !SKIP.has(e.name)).map((e) => e.name);
    assert.deepEqual(folders.sort(), [...STAGES].sort());
    const loose = fs.readdirSync(LIB).filter((f) => f.endsWith(".ts") && f !== "index.ts");
    assert.deepEqual(loose, [], "library files outside a stage's folder");
    assert.deepEqual(laterStageImports(importGraph(LIB, { types: true }), LIB), []);
    const index = fs.readFileSync(path.join(LIB, "index.ts"), "utf8");
    assert.deepEqual([...index.matchAll(/from "\.\/(\w+)"/g)].map((m) => m[1]), STAGES.filter((s) => s !== "tools"), "lib/index.ts exports the stages in lesson order");
  });

  it("the library notebooks import never imports the course's tools (CLIs, site, notebook runner)", () => {
    const wrong = [...graph].filter(([f]) => !rel(f).startsWith("tools" + path.sep)).flatMap(([f, deps]) =>
      deps.filter((d) => rel(d).startsWith("tools" + path.sep)).map((d) => `${rel(f)} imports ${rel(d)}`));
    assert.deepEqual(wrong, []);
  });
});
