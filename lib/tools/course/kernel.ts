/**
 * A small Jupyter client for the tslab kernel, with no Python and no Jupyter server:
 * we start `tslab kernel --config-path <connection file>` ourselves and talk to it over
 * ZeroMQ with the Jupyter messaging protocol v5.3
 * (https://jupyter-client.readthedocs.io/en/latest/messaging.html).
 *
 *   shell   DEALER  → execute_request / kernel_info_request, ← their replies
 *   iopub   SUB     ← status (busy/idle), stream, display_data, update_display_data
 *   control DEALER  → shutdown_request
 *
 * Every message is signed with HMAC-SHA256 over its four JSON frames, using the key from
 * the connection file. The kernel process is ours: it runs in its own process group, and we
 * kill that group when we are done, when the caller's process exits, or on Ctrl-C.
 */
import { spawn, ChildProcess } from "child_process";
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as zmq from "zeromq";
import { writeFileAtomic } from "../../core/atomic";

// ---------------------------------------------------------------------------------------
// Wire format

/** Separates ZeroMQ routing identities from the signed message frames. */
const DELIM = "<IDS|MSG>";
const PROTOCOL_VERSION = "5.3";

export interface MessageHeader {
  msg_id: string;
  session: string;
  username: string;
  date: string;
  msg_type: string;
  version: string;
}

export interface JupyterMessage<C = any> {
  header: MessageHeader;
  parent_header: Partial<MessageHeader>;
  metadata: Record<string, unknown>;
  content: C;
}

/** Hex HMAC-SHA256 of the message frames, as Jupyter signs them. */
export function sign(key: string, frames: string[]): string {
  const hmac = createHmac("sha256", key);
  for (const f of frames) hmac.update(f);
  return hmac.digest("hex");
}

/** Frames to send on a DEALER socket: [delimiter, signature, header, parent, metadata, content]. */
export function encodeMessage(msg: JupyterMessage, key: string): string[] {
  const body = [msg.header, msg.parent_header, msg.metadata, msg.content].map((x) => JSON.stringify(x));
  return [DELIM, sign(key, body), ...body];
}

/**
 * Parse received frames. Identities (or a PUB topic) come before the delimiter; a wrong
 * signature means someone else is talking on our ports, so it is an error, not a message.
 */
export function decodeMessage(frames: Buffer[], key: string): JupyterMessage {
  const at = frames.findIndex((f) => f.toString("utf8") === DELIM);
  if (at < 0 || frames.length < at + 6) throw new Error("malformed Jupyter message: no <IDS|MSG> delimiter or missing frames");
  const signature = frames[at + 1].toString("utf8");
  const body = frames.slice(at + 2, at + 6).map((f) => f.toString("utf8"));
  const expected = sign(key, frames.slice(at + 2).map((f) => f.toString("utf8")));
  const a = Buffer.from(signature);
  const b = Buffer.from(expected);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new Error("Jupyter message with an invalid HMAC signature");
  const [header, parent_header, metadata, content] = body.map((s) => JSON.parse(s));
  return { header, parent_header, metadata, content };
}

export function newMessage<C>(msgType: string, content: C, session: string): JupyterMessage<C> {
  return {
    header: {
      msg_id: randomUUID(),
      session,
      username: "llm-course",
      date: new Date().toISOString(),
      msg_type: msgType,
      version: PROTOCOL_VERSION,
    },
    parent_header: {},
    metadata: {},
    content,
  };
}

// ---------------------------------------------------------------------------------------
// Errors the runner turns into "notebook X: cell N ..." messages

export class KernelDiedError extends Error {
  constructor(
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stderrTail: string,
  ) {
    super(`kernel died (${signal ? `signal ${signal}` : `exit code ${exitCode}`})`);
    this.name = "KernelDiedError";
  }
}

export class KernelTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${formatSeconds(timeoutMs)}`);
    this.name = "KernelTimeoutError";
  }
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------
// Process bookkeeping: no kernel outlives the runner

const liveKernels = new Set<TslabKernel>();
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

function killAllSync(): void {
  for (const k of liveKernels) k.kill();
}

function onSignal(signal: NodeJS.Signals): void {
  killAllSync();
  uninstallHandlers();
  // We replaced Node's default "die on signal"; restore it unless the program has its own handler.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

let handlersInstalled = false;
function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", killAllSync);
  for (const s of SIGNALS) process.on(s, onSignal);
}
function uninstallHandlers(): void {
  if (!handlersInstalled) return;
  handlersInstalled = false;
  process.off("exit", killAllSync);
  for (const s of SIGNALS) process.off(s, onSignal);
}

/**
 * Started as `node -e WATCHDOG <tslab bin> kernel --config-path F`: a worker thread checks
 * twice a second that the runner is still our parent and otherwise kills the kernel's process
 * group, so no kernel outlives a runner that was SIGKILLed and could not clean up. A thread,
 * because a cell stuck in `while (true) {}` blocks the main thread's event loop; unref'd, so
 * it never keeps a finished kernel alive. It also deletes the connection file (it holds the key).
 */
const WATCHDOG = `
const { Worker } = require("worker_threads");
const path = require("path");
new Worker(\`
  const fs = require("fs");
  const { parent, connDir } = require("worker_threads").workerData;
  setInterval(() => {
    if (process.ppid === parent) return;
    fs.rmSync(connDir, { recursive: true, force: true });
    process.kill(-process.pid, "SIGKILL");
  }, 500);
\`, { eval: true, workerData: { parent: process.ppid, connDir: path.dirname(process.argv[4]) } }).unref();
require(process.argv[1]);
`;

/** Where tslab's own `bin/tslab` lives (resolved from this repo's node_modules). */
export function tslabBin(): string {
  return path.join(path.dirname(require.resolve("tslab/package.json")), "bin", "tslab");
}

/** Ask the OS for `n` distinct free TCP ports on 127.0.0.1. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => resolve());
      });
      ports.push((srv.address() as net.AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

// ---------------------------------------------------------------------------------------
// The client

export interface StartOptions {
  /** The kernel's working directory; tslab compiles cells with it as rootDir. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  startupTimeoutMs?: number;
}

export interface ExecuteReply {
  status: "ok" | "error" | "abort";
  execution_count?: number | null;
  /**
   * Set by this client, not the kernel: the reply came but the kernel's "idle" status did not
   * follow within IOPUB_GRACE_MS, so output sent after the reply may be missing.
   */
  outputIncomplete?: boolean;
  [key: string]: unknown;
}

/**
 * How long a request waits, after its reply, for the kernel's "idle" status (the end of its
 * output) before it finishes anyway with `outputIncomplete` (as nbclient's iopub_timeout): the
 * reply is the kernel's word that the code is done, so this is never reported as a timeout.
 */
export const IOPUB_GRACE_MS = 5000;

interface Pending {
  onIopub: (msg: JupyterMessage) => void;
  reply?: Record<string, unknown>;
  idle: boolean;
  grace?: NodeJS.Timeout;
  settle: (err: Error | null) => void;
}

export class TslabKernel {
  private readonly session = randomUUID();
  private readonly pending = new Map<string, Pending>();
  private stderr = "";
  private exitInfo: KernelDiedError | null = null;
  private closed = false;
  /** The kernel_info_reply content (language_info goes into the notebook's metadata). */
  info: Record<string, unknown> = {};
  /**
   * iopub messages of requests that already finished. tslab keeps writing a cell's stdout and
   * stderr under that cell's request until the next one starts, so this is where an error
   * thrown by the cell's timers or unawaited promises after it returned shows up.
   */
  onLateIopub?: (msg: JupyterMessage) => void;

  private constructor(
    private readonly child: ChildProcess,
    private readonly key: string,
    private readonly connDir: string,
    private readonly shell: zmq.Dealer,
    private readonly iopub: zmq.Subscriber,
    private readonly control: zmq.Dealer,
  ) {}

  /** Start a kernel and wait until it answers on shell and publishes on iopub. */
  static async start(opts: StartOptions): Promise<TslabKernel> {
    const [shellPort, iopubPort, stdinPort, controlPort, hbPort] = await freePorts(5);
    const key = randomBytes(32).toString("hex");
    const connDir = fs.mkdtempSync(path.join(os.tmpdir(), "tslab-run-"));
    const connFile = path.join(connDir, "connection.json");
    writeFileAtomic(
      connFile,
      JSON.stringify({
        transport: "tcp",
        ip: "127.0.0.1",
        shell_port: shellPort,
        iopub_port: iopubPort,
        stdin_port: stdinPort,
        control_port: controlPort,
        hb_port: hbPort,
        key,
        signature_scheme: "hmac-sha256",
        kernel_name: "tslab",
      }),
    );

    const child = spawn(process.execPath, ["-e", WATCHDOG, tslabBin(), "kernel", "--config-path", connFile], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group, so we can kill whatever the notebook spawned too
    });
    const addr = (port: number) => `tcp://127.0.0.1:${port}`;
    const shell = new zmq.Dealer({ linger: 0 });
    // No receive limit: at zeromq's default (1,000 queued messages) a cell that prints in a burst
    // made the kernel's side drop messages, its final "idle" among them, and the cell looked hung.
    const iopub = new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 0 });
    const control = new zmq.Dealer({ linger: 0 });
    const kernel = new TslabKernel(child, key, connDir, shell, iopub, control);
    liveKernels.add(kernel);
    installHandlers();
    kernel.watchProcess();
    shell.connect(addr(shellPort));
    control.connect(addr(controlPort));
    iopub.connect(addr(iopubPort));
    iopub.subscribe();
    kernel.receiveLoop(shell);
    kernel.receiveLoop(iopub);
    kernel.receiveLoop(control);
    try {
      await kernel.waitReady(opts.startupTimeoutMs ?? 120_000);
    } catch (err) {
      await kernel.shutdown();
      throw err;
    }
    return kernel;
  }

  /** Last few KB the kernel process wrote to its real stdout/stderr (outside of cells). */
  stderrTail(): string {
    return this.stderr;
  }

  get exited(): boolean {
    return this.exitInfo !== null;
  }

  private watchProcess(): void {
    const keep = (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000);
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
    this.child.on("exit", (code, signal) => {
      // Its last words may still be in the pipes: wait for them briefly (not for ever: a
      // process the notebook started could hold the pipes open).
      const report = () => {
        if (this.exitInfo) return;
        this.exitInfo = new KernelDiedError(code, signal, this.stderr);
        for (const p of this.pending.values()) p.settle(this.exitInfo);
      };
      this.child.once("close", report);
      setTimeout(report, 200);
    });
    this.child.on("error", (err) => {
      if (this.exitInfo) return;
      this.exitInfo = new KernelDiedError(null, null, `${err.message}\n${this.stderr}`);
      for (const p of this.pending.values()) p.settle(this.exitInfo);
    });
  }

  private async receiveLoop(sock: zmq.Dealer | zmq.Subscriber): Promise<void> {
    try {
      for await (const frames of sock) {
        let msg: JupyterMessage;
        try {
          msg = decodeMessage(frames, this.key);
        } catch (err) {
          this.stderr += `\n[runner] dropped a message: ${(err as Error).message}`;
          continue;
        }
        this.dispatch(msg, sock === this.iopub);
      }
    } catch (err) {
      if (!this.closed) this.stderr += `\n[runner] socket error: ${(err as Error).message}`;
    }
  }

  private dispatch(msg: JupyterMessage, fromIopub: boolean): void {
    const parentId = msg.parent_header?.msg_id;
    const p = parentId ? this.pending.get(parentId) : undefined;
    if (!p) {
      // Replies to requests we no longer wait for; output of a cell that finished.
      if (fromIopub && parentId) this.onLateIopub?.(msg);
      return;
    }
    if (fromIopub) {
      if (msg.header.msg_type === "status") {
        if (msg.content?.execution_state === "idle") p.idle = true;
      } else {
        p.onIopub(msg);
      }
    } else if (msg.header.msg_type.endsWith("_reply")) {
      p.reply = msg.content;
      if (!p.idle) {
        p.grace = setTimeout(() => {
          p.reply!.outputIncomplete = true;
          p.settle(null);
        }, IOPUB_GRACE_MS);
      }
    }
    // A request is finished when BOTH its reply (shell) and its idle status (iopub) are in:
    // they travel on different sockets, so either may arrive first.
    if (p.reply && p.idle) p.settle(null);
  }

  /**
   * Send a request and resolve with its reply once the kernel has also gone idle for it.
   * Rejects with KernelDiedError if the process exits, KernelTimeoutError after `timeoutMs`.
   */
  request(
    sock: "shell" | "control",
    msgType: string,
    content: unknown,
    opts: { timeoutMs: number; onIopub?: (msg: JupyterMessage) => void; msgId?: string },
  ): Promise<Record<string, unknown>> {
    if (this.exitInfo) return Promise.reject(this.exitInfo);
    const msg = newMessage(msgType, content, this.session);
    if (opts.msgId) msg.header.msg_id = opts.msgId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => p.settle(new KernelTimeoutError(opts.timeoutMs)), opts.timeoutMs);
      const p: Pending = {
        onIopub: opts.onIopub ?? (() => {}),
        idle: false,
        settle: (err) => {
          clearTimeout(timer);
          clearTimeout(p.grace);
          this.pending.delete(msg.header.msg_id);
          if (err) reject(err);
          else resolve(p.reply!);
        },
      };
      this.pending.set(msg.header.msg_id, p);
      const target = sock === "shell" ? this.shell : this.control;
      target.send(encodeMessage(msg, this.key)).catch((err: Error) => p.settle(err));
    });
  }

  /** Run one cell's code. Output messages are handed to `onIopub` as they arrive. */
  execute(code: string, opts: { timeoutMs: number; onIopub: (msg: JupyterMessage) => void; msgId?: string; silent?: boolean }): Promise<ExecuteReply> {
    const content = { code, silent: opts.silent ?? false, store_history: !opts.silent, user_expressions: {}, allow_stdin: false, stop_on_error: true };
    return this.request("shell", "execute_request", content, opts) as Promise<ExecuteReply>;
  }

  /**
   * kernel_info_request until one round trip also shows up on iopub: a SUB socket only
   * receives what is published after its subscription reached the kernel ("slow joiner"),
   * so a reply on shell alone does not prove we will see the first cell's output.
   */
  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const ids: string[] = [];
    const attempts: Promise<Record<string, unknown>>[] = [];
    const tooSlow = () => new Error(`kernel did not answer within ${formatSeconds(timeoutMs)}\n${this.stderr}`);
    try {
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw tooSlow();
        // Earlier attempts stay pending: on a loaded machine any of them may be the first answered.
        ids.push(randomUUID());
        attempts.push(this.request("shell", "kernel_info_request", {}, { timeoutMs: left, msgId: ids[ids.length - 1] }));
        let timer: NodeJS.Timeout | undefined;
        const retry = new Promise<null>((r) => (timer = setTimeout(() => r(null), Math.min(left, 1000))));
        const info = await Promise.race([Promise.any(attempts), retry]).finally(() => clearTimeout(timer));
        if (info) {
          this.info = info;
          return;
        }
      }
    } catch (err) {
      if (!(err instanceof AggregateError)) throw err;
      const died = err.errors.find((e) => e instanceof KernelDiedError);
      throw died ?? tooSlow();
    } finally {
      for (const id of ids) this.pending.get(id)?.settle(new Error("superseded"));
    }
  }


  /** Kill the kernel's whole process group now and delete its connection file (synchronous; idempotent). */
  kill(): void {
    const pid = this.child.pid;
    if (pid !== undefined) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(this.connDir, { recursive: true, force: true });
  }

  /**
   * Ask politely (shutdown_request on control), give it a moment,
   * then kill the process group regardless, close our sockets and delete the connection file.
   */
  async shutdown(graceMs = 1000): Promise<void> {
    if (this.closed) return;
    const running = this.child.exitCode === null && this.child.signalCode === null;
    if (running) {
      const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
      this.request("control", "shutdown_request", { restart: false }, { timeoutMs: graceMs }).catch(() => {});
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.kill(); // also reaps anything the notebook started in the kernel's process group
    this.closed = true;
    for (const p of this.pending.values()) p.settle(new Error("kernel shut down"));
    this.shell.close();
    this.iopub.close();
    this.control.close();
    liveKernels.delete(this);
    if (liveKernels.size === 0) uninstallHandlers();
  }
}
