#!/usr/bin/env node
/**
 * GRPO from the command line (the same runGRPO / evaluateVerifiable as notebook 11).
 *
 *   node lib/dist/tools/cli/grpo.js [--checkpoint build/artifacts/sft] [--iters N] [--group-size G] [--beta B] [--seed S] [--json]
 *
 * Reinforcement learning with a verifiable reward: the policy starts from the SFT model, each
 * iteration samples a group of answers to each of a few training questions, a checker (not a
 * reward model) says which are right, and the group-relative advantages drive a clipped update.
 * Then the held-out evaluation on the questions of val.jsonl and test.jsonl beside --data:
 * pass@1 before (the SFT model) and after, with 95 % intervals over questions, pass@k for every
 * k up to --eval-samples, and the KL travelled from SFT. --json: the last stdout line.
 */
import * as path from "path";
import { artifactPath, projectPath } from "../../core/paths";
import { loadSFTData, sftSplitFiles } from "../../finetune/sft";
import { savePolicy } from "../../rlhf/chat";
import { formatSeconds } from "../../pretrain/trainer";
import { DEFAULT_GRPO_HYPER, evaluateVerifiable, GRPO_ITERATIONS, GRPO_LR, GRPO_PROMPTS_PER_ITERATION, GRPO_EVAL_SAMPLES, runGRPO, type VerifiableEval } from "../../rlvr/grpo";
import { type VerifiableTask, verifiablePrompts } from "../../rlvr/verifiable";
import { Command, Env, fail, jsonOption, loadOrFail, optionParser, runAsScript, commandMain, smokeOr, outApartFrom } from "./cli";
import { disposingAfter, loadSFTPolicy, pct, RLHF_OPTIONS } from "./rlhfCli";

export interface GRPOArgs {
  checkpoint: string;
  data: string;
  out: string;
  task: VerifiableTask;
  iters: number;
  groupSize: number;
  promptsPerIter: number;
  beta: number;
  lr: number;
  epochs: number;
  maxNewTokens: number;
  evalPrompts?: number;
  evalSamples: number;
  seed: number;
  json: boolean;
  help: boolean;
}

const GRPO: Command<GRPOArgs> = {
  name: "grpo",
  summary: `Reinforcement learning with a verifiable reward (lib/rlvr/grpo.ts): GRPO samples --group-size answers to each of
--prompts-per-iter training questions, a checker marks each right or wrong (lib/rlvr/verifiable.ts), each answer's
advantage is its reward against its group's, and --epochs clipped updates follow (--beta > 0 adds the KL penalty to SFT).
Then the held-out evaluation: pass@1 of SFT and of the policy with 95% intervals over questions, pass@k, KL to SFT.`,
  options: {
    checkpoint: RLHF_OPTIONS.checkpoint,
    data: { ...RLHF_OPTIONS.data, help: "training questions (held-out ones from val.jsonl and test.jsonl beside it)" },
    out: { kind: "string", value: "DIR", default: (env: Env) => artifactPath("grpo", env), help: "where the policy is saved" },
    task: { kind: "choice", choices: ["facts", "letters"] satisfies VerifiableTask[], default: "facts", help: "which questions, checked how (lib/rlvr/verifiable.ts)" },
    iters: { kind: "integer", value: "N", min: 1, default: smokeOr(2, GRPO_ITERATIONS), help: "GRPO iterations" },
    "group-size": { kind: "integer", value: "G", min: 2, default: smokeOr(4, DEFAULT_GRPO_HYPER.groupSize), help: "answers sampled per question" },
    "prompts-per-iter": { kind: "integer", value: "N", min: 1, default: smokeOr(2, GRPO_PROMPTS_PER_ITERATION), help: "training questions per iteration" },
    beta: { kind: "number", value: "B", min: 0, default: DEFAULT_GRPO_HYPER.beta, help: "KL penalty to SFT in the loss (0: none, as DAPO and Dr. GRPO)" },
    lr: { kind: "number", value: "LR", min: 0, minExclusive: true, default: GRPO_LR, help: "AdamW learning rate" },
    epochs: { kind: "integer", value: "N", min: 1, default: DEFAULT_GRPO_HYPER.epochs, help: "updates on each batch of answers" },
    "max-new-tokens": { kind: "integer", value: "N", min: 1, default: smokeOr(6, DEFAULT_GRPO_HYPER.maxNewTokens), help: "longest sampled answer" },
    "eval-prompts": { kind: "integer", value: "N", min: 1, defaultText: "all; smoke 6", help: "held-out questions to evaluate on" },
    "eval-samples": { kind: "integer", value: "K", min: 1, default: smokeOr(2, GRPO_EVAL_SAMPLES), help: "answers per held-out question and model (pass@k for k up to K)" },
    seed: RLHF_OPTIONS.seed,
    json: jsonOption("{task, pass1Before, pass1After (each {mean, lo, hi, n}), gain, passAtBefore, passAtAfter, kl, iterations, trainSeconds, seconds, checkpoint, ...}"),
  },
  notes: () => "COURSE_SMOKE=1: two iterations of 2 questions × 4 answers (seconds).",
  validate: outApartFrom("checkpoint"),
  backend: "announce",
  run: (args, { err, smoke, seconds, backend }) => disposingAfter(async (held) => {
    const sft = loadSFTPolicy(args.checkpoint, held);
    const { config, codec } = sft;
    const { files, train, heldOut } = loadOrFail("the questions", () => {
      const files = sftSplitFiles(path.resolve(args.data));
      const train = verifiablePrompts(loadSFTData(files.train), args.task);
      const heldOut = [...verifiablePrompts(loadSFTData(files.val), args.task), ...verifiablePrompts(loadSFTData(files.test), args.task)]
        .slice(0, args.evalPrompts ?? (smoke ? 6 : Infinity));
      return { files, train, heldOut };
    });
    if (train.length === 0) fail(`${projectPath(files.train)}: no ${args.task} questions to train on`);
    if (heldOut.length === 0) fail(`${projectPath(files.val)}, ${projectPath(files.test)}: no held-out ${args.task} questions`);
    const evalOpts = { samples: args.evalSamples, maxNewTokens: args.maxNewTokens, seed: args.seed + 1 };
    err(`evaluating the SFT model on ${heldOut.length} held-out ${args.task} questions, ${args.evalSamples} sampled answers each`);
    const before = evaluateVerifiable(sft.params, config, codec, heldOut, evalOpts);
    err(`SFT: pass@1 ${interval(before)}, pass@${before.samples} ${pct(before.passAt[before.samples - 1])}; training on ${train.length} questions`);
    const r = await runGRPO({
      sft: sft.params, config, codec, prompts: train, iterations: args.iters, promptsPerIteration: args.promptsPerIter,
      groupSize: args.groupSize, beta: args.beta, lr: args.lr, epochs: args.epochs, maxNewTokens: args.maxNewTokens, seed: args.seed,
      progress: "auto", log: (l) => err(l),
    });
    held.push(r.policy);
    savePolicy(args.out, r.policy, config, codec.tokenizer, args.iters, {
      grpo: { task: args.task, iterations: args.iters, groupSize: args.groupSize, promptsPerIteration: args.promptsPerIter, beta: args.beta, lr: args.lr, seed: args.seed, seconds: r.seconds },
    });
    const after = evaluateVerifiable(r.policy, config, codec, heldOut, { ...evalOpts, reference: sft.params });
    const k = after.samples;
    const result = {
      task: args.task, heldOutQuestions: heldOut.length, evalSamples: k,
      pass1Before: before.pass1, pass1After: after.pass1, gain: after.pass1.mean - before.pass1.mean,
      separated: after.pass1.lo > before.pass1.hi,
      passAtBefore: before.passAt, passAtAfter: after.passAt, kl: after.kl,
      iterations: args.iters, groupSize: args.groupSize, promptsPerIteration: args.promptsPerIter, beta: args.beta, lr: args.lr, seed: args.seed,
      finalTrainReward: r.history[r.history.length - 1].reward,
      trainSeconds: r.seconds, seconds: seconds(), checkpoint: projectPath(args.out), backend: backend.name,
    };
    return {
      json: result,
      lines: [
        `held-out pass@1 (${heldOut.length} ${args.task} questions × ${k} answers): SFT ${interval(before)} → GRPO ${interval(after)}, ${result.gain >= 0 ? "+" : ""}${(100 * result.gain).toFixed(1)} points (${result.separated ? "the intervals do not overlap" : "the intervals overlap"})`,
        `pass@${k}: SFT ${pct(before.passAt[k - 1])}, GRPO ${pct(after.passAt[k - 1])}; KL to SFT ${after.kl.toFixed(2)} nats per answer`,
        `${args.iters} iterations in ${formatSeconds(r.seconds)}; checkpoint ${projectPath(args.out)}`,
      ],
    };
  }),
};

function interval(ev: VerifiableEval): string {
  return `${pct(ev.pass1.mean)} (95% interval ${pct(ev.pass1.lo)}–${pct(ev.pass1.hi)})`;
}

export const parseGRPOArgs: (argv: readonly string[], env?: Env) => GRPOArgs = optionParser(GRPO);

export const main = commandMain(GRPO);

if (require.main === module) runAsScript(main);
