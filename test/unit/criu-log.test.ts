/** restore.log is read only from the work dir the provider made, safely. No daemon, no root. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { RESTORE_LOG_MAX_BYTES, createCriuWorkDir, readRestoreLogTail, removeCriuWorkDir } from "../../provider/restore/criu-log";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function workDir(): Promise<string> {
  const dir = await createCriuWorkDir();
  dirs.push(dir);
  return dir;
}

describe("CRIU work directory", () => {
  test("is fresh, private (0700) and removed with what CRIU left in it", async () => {
    const dir = await workDir();
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.notEqual(dir, await workDir());
    fs.writeFileSync(path.join(dir, "restore.log"), "x\n");
    await removeCriuWorkDir(dir);
    assert.equal(fs.existsSync(dir), false);
  });
});

describe("restore.log tail", () => {
  test("the last 20 non-empty lines", async () => {
    const dir = await workDir();
    fs.writeFileSync(path.join(dir, "restore.log"), Array.from({ length: 50 }, (_, i) => `line ${i}`).join("\n\n"));
    const tail = await readRestoreLogTail(dir);
    assert.deepEqual(tail, Array.from({ length: 20 }, (_, i) => `line ${i + 30}`));
  });

  test("a symlinked restore.log is not followed", async () => {
    const dir = await workDir();
    const secret = path.join(dir, "..", `secret-${process.pid}.log`);
    fs.writeFileSync(secret, "SECRET\n");
    dirs.push(secret);
    fs.symlinkSync(secret, path.join(dir, "restore.log"));
    assert.equal(await readRestoreLogTail(dir), undefined);
  });

  test("a FIFO or a directory is not read (and does not block)", async () => {
    const fifoDir = await workDir();
    execFileSync("mkfifo", [path.join(fifoDir, "restore.log")]);
    assert.equal(await readRestoreLogTail(fifoDir), undefined);
    const dirDir = await workDir();
    fs.mkdirSync(path.join(dirDir, "restore.log"));
    assert.equal(await readRestoreLogTail(dirDir), undefined);
  });

  test("an oversized log: only its last 64 KiB are read, the cut line dropped", async () => {
    const dir = await workDir();
    const big = "A".repeat(10 * 1024 * 1024) + "\n" + Array.from({ length: 5 }, (_, i) => `end ${i}`).join("\n") + "\n";
    fs.writeFileSync(path.join(dir, "restore.log"), big);
    const read: number[] = [];
    const tail = await readRestoreLogTail(dir);
    read.push(tail!.join("\n").length);
    assert.deepEqual(tail, ["end 0", "end 1", "end 2", "end 3", "end 4"]);
    assert.ok(read[0] <= RESTORE_LOG_MAX_BYTES);
  });

  test("control characters and ANSI escapes are stripped", async () => {
    const dir = await workDir();
    fs.writeFileSync(path.join(dir, "restore.log"), "\u001b[31mError\u001b[0m (criu/cr-restore.c:1): \u0007boom\u001b]0;title\u0007\r\n");
    assert.deepEqual(await readRestoreLogTail(dir), ["Error (criu/cr-restore.c:1): boom"]);
  });

  test("no log at all is undefined, not an error", async () => {
    assert.equal(await readRestoreLogTail(path.join(os.tmpdir(), "no-such-criu-dir")), undefined);
  });
});
