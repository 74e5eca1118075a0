import { strict as assert } from "node:assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../../../lib/core/backend";
import { gptConfig } from "../../../lib/gpt/gpt";
import { loadCheckpoint, loadCheckpointWeights, saveCheckpoint } from "../../../lib/pretrain/checkpoint";
import { disposeParams } from "../../../lib/pretrain/pretrain";
import { CharTokenizer } from "../../../lib/tokens/charTokenizer";
import type { Notebook } from "../../../lib/tools/course/notebook";
import { buildSite } from "../../../lib/tools/course/site";
import { buildWidgetBundle, readWidgetModelScript, WIDGET_BUNDLE } from "../../../lib/tools/course/widgetAssets";
import { WIDGET_MIME, type WidgetSpec } from "../../../lib/widgets/spec";
import { randomModel } from "../../gpt/randomModel";

function widgetNotebook(spec: WidgetSpec | Record<string, unknown>): Notebook {
  return {
    nbformat: 4, nbformat_minor: 5, metadata: {},
    cells: [
      { cell_type: "markdown", id: "t", metadata: {}, source: "# Sampling\n\nTry it." },
      {
        cell_type: "code", id: "c", metadata: {}, execution_count: 1, source: "showSamplerWidget(…)",
        outputs: [{ output_type: "display_data", data: { [WIDGET_MIME]: spec, "text/html": "<pre>BUILD-TIME-SAMPLE</pre>", "text/plain": "sample" }, metadata: {} }],
      },
    ],
  };
}

const SAMPLER: WidgetSpec = { kind: "sampler", model: "pretrained", prompt: "The </script> whale", maxNewTokens: 20, temperature: 0.8, topK: 5, topP: 1, seed: 1 };

describe("live widgets in the site (render, bundle, exported models)", function () {
  this.timeout(60000);
  let dir = "";
  before(async () => {
    await initBackend({ quiet: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "widgets-site-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, nb: Notebook) => {
    const file = path.join(dir, `${name}.ipynb`);
    fs.writeFileSync(file, JSON.stringify(nb));
    return file;
  };

  it("renders a widget with its settings and build-time view, loads the bundle, and exports the model it names", () => {
    const tokenizer = CharTokenizer.fromText("The whale</script>");
    const config = gptConfig("tiny", { vocabSize: tokenizer.vocabSize, blockSize: 16 });
    const params = randomModel(config, 1);
    const artifacts = path.join(dir, "artifacts");
    saveCheckpoint(path.join(artifacts, "pretrained"), { params, config, tokenizer, step: 7 });
    const out = path.join(dir, "site");
    const res = buildSite({ notebooks: [write("05-sampling", widgetNotebook(SAMPLER))], outDir: out, env: { COURSE_ARTIFACTS: artifacts } });
    const page = fs.readFileSync(path.join(out, "05-sampling.html"), "utf8");
    assert.match(page, /<div class="output course-widget" data-kind="sampler"><script type="application\/json" class="widget-spec">/);
    assert.ok(page.includes("The \\u003c/script> whale"), "the settings cannot end their script element");
    assert.ok(page.includes("<pre>BUILD-TIME-SAMPLE</pre>"));
    assert.ok(page.includes(`<script src="${WIDGET_BUNDLE}"></script>`));
    assert.ok(fs.readFileSync(path.join(out, "slides", "05-sampling.html"), "utf8").includes(`<script src="../${WIDGET_BUNDLE}"></script>`));
    assert.deepEqual(res.widgetFiles.map((f) => f.file).sort(), [WIDGET_BUNDLE, "assets/models/pretrained.js"]);
    for (const f of res.widgetFiles) assert.equal(fs.statSync(path.join(out, f.file)).size, f.bytes);
    // The exported model: the checkpoint's config, tokenizer and weights, to float16's precision.
    const live = readWidgetModelScript(path.join(out, "assets", "models", "pretrained.js"));
    assert.deepEqual(live.config, config);
    assert.deepEqual(live.tokenizer.toJSON(), tokenizer.toJSON());
    for (const [name, p] of Object.entries(params)) {
      const want = p.dataSync();
      live.weights[name].forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= Math.abs(want[i]) * 2 ** -11 + 1e-7, `${name}[${i}]`));
    }
    disposeParams(params);
  });

  it("a page without widgets loads no bundle; a widget naming a model that does not exist stops the build with one line", () => {
    const out = path.join(dir, "site2");
    const plain: Notebook = { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ cell_type: "markdown", id: "m", metadata: {}, source: "# Plain" }] };
    const res = buildSite({ notebooks: [write("00-plain", plain)], outDir: out });
    assert.deepEqual(res.widgetFiles, []);
    assert.ok(!fs.readFileSync(path.join(out, "00-plain.html"), "utf8").includes(WIDGET_BUNDLE));
    assert.throws(() => buildSite({ notebooks: [write("05-x", widgetNotebook({ ...SAMPLER, model: "dpo" }))], outDir: path.join(dir, "site3"), env: { COURSE_ARTIFACTS: path.join(dir, "none") } }),
      /a live widget needs the model "dpo", but .*none\/dpo does not exist yet: run notebook 09 \(DPO\) or `npm run dpo` first/);
    assert.throws(() => buildSite({ notebooks: [write("05-y", widgetNotebook({ kind: "sampler", model: "gpt5" } as Record<string, unknown>))], outDir: path.join(dir, "site4") }),
      /05-y\.ipynb: cell 2, output 1: field "prompt" of a sampler widget must be a string, got undefined/);
    assert.throws(() => buildSite({ notebooks: [write("05-z", widgetNotebook({ ...SAMPLER, model: "gpt5" } as Record<string, unknown>))], outDir: path.join(dir, "site5") }),
      /05-z\.ipynb: cell 2, output 1: model "gpt5" must be one of pretrained, base/);
  });

  it("reads a checkpoint's weights as plain arrays, the same numbers loadCheckpoint gives", () => {
    const ck = path.join(dir, "artifacts", "pretrained");
    const plain = loadCheckpointWeights(ck);
    const full = loadCheckpoint(ck);
    assert.equal(plain.step, 7);
    assert.deepEqual(Object.keys(plain.weights), Object.keys(full.params));
    for (const [name, t] of Object.entries(full.params)) {
      assert.deepEqual(plain.weights[name].shape, t.shape);
      assert.deepEqual(Array.from(plain.weights[name].values), Array.from(t.dataSync()));
    }
    tf.dispose(Object.values(full.params));
  });

  it("bundles the widgets without TensorFlow.js, the kernels or Node's modules", () => {
    const { js, inputs } = buildWidgetBundle();
    assert.ok(inputs.includes("lib/gpt/decoder.ts") && inputs.includes("lib/tokens/bpe.ts") && inputs.includes("lib/widgets/browser/main.ts"), inputs.join(" "));
    const heavy = inputs.filter((f) => /node_modules\/(@tensorflow|wabt|onnxruntime)|lib\/core\/kernels\/(?!onnxruntime)|lib\/gpt\/gpt\.ts|lib\/attention\/attention\.ts/.test(f));
    assert.deepEqual(heavy, []);
    assert.ok(js.length < 200_000, `${js.length} bytes`);
  });
});
