/** The CRIU phase bench's pure parts: restore.log → phases, and the inventory.img edit. No daemon, no root. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { criuLogLines, criuPhases, criuRestoreMs, PHASES } from "../../bench/criu-log";
import { withNetworkLockMethod } from "../../bench/criu-phases";
import { createTar } from "../harness/tar";

/** The marker lines of a real restore.log (CRIU 4.1.1 via runc, ctr restore of the counter), a few lines between them left out. */
const LOG = [
  "(00.000000) CRIU run id = cb00c248-f246-4d9c-b4ea-771dbfb62261",
  "(00.000279) Version: 4.1.1 (gitid 0)",
  "(00.005074) net: Restoring netdev veth idx 10",
  "(00.005509) net: \tLD: Got link 10, type 1",
  "(00.017222) vdso: Parsing at 7fdd837c9000 7fdd837cb000",
  "(00.019568) Reading image tree",
  "(00.021220) Forking task with 1 pid (flags 0x6c028000)",
  "(00.024059)      1: mnt: Restoring mount namespace",
  "(00.044494) Running post-setup-namespaces scripts",
  "(00.048781) Running post-restore scripts",
  "(00.049892) net: Unlock network",
  "(00.049895) Running network-unlock scripts",
  "(00.049896) \tRPC",
  "(00.103036) pie: 13: seccomp: mode 0 on tid 13",
  "(00.103555) Running pre-resume scripts",
  "(00.103689) Restore finished successfully. Tasks resumed.",
  "(00.103691) Writing stats",
].join("\n");

const near = (actual: number | undefined, expected: number): void => {
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-6, `${actual} ≈ ${expected}`);
};

describe("restore.log timestamps", () => {
  test("(SS.uuuuuu) is read as milliseconds; lines without one are skipped", () => {
    const lines = criuLogLines("(01.250000) a\ntask_args->pid: 1\n(02.5) b\n");
    assert.deepEqual(
      lines.map((l) => l.ms),
      [1250, 2500],
    );
  });

  test("CRIU's time is the \"Restore finished successfully\" line; without it the last line, flagged", () => {
    assert.deepEqual(criuRestoreMs(LOG), { ms: 103.689, fallback: false });
    assert.deepEqual(criuRestoreMs("(00.001000) a\n(00.002000) b"), { ms: 2, fallback: true });
    assert.ok(Number.isNaN(criuRestoreMs("no timestamps").ms));
  });
});

describe("restore.log phases", () => {
  test("each phase runs from its marker line to the next one; the top-level phases add up to CRIU's time", () => {
    const phases = criuPhases(LOG);
    near(phases.init, 19.568);
    near(phases["init/netns-probe"], 17.222 - 5.074);
    near(phases.prepare, 21.22 - 19.568);
    near(phases.namespaces, 44.494 - 21.22);
    near(phases["namespaces/mounts"], 44.494 - 24.059);
    near(phases.tasks, 48.781 - 44.494);
    near(phases["post-restore"], 49.892 - 48.781);
    near(phases.unlock, 103.555 - 49.892);
    near(phases.resume, 103.689 - 103.555);
    const topLevel = PHASES.filter((p) => !p.name.includes("/")).reduce((sum, p) => sum + (phases[p.name] ?? NaN), 0);
    near(topLevel, criuRestoreMs(LOG).ms);
  });

  test("a phase whose marker is missing is absent, never 0; the others stay", () => {
    // With the kdat cache loaded, the probe lines are not written.
    const cached = LOG.split("\n")
      .filter((l) => !/net: Restoring netdev|vdso: Parsing/.test(l))
      .join("\n");
    const phases = criuPhases(cached);
    assert.equal("init/netns-probe" in phases, false);
    near(phases.init, 19.568);
    // A failed restore: nothing after the tasks.
    const failed = criuPhases(LOG.split("\n").slice(0, 9).join("\n"));
    assert.deepEqual(Object.keys(failed).sort(), ["init", "init/netns-probe", "namespaces", "namespaces/mounts", "prepare"]);
    assert.deepEqual(criuPhases(""), {});
  });

  test("an end marker before its start marker does not count", () => {
    const phases = criuPhases(["(00.001000) Running pre-resume scripts", "(00.002000) net: Unlock network"].join("\n"));
    assert.equal("unlock" in phases, false);
  });
});

describe("inventory.img's network lock method", () => {
  /** An inventory.img: magic, size, then an InventoryEntry with img_version 2 and network_lock_method 0 (iptables). */
  const inventory = (): Buffer => {
    const entry = Buffer.from([0x08, 0x02, 0x58, 0x00]);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(0x58313116, 0);
    head.writeUInt32LE(entry.length, 4);
    return Buffer.concat([head, entry]);
  };
  const tarOf = (files: Record<string, Buffer>): Buffer =>
    createTar(Object.entries(files).map(([name, data]) => ({ type: "file" as const, name, data })));

  test("the field is appended (the last value wins), the size prefix and the tar header follow, other files stay byte for byte", () => {
    const pages = Buffer.alloc(1500, 7);
    const edited = withNetworkLockMethod(tarOf({ "core-1.img": pages, "inventory.img": inventory() }), 2);
    const at = 512 + 1536; // after core-1.img's header and its three data blocks
    assert.equal(edited.toString("latin1", at, at + 13), "inventory.img");
    assert.equal(parseInt(edited.toString("latin1", at + 124, at + 135), 8), 14);
    let sum = 0;
    for (let i = at; i < at + 512; i++) sum += i >= at + 148 && i < at + 156 ? 0x20 : edited[i];
    assert.equal(parseInt(edited.toString("latin1", at + 148, at + 154), 8), sum, "header checksum");
    const data = edited.subarray(at + 512, at + 512 + 14);
    assert.equal(data.readUInt32LE(4), 6);
    assert.deepEqual([...data.subarray(8)], [0x08, 0x02, 0x58, 0x00, 0x58, 0x02]);
    assert.deepEqual(edited.subarray(512, 512 + 1500), pages);
    assert.equal(edited.length, tarOf({ "core-1.img": pages, "inventory.img": inventory() }).length);
  });

  test("a tar without inventory.img, or with a foreign one, is refused", () => {
    assert.throws(() => withNetworkLockMethod(tarOf({ "core-1.img": Buffer.from("x") }), 1), /no inventory\.img/);
    assert.throws(() => withNetworkLockMethod(tarOf({ "inventory.img": Buffer.alloc(12) }), 1), /not a CRIU inventory/);
  });
});
