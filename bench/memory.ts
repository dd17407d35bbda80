/**
 * Process memory for the benchmarks: fields of /proc/<pid>/status, and the
 * memory filler, a container whose process holds N MiB of random anonymous
 * memory, for checkpoints whose CRIU image is N MiB of incompressible pages.
 *
 * The filler runs `dd if=/dev/urandom bs=<N>M count=1 iflag=fullblock | sleep …`
 * in busybox: dd mallocs one N MiB buffer, fills it and then blocks writing it
 * into a pipe nobody reads, so the buffer stays resident (waited for: dd's
 * RssAnon ≥ N MiB) and CRIU must dump it as pages (nothing to dedupe).
 */
import * as fs from "node:fs";
import { BASE_IMAGE_NAME, taskPid, waitFor, type PrivateContainerd } from "../test/harness/index";

const FILL_TIMEOUT_MS = 120_000;

/** A field of /proc/<pid>/status in KiB (NaN if absent or the process is gone). */
export function statusKiB(pid: number | "self", field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** A running memory filler. */
export interface MemoryFiller {
  /** Host pid of the container's init (the shell). */
  initPid: number;
  /** Host pid of dd, the process holding the memory. */
  ddPid: number;
  /** dd's RssAnon once filled, KiB. */
  rssAnonKiB: number;
  /** From `ctr run` until dd held the memory, ms. */
  fillMs: number;
}

/** The first child of `initPid` (a filler's or its restored copy's init) holding ≥ `minKiB` of anonymous memory, if any yet. */
export function childHolding(initPid: number, minKiB: number): { ddPid: number; rssAnonKiB: number } | undefined {
  let children: string[];
  try {
    children = fs.readFileSync(`/proc/${initPid}/task/${initPid}/children`, "utf8").trim().split(/\s+/);
  } catch {
    return undefined;
  }
  for (const c of children) {
    const kib = statusKiB(Number(c), "RssAnon");
    if (kib >= minKiB) return { ddPid: Number(c), rssAnonKiB: kib };
  }
  return undefined;
}

/** Runs the memory filler as container `id` on `d` and waits until dd holds ≥ memMib MiB of anonymous memory. */
export async function runMemoryFiller(d: PrivateContainerd, id: string, memMib: number): Promise<MemoryFiller> {
  const script = `dd if=/dev/urandom bs=${memMib}M count=1 iflag=fullblock 2>/dev/null | sleep 2147483647`;
  const t0 = performance.now();
  await d.ctr(["run", "-d", BASE_IMAGE_NAME, id, "sh", "-c", script]);
  const initPid = await taskPid(d, id);
  const found = await waitFor(() => childHolding(initPid, memMib * 1024), FILL_TIMEOUT_MS, () => `a process in ${id} holding ${memMib} MiB of anonymous memory`, 50);
  return { initPid, ...found, fillMs: performance.now() - t0 };
}
