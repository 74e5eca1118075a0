/**
 * What the site's live widgets need beside the pages:
 *
 * - assets/course-widgets.js: lib/widgets/browser/ bundled by esbuild (one file, no CDN). The
 *   library's modules that also serve Node import TensorFlow.js, onnxruntime or Node's built-in
 *   modules for functions the widgets never call; those imports resolve to a stub that throws if
 *   anything ever does call them, so the bundle stays small and a mistake fails loudly.
 * - assets/models/<name>.js: each model a page's widgets name, as a weights file
 *   (lib/gpt/weightsFile.ts, float16) in base64 inside a script, which loads from file:// too.
 * - assets/models/gpt2-tokenizer.js: GPT-2's byte order and merges, when a page shows GPT-2's tokenizer.
 */
import * as fs from "fs";
import * as path from "path";
import { writeFileAtomic } from "../../core/atomic";
import { projectPath, repoRoot, requireArtifact, requireBaseModel } from "../../core/paths";
import { decodeWeightsFile, encodeWeightsFile } from "../../gpt/weightsFile";
import { tokenizerFromJSON } from "../../tokens/tokenizerFiles";
import type { LiveModel } from "../../widgets/live";
import { loadCheckpointWeights } from "../../pretrain/checkpoint";
import { GPT2_END_OF_TEXT, GPT2_END_OF_TEXT_ID, gpt2Tokenizer } from "../../tokens/gpt2Tokenizer";
import type { GPTConfig } from "../../gpt/gpt";
import type { WidgetModelName } from "../../widgets/spec";

export const WIDGET_BUNDLE = "assets/course-widgets.js";
const ENTRY = path.join(repoRoot, "lib", "widgets", "browser", "main.ts");

/** Packages and built-in modules the browser never runs (see the top of the file); an import of any other Node-only module fails the build. */
const NOT_IN_BROWSER = [
  "@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm", "@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu", "onnxruntime-node",
  "js-tiktoken/ranks/gpt2", "cli-progress", "tslab",
  "fs", "path", "crypto", "util", "os", "url", "child_process", "worker_threads", "zlib", "stream", "events", "module", "perf_hooks", "readline", "v8", "assert",
];
const STUB = path.join(repoRoot, "lib", "widgets", "browser", "notInBrowser.js");

/** The widgets' bundle (minified, with the licence comments esbuild keeps) and the source files in it, relative to the project. */
export function buildWidgetBundle(): { js: string; inputs: string[] } {
  // Loaded here, not at the top: only the site build needs esbuild (a dev dependency).
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const esbuild = require("esbuild") as typeof import("esbuild");
  const result = esbuild.buildSync({
    entryPoints: [ENTRY],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2020",
    minify: true,
    write: false,
    legalComments: "eof",
    logLevel: "silent",
    metafile: true,
    alias: Object.fromEntries(NOT_IN_BROWSER.map((m) => [m, STUB])),
  });
  if (result.errors.length > 0) throw new Error(`${projectPath(ENTRY)}: ${result.errors[0].text}`);
  return { js: result.outputFiles[0].text, inputs: Object.keys(result.metafile.inputs) };
}

/**
 * Where the site build finds each model a widget names ("base" is the base model chapters 06–09
 * start from); one line naming the notebook or command that makes a missing one.
 */
export function widgetModelDir(name: WidgetModelName, env: NodeJS.ProcessEnv = process.env): string {
  try {
    return name === "base" ? requireBaseModel(env) : requireArtifact(name, env);
  } catch (err) {
    throw new Error(`a live widget needs the model "${name}", but ${(err as Error).message}`);
  }
}

/** One checkpoint as a weights file in base64 inside a script that registers it under `name`. */
export function widgetModelScript(name: string, dir: string): string {
  const ck = loadCheckpointWeights(dir);
  if (ck.config === undefined || ck.tokenizer === undefined) throw new Error(`${projectPath(dir)}: the checkpoint has no model config or tokenizer`);
  const weights = Object.entries(ck.weights).map(([n, t]) => ({ name: n, shape: t.shape, values: t.values }));
  const bytes = encodeWeightsFile({ config: ck.config as GPTConfig, tokenizer: ck.tokenizer.toJSON(), meta: { name, step: ck.step, savedAt: ck.savedAt } }, weights);
  return registerScript(name, JSON.stringify(Buffer.from(bytes).toString("base64")));
}

/** The model in a script written by widgetModelScript, decoded as the page decodes it (the site check compares with it). */
export function readWidgetModelScript(file: string): LiveModel {
  const text = fs.readFileSync(file, "utf8");
  const m = /^\(self\.llmCourseModels = self\.llmCourseModels \|\| \{\}\)\[("[^"]+")\] = "([A-Za-z0-9+/=]*)";\n$/.exec(text);
  if (!m) throw new Error(`${projectPath(file)}: not a model script written by the site build`);
  const decoded = decodeWeightsFile(new Uint8Array(Buffer.from(m[2], "base64")), projectPath(file));
  return { config: decoded.header.config, tokenizer: tokenizerFromJSON(decoded.header.tokenizer, projectPath(file)), weights: decoded.weights };
}

/** GPT-2's tokenizer as the widgets rebuild it: byte order, merges (flat pairs), <|endoftext|>. */
export function gpt2TokenizerScript(): string {
  const t = gpt2Tokenizer();
  const data = { byteIds: t.encoder.byteIds, merges: t.merges.flat(), endOfText: [GPT2_END_OF_TEXT, GPT2_END_OF_TEXT_ID] };
  return registerScript("gpt2-tokenizer", JSON.stringify(data));
}

function registerScript(key: string, valueJs: string): string {
  return `(self.llmCourseModels = self.llmCourseModels || {})[${JSON.stringify(key)}] = ${valueJs};\n`;
}

export interface WidgetAssetsResult {
  /** Files written, relative to the site folder, with their sizes in bytes. */
  files: { file: string; bytes: number }[];
}

/** Write the bundle and every model and tokenizer the pages' widgets need into `outDir`. */
export function writeWidgetAssets(outDir: string, needs: { models: ReadonlySet<WidgetModelName>; gpt2: boolean }, env: NodeJS.ProcessEnv = process.env): WidgetAssetsResult {
  const files: { file: string; bytes: number }[] = [];
  const write = (rel: string, text: string) => {
    writeFileAtomic(path.join(outDir, rel), text);
    files.push({ file: rel, bytes: Buffer.byteLength(text) });
  };
  write(WIDGET_BUNDLE, buildWidgetBundle().js);
  for (const name of [...needs.models].sort()) {
    write(`assets/models/${name}.js`, widgetModelScript(name, widgetModelDir(name, env)));
  }
  if (needs.gpt2) write("assets/models/gpt2-tokenizer.js", gpt2TokenizerScript());
  return { files };
}
