/**
 * The set-up most test files share, registered once: a private containerd, the
 * base image, named checkpoints made on it, a client of the caller's choice, and
 * the baseline inventory taken when all of that is in place. Torn down after the
 * file's tests, in reverse. Like the rest of the harness it does not import
 * provider/ or sdk/: the caller passes `connect`.
 */
import { after, before } from "node:test";
import { startContainerd, type PrivateContainerd, type StartContainerdOptions } from "./containerd";
import { makeCheckpoint, type Checkpoint, type MakeCheckpointOptions } from "./fixtures";
import { importBaseImage, type BaseImage } from "./image";
import { assertInventoryUnchanged, diffInventory, takeInventory, type Inventory } from "./inventory";

/** Something with a connection to close (a library client). */
export interface Closable {
  close(): void;
}

export interface DaemonSuiteOptions<Client extends Closable, Names extends string> {
  /** How to start the daemon; a function for options made first (TLS material). */
  daemon?: StartContainerdOptions | (() => Promise<StartContainerdOptions>);
  /** Checkpoints of the counter to make on the base image, by name. */
  checkpoints?: Record<Names, Omit<MakeCheckpointOptions, "image">>;
  /** The client the tests use, connected once the daemon is up. */
  connect?(d: PrivateContainerd): Client;
  /** More fixtures, after the checkpoints and before the baseline inventory. */
  setUp?(suite: DaemonSuite<Client, Names>): Promise<void>;
  /** Runs first when the file's tests are done (e.g. a stack or proxy to remove). */
  tearDown?(): Promise<void>;
}

/** The shared fixtures of one test file; each is there once `before` has run. */
export class DaemonSuite<Client extends Closable = Closable, Names extends string = string> {
  private started?: PrivateContainerd;
  private connected?: Client;
  private base?: BaseImage;
  private made?: Record<Names, Checkpoint>;
  private inventory?: Inventory;

  /** @internal Use `daemonSuite`. */
  constructor(private readonly options: DaemonSuiteOptions<Client, Names>) {}

  get d(): PrivateContainerd {
    return ready(this.started, "the daemon");
  }

  get client(): Client {
    return ready(this.connected, "the client (give `connect`)");
  }

  get image(): BaseImage {
    return ready(this.base, "the base image");
  }

  /** What the daemon held when set-up was done. */
  get baseline(): Inventory {
    return ready(this.inventory, "the baseline inventory");
  }

  /** The checkpoints made for this file, by the names given. */
  get checkpoints(): Record<Names, Checkpoint> {
    return ready(this.made, "the checkpoints");
  }

  /** Asserts that the daemon holds what it held after set-up. */
  assertUnchanged(message: string, options?: Parameters<typeof assertInventoryUnchanged>[3]): Promise<void> {
    return assertInventoryUnchanged(this.d, this.baseline, message, options);
  }

  /** What the daemon holds beyond the baseline, as inventory lines. */
  async debris(): Promise<string[]> {
    return diffInventory(this.baseline, await takeInventory(this.d));
  }

  /** @internal */
  async setUp(): Promise<void> {
    const { daemon, checkpoints, connect } = this.options;
    this.started = await startContainerd(typeof daemon === "function" ? await daemon() : daemon);
    if (connect) this.connected = connect(this.started);
    this.base = await importBaseImage(this.started);
    const made: Partial<Record<Names, Checkpoint>> = {};
    for (const [name, options] of Object.entries(checkpoints ?? {}) as [Names, Omit<MakeCheckpointOptions, "image">][]) {
      made[name] = await makeCheckpoint(this.started, { ...options, image: this.base });
    }
    this.made = made as Record<Names, Checkpoint>;
    await this.options.setUp?.(this);
    this.inventory = await takeInventory(this.started);
  }

  /** @internal */
  async tearDown(): Promise<void> {
    try {
      await this.options.tearDown?.();
    } finally {
      this.connected?.close();
      await this.started?.stop();
    }
  }
}

function ready<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not set up: use it inside a test or hook, after the suite's before()`);
  return value;
}

/** A DaemonSuite for this test file: set up in `before`, torn down in `after`. */
export function daemonSuite<Client extends Closable = Closable, Names extends string = never>(
  options: DaemonSuiteOptions<Client, Names> = {},
): DaemonSuite<Client, Names> {
  const suite = new DaemonSuite(options);
  before(() => suite.setUp());
  after(() => suite.tearDown());
  return suite;
}

/** Two private daemons and a client on each, for a file's tests (a copy from A to B). */
export interface DaemonPair<Client extends Closable> {
  readonly a: PrivateContainerd;
  readonly b: PrivateContainerd;
  readonly ca: Client;
  readonly cb: Client;
}

/** A DaemonPair for this test file: started together in `before`, stopped in `after`. */
export function daemonPair<Client extends Closable>(connect: (d: PrivateContainerd) => Client): DaemonPair<Client> {
  let daemons: [PrivateContainerd, PrivateContainerd] | undefined;
  let clients: [Client, Client] | undefined;
  before(async () => {
    daemons = await Promise.all([startContainerd(), startContainerd()]);
    clients = [connect(daemons[0]), connect(daemons[1])];
  });
  after(async () => {
    clients?.forEach((c) => c.close());
    await Promise.all(daemons?.map((d) => d.stop()) ?? []);
  });
  return {
    get a() {
      return ready(daemons?.[0], "daemon A");
    },
    get b() {
      return ready(daemons?.[1], "daemon B");
    },
    get ca() {
      return ready(clients?.[0], "the client of A");
    },
    get cb() {
      return ready(clients?.[1], "the client of B");
    },
  };
}
