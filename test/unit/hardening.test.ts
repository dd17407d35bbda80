/**
 * The pure parts of issue 8's hardening: daemon text sanitizing, the JSON
 * limit scanner (paths, depth, members, strings that look like structure), the
 * restore-lease filter and liveness rules.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sanitizeDaemonText, stripTerminalControls } from "../../provider/containerd/errors";
import { INDEX_LIMITS, SPEC_LIMITS, assertJsonWithinLimits } from "../../provider/checkpoint/json-limits";
import { RestoreError } from "../../provider/errors";
import { HOLDER_LABEL, LIVE_WINDOW_MS, beginAttempt, endAttempt, holderId, isLiveAttempt, restoreLeaseFilter } from "../../provider/restore/restore-leases";

const CONTROLS = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe("daemon text", () => {
  const cases: [string, string][] = [
    ["\u001b[31mred\u001b[0m", "red"],
    ["title\u001b]0;pwned\u0007 set", "title set"],
    ["link \u001b]8;;http://x\u001b\\here\u001b]8;;\u001b\\", "link here"],
    ["line1\r\nline2\tend", "line1 line2 end"],
    ["over\rwrite", "over write"],
    ["8-bit \u009b2J csi", "8-bit  csi"],
    ["bidi \u202eevil\u202c", "bidi evil"],
    ["nul\u0000 bell\u0007 del\u007f", "nul bell del"],
  ];
  for (const [input, want] of cases) {
    test(`sanitizes ${JSON.stringify(input)}`, () => {
      const out = sanitizeDaemonText(input);
      assert.equal(out, want);
      assert.doesNotMatch(out, CONTROLS);
    });
  }
  test("cuts at 4 KiB", () => {
    const out = sanitizeDaemonText("x".repeat(10_000));
    assert.ok(out.startsWith("x".repeat(4096)) && out.endsWith("(5904 more characters)"), out.slice(-40));
  });
  test("RestoreError messages keep a caller's NUL or line break, lose terminal escapes", () => {
    assert.equal(stripTerminalControls('id "a\u0000b\nc" \u001b[2Jx\r'), 'id "a\u0000b\nc" x');
    assert.equal(new RestoreError("invalid-id", "id \u001b]0;t\u0007x").message, "id x");
  });
});

function limitError(json: string, limits = SPEC_LIMITS): RestoreError | undefined {
  try {
    assertJsonWithinLimits(Buffer.from(json), "doc", limits);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof RestoreError);
    return err;
  }
}

describe("JSON limits", () => {
  test("a real-looking spec passes", () => {
    const spec = { ociVersion: "1.0.2", process: { args: ["sh"], env: ["A=1"] }, linux: { seccomp: { syscalls: [{ names: ["read"], args: [{ index: 0 }] }] } } };
    assert.equal(limitError(JSON.stringify(spec)), undefined);
  });
  test("depth 32 passes, 33 fails naming the path", () => {
    assert.equal(limitError(`${"[".repeat(32)}${"]".repeat(32)}`), undefined);
    const err = limitError(`{"a":{"b":[${"[".repeat(40)}`);
    assert.equal(err?.code, "json-too-deep");
    assert.equal(err?.subject, `doc: a.b${"[0]".repeat(30)}`);
  });
  test("brackets, braces and commas inside strings are not structure", () => {
    const tricky = JSON.stringify({ a: "[[[[{{{{,,,,\\\"]]]]", manifests: Array(64).fill("x,y,z") });
    assert.equal(limitError(tricky, INDEX_LIMITS), undefined);
    assert.equal(limitError(JSON.stringify({ s: "[".repeat(100) })), undefined);
  });
  test("named paths have their own limits; indexes are ignored in the path", () => {
    assert.equal(limitError(JSON.stringify({ process: { env: Array(4096).fill("A=1") } })), undefined);
    const env = limitError(JSON.stringify({ process: { env: Array(4097).fill("A=1") } }));
    assert.equal(env?.code, "too-many-entries");
    assert.equal(env?.subject, "doc: process.env");
    const wide = limitError(JSON.stringify({ list: Array(10_001).fill(0) }));
    assert.match(wide?.message ?? "", /doc: list has more than 10000 entries; the limit is 10000/);
  });
});

describe("restore leases", () => {
  test("the filter is containerd's regex syntax with dots as [.]", () => {
    assert.equal(restoreLeaseFilter("app.v2"), "id~=/^containerd-restore[.]restore[.]app[.]v2[.][0-9a-f]{8}$/");
  });
  test("liveness: this process's attempts while running; others by process; remote by age", () => {
    const id = "containerd-restore.restore.x.00000001";
    const labels = beginAttempt(id);
    assert.equal(labels[HOLDER_LABEL], holderId());
    const now = { seconds: Math.floor(Date.now() / 1000), nanos: 0 };
    assert.equal(isLiveAttempt({ id, labels, createdAt: now }), true);
    endAttempt(id);
    assert.equal(isLiveAttempt({ id, labels, createdAt: now }), false, "ended: abandoned at once");
    const [boot] = holderId().split("/");
    assert.equal(isLiveAttempt({ id, labels: { [HOLDER_LABEL]: `${boot}/1` } }), true, "pid 1 is alive");
    const old = { seconds: Math.floor((Date.now() - LIVE_WINDOW_MS - 1000) / 1000), nanos: 0 };
    assert.equal(isLiveAttempt({ id, labels: { [HOLDER_LABEL]: "elsewhere/42" }, createdAt: now }), true, "remote and recent");
    assert.equal(isLiveAttempt({ id, labels: { [HOLDER_LABEL]: "elsewhere/42" }, createdAt: old }), false, "remote and old");
    assert.equal(isLiveAttempt({ id, createdAt: old }), false, "unlabelled and old");
    assert.equal(isLiveAttempt({ id, labels: { [HOLDER_LABEL]: `${boot}/0` }, createdAt: old }), false, "pid 0 is no process");
  });
});
