import { assertRedisInstalled, RedisClusterHarness, RedisServer } from './redis-server';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HARNESS_ENV, type HarnessAddresses } from './harness-env';
import { SUMMARY_ENV } from './scenario-summary';

/**
 * Jest global setup: one private standalone server and one 3-master Redis Cluster for the whole run.
 * Their addresses reach the test workers through an environment variable.
 */
export default async function globalSetup(): Promise<void> {
  assertRedisInstalled();
  const [standalone, cluster] = await Promise.all([RedisServer.start(), RedisClusterHarness.start({ masters: 3 })]);
  (globalThis as Record<string, unknown>).__NRL_SERVERS__ = { standalone, cluster };
  const addresses: HarnessAddresses = { standalone: { host: standalone.host, port: standalone.port }, cluster: cluster.nodes };
  process.env[HARNESS_ENV] = JSON.stringify(addresses);
  process.env[SUMMARY_ENV] = join(mkdtempSync(join(tmpdir(), 'nrl-run-')), 'scenarios.jsonl');
}
