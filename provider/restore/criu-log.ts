import { constants as fsConstants } from "node:fs";
import * as fs from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { stripControls } from "../containerd";

/**
 * CRIU's work directory for one live restore on a local daemon, chosen by the
 * provider (passed as runc's `criu_work_path`), so restore.log is found at a
 * path we made, never at one a daemon message or a checkpoint names. runc ≥ 1.2
 * no longer names the log in its error; this finds it all the same.
 */

const RESTORE_LOG = "restore.log";
/** At most this much of the end of restore.log is read. */
export const RESTORE_LOG_MAX_BYTES = 64 * 1024;
const RESTORE_LOG_LINES = 20;

/** Creates a fresh private directory (0700, random name) for CRIU's work files. */
export async function createCriuWorkDir(): Promise<string> {
  return fs.mkdtemp(path.join(tmpdir(), "containerd-restore-criu-"));
}

/** Removes the work directory and what CRIU left in it; best effort (a remote or private /tmp may differ). */
export async function removeCriuWorkDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
}

/**
 * The last lines of `<dir>/restore.log`, or undefined when there is none to
 * read. Opened without following a symlink, only if it is a regular file;
 * reads at most the last 64 KiB; control characters and ANSI escapes removed.
 */
export async function readRestoreLogTail(dir: string, maxBytes = RESTORE_LOG_MAX_BYTES): Promise<string[] | undefined> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(path.join(dir, RESTORE_LOG), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    const stat = await handle.stat();
    if (!stat.isFile()) return undefined;
    const length = Math.min(stat.size, maxBytes);
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, stat.size - length);
    let text = buffer.subarray(0, bytesRead).toString("utf8");
    // A cut first line is partial: drop it.
    if (stat.size > length) text = text.slice(text.indexOf("\n") + 1);
    const lines = text
      .split("\n")
      .map((line) => stripControls(line))
      .filter((line) => line.trim() !== "");
    return lines.slice(-RESTORE_LOG_LINES);
  } catch {
    return undefined; // no log (a remote daemon, a private /tmp), a symlink, or unreadable
  } finally {
    await handle?.close();
  }
}
