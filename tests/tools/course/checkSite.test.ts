import { strict as assert } from "node:assert";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { contentType, defaultScreenshotsDir, listPages, missingLinkTargets, parseCheckArgs, resolveRequestPath, startStaticServer } from "../../../lib/tools/course/checkSite";

function get(url: string): Promise<{ status: number; type?: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"], body }));
      })
      .on("error", reject);
  });
}

describe("check-site: helpers", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "check-site-"));
    fs.mkdirSync(path.join(dir, "assets"));
    fs.writeFileSync(path.join(dir, "index.html"), "<h1>index</h1>");
    fs.writeFileSync(path.join(dir, "01-b.html"), "b");
    fs.writeFileSync(path.join(dir, "00-a.html"), "a");
    fs.writeFileSync(path.join(dir, "assets", "site.css"), "body{}");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("lists pages with the index first", () => {
    assert.deepEqual(listPages(dir), ["index.html", "00-a.html", "01-b.html"]);
  });

  it("keeps requests inside the site folder", () => {
    assert.equal(resolveRequestPath(dir, "/assets/site.css?v=2"), path.join(dir, "assets", "site.css"));
    assert.equal(resolveRequestPath(dir, "/"), path.join(dir, "index.html"));
    assert.equal(resolveRequestPath(dir, "/../../etc/passwd"), path.join(dir, "etc", "passwd"), "normalized back under root");
    assert.equal(resolveRequestPath(dir, "/%2e%2e/%2e%2e/etc/passwd"), path.join(dir, "etc", "passwd"));
    assert.equal(resolveRequestPath(dir, "/%E0%A4%A"), undefined, "malformed escapes are refused");
  });

  it("serves files with their content type and 404s the rest", async () => {
    const server = await startStaticServer(dir);
    try {
      const css = await get(server.url + "assets/site.css");
      assert.deepEqual([css.status, css.type, css.body], [200, "text/css; charset=utf-8", "body{}"]);
      assert.equal((await get(server.url)).body, "<h1>index</h1>");
      assert.equal((await get(server.url + "missing.png")).status, 404);
    } finally {
      await server.close();
    }
    assert.equal(contentType("x.woff2"), "font/woff2");
  });

  it("finds relative links to missing files, ignoring anchors and external URLs", () => {
    const hrefs = ["00-a.html", "00-a.html#top", "#x", "https://example.org/", "mailto:a@b", "02-c.html", "assets/site.css", "assets/nope.css"];
    assert.deepEqual(missingLinkTargets(dir, "index.html", hrefs), ["02-c.html", "assets/nope.css"]);
  });

  it("puts screenshots next to the site folder", () => {
    assert.equal(defaultScreenshotsDir("/x/build/site"), "/x/build/screenshots");
    assert.equal(defaultScreenshotsDir("/x/build/site-smoke"), "/x/build/site-smoke-screenshots");
  });

  it("parses modes and rejects bad ones", () => {
    const a = parseCheckArgs(["/tmp/s", "--mode", "file"]);
    assert.ok(a !== "help");
    assert.deepEqual([a.siteDir, a.modes, a.screenshotsDir], ["/tmp/s", ["file"], "/tmp/s-screenshots"]);
    const b = parseCheckArgs(["/tmp/site"]);
    assert.ok(b !== "help");
    assert.deepEqual(b.modes, ["http", "file"]);
    assert.throws(() => parseCheckArgs(["--mode", "ftp"]), /^Error: --mode must be one of http, file, both, got "ftp"$/);
    assert.throws(() => parseCheckArgs(["a", "b"]), /expected one site folder/);
  });
});
