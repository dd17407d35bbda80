/** The decoded-blob cache is bounded by bytes, not entries. No daemon. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DecodedCache } from "../../provider/checkpoint/cache";

const daemon = { address: "unix:///a.sock", namespace: "default" };
/** A value whose JSON is `kib` KiB long (give or take the quotes). */
const ofSize = (kib: number) => "x".repeat(kib * 1024 - 2);

describe("decoded cache", () => {
  test("never holds more than its budget: the oldest entries go first", () => {
    const cache = new DecodedCache<string>(8 * 1024 * 1024);
    for (let i = 0; i < 64; i++) {
      cache.set(daemon, `sha256:${i}`, ofSize(1024)); // 64 specs of 1 MiB: 64 MiB under the old entry limit
      assert.ok(cache.bytes <= cache.budgetBytes, `after ${i + 1}: ${cache.bytes} bytes`);
    }
    assert.equal(cache.size, 8);
    assert.equal(cache.get(daemon, "sha256:55"), undefined, "older entries were evicted");
    assert.equal(cache.get(daemon, "sha256:63")?.length, 1024 * 1024 - 2, "the newest is kept");
  });

  test("a value larger than the whole budget is returned but not kept", () => {
    const cache = new DecodedCache<string>(1024 * 1024);
    cache.set(daemon, "sha256:small", ofSize(10));
    assert.equal(cache.set(daemon, "sha256:huge", ofSize(2048)).length, 2048 * 1024 - 2);
    assert.equal(cache.get(daemon, "sha256:huge"), undefined);
    assert.ok(cache.get(daemon, "sha256:small"), "and it does not push out what fits");
  });

  test("entries are per daemon and namespace; setting a digest again replaces it without counting twice", () => {
    const cache = new DecodedCache<{ n: number }>(1024);
    cache.set(daemon, "sha256:a", { n: 1 });
    cache.set({ ...daemon, namespace: "other" }, "sha256:a", { n: 2 });
    assert.equal(cache.get(daemon, "sha256:a")?.n, 1);
    const held = cache.bytes;
    cache.set(daemon, "sha256:a", { n: 3 });
    assert.equal(cache.bytes, held);
    assert.equal(cache.get(daemon, "sha256:a")?.n, 3);
  });
});
