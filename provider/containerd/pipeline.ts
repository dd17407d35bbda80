/**
 * The pieces a streamed copy is pipelined with: a queue bounded in bytes between
 * a producer (the reader of one daemon) and a consumer (the writer to another),
 * and `readAhead`, which runs a source into such a queue so that the next bytes
 * are being read while the previous ones are written — and no further ahead than
 * the budget: a slow writer stops the reader (backpressure), a slow reader leaves
 * the writer waiting, memory stays bounded either way.
 */

/** A FIFO of byte chunks holding at most `budget` bytes (a single larger chunk is let in alone, so nothing deadlocks). */
export class BoundedQueue {
  private readonly items: Uint8Array[] = [];
  private bytes = 0;
  private closed = false;
  private failure: { error: unknown } | undefined;
  /** The producer waiting for room, and the consumer waiting for an item (one of each at most). */
  private wakeProducer: (() => void) | undefined;
  private wakeConsumer: (() => void) | undefined;

  constructor(readonly budget: number) {
    if (!(budget > 0)) throw new RangeError(`BoundedQueue budget must be > 0, got ${budget}`);
  }

  /** Bytes queued now. */
  get size(): number {
    return this.bytes;
  }

  /** Waits until `chunk` fits in the budget (or the queue is empty), then queues it. False when the consumer has gone. */
  async push(chunk: Uint8Array): Promise<boolean> {
    while (!this.closed && this.bytes > 0 && this.bytes + chunk.length > this.budget) {
      await new Promise<void>((resolve) => (this.wakeProducer = resolve));
    }
    if (this.closed) return false;
    this.items.push(chunk);
    this.bytes += chunk.length;
    this.wake("consumer");
    return true;
  }

  /** The next chunk; `undefined` once the producer ended and the queue is drained; throws what the producer failed with. */
  async shift(): Promise<Uint8Array | undefined> {
    for (;;) {
      const item = this.items.shift();
      if (item) {
        this.bytes -= item.length;
        this.wake("producer");
        return item;
      }
      if (this.failure) throw this.failure.error;
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
    }
  }

  /** The producer is done: the consumer gets what is queued, then the end. Also stops a producer waiting in push. */
  close(): void {
    this.closed = true;
    this.wake("consumer");
    this.wake("producer");
  }

  /** The producer failed: the consumer gets what is queued, then `error`. */
  fail(error: unknown): void {
    this.failure ??= { error };
    this.close();
  }

  private wake(who: "producer" | "consumer"): void {
    const wake = who === "producer" ? this.wakeProducer : this.wakeConsumer;
    if (who === "producer") this.wakeProducer = undefined;
    else this.wakeConsumer = undefined;
    wake?.();
  }
}

/**
 * `source`, read ahead into a queue of at most `budgetBytes` by a pump that runs
 * while the consumer works. Ending early (break, throw) stops the pump and
 * returns the source (cancelling its call); the source's error reaches the
 * consumer after the chunks read before it, in order.
 */
export function readAhead(source: AsyncIterable<Uint8Array>, budgetBytes: number): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      const queue = new BoundedQueue(budgetBytes);
      const iterator = source[Symbol.asyncIterator]();
      let stopped = false;
      const pump = (async () => {
        try {
          for (;;) {
            const next = await iterator.next();
            if (next.done || stopped) break;
            if (!(await queue.push(next.value))) break;
          }
          queue.close();
        } catch (err) {
          queue.fail(err);
        } finally {
          if (stopped) await iterator.return?.(undefined);
        }
      })();
      // Not awaiting the pump: it may be waiting for the daemon's next chunk; it returns the source when that comes (or times out).
      const stop = async (): Promise<IteratorResult<Uint8Array>> => {
        stopped = true;
        queue.close();
        void pump;
        return { done: true, value: undefined };
      };
      return {
        async next(): Promise<IteratorResult<Uint8Array>> {
          const chunk = await queue.shift();
          return chunk ? { done: false, value: chunk } : { done: true, value: undefined };
        },
        return: stop,
        throw: async (err: unknown) => {
          await stop();
          throw err;
        },
      };
    },
  };
}
