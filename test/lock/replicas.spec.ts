/**
 * Replica-acknowledged locks (`replicas`, `replicaTimeoutMs`): the acquisition counts once WAIT says
 * enough replicas have it; too few acknowledgements release it and reject with LockReplicationError.
 * On a standalone server with one replica and on a 3 masters + 3 replicas cluster.
 */
import type { AddressInfo } from 'node:net';
import { Controller, type INestApplication, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Cluster, Command, Redis } from 'ioredis';
import {
  Lock,
  LockInputError,
  LockReplicationError,
  LockService,
  RedisLuaModule,
  RedisLuaUnavailableError,
  SemaphoreService,
  WithLock,
  type RedisLuaModuleOptions,
} from 'nest-redis-lua';
import { RedisClusterHarness, RedisServer } from '../harness/redis-server';
import { recordScenario } from '../harness/scenario-summary';
import { uniquePrefix } from '../harness/topologies';

jest.setTimeout(120_000);

@Controller()
class PaymentsController {
  @Post('payments/:id')
  @WithLock('payment:{params.id}', { replicas: 1, waitMs: 0 })
  pay(): string {
    return 'paid';
  }

  @Post('refunds/:id')
  @WithLock('refund:{params.id}', { replicas: 2, replicaTimeoutMs: 200, waitMs: 0 })
  refund(): string {
    return 'refunded';
  }
}

async function lockApp(
  connection: RedisLuaModuleOptions,
  controllers: Array<new (...args: never[]) => unknown> = [],
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisLuaModule.forRoot({ ...connection, keyPrefix: uniquePrefix() })],
    controllers,
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

/** Acquires with too many replicas asked for: the typed error, after WAIT waited its whole timeout. */
async function expectShortage(locks: LockService, resource: string, replicaTimeoutMs: number, acknowledged: number): Promise<number> {
  const started = performance.now();
  const err = (await locks
    .acquire(resource, { replicas: 2, replicaTimeoutMs, waitMs: 10_000 })
    .catch((e: unknown) => e)) as LockReplicationError;
  const elapsed = performance.now() - started;
  expect(err).toBeInstanceOf(LockReplicationError);
  expect(err).toBeInstanceOf(RedisLuaUnavailableError);
  expect(err).toMatchObject({ resource, replicas: 2, replicaTimeoutMs, reason: 'refused' });
  // Known when WAIT's own (late: 1000 / hz ms) timeout answered before the caller's deadline did.
  if (err.acknowledged !== undefined) expect(err.acknowledged).toBe(acknowledged);
  expect(err.message).toBe(
    `nest-redis-lua: LockService.acquire: the lock on "${resource}" was not acknowledged by 2 replicas (option "replicas") within ${replicaTimeoutMs} ms${err.acknowledged === undefined ? '' : ` (${acknowledged} did)`}; it was released`,
  );
  // WAIT waited (Redis's own timer), and the caller did not go on to wait for waitMs (10 s).
  expect(elapsed).toBeGreaterThanOrEqual(replicaTimeoutMs - 1);
  expect(elapsed).toBeLessThan(10_000);
  return elapsed;
}

describe('replica-acknowledged locks [standalone + 1 replica]', () => {
  let master: RedisServer;
  let replica: RedisServer;
  let onMaster: Redis;
  let onReplica: Redis;

  beforeAll(async () => {
    master = await RedisServer.start();
    replica = await RedisServer.startReplicaOf(master);
    onMaster = new Redis({ host: master.host, port: master.port });
    onReplica = new Redis({ host: replica.host, port: replica.port });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([onMaster?.quit(), onReplica?.quit()]);
    await Promise.all([replica?.destroy(), master?.destroy()]);
  });

  it('{ replicas: 1 } resolves once the replica has the lock; release and renewal work as usual', async () => {
    const app = await lockApp({ url: master.url });
    try {
      const locks = app.get(LockService);
      const lock = await locks.acquire('invoice:1', { replicas: 1 });
      expect(lock).toBeInstanceOf(Lock);
      // Acknowledged: the replica applied the write before acquire resolved.
      expect(await onReplica.get(locks.lockKey('invoice:1'))).toBe(lock.token);
      await lock.extend(10_000);
      expect(await onMaster.pttl(locks.lockKey('invoice:1'))).toBeGreaterThan(5_000);
      expect(await lock.release()).toBe(true);
      expect(await onMaster.exists(locks.lockKey('invoice:1'))).toBe(0);
      // tryAcquire, read mode and acquireAll take it too.
      const tried = await locks.tryAcquire('invoice:2', { replicas: 1, replicaTimeoutMs: 2_000 });
      expect(await onReplica.get(locks.lockKey('invoice:2'))).toBe(tried!.token);
      const read = await locks.acquire('invoice:3', { mode: 'read', replicas: 1 });
      expect(read.held).toBe(true);
      const both = await locks.acquireAll(['invoice:4', 'invoice:5'], { replicas: 1 });
      expect(await onReplica.mget(locks.lockKey('invoice:4'), locks.lockKey('invoice:5'))).toEqual(both.locks.map((l) => l.token));
      await Promise.all([tried!.release(), read.release(), both.release()]);
    } finally {
      await app.close();
    }
  });

  it('{ replicas: 2 } with one replica: LockReplicationError after replicaTimeoutMs, the lock is released, a waiter gets it', async () => {
    const app = await lockApp({ url: master.url });
    try {
      const locks = app.get(LockService);
      const elapsed = await expectShortage(locks, 'order:9', 300, 1);
      recordScenario({
        scenario: 'lock replicas: 2 with 1 replica',
        topology: 'standalone',
        operations: 1,
        failures: 0,
        unhandledRejections: 0,
        maxLatencyMs: Math.round(elapsed),
        note: 'replicaTimeoutMs 300',
      });
      expect(await onMaster.exists(locks.lockKey('order:9'))).toBe(0);
      expect(await onMaster.exists(`${locks.lockKey('order:9')}:waiters`)).toBe(0);
      // tryAcquire rejects the same way (null would mean another owner holds it).
      await expect(locks.tryAcquire('order:9', { replicas: 2, replicaTimeoutMs: 50 })).rejects.toBeInstanceOf(LockReplicationError);
      // A caller waiting for the lock is woken by the release of the unacknowledged one.
      const holder = await locks.acquire('order:10');
      const failing = locks.acquire('order:10', { replicas: 2, replicaTimeoutMs: 100, waitMs: 30_000 });
      const waiter = locks.acquire('order:10', { waitMs: 30_000 });
      await holder.release();
      const outcomes = await Promise.allSettled([failing, waiter]);
      expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: expect.any(LockReplicationError) });
      // Either order of the two: the waiter gets it, now or once the unacknowledged one is released.
      expect(outcomes[1]).toMatchObject({ status: 'fulfilled', value: expect.any(Lock) });
      await (outcomes[1] as PromiseFulfilledResult<Lock>).value.release();
    } finally {
      await app.close();
    }
  });

  it('a waiting WAIT blocks only its own connection: other calls go on; concurrent shortages share WAITs', async () => {
    const app = await lockApp({ url: master.url });
    try {
      const locks = app.get(LockService);
      // Open the acknowledged connection first, so the calls below are all written at once.
      await (await locks.acquire('warm', { replicas: 1 })).release();
      let settled = false;
      const slow = locks.acquire('slow', { replicas: 2, replicaTimeoutMs: 5_000 }).finally(() => (settled = true));
      slow.catch(() => undefined);
      await (await locks.acquire('fast')).release();
      expect(settled).toBe(false);
      await expect(slow).rejects.toBeInstanceOf(LockReplicationError);

      const waitCalls = async (): Promise<number> => Number(/cmdstat_wait:calls=(\d+)/.exec(await onMaster.info('commandstats'))?.[1] ?? 0);
      const before = await waitCalls();
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => locks.acquire(`burst:${i}`, { replicas: 2, replicaTimeoutMs: 200 })),
      );
      for (const outcome of outcomes) expect(outcome).toMatchObject({ status: 'rejected', reason: expect.any(LockReplicationError) });
      // One WAIT for the first, one shared by the nine whose scripts ran while it was in flight.
      expect((await waitCalls()) - before).toBeLessThanOrEqual(3);
      for (let i = 0; i < 10; i++) expect(await onMaster.exists(locks.lockKey(`burst:${i}`))).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('@WithLock({ replicas }): 201 when acknowledged, 503 with a JSON body when too few replicas acknowledge', async () => {
    const app = await lockApp({ url: master.url }, [PaymentsController]);
    try {
      await app.listen(0, '127.0.0.1');
      const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
      const paid = await fetch(`${base}/payments/1`, { method: 'POST' });
      expect(paid.status).toBe(201);
      expect(await paid.text()).toBe('paid');
      const refused = await fetch(`${base}/refunds/1`, { method: 'POST' });
      expect(refused.status).toBe(503);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await refused.json()).toMatchObject({ statusCode: 503 });
      expect(await onMaster.exists(app.get(LockService).lockKey('refund:1'))).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('validates replicas and replicaTimeoutMs before any Redis call; semaphores do not take them', async () => {
    const app = await lockApp({ url: master.url });
    try {
      const locks = app.get(LockService);
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ replicas: -1 }, 'option "replicas" must be an integer between 0 and 64, got -1'],
        [{ replicas: 1.5 }, 'option "replicas" must be an integer between 0 and 64, got 1.5'],
        [{ replicas: 65 }, 'option "replicas" must be an integer between 0 and 64, got 65'],
        [{ replicaTimeoutMs: 100 }, 'option "replicaTimeoutMs" needs option "replicas" (1 or more), got none'],
        [{ replicas: 0, replicaTimeoutMs: 100 }, 'option "replicaTimeoutMs" needs option "replicas" (1 or more), got 0'],
      ];
      for (const [options, text] of cases) {
        const err = (await locks.acquire('v', options).catch((e: unknown) => e)) as LockInputError;
        expect(err).toBeInstanceOf(LockInputError);
        expect(err.message).toBe(`nest-redis-lua: LockService.acquire: ${text}`);
      }
      await expect(locks.acquire('v', { replicas: 1, replicaTimeoutMs: 0 })).rejects.toThrow(/option "replicaTimeoutMs" must be/);
      // replicas: 0 is no check at all.
      await (await locks.acquire('v', { replicas: 0 })).release();
      await expect(app.get(SemaphoreService).acquire('s', { permits: 2, replicas: 1 } as unknown as { permits: number })).rejects.toThrow(
        /unknown option "replicas"/,
      );
    } finally {
      await app.close();
    }
  });
});

describe('replica-acknowledged locks [cluster, 3 masters + 3 replicas]', () => {
  let cluster: RedisClusterHarness;
  let app: INestApplication;
  let client: Cluster;
  const replicas: Redis[] = [];

  beforeAll(async () => {
    cluster = await RedisClusterHarness.start({ masters: 3, replicasPerMaster: 1 });
    app = await lockApp({ cluster: { nodes: cluster.nodes } });
    client = new Cluster(cluster.nodes);
    const masterPorts = new Set(cluster.masters().map((m) => m.port));
    for (const server of cluster.servers.filter((s) => !masterPorts.has(s.port))) {
      const replica = new Redis({ host: server.host, port: server.port });
      await replica.readonly();
      replicas.push(replica);
    }
  }, 90_000);
  afterAll(async () => {
    await app?.close();
    await Promise.all([client?.quit(), ...replicas.map((r) => r.quit())]);
    await cluster?.destroy();
  });

  /** The values of `key` on the replicas that serve its slot (a replica of another master answers MOVED). */
  async function onReplicas(key: string): Promise<Array<string | null>> {
    const values = await Promise.all(
      replicas.map((r) =>
        r.get(key).then(
          (v) => [v],
          () => [],
        ),
      ),
    );
    return values.flat();
  }

  it("{ replicas: 1 } acquires on every master: the replica of the key's master has it when acquire resolves", async () => {
    const locks = app.get(LockService);
    const resources = Array.from({ length: 12 }, (_, i) => `acct:${i}`);
    const slots = new Set(resources.map((r) => new Command('get', [locks.lockKey(r)]).getSlot()));
    expect(slots.size).toBeGreaterThan(1);
    const taken = await Promise.all(resources.map((r) => locks.acquire(r, { replicas: 1 })));
    for (const [i, lock] of taken.entries()) expect(await onReplicas(locks.lockKey(resources[i]))).toEqual([lock.token]);
    const all = await locks.acquireAll(['x:1', 'x:2', 'x:3'], { replicas: 1, mode: 'read' });
    expect(all.held).toBe(true);
    await Promise.all([...taken.map((l) => l.release()), all.release()]);
  });

  it('{ replicas: 2 } rejects with LockReplicationError within replicaTimeoutMs and leaves no lock key', async () => {
    const locks = app.get(LockService);
    const figures: number[] = [];
    for (let i = 0; i < 3; i++) {
      const resource = `order:${i}`;
      figures.push(await expectShortage(locks, resource, 300, 1));
      expect(await client.exists(locks.lockKey(resource))).toBe(0);
      expect(await client.exists(`${locks.lockKey(resource)}:waiters`)).toBe(0);
    }
    recordScenario({
      scenario: 'lock replicas: 2 with 1 replica',
      topology: 'cluster 3+3',
      operations: figures.length,
      failures: 0,
      unhandledRejections: 0,
      maxLatencyMs: Math.round(Math.max(...figures)),
      note: `replicaTimeoutMs 300; ${figures.map((f) => Math.round(f)).join(', ')} ms`,
    });
  });
});
