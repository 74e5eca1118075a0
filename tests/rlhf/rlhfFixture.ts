import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { CharTokenizer } from "../../lib/tokens/charTokenizer";
import { initBackend } from "../../lib/core/backend";
import { saveCheckpoint } from "../../lib/pretrain/checkpoint";
import { gptConfig, initGPT } from "../../lib/gpt/gpt";
import { chatTokenizer, saveSFTData, SFTExample } from "../../lib/finetune/sft";

// Fixture of the RLHF CLI tests: a tiny untrained chat model and a tiny data set in a temp dir.
const QA: Array<[string, string]> = [
  ["Who is Ahab?", "The captain."], ["Who is Stubb?", "A mate."], ["Hi!", "Hello."], ["Sea?", "Blue."],
  ["Who is Ishmael?", "The narrator."], ["What is the Pequod?", "A ship."], ["Repeat sea.", "sea"], ["Thanks!", "Welcome."],
];
export const TINY_EXAMPLES: SFTExample[] = QA.map(([q, a], i) => ({ id: `t-${i}`, kind: "fact", messages: [{ role: "user", content: q }, { role: "assistant", content: a }] }));

/** A tiny chat checkpoint (random weights, char tokenizer with the chat tokens) and data files in `dir`. */
export function makeTinyChatModel(dir: string): { ckpt: string; data: string } {
  const base = CharTokenizer.fromText(QA.flat().join(" ") + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .?!,'");
  const tokenizer = chatTokenizer(base);
  const config = gptConfig("tiny", { vocabSize: tokenizer.vocabSize, blockSize: 40, nEmbd: 32 });
  const params = initGPT(config, { seed: 1 });
  const ckpt = path.join(dir, "sft");
  saveCheckpoint(ckpt, { params, config, tokenizer, step: 0 });
  tf.dispose(Object.values(params));
  for (const split of ["train", "val", "test"]) saveSFTData(path.join(dir, "data", `${split}.jsonl`), TINY_EXAMPLES);
  return { ckpt, data: path.join(dir, "data", "train.jsonl") };
}


/** A command-line tool's main, as the tests call it: argv, stdout and stderr lines, the environment. */
export type CliMain = (argv: string[], out: (l: string) => void, err: (l: string) => void, env: NodeJS.ProcessEnv) => Promise<number>;

/**
 * Mocha hooks for testing CLIs on the tiny chat model: a temp dir (removed afterwards) holding
 * the model and its data, smoke mode with the artifacts inside that dir, and `run`, which calls
 * a tool and reads its JSON summary from the last stdout line.
 */
export function tinyChatCli(prefix: string) {
  const cli = {
    dir: "", ckpt: "", data: "", env: {} as NodeJS.ProcessEnv,
    async run(main: CliMain, ...argv: string[]) {
      const out: string[] = [];
      const err: string[] = [];
      const code = await main(argv, (l) => out.push(l), (l) => err.push(l), cli.env);
      return { code, out, err, json: code === 0 && out.length ? JSON.parse(out[out.length - 1]) : undefined };
    },
  };
  before(async () => {
    await initBackend({ quiet: true });
    cli.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    cli.env = { COURSE_SMOKE: "1", COURSE_ARTIFACTS: path.join(cli.dir, "artifacts") };
    ({ ckpt: cli.ckpt, data: cli.data } = makeTinyChatModel(cli.dir));
  });
  after(() => fs.rmSync(cli.dir, { recursive: true, force: true }));
  return cli;
}
