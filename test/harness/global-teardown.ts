import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RedisClusterHarness, RedisServer } from './redis-server';
import { formatScenarios, readScenarios, SUMMARY_ENV } from './scenario-summary';

/**
 * Jest global teardown: prints the fault-injection figures, then stops the shared servers
 * (runs even when tests failed).
 */
export default async function globalTeardown(): Promise<void> {
  const summary = process.env[SUMMARY_ENV];
  if (summary) {
    const rows = readScenarios(summary);
    if (rows.length > 0) console.log(`\nFault-injection scenarios (test/reliability):\n${formatScenarios(rows)}\n`);
    rmSync(dirname(summary), { recursive: true, force: true });
  }
  const servers = (globalThis as Record<string, unknown>).__NRL_SERVERS__ as
    { standalone: RedisServer; cluster: RedisClusterHarness } | undefined;
  if (!servers) return;
  await Promise.all([servers.standalone.destroy(), servers.cluster.destroy()]);
}
