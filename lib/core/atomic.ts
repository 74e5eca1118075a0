import * as fs from "fs";
import * as path from "path";

/**
 * Write a file so that readers see either the old content or the new one, never half:
 * write to a temporary file in the same directory, fsync, then rename over the target.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, "w");
    fs.writeSync(fd, typeof data === "string" ? Buffer.from(data, "utf8") : data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * The bytes of a regular file, or one line naming it: "FILE: no such file", "FILE: is a
 * directory (a pipe, a device…), not a regular file; expected WHAT". A pipe or a device given
 * where a data file belongs would otherwise be read without limit (or block forever).
 */
export function readRegularFile(file: string, what: string): Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${file}: ${code === "ENOENT" || code === "ENOTDIR" ? "no such file" : `cannot read it (${code ?? (e as Error).message})`}; expected ${what}`);
  }
  if (!stat.isFile()) {
    const kind = stat.isDirectory() ? "a directory" : stat.isFIFO() ? "a pipe" : stat.isCharacterDevice() || stat.isBlockDevice() ? "a device" : stat.isSocket() ? "a socket" : "something else";
    throw new Error(`${file}: is ${kind}, not a regular file; expected ${what}`);
  }
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); expected ${what}`);
  }
}
