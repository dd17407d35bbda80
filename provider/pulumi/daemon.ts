import { connect, type ContainerdClient } from "../index";
import type { Daemon } from "./inputs";

/** Runs `use` with a client for `daemon`, closed afterwards. */
export async function withClient<T>(daemon: Daemon, use: (client: ContainerdClient) => Promise<T>): Promise<T> {
  const client = connect(daemon.address, { namespace: daemon.namespace, tls: daemon.tls, insecure: daemon.insecure });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}
