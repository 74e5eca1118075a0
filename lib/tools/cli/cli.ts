/**
 * The one start-up every command-line tool shares: options declared as data, parsed with
 * Node's util.parseArgs, usage generated from the same declarations, the backend started,
 * and the course's exit codes: 0 done, 1 the run failed (one line on stderr), 2 the command
 * line (or an input named on it) is wrong (one line on stderr, "(see --help)" for flags).
 *
 * A tool declares a Command (its options and its `run`); its `main` is commandMain(command)
 * (streamingMain, interactiveMain for the tools that stream text or read the user's lines):
 * the tests call `main(argv, out, err, env)` and read the exit code and the lines.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { BackendInfo, initBackend } from "../../core/backend";
import { projectPath } from "../../core/paths";
import { isSmoke } from "../../core/smoke";

/** A problem with the command line: one line on stderr, "(see --help)", exit code 2. */
export class UsageError extends Error {}

/** A run that cannot start for a reason the user can fix (a missing checkpoint...): one line, an exit code (2 unless said). */
export class CliError extends Error {
  constructor(message: string, readonly code = 2) {
    super(message);
  }
}

/** Stop the run: `<command>: <message>` on stderr, exit code 2. */
export function fail(message: string, code = 2): never {
  throw new CliError(message, code);
}

/**
 * What `load` returns, or the run stops with "cannot load <what>: <why>", exit 2: a checkpoint
 * named on the command line that is not there is the caller's to fix, like a bad flag.
 */
export function loadOrFail<T>(what: string, load: () => T): T {
  try {
    return load();
  } catch (e) {
    return fail(`cannot load ${what}: ${(e as Error).message}`);
  }
}

export type Env = NodeJS.ProcessEnv;

/** A default that is smaller in smoke mode (COURSE_SMOKE=1, seconds-long runs): --help shows the one in force. */
export function smokeOr<T>(smoke: T, full: T): (env: Env) => T {
  return (env) => (isSmoke(env) ? smoke : full);
}

interface OptionBase {
  help: string;
  /** The parsed option's property when camelCase of the flag is not it (--adaptive-kl → adaptiveKL). */
  key?: string;
  /** Shown in --help as "(default: ...)": the value itself or a function of the environment (COURSE_ARTIFACTS, COURSE_SMOKE). */
  default?: unknown;
  /** What --help says for a default the code computes later (e.g. "the library's", "all"). */
  defaultText?: string;
  /** Replaces the generated "must be ..." phrase where an older message is kept. */
  expected?: string;
  /** A further check of the parsed value: the error message, or undefined when fine. */
  check?: (value: never, flag: string) => string | undefined;
}
export interface StringOption extends OptionBase {
  kind: "string";
  value: string;
  /** May be given several times: the values in order (an empty list when never). */
  multiple?: boolean;
}
export interface BooleanOption extends OptionBase { kind: "boolean" }
export interface ChoiceOption extends OptionBase { kind: "choice"; choices: readonly string[]; value?: string }
export interface NumericOption extends OptionBase {
  kind: "integer" | "number";
  value: string;
  min?: number;
  /** The bound itself is not allowed (a learning rate > 0). */
  minExclusive?: boolean;
  max?: number;
  maxExclusive?: boolean;
  /** Several values in one, comma-separated ("--threads 1,2"): an array, each value checked. */
  list?: boolean;
}
export type OptionDef = StringOption | BooleanOption | ChoiceOption | NumericOption;
export type Options = Record<string, OptionDef>;

export interface Io {
  /** One line of stdout. */
  out: (line: string) => void;
  /** Text as it comes (streamed samples, prompts): stdout without an added newline. */
  write: (text: string) => void;
  err: (line: string) => void;
  env: Env;
  /** COURSE_SMOKE=1: the run should take seconds (tiny sizes, few steps). */
  smoke: boolean;
  /** Seconds since the run started (after the backend): the `seconds` of the JSON summaries. */
  seconds: () => number;
  /** The backend, when the command asked for it. */
  backend: BackendInfo;
}

/** What a run prints at the end: `json` as the last stdout line with --json, else the `lines`. */
export interface Summary {
  json: unknown;
  lines: readonly string[];
}

export interface Command<A> {
  name: string;
  /** One or two sentences for --help, under the usage line. */
  summary: string;
  options: Options;
  /** Placeholder of the positional arguments the command takes (none when absent). */
  positionals?: string;
  /** Added to `unexpected argument "x"` for a command that takes none (where people tend to forget a flag). */
  strayHint?: string;
  /** Paragraphs after the option list (smoke mode, the JSON fields). */
  notes?: (env: Env) => string;
  /** Checks across options (a required one, two that exclude each other): throws a UsageError. */
  validate?: (args: A) => void;
  /** "announce": start the backend and say which on stderr; "quiet": start it silently; absent: the run does. */
  backend?: "announce" | "quiet";
  run(args: A, io: Io): Promise<number | Summary | void>;
}

/** Parsed options keyed by camelCase name (--max-iters → maxIters), plus help and positionals. */
export interface Parsed {
  help: boolean;
  positionals: string[];
}

export function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function keyOf(name: string, def: OptionDef): string {
  return def.key ?? camel(name);
}

function defaultOf(def: OptionDef, env: Env): unknown {
  return typeof def.default === "function" ? (def.default as (env: Env) => unknown)(env) : def.default;
}

function alternatives(choices: readonly string[]): string {
  if (choices.length === 1) return choices[0];
  return choices.length === 2 ? `${choices[0]} or ${choices[1]}` : `one of ${choices.join(", ")}`;
}

function expectedOf(def: NumericOption): string {
  const what = def.kind === "integer" ? "an integer" : "a number";
  if (def.min !== undefined && def.max !== undefined) {
    return `${what} in ${def.minExclusive ? "(" : "["}${def.min}, ${def.max}${def.maxExclusive ? ")" : "]"}`;
  }
  if (def.min !== undefined) return `${what} ${def.minExclusive ? ">" : ">="} ${def.min}`;
  if (def.max !== undefined) return `${what} ${def.maxExclusive ? "<" : "<="} ${def.max}`;
  return what;
}

function convert(def: OptionDef, flag: string, v: string): unknown {
  switch (def.kind) {
    case "string":
      return v;
    case "choice":
      if (!def.choices.includes(v)) throw new UsageError(`${flag} must be ${def.expected ?? alternatives(def.choices)}, got "${v}"`);
      return v;
    case "integer":
    case "number": {
      if (def.list) return v.split(",").map((x) => convert({ ...def, list: false }, flag, x));
      const n = Number(v);
      const shaped = def.kind === "integer" ? /^\s*-?\d+\s*$/.test(v) && Number.isSafeInteger(n) : v.trim() !== "" && Number.isFinite(n);
      const inRange = (def.min === undefined || (def.minExclusive ? n > def.min : n >= def.min)) &&
        (def.max === undefined || (def.maxExclusive ? n < def.max : n <= def.max));
      if (!shaped || !inRange) throw new UsageError(`${flag} must be ${def.expected ?? expectedOf(def)}, got "${v}"`);
      return n;
    }
    default:
      return true;
  }
}

/**
 * argv → the options (defaults filled in), or a UsageError. util.parseArgs splits the words
 * (--flag value, --flag=value, --); it runs non-strict because its own errors are not in the
 * course's style and it refuses values that start with "-" ("--seed -1" should say why -1 is wrong).
 */
export function parseOptions<A>(cmd: Pick<Command<A>, "options" | "positionals" | "strayHint">, argv: readonly string[], env: Env = process.env): A & Parsed {
  const config: Record<string, { type: "string" | "boolean"; short?: string }> = { help: { type: "boolean", short: "h" } };
  for (const [name, def] of Object.entries(cmd.options)) config[name] = { type: def.kind === "boolean" ? "boolean" : "string" };
  const { tokens } = parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true });
  const args: Record<string, unknown> = { help: false, positionals: [] };
  for (const [name, def] of Object.entries(cmd.options)) {
    const d = defaultOf(def, env);
    args[keyOf(name, def)] = def.kind === "boolean" ? (d ?? false) : def.kind === "string" && def.multiple ? [] : d;
  }
  for (const t of tokens) {
    if (t.kind === "option-terminator") continue;
    if (t.kind === "positional") {
      if (cmd.positionals === undefined) throw new UsageError(`unexpected argument "${t.value}"${cmd.strayHint ? ` ${cmd.strayHint}` : ""}`);
      (args.positionals as string[]).push(t.value);
      continue;
    }
    const flag = t.rawName;
    if (t.name === "help") {
      args.help = true;
      continue;
    }
    const def = Object.prototype.hasOwnProperty.call(cmd.options, t.name) && flag.startsWith("--") ? cmd.options[t.name] : undefined;
    if (def === undefined) throw new UsageError(`unknown option ${flag}`);
    if (def.kind === "boolean") {
      if (t.value !== undefined) throw new UsageError(`${flag} takes no value, got "${t.value}"`);
      args[keyOf(t.name, def)] = true;
      continue;
    }
    // A following flag is not a value: "--out --json" forgot the directory.
    if (t.value === undefined || (!t.inlineValue && t.value.startsWith("--"))) throw new UsageError(`${flag} needs a value`);
    const value = convert(def, flag, t.value);
    const problem = def.check?.(value as never, flag);
    if (problem !== undefined) throw new UsageError(problem);
    if (def.kind === "string" && def.multiple) (args[keyOf(t.name, def)] as unknown[]).push(value);
    else args[keyOf(t.name, def)] = value;
  }
  return args as A & Parsed;
}

/** A default as one would type it: paths relative to the project, small numbers as 5e-5. */
function showValue(v: unknown): string {
  if (typeof v === "string" && path.isAbsolute(v)) return projectPath(v);
  if (typeof v === "number" && v !== 0 && Math.abs(v) < 1e-3) return v.toExponential();
  return String(v);
}

/** --help: the usage line, the summary, one line per option (its default from the declaration), the notes. */
export function usage(cmd: Command<unknown>, env: Env = process.env): string {
  const flags = Object.entries(cmd.options).map(([name, def]) => {
    const placeholder = def.kind === "boolean" ? "" : ` ${def.kind === "choice" ? (def.value ?? def.choices.join("|")) : def.value}${(def.kind === "integer" || def.kind === "number") && def.list ? "[,…]" : ""}`;
    return { flag: `--${name}${placeholder}`, def };
  });
  const lines = [`Usage: ${cmd.name} [options]${cmd.positionals ? ` ${cmd.positionals}` : ""}`, ...cmd.summary.split("\n").map((l) => `  ${l}`), "", "Options:"];
  const width = Math.max(...flags.map((f) => f.flag.length), "-h, --help".length) + 2;
  for (const { flag, def } of flags) {
    const d = defaultOf(def, env);
    const shown = def.defaultText ?? (d === undefined || d === false ? undefined : showValue(d));
    lines.push(`  ${flag.padEnd(width)}${def.help}${shown === undefined ? "" : ` (default: ${shown})`}`);
  }
  lines.push(`  ${"-h, --help".padEnd(width)}this help`);
  const notes = cmd.notes?.(env);
  if (notes) lines.push("", ...notes.split("\n"));
  return lines.join("\n");
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

/**
 * The whole start-up and ending of a tool: parse (exit 2 on a usage error), --help (exit 0),
 * the backend, the run; its error as one line (exit 1, or the CliError's code); its Summary
 * printed (the JSON line last with --json).
 */
export async function runCommand<A>(
  cmd: Command<A>,
  argv: readonly string[],
  io: { out: (line: string) => void; write?: (text: string) => void; err: (line: string) => void; env?: Env },
): Promise<number> {
  const env = io.env ?? process.env;
  let args: A & Parsed;
  try {
    args = parseOptions(cmd, argv, env);
    if (!args.help) cmd.validate?.(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`${cmd.name}: ${e.message} (see --help)`);
    return 2;
  }
  if (args.help) {
    io.out(usage(cmd as Command<unknown>, env));
    return 0;
  }
  try {
    const backend = cmd.backend ? await initBackend({ quiet: true }) : (undefined as unknown as BackendInfo);
    if (cmd.backend === "announce") io.err(backend.line);
    const t0 = performance.now();
    const seconds = () => (performance.now() - t0) / 1000;
    const r = await cmd.run(args, { out: io.out, write: io.write ?? io.out, err: io.err, env, smoke: isSmoke(env), seconds, backend });
    if (typeof r === "number") return r;
    if (r) {
      if ((args as unknown as { json?: boolean }).json) io.out(JSON.stringify(r.json));
      else r.lines.forEach((l) => io.out(l));
    }
    return 0;
  } catch (e) {
    // A run may find a usage problem only once it looks (tokenize's text positionals).
    const hint = e instanceof UsageError ? " (see --help)" : "";
    io.err(`${cmd.name}: ${firstLine(e)}${hint}`);
    return e instanceof CliError || e instanceof UsageError ? ((e as CliError).code ?? 2) : 1;
  }
}

/**
 * A tool's `validate` for --out, before any training time is spent: a directory that can be made
 * and written (not a file, not under one), and not one of the models the run reads (--checkpoint,
 * --reward…), which the run's save would replace.
 */
export function outApartFrom<K extends string>(...inputs: K[]): (args: { out?: string } & { [k in K]?: string }) => void {
  return (args) => {
    const out = args.out;
    if (out === undefined) return;
    for (const key of inputs) {
      const v = args[key];
      if (v !== undefined && path.resolve(v) === path.resolve(out)) {
        throw new UsageError(`--out is the same directory as --${key} (${projectPath(out)}): the model this run reads would be overwritten; give another --out`);
      }
    }
    checkWritable(out, "--out", "directory");
  };
}

/**
 * One line (a UsageError) unless `target` can be written: its folder can be made and written
 * in, and `target` itself is a `kind` (a directory, or a regular file) or does not exist yet.
 */
export function checkWritable(target: string, flag: string, kind: "directory" | "file"): void {
  const abs = path.resolve(target);
  const where = `${flag} ${projectPath(abs)}`;
  if (fs.existsSync(abs)) {
    const st = fs.statSync(abs);
    if (kind === "directory" && !st.isDirectory()) throw new UsageError(`${where} is a file, expected a directory`);
    if (kind === "file" && !st.isFile()) throw new UsageError(`${where} is not a regular file`);
  }
  const parent = path.dirname(abs);
  const probe = path.join(parent, `.write-test-${process.pid}`);
  try {
    fs.mkdirSync(parent, { recursive: true });
    fs.writeFileSync(probe, "");
    fs.rmSync(probe);
    if (kind === "file" && fs.existsSync(abs)) fs.accessSync(abs, fs.constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOTDIR" || code === "EEXIST" ? "a file stands where a folder should be" : code === "EACCES" || code === "EPERM" ? "no permission to write there" : code === "EROFS" ? "a read-only file system" : (code ?? (e as Error).message);
    throw new UsageError(`${where}: cannot write there (${why})`);
  }
}

/** --json's help: what the last line of stdout holds. */
export function jsonOption(fields: string): OptionDef {
  return { kind: "boolean", help: `the last line of stdout is ${fields}` };
}

type Line = (line: string) => void;
type Text = (text: string) => void;
const stdoutLine: Line = (l) => process.stdout.write(l + "\n");
const stdoutText: Text = (t) => process.stdout.write(t);
const stderrLine: Line = (l) => process.stderr.write(l + "\n");

/** A tool's `main(argv, out, err, env)`, stdout and stderr unless a test passes its own. */
export function commandMain<A>(cmd: Command<A>): (argv: readonly string[], out?: Line, err?: Line, env?: Env) => Promise<number> {
  return (argv, out = stdoutLine, err = stderrLine, env = process.env) => runCommand(cmd, argv, { out, err, env });
}

/** `main(argv, write, err, env)` of a tool whose stdout is text as it comes (streamed samples). */
export function streamingMain<A>(cmd: Command<A>): (argv: readonly string[], write?: Text, err?: Line, env?: Env) => Promise<number> {
  return (argv, write = stdoutText, err = stderrLine, env = process.env) => runCommand(cmd, argv, { out: (l) => write(l + "\n"), write, err, env });
}

/** `main(argv, input, write, err, env)` of a tool that reads lines from the user (chat, rank). */
export function interactiveMain<A>(
  command: (input: NodeJS.ReadableStream) => Command<A>,
): (argv: readonly string[], input?: NodeJS.ReadableStream, write?: Text, err?: Line, env?: Env) => Promise<number> {
  return (argv, input = process.stdin, write = stdoutText, err = stderrLine, env = process.env) =>
    runCommand(command(input), argv, { out: (l) => write(l + "\n"), write, err, env });
}

/** A tool's exported parser (tests check its defaults and messages without running it). */
export function optionParser<A>(cmd: Pick<Command<A>, "options" | "positionals" | "strayHint">): (argv: readonly string[], env?: Env) => A & Parsed {
  return (argv, env = process.env) => parseOptions<A>(cmd, argv, env);
}

/**
 * The tools' entry point when run as a script: the exit code once the run ends. `exit`: end the
 * process then, for tools that may leave threads or child processes behind (they always did).
 */
export function runAsScript(main: (argv: readonly string[]) => Promise<number>, { exit = false } = {}): void {
  main(process.argv.slice(2)).then((code) => {
    if (exit) process.exit(code);
    process.exitCode = code;
  });
}
