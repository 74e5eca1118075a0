/**
 * Loading the course's models in a page. The site build writes each one as
 * assets/models/<name>.js, a script that hands the weights file (lib/gpt/weightsFile.ts) over as
 * base64: pages opened from file:// may not fetch() files next to them, but they may load
 * scripts, so one format works from a USB stick and from any static host alike.
 */
import { decodeWeightsFile } from "../../gpt/weightsFile";
import { BPETokenizer, BytePairEncoder, GPT2_PATTERN } from "../../tokens/bpe";
import { CharTokenizer } from "../../tokens/charTokenizer";
import { checkAppendedSpecials, readSpecialTokens, type Tokenizer, type TokenizerJSON } from "../../tokens/tokenizer";
import { WordTokenizer } from "../../tokens/wordTokenizer";
import type { LiveModel } from "../live";

/** Where the bundle was loaded from: models sit beside it (assets/models/). */
const BUNDLE_URL = (document.currentScript as HTMLScriptElement | null)?.src ?? location.href;

interface ModelGlobals {
  llmCourseModels?: Record<string, unknown>;
}

const scripts = new Map<string, Promise<unknown>>();

/** Run assets/models/<file>.js once and return what it registered under `key`. */
export function loadAsset(key: string): Promise<unknown> {
  let p = scripts.get(key);
  if (!p) {
    p = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = new URL(`models/${key}.js`, BUNDLE_URL).href;
      s.onload = () => {
        const g = globalThis as ModelGlobals;
        const value = g.llmCourseModels?.[key];
        if (value === undefined) reject(new Error(`assets/models/${key}.js did not register "${key}"`));
        else {
          delete g.llmCourseModels![key]; // the page keeps the decoded arrays, not the text too
          resolve(value);
        }
      };
      s.onerror = () => reject(new Error(`assets/models/${key}.js could not be loaded (was the site built with this model?)`));
      document.head.appendChild(s);
    });
    scripts.set(key, p);
  }
  return p;
}

const models = new Map<string, Promise<LiveModel>>();

/** A model by its artifact name ("pretrained", "sft", …), decoded once per page. */
export function loadModel(name: string): Promise<LiveModel> {
  let p = models.get(name);
  if (!p) {
    p = loadAsset(name).then(async (b64) => {
      if (typeof b64 !== "string") throw new Error(`assets/models/${name}.js: expected the weights as a base64 string`);
      const file = decodeWeightsFile(base64Bytes(b64), `assets/models/${name}.js`);
      return { config: file.header.config, tokenizer: await tokenizerFromJSON(file.header.tokenizer, name), weights: file.weights };
    });
    models.set(name, p);
  }
  return p;
}

function base64Bytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

let gpt2: Promise<BPETokenizer> | undefined;

/** GPT-2's tokenizer from the merges the site ships (assets/models/gpt2-tokenizer.js). */
function gpt2Tokenizer(): Promise<BPETokenizer> {
  gpt2 ??= loadAsset("gpt2-tokenizer").then((v) => {
    const { byteIds, merges, endOfText } = v as { byteIds: number[]; merges: number[]; endOfText: [string, number] };
    const pairs: [number, number][] = [];
    for (let i = 0; i < merges.length; i += 2) pairs.push([merges[i], merges[i + 1]]);
    return new BPETokenizer(new BytePairEncoder(pairs, GPT2_PATTERN, byteIds, "GPT-2 merges"), { [endOfText[0]]: endOfText[1] }, "gpt2");
  });
  return gpt2;
}

/** The tokenizer a JSON form describes (lib/tokens/tokenizerFiles.ts's dispatch, without the file system). */
export async function tokenizerFromJSON(json: TokenizerJSON, source: string): Promise<Tokenizer> {
  switch (json.type) {
    case "char":
      return CharTokenizer.fromJSON(json as unknown as Record<string, unknown>, source);
    case "word":
      return WordTokenizer.fromJSON(json as unknown as Record<string, unknown>, source);
    case "bpe":
      return BPETokenizer.fromJSON(json as unknown as Record<string, unknown>, source);
    case "gpt2": {
      const base = await gpt2Tokenizer();
      const specials = readSpecialTokens(json as unknown as Record<string, unknown>, source);
      const added = checkAppendedSpecials(specials, base.vocabSize, source);
      return added.length ? base.addSpecialTokens(added) : base;
    }
    default:
      throw new Error(`${source}: tokenizer type ${JSON.stringify(json.type)} is not one the widgets know`);
  }
}
