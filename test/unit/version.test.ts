/** Daemon versions as containerd's Version service reports them, and the 1.6 floor. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { RestoreError } from "../../provider/errors";
import { assertSupportedVersion, daemonVersion, parseDaemonVersion } from "../../provider/restore/daemon-version";
import { fakeDaemon } from "./fake-client";

test("parses what 1.6 (Debian), 1.7 and 2.x builds report", () => {
  for (const [text, want] of [
    ["1.6.20~ds1", [1, 6, 20]],
    ["v1.7.35", [1, 7, 35]],
    ["v2.4.2", [2, 4, 2]],
    ["2.4.2+unknown", [2, 4, 2]],
    ["v2.0", [2, 0, 0]],
  ] as const) {
    const v = parseDaemonVersion(text)!;
    assert.deepEqual([v.major, v.minor, v.patch], want, text);
    assert.equal(v.version, text);
  }
  assert.equal(parseDaemonVersion(""), undefined);
  assert.equal(parseDaemonVersion("unknown"), undefined);
});

test("1.6 and newer pass; older and unreadable versions are refused with unsupported-daemon-version", () => {
  for (const ok of ["1.6.0", "1.6.20~ds1", "v1.7.35", "v2.4.2", "v10.0.0"]) assert.equal(assertSupportedVersion(ok).version, ok);
  for (const bad of ["v1.5.18", "1.4.13", "0.9.9", "v1", "dev"]) {
    assert.throws(
      () => assertSupportedVersion(bad, "", "unix:///x.sock"),
      (err: unknown) => err instanceof RestoreError && err.code === "unsupported-daemon-version" && err.message.includes("unix:///x.sock") && err.message.includes(bad),
      bad,
    );
  }
});

test("a client asks once for a supported version and reuses it; a refusal is asked again", async () => {
  let answer = "v2.4.2";
  const fake = fakeDaemon({ "version.Version": () => ({ version: answer, revision: "r" }) });
  const asked = () => fake.log().filter((m) => m === "version.Version").length;
  assert.equal((await daemonVersion(fake.client)).version, "v2.4.2");
  assert.equal((await daemonVersion(fake.client)).version, "v2.4.2");
  assert.equal(asked(), 1, "the second answer came from the client's cache");

  const old = fakeDaemon({ "version.Version": () => ({ version: answer, revision: "r" }) });
  answer = "v1.5.18";
  await assert.rejects(daemonVersion(old.client), (err: unknown) => err instanceof RestoreError && err.code === "unsupported-daemon-version");
  answer = "v1.7.35";
  assert.equal((await daemonVersion(old.client)).version, "v1.7.35", "a refused daemon is asked again, not refused from memory");
});
