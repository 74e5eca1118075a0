import assert from "node:assert/strict";
import * as os from "os";
import * as path from "path";
import {
  DisplayMessage,
  displayBundle,
  formatTable,
  htmlToText,
  inKernel,
  newDisplay,
  setDisplaySink,
  showHtml,
  showMarkdown,
  showTable,
} from "../../lib/show/display";

/** Collects what would have been sent to Jupyter. */
function recordSink() {
  const sent: { message: DisplayMessage; update: boolean }[] = [];
  setDisplaySink((message, update) => sent.push({ message, update }));
  return sent;
}

/** Runs `fn` and returns what it wrote to stdout. */
function captureStdout(fn: () => void): string {
  const original = process.stdout.write;
  let out = "";
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    return true;
  }) as typeof process.stdout.write;
  try {
    fn();
  } finally {
    process.stdout.write = original;
  }
  return out;
}

describe("display", () => {
  afterEach(() => setDisplaySink(undefined));

  it("is not in a kernel under mocha (tslab's kernel module is not loaded)", () => {
    assert.equal(inKernel(), false);
  });

  it("sends the whole bundle as one display message", () => {
    const sent = recordSink();
    displayBundle({ "text/html": "<b>x</b>", "text/plain": "x" }, { metadata: { a: 1 } });
    assert.deepEqual(sent, [
      { message: { data: { "text/html": "<b>x</b>", "text/plain": "x" }, metadata: { a: 1 }, transient: {} }, update: false },
    ]);
  });

  it("outside a kernel prints text/plain, or nothing when asked", () => {
    setDisplaySink(null);
    assert.equal(captureStdout(() => displayBundle({ "text/html": "<b>x</b>", "text/plain": "x" })), "x\n");
    assert.equal(captureStdout(() => displayBundle({ "text/plain": "x" }, { fallback: "none" })), "");
    // A terminal cannot replace a line it printed, so updates are not printed again.
    assert.equal(captureStdout(() => displayBundle({ "text/plain": "x" }, { displayId: "d", update: true })), "");
  });

  it("a display handle creates its output once, then updates it under the same id", () => {
    const sent = recordSink();
    const handle = newDisplay();
    handle.show({ "text/plain": "1" });
    handle.show({ "text/plain": "2" });
    handle.show({ "text/plain": "3" });
    assert.deepEqual(
      sent.map((s) => [s.message.transient.display_id, s.update, s.message.data["text/plain"]]),
      [
        [handle.id, false, "1"],
        [handle.id, true, "2"],
        [handle.id, true, "3"],
      ],
    );
    assert.notEqual(newDisplay().id, handle.id);
  });

  it("showHtml and showMarkdown carry a text/plain fallback", () => {
    const sent = recordSink();
    showHtml("<p>a &lt; b</p><script>alert(1)</script><p>c</p>");
    showMarkdown("# Title");
    assert.deepEqual(sent[0].message.data, {
      "text/html": "<p>a &lt; b</p><script>alert(1)</script><p>c</p>",
      "text/plain": "a < b\nc",
    });
    assert.deepEqual(sent[1].message.data, { "text/markdown": "# Title", "text/plain": "# Title" });
    assert.equal(htmlToText("x<br>y &amp; z"), "x\ny & z");
  });
});

describe("tables", () => {
  afterEach(() => setDisplaySink(undefined));

  const rows = [
    { token: "the", id: 262, p: 0.123456 },
    { token: "<|endoftext|>", id: 50256, p: 0.5 },
    { token: "a|b", p: 1e-7 },
  ];

  it("renders aligned plain text: numbers right, text left, missing cells empty", () => {
    const t = formatTable(rows, { caption: "Top tokens" });
    assert.equal(
      t["text/plain"],
      [
        "Top tokens",
        "token             id        p",
        "-------------  -----  -------",
        "the              262  0.12346",
        "<|endoftext|>  50256      0.5",
        "a|b                      1e-7",
      ].join("\n"),
    );
  });

  it("renders escaped HTML with a caption and per-column alignment", () => {
    const html = formatTable(rows, { caption: "A & B", align: { token: "center" } })["text/html"];
    assert.ok(html.includes("<caption>A &amp; B</caption>"));
    assert.ok(html.includes('<th style="text-align:center">token</th><th style="text-align:right">id</th>'));
    assert.ok(html.includes('<td style="text-align:center">&lt;|endoftext|&gt;</td>'));
    assert.ok(!html.includes("<|endoftext|>"));
    assert.equal((html.match(/<tr>/g) ?? []).length, 4);
  });

  it("renders Markdown with alignment rules and escaped pipes", () => {
    assert.equal(
      formatTable(rows)["text/markdown"],
      [
        "| token | id | p |",
        "| :-- | --: | --: |",
        "| the | 262 | 0.12346 |",
        "| <|endoftext|> | 50256 | 0.5 |".replace("<|endoftext|>", "<\\|endoftext\\|>"),
        "| a\\|b |  | 1e-7 |",
      ].join("\n"),
    );
  });

  it("showTable sends html, markdown and text in one output", () => {
    const sent = recordSink();
    showTable([{ a: 1 }], { digits: 3 });
    assert.deepEqual(Object.keys(sent[0].message.data).sort(), ["text/html", "text/markdown", "text/plain"]);
  });
});

describe("finding tslab's kernel module", () => {
  // A stand-in for tslab/dist/jupyter.js as the kernel leaves it in Node's module cache.
  const fakePath = path.join(os.tmpdir(), "elsewhere", "node_modules", "tslab", "dist", "jupyter.js");
  class ZmqServer {
    handleExecute(_sock: unknown, msg: unknown): unknown {
      return msg;
    }
  }
  const fake: { lastWriteDisplayData: ((m: DisplayMessage, u: boolean) => void) | null; ZmqServer: typeof ZmqServer } = {
    lastWriteDisplayData: null,
    ZmqServer,
  };
  const displayPath = require.resolve("../../lib/show/display");
  const ownCopy = require.cache[displayPath];

  /** A fresh instance of the display module, which has not looked for tslab yet. */
  function freshDisplay(): typeof import("../../lib/show/display") {
    delete require.cache[displayPath];
    return require("../../lib/show/display");
  }

  before(() => {
    require.cache[fakePath] = { id: fakePath, filename: fakePath, loaded: true, exports: fake } as unknown as NodeModule;
  });
  after(() => {
    delete require.cache[fakePath];
    require.cache[displayPath] = ownCopy;
  });

  it("sends through the loaded module's current lastWriteDisplayData", () => {
    const d = freshDisplay();
    assert.equal(d.inKernel(), false, "no cell has run yet");
    const first: DisplayMessage[] = [];
    const second: DisplayMessage[] = [];
    fake.lastWriteDisplayData = (m) => first.push(m);
    d.displayBundle({ "text/plain": "a" });
    // tslab installs a new sender for every cell; the next output must use it.
    fake.lastWriteDisplayData = (m) => second.push(m);
    d.displayBundle({ "text/plain": "b" });
    assert.deepEqual([first.map((m) => m.data), second.map((m) => m.data)], [[{ "text/plain": "a" }], [{ "text/plain": "b" }]]);
  });

  it("learns the frontend session from execute requests, wrapping the server once", () => {
    const d = freshDisplay();
    assert.equal(d.frontendSession(), undefined);
    const d2 = freshDisplay(); // a second copy of the library: must not wrap again, must see sessions
    d2.inKernel();
    const server = new ZmqServer();
    const msg = { header: { session: "page-1" } };
    assert.equal(server.handleExecute(null, msg), msg, "the request still reaches tslab");
    assert.equal(d.frontendSession(), "page-1");
    assert.equal(d2.frontendSession(), "page-1");
    server.handleExecute(null, { header: { session: "page-2" } });
    assert.equal(d.frontendSession(), "page-2");
    assert.equal(Object.getOwnPropertySymbols(ZmqServer.prototype).length, 1);
  });
});

describe("serializeSends (kernel sockets)", () => {
  it("runs a socket's sends one after the other, in order, never overlapping; a failure does not stop the next", async () => {
    const { serializeSends } = await import("../../lib/show/display");
    const log: string[] = [];
    let busy = false;
    // Like zeromq.js 6: send is read-only on the prototype, and a second send while one is pending throws.
    function send(this: { name: string }, msg: string): Promise<void> {
      if (busy) throw new Error("Socket is busy writing");
      busy = true;
      return new Promise((ok, fail) => setTimeout(() => {
        busy = false;
        log.push(`${this.name}:${msg}`);
        if (msg === "bad") fail(new Error("send failed"));
        else ok();
      }, 2));
    }
    const proto: Record<string | symbol, unknown> = {};
    Object.defineProperty(proto, "send", { value: send, writable: false, configurable: true });
    serializeSends(proto);
    serializeSends(proto); // idempotent
    const sock = Object.create(proto) as { name: string; send(m: string): Promise<void> };
    sock.name = "iopub";
    await Promise.all(["a", "bad", "b", "c"].map((m) => sock.send(m)));
    assert.deepEqual(log, ["iopub:a", "iopub:bad", "iopub:b", "iopub:c"]);
  });
});
