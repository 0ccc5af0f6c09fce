import type { RedisClusterHarness, RedisServer } from './redis-server';

/** Jest global teardown: stops the shared servers (runs even when tests failed). */
export default async function globalTeardown(): Promise<void> {
  const servers = (globalThis as Record<string, unknown>).__NRL_SERVERS__ as
    | { standalone: RedisServer; cluster: RedisClusterHarness }
    | undefined;
  if (!servers) return;
  await Promise.all([servers.standalone.destroy(), servers.cluster.destroy()]);
}
