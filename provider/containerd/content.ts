import { createHash } from "node:crypto";
import type { ContainerdClient } from "./client";
import { BlobError, ContainerdError, isContainerdError } from "./errors";

/** How long a metadata read (index, spec, manifest, config, options) may go without a chunk, and in all. */
export const METADATA_IDLE_MS = 5_000;
export const METADATA_DEADLINE_MS = 15_000;
/** How long a streamed range of a large blob (copies) may go without a chunk. */
export const STREAM_IDLE_MS = 60_000;

export interface ReadBlobOptions {
  /** The descriptor's size: what is read must be exactly this long (and is refused at once when it exceeds `maxBytes`). */
  size?: number;
  /** What the blob is, for errors (e.g. `checkpoint config` or `manifests[1]`). Default the digest. */
  what?: string;
  /** No chunk for this long: the read is abandoned. Default {@link METADATA_IDLE_MS}. */
  idleMs?: number;
  /** The whole read's deadline. Default {@link METADATA_DEADLINE_MS}. */
  deadlineMs?: number;
}

/** The digest algorithms an OCI descriptor may use and node:crypto's name for each. */
const HASHES: Readonly<Record<string, { hash: string; hexLength: number }>> = {
  sha256: { hash: "sha256", hexLength: 64 },
  sha384: { hash: "sha384", hexLength: 96 },
  sha512: { hash: "sha512", hexLength: 128 },
};

/**
 * Reads a whole (small) blob from the content store and checks it: refuses one
 * larger than `maxBytes` (before reading, when the size is known; else as soon
 * as more arrives), one shorter or longer than the descriptor's size, one whose
 * bytes hash to another digest (every algorithm a descriptor may name), and a
 * read that stalls (`idleMs` without a chunk) or drags (`deadlineMs` in all).
 * Errors are BlobErrors naming `what` and the limit; the daemon's own errors
 * (not found…) stay ContainerdErrors.
 */
export async function readBlob(client: ContainerdClient, digest: string, maxBytes: number, options: ReadBlobOptions = {}): Promise<Buffer> {
  const what = options.what ?? `blob ${digest}`;
  const { size } = options;
  const algorithm = hashOf(digest, what);
  if (size !== undefined && size > maxBytes) throw tooLarge(what, digest, size, maxBytes);
  // The descriptor's size is known: one buffer of that size, never a list of chunks (a daemon
  // sending a million one-byte messages must not cost a million Buffers).
  const buffer = size !== undefined ? Buffer.allocUnsafe(size) : undefined;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const data of guardedRead(client, { digest, offset: 0, size: 0 }, what, options.idleMs ?? METADATA_IDLE_MS, options.deadlineMs ?? METADATA_DEADLINE_MS)) {
    if (total + data.length > maxBytes) throw tooLarge(what, digest, `more than ${maxBytes}`, maxBytes);
    if (buffer) {
      if (total + data.length > buffer.length) throw sizeMismatch(what, digest, `more than ${size}`, size!);
      buffer.set(data, total);
    } else {
      chunks.push(Buffer.from(data.buffer, data.byteOffset, data.length));
    }
    total += data.length;
  }
  if (size !== undefined && total !== size) throw sizeMismatch(what, digest, total, size);
  const blob = buffer ?? Buffer.concat(chunks, total);
  const actual = `${algorithm}:${createHash(HASHES[algorithm].hash).update(blob).digest("hex")}`;
  if (actual !== digest) {
    throw new BlobError(
      "digest-mismatch",
      `${what}: blob ${digest} read back as ${actual}: the daemon's content store holds other bytes under this digest (corrupted or tampered); remove the image and copy or pull it again`,
      { subject: what },
    );
  }
  return blob;
}

/** The digest's algorithm, when this reader can verify it; anything else is refused rather than trusted unread. */
function hashOf(digest: string, what: string): string {
  const match = /^([a-z0-9]+):([a-f0-9]+)$/.exec(digest);
  const known = match ? HASHES[match[1]] : undefined;
  if (!match || !known || match[2].length !== known.hexLength) {
    throw new BlobError("digest-mismatch", `${what}: digest ${JSON.stringify(digest.slice(0, 200))} cannot be verified: expected sha256, sha384 or sha512 with its full hex`, {
      subject: what,
    });
  }
  return match[1];
}

function tooLarge(what: string, digest: string, size: number | string, limit: number): BlobError {
  return new BlobError("blob-too-large", `${what} ${digest} is ${size} bytes; the limit is ${limit} bytes (${formatBytes(limit)}): not a blob a checkpoint needs`, {
    subject: what,
  });
}

function sizeMismatch(what: string, digest: string, read: number | string, size: number): BlobError {
  return new BlobError("size-mismatch", `${what}: blob ${digest} read ${read} bytes, but its descriptor says ${size}: the index or manifest is wrong, or the read was cut short`, {
    subject: what,
  });
}

const formatBytes = (n: number): string => (n >= 1024 * 1024 ? `${n / (1024 * 1024)} MiB` : `${n / 1024} KiB`);

/**
 * The stall guard of a streaming call: `around(wait)` runs one wait on the daemon
 * (a chunk, an answer, room to send) with the timer re-armed; a wait that lasts
 * `idleMs` sets `stalled` and runs `onStall` (which cancels the call). Time spent
 * outside those waits (the consumer's) does not count. One timer per call, not
 * per chunk: a copy has thousands.
 */
function stallGuard(idleMs: number, onStall: () => void): { readonly stalled: boolean; around<T>(wait: () => Promise<T>): Promise<T>; clear(): void } {
  let waiting = false;
  let stalled = false;
  const timer = setTimeout(() => {
    if (!waiting) return;
    stalled = true;
    onStall();
  }, idleMs);
  return {
    get stalled() {
      return stalled;
    },
    async around(wait) {
      waiting = true;
      timer.refresh();
      try {
        return await wait();
      } finally {
        waiting = false;
      }
    },
    clear: () => clearTimeout(timer),
  };
}

/**
 * Content.Read as a stream of chunks with a stall timeout (no chunk for `idleMs`,
 * counted only while waiting for the daemon, not while the consumer works) and
 * an overall deadline: a daemon that trickles bytes or goes silent gets a typed
 * `read-timeout`, not a 600 s hang.
 */
async function* guardedRead(
  client: ContainerdClient,
  request: { digest: string; offset: number; size: number },
  what: string,
  idleMs: number,
  deadlineMs: number,
): AsyncGenerator<Uint8Array> {
  const abort = new AbortController();
  const stream = client.stream("content.Read", request, { timeoutMs: deadlineMs, signal: abort.signal });
  const started = Date.now();
  const guard = stallGuard(idleMs, () => abort.abort());
  try {
    for (;;) {
      let next: IteratorResult<{ data: Uint8Array }>;
      try {
        next = await guard.around(() => stream.next());
      } catch (err) {
        if (guard.stalled || isContainerdError(err, "deadline-exceeded")) {
          const why = guard.stalled ? `no data for ${idleMs} ms` : `not finished after ${Date.now() - started} ms (deadline ${deadlineMs} ms)`;
          throw new BlobError("read-timeout", `${what}: reading blob ${request.digest} from the daemon at ${client.address} stalled: ${why}; the daemon is overloaded or the link is too slow`, {
            subject: what,
            cause: err,
          });
        }
        throw err;
      }
      if (next.done) return;
      yield next.value.data;
    }
  } finally {
    guard.clear();
    await stream.return(undefined);
  }
}

/** The OCI digest (`sha256:<hex>`) of `data`. */
export function digestOf(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** What a blob write must produce. */
export interface BlobTarget {
  digest: string;
  size: number;
  /** Labels set on commit (e.g. `containerd.io/gc.ref.content.*`). */
  labels?: Record<string, string>;
}

export interface WriteBlobResult {
  /** Bytes sent in this call (0 when the blob was already there). */
  bytesWritten: number;
  /** Where this call started: > 0 when it resumed an interrupted ingest. */
  resumedAt: number;
  /** The daemon already had the blob (it is added to the caller's lease). */
  existed: boolean;
}

/**
 * Writes a blob into the content store through Content.Write, resumable: the
 * ingest `ref` keeps what an interrupted write sent, and this call asks for its
 * offset (STAT) and only requests the rest from `source(offset)`. The daemon
 * verifies size and digest on COMMIT. Chunks stream through, gathered into WRITEs
 * of STREAM_TUNING.writeBytes without being copied; nothing is buffered beyond
 * that and the stream's own window. A chunk must stay unchanged once given. A
 * daemon that stops answering or taking bytes for `idleMs` is a `write-timeout`
 * (the COMMIT, which syncs the blob to disk, has the call's own deadline).
 */
export interface WriteBlobOptions {
  /** No answer and no room to send for this long: the write is abandoned. Default {@link STREAM_IDLE_MS}. */
  idleMs?: number;
}

export async function writeBlob(
  client: ContainerdClient,
  ref: string,
  target: BlobTarget,
  source: (offset: number) => AsyncIterable<Uint8Array>,
  options: WriteBlobOptions = {},
): Promise<WriteBlobResult> {
  // Another writer holds the ingest (a parallel copy of a shared layer): wait for it, as containerd's own client does.
  const giveUpAt = Date.now() + LOCKED_RETRY_MS;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    try {
      return await writeBlobOnce(client, ref, target, source, options.idleMs ?? STREAM_IDLE_MS);
    } catch (err) {
      if (!isIngestLocked(err) || Date.now() > giveUpAt) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

const LOCKED_RETRY_MS = 60_000;

/** containerd answers Unavailable "ref … locked" while another writer holds an ingest. */
function isIngestLocked(err: unknown): boolean {
  return isContainerdError(err, "unavailable") && /\blocked\b/.test((err as ContainerdError).details);
}

/**
 * How a streamed copy is pipelined; the defaults were chosen by measurement
 * (bench/transfer.ts, README "Figures"). Exported for the benchmark; not API.
 * @internal
 */
export const STREAM_TUNING = {
  /** How much one Content.Read asks for; the next range's call is opened while this one is consumed. */
  rangeBytes: 2 * 1024 * 1024,
  /** Unacknowledged WRITE bytes on the way to the target before the writer waits for an answer. */
  inFlightBytes: 2 * 1024 * 1024,
  /** The data one WRITE carries (the chunks it gathers are sent as they are). */
  writeBytes: 1024 * 1024,
  /** Bytes read ahead of the writer (the queue between them, see pipeline.ts). */
  readAheadBytes: 2 * 1024 * 1024,
};

/** How long a writer whose source failed waits for the target to answer what was already sent, so a retry resumes after it. */
const FLUSH_ON_FAILURE_MS = 10_000;

async function writeBlobOnce(
  client: ContainerdClient,
  ref: string,
  target: BlobTarget,
  source: (offset: number) => AsyncIterable<Uint8Array>,
  idleMs: number,
): Promise<WriteBlobResult> {
  const call = client.duplex("content.Write");
  const { digest, size } = target;
  // Every wait on the daemon (an answer, or room to send) is guarded; the COMMIT, which syncs the blob, is not.
  const guard = stallGuard(idleMs, () => call.cancel());
  // The offset each unanswered WRITE must bring the ingest to, oldest first, and their bytes:
  // requests are sent without waiting for each answer (containerd answers every one, in order),
  // at most STREAM_TUNING.inFlightBytes ahead of the answers.
  const expectedOffsets: Array<{ offset: number; bytes: number }> = [];
  let unanswered = 0;
  const answerOne = async (): Promise<void> => {
    const expected = expectedOffsets.shift()!;
    unanswered -= expected.bytes;
    const { offset } = await guard.around(() => call.receive());
    if (offset !== expected.offset) {
      throw new ContainerdError("out-of-range", "content.Write", `blob ${digest}: the daemon's ingest is at ${offset} after a write that should end at ${expected.offset}`, client.address);
    }
  };
  let sourceFailed = false;
  try {
    await guard.around(() => call.send({ action: "STAT", ref, total: size, expected: digest }));
    const status = await guard.around(() => call.receive());
    const resumedAt = status.offset > 0 && status.offset <= size ? status.offset : 0;
    let offset = resumedAt;
    // The chunks of the next WRITE: sent once they reach STREAM_TUNING.writeBytes, or at the end.
    let batch: Uint8Array[] = [];
    let batched = 0;
    const sendBatch = async (): Promise<void> => {
      if (batched === 0) return;
      // Every WRITE carries its offset, which the daemon checks against the ingest's.
      await guard.around(() => call.send({ action: "WRITE", ref, offset }, batch));
      offset += batched;
      expectedOffsets.push({ offset, bytes: batched });
      unanswered += batched;
      batch = [];
      batched = 0;
    };
    const chunks = source(offset)[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await chunks.next();
      } catch (err) {
        sourceFailed = true;
        // What the source gave before it failed goes out too, so a retry resumes after all of it.
        await sendBatch().catch(() => undefined);
        throw err;
      }
      if (next.done) break;
      const data = next.value;
      if (data.length === 0) continue;
      if (offset + batched + data.length > size) {
        await chunks.return?.(undefined);
        throw new ContainerdError("out-of-range", "content.Write", `blob ${digest}: source gave more than ${size} bytes`, client.address);
      }
      // A chunk larger than a WRITE is sent in views of it (a daemon takes messages of at most 16 MiB).
      for (let at = 0; at < data.length; ) {
        const room = STREAM_TUNING.writeBytes - batched;
        const piece = at === 0 && data.length <= room ? data : data.subarray(at, at + room);
        batch.push(piece);
        batched += piece.length;
        at += piece.length;
        if (batched >= STREAM_TUNING.writeBytes) {
          await sendBatch();
          while (unanswered > STREAM_TUNING.inFlightBytes) await answerOne();
        }
      }
    }
    await sendBatch();
    while (expectedOffsets.length > 0) await answerOne();
    if (offset !== size) throw new ContainerdError("out-of-range", "content.Write", `blob ${digest}: source ended at ${offset} of ${size} bytes`, client.address);
    guard.clear();
    await call.send({ action: "COMMIT", ref, total: size, expected: digest, offset, labels: target.labels });
    await call.receive();
    call.end();
    return { bytesWritten: size - resumedAt, resumedAt, existed: false };
  } catch (err) {
    guard.clear();
    if (guard.stalled) {
      throw new BlobError(
        "write-timeout",
        `blob ${digest}: writing it to the daemon at ${client.address} stalled: no answer for ${idleMs} ms; the daemon is overloaded or the link is too slow (what was sent stays in ingest ${ref} for a retry)`,
        { subject: `blob ${digest}`, cause: err },
      );
    }
    if (sourceFailed && expectedOffsets.length > 0) await flushSent(call, expectedOffsets.length);
    call.cancel();
    if (isContainerdError(err, "already-exists")) return { bytesWritten: 0, resumedAt: 0, existed: true };
    // Bytes that hash to another digest are in the ingest: drop it, so a retry starts over instead of resuming from them.
    if (err instanceof BlobError && err.code === "digest-mismatch") await client.call("content.Abort", { ref }).catch(() => undefined);
    throw err;
  }
}

/**
 * The source failed with WRITEs still unanswered: half-close and let the daemon
 * take them (each is checked against its offset there), so the ingest keeps
 * everything that was sent and a retry resumes after it. Bounded; best effort.
 */
async function flushSent(call: { end(): void; receive(): Promise<unknown> }, answers: number): Promise<void> {
  call.end();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, FLUSH_ON_FAILURE_MS)));
  const drained = (async () => {
    for (let i = 0; i < answers; i++) await call.receive();
  })().catch(() => undefined);
  await Promise.race([drained, timeout]);
  clearTimeout(timer);
}

/**
 * Reads blob bytes `[offset, size)` as a stream of chunks, one bounded range
 * (STREAM_TUNING.rangeBytes) per Content.Read, the next range's call opened while
 * the current one is consumed, so the daemon never waits between ranges and
 * grpc-js's flow control bounds what is buffered ahead of a slow consumer (a
 * write to another daemon): copies stay within a small, constant memory
 * footprint. Each range must come back exactly as long as asked (containerd cuts
 * a read at the blob's end without an error: a descriptor whose size is too large
 * is caught here), and a range that stalls for {@link STREAM_IDLE_MS} is a
 * `read-timeout`. Read from the start, the bytes are hashed as they pass and a
 * digest other than `digest` is a `digest-mismatch` before the last chunk is
 * given out (so a writer never commits them); a resumed read cannot hash what it
 * skips, and leaves that check to the daemon's commit.
 */
export function readChunks(
  client: ContainerdClient,
  digest: string,
  size: number,
  offset = 0,
  what = `blob ${digest}`,
  rangeBytes = STREAM_TUNING.rangeBytes,
): AsyncIterable<Uint8Array> {
  const algorithm = hashOf(digest, what);
  return (async function* () {
    const hash = offset === 0 ? createHash(HASHES[algorithm].hash) : undefined;
    type Range = { at: number; length: number; chunks: AsyncGenerator<Uint8Array>; first: Promise<IteratorResult<Uint8Array>> };
    const open = (at: number): Range => {
      const length = Math.min(rangeBytes, size - at);
      const chunks = guardedRead(client, { digest, offset: at, size: length }, what, STREAM_IDLE_MS, 600_000);
      // Asking for the first chunk starts the call: the daemon fills this range's window while the previous one drains.
      const first = chunks.next();
      first.catch(() => undefined); // awaited when the range's turn comes; not an unhandled rejection before
      return { at, length, chunks, first };
    };
    let current: Range | undefined = offset < size ? open(offset) : undefined;
    let prefetched: Range | undefined;
    try {
      while (current) {
        const { at, length, chunks } = current;
        const following = at + length < size ? at + length : undefined;
        let pending: Promise<IteratorResult<Uint8Array>> | undefined = current.first;
        let got = 0;
        for (;;) {
          const next: IteratorResult<Uint8Array> = await (pending ?? chunks.next());
          pending = undefined;
          if (next.done) break;
          const data = next.value;
          got += data.length;
          if (got > length) throw sizeMismatch(what, digest, `more than ${at + length}`, size);
          // The following range is opened once this one is under way (its first bytes are here).
          if (following !== undefined && !prefetched) prefetched = open(following);
          hash?.update(data);
          if (following === undefined && got === length && hash) verifyDigest(hash, algorithm, digest, what);
          yield data;
        }
        if (got !== length) throw sizeMismatch(what, digest, at + got, size);
        current = prefetched ?? (following !== undefined ? open(following) : undefined);
        prefetched = undefined;
      }
    } finally {
      // Ended early (a failure, or the consumer stopped): both calls are cancelled (the prefetched one once its first answer is in).
      void current?.chunks.return(undefined).catch(() => undefined);
      void prefetched?.chunks.return(undefined).catch(() => undefined);
    }
  })();
}

function verifyDigest(hash: ReturnType<typeof createHash>, algorithm: string, digest: string, what: string): void {
  const actual = `${algorithm}:${hash.digest("hex")}`;
  if (actual !== digest) {
    throw new BlobError("digest-mismatch", `${what}: blob ${digest} read back as ${actual}: the source daemon's content store holds other bytes under this digest (corrupted or tampered)`, {
      subject: what,
    });
  }
}
