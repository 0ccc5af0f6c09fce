/**
 * Boots the sample app's real AppModule against the harness's Redis: the connection and a fresh key
 * prefix reach it through ConfigService, exactly as environment variables would.
 */
import type { INestApplication } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import { AppModule } from '../../sample-app/app.module';
import { configureApp } from '../../sample-app/main';
import { harnessAddresses } from '../harness/harness-env';
import type { TopologyContext } from '../harness/topologies';

const opened: INestApplication[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((app) => app.close()));
});

/** The environment the sample reads, for one topology and a fresh prefix. */
export function sampleEnv(t: TopologyContext, extra: Record<string, string> = {}): Record<string, string> {
  const { standalone, cluster } = harnessAddresses();
  const connection: Record<string, string> =
    t.topology === 'cluster'
      ? { REDIS_CLUSTER_NODES: cluster.map((node) => `${node.host}:${node.port}`).join(',') }
      : { REDIS_URL: `redis://${standalone.host}:${standalone.port}` };
  // The rate limits count exactly: a slow answer on a loaded machine is waited for, never failed open.
  const decided = { RATE_LIMIT_FAIL_MODE: 'closed', RATE_LIMIT_TIMEOUT_MS: '60000' };
  return { ...connection, ...decided, REDIS_KEY_PREFIX: t.prefix(), SAMPLE_SLOW_LOADER_MS: '300', ...extra };
}

/** The sample's AppModule, initialised, with `env` as its configuration; closed after the test. */
export async function startSampleApp(t: TopologyContext, extra: Record<string, string> = {}): Promise<INestApplication> {
  const env = sampleEnv(t, extra);
  const config = { get: <T = string>(key: string): T | undefined => env[key] as T | undefined };
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] })
    .overrideProvider(ConfigService)
    .useValue(config)
    .compile();
  const app = moduleRef.createNestApplication({ logger: false });
  opened.push(app);
  configureApp(app);
  await app.init();
  return app;
}
