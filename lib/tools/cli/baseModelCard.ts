#!/usr/bin/env node
/**
 * Ship a pretraining run as the course's base model (data/base-model/), with its model card.
 *
 *   node lib/dist/tools/cli/baseModelCard.js --from DIR --command "npm run train -- …" --seconds S [--note TEXT] [--out DIR] [--force]
 *
 * Copies the run's weights, config, tokenizer and loss history (not AdamW's state: nobody
 * resumes the shipped model), measures it on the held-out tenth of Moby-Dick the same way every
 * time (heldOutLoss: every validation character once), samples from it, and writes beside it
 * `metrics.json` (the numbers; tests/pretrain/baseModel.test.ts reproduces them) and `README.md` (the card).
 * An existing shipped model is replaced only with --force.
 */
import * as fs from "fs";
import * as path from "path";
import { splitTokens } from "../../pretrain/batches";
import { disposeCheckpoint, loadCheckpoint, saveCheckpoint } from "../../pretrain/checkpoint";
import { mobyDickText } from "../../tokens/corpus";
import { gptParameterCount } from "../../gpt/gpt";
import { projectPath, shippedBaseModelDir } from "../../core/paths";
import { disposeParams, heldOutLoss, loadPretrained } from "../../pretrain/pretrain";
import { textGenerate } from "../../gpt/sampling";
import { Command, fail, runAsScript, commandMain, UsageError } from "./cli";

/** Windows of the quick check a unit test can afford (the full measure takes a while). */
export const QUICK_CHECK_WINDOWS = 32;
export const SAMPLE_PROMPTS = ["The whale ", "Captain Ahab ", "It was a "];

export interface BaseModelMetrics {
  command: string;
  trainingSeconds: number;
  step: number;
  parameters: number;
  config: unknown;
  settings: unknown;
  data: { corpus: string; split: string; valCharacters: number };
  heldOut: { loss: number; bitsPerCharacter: number; windows: number; characters: number };
  quickCheck: { windows: number; loss: number };
  evals: [number, number, number][];
  samples: { prompt: string; temperature: number; seed: number; text: string }[];
  backend: string;
  /** Circumstances of the run worth stating (e.g. a machine shared with other work). */
  note?: string;
}

/** The held-out characters: the last tenth of Moby-Dick, as notebook 05 and `npm run train` split it. */
export function mobyDickValIds(encode: (s: string) => number[]): Int32Array {
  return splitTokens(Int32Array.from(encode(mobyDickText())), 0.9).val;
}

function lossChartSvg(evals: [number, number, number][]): string {
  const W = 640, H = 320, L = 56, R = 16, T = 20, B = 44;
  const xs = evals.map((e) => e[0]), ys = evals.flatMap((e) => [e[1], e[2]]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.floor(Math.min(...ys) * 2) / 2, Math.ceil(Math.max(...ys) * 2) / 2];
  const px = (x: number) => L + ((x - x0) / Math.max(1, x1 - x0)) * (W - L - R);
  const py = (y: number) => T + ((y1 - y) / Math.max(1e-9, y1 - y0)) * (H - T - B);
  const line = (k: 1 | 2, color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${evals.map((e) => `${px(e[0]).toFixed(1)},${py(e[k]).toFixed(1)}`).join(" ")}"/>`;
  const yTicks = [];
  for (let y = y0; y <= y1 + 1e-9; y += 0.5) yTicks.push(`<line x1="${L}" x2="${W - R}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/><text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${y.toFixed(1)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
${yTicks.join("\n")}
${line(1, "#1f77b4")}
${line(2, "#ff7f0e")}
<text x="${L}" y="${H - 22}">step 0</text><text x="${W - R}" y="${H - 22}" text-anchor="end">step ${x1}</text>
<text x="${(L + W) / 2}" y="${H - 6}" text-anchor="middle">training step</text>
<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">loss (nats per character)</text>
<text x="${W - R - 150}" y="${T + 14}" fill="#1f77b4">train</text><text x="${W - R - 90}" y="${T + 14}" fill="#ff7f0e">validation</text>
</svg>
`;
}

function card(m: BaseModelMetrics): string {
  const c = m.config as { nLayer: number; nHead: number; nEmbd: number; blockSize: number; vocabSize: number };
  const s = m.settings as Record<string, unknown>;
  const g = (x: unknown) => String(Number(Number(x).toPrecision(6)));
  const hours = (x: number) => (x >= 3600 ? `${Math.floor(x / 3600)} h ${Math.round((x % 3600) / 60)} min` : `${Math.round(x / 60)} min`);
  return `# The course's base model

A GPT-2-style character model pretrained on *Moby-Dick* with the course's own code
(\`lib/pretrain/pretrain.ts\`), shipped so that chapters 06–09 (fine-tuning, reward model, PPO, DPO) start
from a model that writes English words, whatever a learner's notebook 05 had time for.
\`COURSE_BASE_MODEL=own\` makes them use your own model from notebook 05 (\`build/artifacts/pretrained\`) instead.

| | |
|---|---|
| architecture | GPT-2 (learned positions, LayerNorm, GELU MLP, tied head), preset \`course-base\`: ${c.nLayer} layers, ${c.nHead} heads, ${c.nEmbd} channels, context ${c.blockSize} characters |
| parameters | ${m.parameters.toLocaleString("en")} |
| tokenizer | characters of Moby-Dick (${c.vocabSize} symbols) |
| data | ${m.data.corpus}, first 90 % of the characters for training, the last 10 % held out |
| training | ${m.step.toLocaleString("en")} steps of ${s.batchSize} windows × ${c.blockSize} characters, AdamW lr ${g(s.lr)} (warm-up ${s.warmup}, cosine to ${g(s.minLr)}), weight decay ${g(s.weightDecay)}, clip ${g(s.gradClip)}; seed as in the command below |
| time | ${hours(m.trainingSeconds)} on a 2-core machine, ${m.backend} backend, 1 thread${m.note ? ` (${m.note})` : ""} |
| **held-out loss** | **${m.heldOut.loss.toFixed(4)} nats per character = ${m.heldOut.bitsPerCharacter.toFixed(3)} bits per character** (all ${m.heldOut.characters.toLocaleString("en")} predicted characters of the held-out tenth, ${m.heldOut.windows} windows of ${c.blockSize}: \`heldOutLoss\`) |
| quick check | ${m.quickCheck.loss.toFixed(6)} nats on the first ${m.quickCheck.windows} held-out windows (\`tests/pretrain/baseModel.test.ts\` reproduces it) |

## How it was made

\`\`\`sh
${m.command}
node lib/dist/tools/cli/baseModelCard.js --from build/artifacts/course-base --command "…" --seconds ${Math.round(m.trainingSeconds)} --force
\`\`\`

The first command trains (\`lib/pretrain/pretrain.ts\`, seeded: the same numbers again on the same backend and
thread count); the second copies the weights here without the optimizer state and writes this card,
\`metrics.json\` and \`loss.svg\`.

## Loss curve

![train and validation loss](loss.svg)

| step | train loss | validation loss (random held-out batches) |
|---:|---:|---:|
${m.evals.map((e) => `| ${e[0]} | ${e[1].toFixed(3)} | ${e[2].toFixed(3)} |`).join("\n")}

## Samples (temperature ${m.samples[0]?.temperature}, 200 characters)

${m.samples.map((x) => `- seed ${x.seed}: ${JSON.stringify(x.prompt + x.text)}`).join("\n")}

## Limits

A character model of ${(m.parameters / 1e6).toFixed(1)}M parameters that has read one book several times: it spells most
words and writes phrases in Melville's manner, without sense across sentences. It knows only
Moby-Dick's ${c.vocabSize} characters and sees ${c.blockSize} characters at a time.
`;
}

interface CardArgs {
  from?: string;
  out: string;
  command?: string;
  seconds?: number;
  note?: string;
  force: boolean;
}

const CARD: Command<CardArgs> = {
  name: "base-model-card",
  summary: "Copy a trained checkpoint to the course's base model and write its card: metrics.json, README.md, loss.svg.",
  options: {
    from: { kind: "string", value: "DIR", help: "the trained checkpoint (required)" },
    out: { kind: "string", value: "DIR", default: shippedBaseModelDir, help: "the base model's folder" },
    command: { kind: "string", value: '"…"', help: "the command that trained it, for the card (required)" },
    seconds: { kind: "number", value: "S", min: 0, minExclusive: true, expected: "a positive number", help: "how long the training took (required)" },
    note: { kind: "string", value: "TEXT", help: "a remark for the card" },
    force: { kind: "boolean", help: "replace a model already in --out" },
  },
  validate(args) {
    if (args.from === undefined || args.command === undefined || args.seconds === undefined) throw new UsageError('--from DIR, --command "…" and --seconds S are required');
  },
  backend: "announce",
  async run(args, { out }) {
    const dir = path.resolve(args.out);
    if (fs.existsSync(path.join(dir, "model.json")) && !args.force) fail(`${projectPath(dir)} already holds a model; --force replaces it`);
    const ck = loadCheckpoint(args.from!);
    try {
      saveCheckpoint(dir, { params: ck.params, config: ck.config, tokenizer: ck.tokenizer, step: ck.step, losses: ck.losses, extra: ck.extra });
    } finally {
      disposeCheckpoint(ck);
    }
    const model = loadPretrained(dir);
    try {
      const val = mobyDickValIds((s) => model.tokenizer.encode(s));
      const full = heldOutLoss(model.params, model.config, val);
      const quick = heldOutLoss(model.params, model.config, val, { maxWindows: QUICK_CHECK_WINDOWS });
      const samples = SAMPLE_PROMPTS.map((prompt, seed) => ({
        prompt, temperature: 0.8, seed,
        text: textGenerate(model.params, model.config, model.tokenizer, prompt, { maxNewTokens: 200, temperature: 0.8, seed }),
      }));
      const metrics: BaseModelMetrics = {
        command: args.command!, trainingSeconds: args.seconds!, step: model.step, parameters: gptParameterCount(model.config), config: model.config,
        settings: model.settings ?? {}, data: { corpus: "moby-dick", split: "last 10% held out", valCharacters: val.length },
        heldOut: { loss: full.loss, bitsPerCharacter: full.bits, windows: full.windows, characters: full.tokens },
        quickCheck: { windows: quick.windows, loss: quick.loss },
        evals: model.losses?.eval ?? [], samples, backend: model.backend,
      };
      if (args.note !== undefined) metrics.note = args.note;
      fs.writeFileSync(path.join(dir, "metrics.json"), JSON.stringify(metrics, null, 2) + "\n");
      fs.writeFileSync(path.join(dir, "README.md"), card(metrics));
      if (metrics.evals.length > 1) fs.writeFileSync(path.join(dir, "loss.svg"), lossChartSvg(metrics.evals));
      out(`${projectPath(dir)}: held-out loss ${full.loss.toFixed(4)} nats/char (${full.bits.toFixed(3)} bits), quick check ${quick.loss.toFixed(6)}`);
    } finally {
      disposeParams(model.params);
    }
  },
};

export const main = commandMain(CARD);

if (require.main === module) runAsScript(main, { exit: true });
