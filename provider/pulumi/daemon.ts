import { connect, type ContainerdClient } from "../index";
import type { Daemon } from "./inputs";

/**
 * One client per daemon connection for the life of the provider process: a
 * preview or up of many resources shares the connection (grpc-js reconnects by
 * itself after a daemon restart).
 */
const clients = new Map<string, ContainerdClient>();

function clientFor(daemon: Daemon): ContainerdClient {
  const key = JSON.stringify([daemon.address, daemon.namespace, daemon.tls ?? null, daemon.insecure ?? false]);
  let client = clients.get(key);
  if (!client) {
    client = connect(daemon.address, { namespace: daemon.namespace, tls: daemon.tls, insecure: daemon.insecure });
    clients.set(key, client);
  }
  return client;
}

/** Runs `use` with the shared client for `daemon`. */
export async function withClient<T>(daemon: Daemon, use: (client: ContainerdClient) => Promise<T>): Promise<T> {
  return use(clientFor(daemon));
}
