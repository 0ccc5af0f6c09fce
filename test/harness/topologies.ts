/**
 * Runs one test body on the harness's standalone server and on its Redis Cluster.
 *
 * ```ts
 * describeTopologies('my feature', (t) => {
 *   it('works', async () => {
 *     const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() })]);
 *     ...
 *   });
 * });
 * ```
 */
import type { INestApplication, ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Cluster, Redis } from 'ioredis';
import type { RedisLuaModuleOptions } from '../../lib';
import { harnessAddresses, harnessScripts } from './harness-env';

export type Topology = 'standalone' | 'cluster';
export const TOPOLOGIES: readonly Topology[] = ['standalone', 'cluster'];

let prefixCounter = 0;

/** A key prefix no other test (file, worker, run) uses: tests never flush a shared server. */
export function uniquePrefix(): string {
  prefixCounter += 1;
  return `t${process.pid}x${prefixCounter}x${Math.random().toString(36).slice(2, 8)}`;
}

export interface TopologyContext {
  readonly topology: Topology;
  /**
   * `{ url }` or `{ cluster: { nodes } }` for `RedisLuaModule.forRoot`, with `scripts: 'functions'`
   * when the run is in functions mode (NRL_TEST_SCRIPTS, see harness-env.ts).
   */
  connection(): Pick<RedisLuaModuleOptions, 'url' | 'cluster' | 'scripts'>;
  /** A new ioredis client (Redis or Cluster) of this topology, closed after the suite. */
  client(): Redis | Cluster;
  /** One plain client per master (one for standalone), closed after the suite. */
  masters(): Promise<Redis[]>;
  /** A fresh key prefix. */
  prefix(): string;
  /** Compiles and inits a Nest app with `imports` (+ `extra` metadata); closed after the test. */
  app(imports: ModuleMetadata['imports'], extra?: Omit<ModuleMetadata, 'imports'>): Promise<INestApplication>;
}

/** Declares `describe(name [standalone])` and `describe(name [cluster])` running `body`. */
export function describeTopologies(name: string, body: (t: TopologyContext) => void): void {
  describe.each(TOPOLOGIES)(`${name} [%s]`, (topology) => {
    const ctx = topologyContext(topology);
    body(ctx);
  });
}

/** A context for one topology, with jest hooks that close what it opened. */
export function topologyContext(topology: Topology): TopologyContext {
  const suiteClients: Array<Redis | Cluster> = [];
  let testApps: INestApplication[] = [];
  const addresses = harnessAddresses();

  afterEach(async () => {
    const apps = testApps;
    testApps = [];
    await Promise.all(apps.map((app) => app.close()));
  });
  afterAll(async () => {
    await Promise.all(suiteClients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
  });

  const track = <T extends Redis | Cluster>(client: T): T => {
    suiteClients.push(client);
    return client;
  };

  return {
    topology,
    connection: () =>
      topology === 'standalone'
        ? { url: `redis://${addresses.standalone.host}:${addresses.standalone.port}`, ...harnessScripts() }
        : { cluster: { nodes: addresses.cluster }, ...harnessScripts() },
    client: () => track(topology === 'standalone' ? new Redis(addresses.standalone) : new Cluster(addresses.cluster)),
    masters: async () => {
      if (topology === 'standalone') return [track(new Redis(addresses.standalone))];
      const probe = track(new Cluster(addresses.cluster));
      await probe.ping();
      return probe.nodes('master').map((node) => track(new Redis({ host: node.options.host, port: node.options.port })));
    },
    prefix: uniquePrefix,
    app: async (imports, extra = {}) => {
      const moduleRef = await Test.createTestingModule({ ...extra, imports }).compile();
      const app = moduleRef.createNestApplication({ logger: false });
      testApps.push(app);
      await app.init();
      return app;
    },
  };
}
