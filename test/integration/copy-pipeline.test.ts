/**
 * The pipelined copy against two real daemons: a blob of several ranges streams
 * A → B through the range reader, the read-ahead queue and the writer that does
 * not wait for each answer; an interruption mid-pipeline leaves B's ingest with
 * exactly what was sent (flushed before the call is cancelled), and the next
 * attempt resumes there and ends with the right digest and size.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { STREAM_TUNING, connect, digestOf, readAhead, readBlob, readChunks, writeBlob } from "../../provider/containerd";
import { daemonPair } from "../harness";

const MiB = 1024 * 1024;
/** Daemon A (the source) and B (the target), with a client each. */
const daemons = daemonPair((d) => connect(d.address, { namespace: d.namespace }));

/** A fresh random blob of `size` bytes in A's content store (under a lease, so GC leaves it). */
async function blobOnA(size: number): Promise<{ digest: string; size: number; blob: Buffer }> {
  const blob = randomBytes(size);
  const digest = digestOf(blob);
  const lease = `pipeline-src-${digest.slice(7, 19)}`;
  await daemons.ca.call("leases.Create", { id: lease, labels: { "containerd.io/gc.expire": new Date(Date.now() + 600_000).toISOString() } });
  await writeBlob(daemons.ca.withLease(lease), `src-${digest}`, { digest, size }, async function* (offset) {
    for (let at = offset; at < size; at += MiB) yield blob.subarray(at, Math.min(size, at + MiB));
  });
  return { digest, size, blob };
}

describe("pipelined copy of a multi-range blob", () => {
  test("an interruption mid-pipeline keeps what was sent; the retry resumes there; digest and size are right", async () => {
    const { digest, size, blob } = await blobOnA(7 * MiB + 12_345);
    const rangeBytes = 2 * MiB; // four ranges, the last one short
    const lease = `pipeline-dst-${digest.slice(7, 19)}`;
    await daemons.cb.call("leases.Create", { id: lease, labels: { "containerd.io/gc.expire": new Date(Date.now() + 600_000).toISOString() } });
    const target = daemons.cb.withLease(lease);
    const ref = `copy-${digest}`;

    // First attempt: the pipeline breaks after 3.5 MiB have passed (in the second range), with WRITEs in flight.
    let passed = 0;
    const breaking = (offset: number) =>
      (async function* () {
        for await (const chunk of readAhead(readChunks(daemons.ca, digest, size, offset, undefined, rangeBytes), 2 * MiB)) {
          const room = 3.5 * MiB - passed;
          if (room < chunk.length) {
            if (room > 0) yield chunk.subarray(0, room);
            passed += Math.max(room, 0);
            throw new Error("link broken");
          }
          passed += chunk.length;
          yield chunk;
        }
      })();
    await assert.rejects(writeBlob(target, ref, { digest, size }, breaking), /link broken/);
    const { statuses } = await daemons.cb.call("content.ListStatuses", {});
    const ingest = statuses.find((s) => s.ref === ref);
    assert.equal(ingest?.offset, 3.5 * MiB, "the ingest holds everything that was sent before the break, no more, no less");

    // Second attempt: resumes at the ingest offset and commits.
    const result = await writeBlob(target, ref, { digest, size }, (offset) => readAhead(readChunks(daemons.ca, digest, size, offset, undefined, rangeBytes), 2 * MiB));
    assert.equal(result.resumedAt, 3.5 * MiB);
    assert.equal(result.bytesWritten, size - 3.5 * MiB);
    const { info } = await daemons.cb.call("content.Info", { digest });
    assert.equal(info.size, size);
    const back = await readBlob(daemons.cb, digest, size, { size });
    assert.ok(back.equals(blob), "B has the same bytes");
    assert.deepEqual((await daemons.cb.call("content.ListStatuses", {})).statuses, [], "no ingest left");
    await daemons.cb.call("leases.Delete", { id: lease, sync: true });
  });

  test("a whole multi-range copy in one go, with WRITEs in flight: digest and size verified by both ends", async () => {
    const { digest, size, blob } = await blobOnA(5 * MiB + 1);
    const lease = `pipeline-dst2-${digest.slice(7, 19)}`;
    await daemons.cb.call("leases.Create", { id: lease, labels: { "containerd.io/gc.expire": new Date(Date.now() + 600_000).toISOString() } });
    const saved = { ...STREAM_TUNING };
    try {
      // Small budgets: many ranges, the queue and the in-flight window full most of the time.
      Object.assign(STREAM_TUNING, { inFlightBytes: 256 * 1024 });
      const result = await writeBlob(daemons.cb.withLease(lease), `copy-${digest}`, { digest, size }, (offset) =>
        readAhead(readChunks(daemons.ca, digest, size, offset, undefined, 512 * 1024), 256 * 1024),
      );
      assert.deepEqual(result, { bytesWritten: size, resumedAt: 0, existed: false });
    } finally {
      Object.assign(STREAM_TUNING, saved);
    }
    assert.ok((await readBlob(daemons.cb, digest, size, { size })).equals(blob));
    await daemons.cb.call("leases.Delete", { id: lease, sync: true });
  });
});
