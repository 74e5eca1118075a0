import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { corpusStats, FetchLike, loadCorpus, TINY_SHAKESPEARE_URL, trainValSplit } from "../../lib/tokens/corpus";

describe("corpus", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "corpus-test-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, data: string | Uint8Array): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, data);
    return p;
  };

  describe("moby-dick (embedded)", () => {
    it("is the book in order, with chapter headings and without the table of contents", async () => {
      const text = await loadCorpus("moby-dick");
      assert.ok(text.startsWith("ETYMOLOGY. (Supplied by a Late Consumptive Usher to a Grammar School.)"));
      assert.ok(text.includes("CHAPTER 1. Loomings.\n\nCall me Ishmael. Some years ago"));
      assert.equal(text.match(/^CHAPTER \d+\. /gm)?.length, 135); // chapters 1–135
      assert.ok(!text.includes("CONTENTS"));
      assert.ok(text.endsWith("only found another orphan."));
      assert.equal(await loadCorpus(), text); // the default
    });
  });

  describe("text files", () => {
    it("reads a UTF-8 file (BOM dropped, accents kept)", async () => {
      const p = write("a.txt", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("café\nnaïve\n", "utf8")]));
      assert.equal(await loadCorpus(p), "café\nnaïve\n");
    });

    it("rejects a missing file, naming the path", async () => {
      const p = path.join(dir, "nope.txt");
      await assert.rejects(loadCorpus(p), (e: Error) => e.message.includes(p) && /no such file/.test(e.message));
    });

    it("rejects a directory", async () => {
      await assert.rejects(loadCorpus(dir), (e: Error) => e.message.includes(dir) && /is a directory/.test(e.message));
    });

    it("rejects an empty file", async () => {
      const p = write("empty.txt", "");
      await assert.rejects(loadCorpus(p), (e: Error) => e.message.includes(p) && /is empty/.test(e.message));
    });

    it("locates the first invalid byte: offset and line", async () => {
      // "ab\ncd" then 0xFF (never valid in UTF-8) at byte offset 5, on line 2.
      const p = write("latin.txt", Uint8Array.from([0x61, 0x62, 0x0a, 0x63, 0x64, 0xff, 0x65]));
      await assert.rejects(loadCorpus(p), (e: Error) => {
        assert.equal(
          e.message,
          `loadCorpus: ${p} is not valid UTF-8: first bad byte 0xFF at byte offset 5 (line 2); save the file as UTF-8`,
        );
        return true;
      });
    });

    it("blames the lead byte of an interrupted character (a Latin-1 'é')", async () => {
      // "caf" 0xE9 "!": 0xE9 starts a 3-byte sequence that "!" cannot continue; the culprit is 0xE9 at offset 3.
      const p = write("cafe.txt", Uint8Array.from([0x63, 0x61, 0x66, 0xe9, 0x21]));
      await assert.rejects(loadCorpus(p), /first bad byte 0xE9 at byte offset 3 \(line 1\)/);
      // "x\ny\n" then E2 82 (two bytes of "€") then "z": the sequence starts at offset 4, line 3.
      const q = write("euro.txt", Uint8Array.from([0x78, 0x0a, 0x79, 0x0a, 0xe2, 0x82, 0x7a]));
      await assert.rejects(loadCorpus(q), /first bad byte 0xE2 at byte offset 4 \(line 3\)/);
    });

    it("reports a file cut in the middle of a character", async () => {
      // "ab" + the first two bytes of "€" (E2 82 AC).
      const p = write("cut.txt", Uint8Array.from([0x61, 0x62, 0xe2, 0x82]));
      await assert.rejects(loadCorpus(p), /ends inside a multi-byte character starting at byte 2 \(line 1\)/);
    });
  });

  describe("shakespeare (download, cache, fallback)", () => {
    const offline: FetchLike = async () => {
      throw new Error("getaddrinfo ENOTFOUND raw.githubusercontent.com");
    };
    const serving =
      (body: string, calls: string[]): FetchLike =>
      async (url) => {
        calls.push(url);
        return { ok: true, status: 200, arrayBuffer: async () => new TextEncoder().encode(body).buffer as ArrayBuffer };
      };

    it("uses the cache without touching the network", async () => {
      const cache = write("tiny.txt", "First Citizen:\n");
      const text = await loadCorpus("shakespeare", { shakespeareCache: cache, fetch: async () => assert.fail("fetched") });
      assert.equal(text, "First Citizen:\n");
    });

    it("downloads from the canonical URL and writes the cache", async () => {
      const cache = path.join(dir, "sub", "tiny.txt");
      const calls: string[] = [];
      const text = await loadCorpus("shakespeare", { shakespeareCache: cache, fetch: serving("Before we proceed", calls) });
      assert.equal(text, "Before we proceed");
      assert.deepEqual(calls, [TINY_SHAKESPEARE_URL]);
      assert.equal(fs.readFileSync(cache, "utf8"), "Before we proceed");
    });

    it("falls back to the local copy when offline, and caches it", async () => {
      const cache = path.join(dir, "tiny.txt");
      const fallback = write("shared.txt", "Speak, speak.\n");
      const text = await loadCorpus("shakespeare", { shakespeareCache: cache, shakespeareFallback: fallback, fetch: offline });
      assert.equal(text, "Speak, speak.\n");
      assert.equal(fs.readFileSync(cache, "utf8"), "Speak, speak.\n");
    });

    it("falls back when the server answers with an error status", async () => {
      const fallback = write("shared.txt", "You are all resolved");
      const notFound: FetchLike = async () => ({ ok: false, status: 404, arrayBuffer: async () => new ArrayBuffer(0) });
      const text = await loadCorpus("shakespeare", {
        shakespeareCache: path.join(dir, "c.txt"),
        shakespeareFallback: fallback,
        fetch: notFound,
      });
      assert.equal(text, "You are all resolved");
    });

    it("gives up on a hanging download after the timeout", async () => {
      const hanging: FetchLike = (_url, { signal }) =>
        new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(new Error("timed out"))));
      const fallback = write("shared.txt", "resolved");
      const t0 = Date.now();
      const text = await loadCorpus("shakespeare", {
        shakespeareCache: path.join(dir, "c.txt"),
        shakespeareFallback: fallback,
        fetch: hanging,
        timeoutMs: 50,
      });
      assert.equal(text, "resolved");
      assert.ok(Date.now() - t0 < 2000);
    });

    it("says where to put the file when nothing works", async () => {
      const cache = path.join(dir, "tiny.txt");
      const fallback = path.join(dir, "missing.txt");
      await assert.rejects(loadCorpus("shakespeare", { shakespeareCache: cache, shakespeareFallback: fallback, fetch: offline }), (e: Error) => {
        assert.ok(!e.message.includes("\n"), "one line");
        assert.ok(e.message.includes(cache) && e.message.includes(fallback) && e.message.includes(TINY_SHAKESPEARE_URL));
        assert.match(e.message, /ENOTFOUND/);
        return true;
      });
      assert.ok(!fs.existsSync(cache));
    });
  });

  describe("trainValSplit", () => {
    it("cuts at floor(fraction × length), train first", () => {
      assert.deepEqual(trainValSplit("abcdefghij"), { train: "abcdefghi", val: "j" });
      assert.deepEqual(trainValSplit("abcdefghij", 0.25), { train: "ab", val: "cdefghij" });
    });

    it("never splits a surrogate pair", () => {
      // "ab😀cd" is 6 UTF-16 units; half is 3, inside the emoji, so the cut moves to 4.
      assert.deepEqual(trainValSplit("ab😀cd", 0.5), { train: "ab😀", val: "cd" });
    });

    it("rejects fractions outside (0, 1)", () => {
      for (const f of [0, 1, -0.1, 1.5, NaN]) assert.throws(() => trainValSplit("abc", f), /between 0 and 1/);
    });
  });

  describe("corpusStats", () => {
    it("counts characters, words, lines and distinct characters", () => {
      // Distinct: H e l o ␠ w r d ⏎ h i t = 12.
      assert.deepEqual(corpusStats("Hello world\nhi there\n"), { characters: 21, words: 4, lines: 2, distinctCharacters: 12 });
    });

    it("counts a last line without newline, an empty text, and emoji as one character", () => {
      assert.equal(corpusStats("a\nb").lines, 2);
      assert.deepEqual(corpusStats(""), { characters: 0, words: 0, lines: 0, distinctCharacters: 0 });
      assert.deepEqual(corpusStats("😀 😀"), { characters: 3, words: 2, lines: 1, distinctCharacters: 2 });
    });
  });
});
