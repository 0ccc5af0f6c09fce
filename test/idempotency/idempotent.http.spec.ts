/**
 * @Idempotent() routes over 2 app instances (Express; one Fastify case): one run per key, replays
 * byte for byte with Idempotent-Replayed, 409 / 422 / 400, failures that run again, scopes, and
 * the boot check of handlers that write their own response; standalone and cluster.
 */
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { BadRequestException, Body, Controller, Headers, type INestApplication, Post, Res } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { CurrentIdempotency, Idempotent, RedisLuaModule, RedisLuaUnavailableError, type IdempotentExchange } from 'nest-redis-lua';
import { RedisServer } from '../harness/redis-server';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { deferred, waitFor } from '../lock/lock-test-utils';

jest.setTimeout(60_000);

/** What the manual handler uses of an Express response or a Fastify reply. */
interface RawReply {
  status?: (code: number) => unknown;
  code?: (code: number) => unknown;
  header(name: string, value: string): unknown;
  send(body: string): unknown;
}

class Hooks {
  exports = 0;
  charges = 0;
  refunds = 0;
  gate = deferred();
  entered = deferred();
}

function makeController(hooks: Hooks) {
  @Controller()
  class PaymentsController {
    @Post('payments')
    @Idempotent()
    async pay(@Body() body: { amount: number }): Promise<{ id: string; amount: number }> {
      hooks.charges += 1;
      hooks.entered.resolve();
      await hooks.gate.promise;
      return { id: `ch_${hooks.charges}`, amount: body.amount };
    }

    @Post('slow')
    @Idempotent({ waitMs: 30_000 })
    async slow(): Promise<string> {
      hooks.charges += 1;
      hooks.entered.resolve();
      await hooks.gate.promise;
      return 'slow done';
    }

    @Post('waited')
    @Idempotent({ waitMs: 30_000 })
    async waited(@Body() body: { amount: number }): Promise<string> {
      hooks.charges += 1;
      await new Promise((r) => setTimeout(r, 20));
      return `charged ${body.amount} (#${hooks.charges})`;
    }

    @Post('refunds')
    @Idempotent({ scope: (ctx) => ctx.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-tenant'] })
    refund(@Body() body: { amount?: number }, @Headers('x-tenant') tenant: string): { tenant: string; n: number } {
      hooks.refunds += 1;
      if (body.amount === undefined) throw new BadRequestException('amount is required');
      if (body.amount < 0) throw new Error('refund service down');
      return { tenant, n: hooks.refunds };
    }

    @Post('open')
    @Idempotent({ failMode: 'open' })
    open(): string {
      return 'ran without Redis';
    }

    /** The handler's own Redis failure is its error, not a failed claim: failMode 'open' does not run it twice. */
    @Post('own-failure')
    @Idempotent({ failMode: 'open' })
    ownFailure(): never {
      hooks.refunds += 1;
      throw new RedisLuaUnavailableError('nest-redis-lua: the handler could not reach its own Redis', 'unreachable');
    }

    /** Writes its own response (Express and Fastify alike) and records it for replays. */
    @Post('exports')
    @Idempotent({ manual: true })
    exports(@Res() res: RawReply, @CurrentIdempotency() idem: IdempotentExchange): void {
      hooks.exports += 1;
      const body = { file: `exports/${hooks.exports}.csv`, key: idem.key };
      (res.code ?? res.status)!.call(res, 202);
      res.header('content-type', 'application/json; charset=utf-8');
      res.send(JSON.stringify(body));
      idem.store({ status: 202, body, headers: { 'content-type': 'application/json; charset=utf-8' } });
    }

    @Post('optional')
    @Idempotent({ required: false })
    optional(): string {
      hooks.refunds += 1;
      return 'ran';
    }
  }
  return PaymentsController;
}

/** The in-process side of the kill -9 test: the child's route, answering at once or waiting for a run. */
function makeOrders(hooks: Hooks) {
  const byBody = (req: unknown): string => JSON.stringify((req as { body: unknown }).body);
  @Controller()
  class OrdersController {
    @Post('orders')
    @Idempotent({ leaseMs: 1_000, fingerprint: byBody })
    order(): { ranIn: string } {
      hooks.charges += 1;
      return { ranIn: 'test process' };
    }

    @Post('orders/waiting')
    @Idempotent({ leaseMs: 1_000, fingerprint: byBody, waitMs: 30_000 })
    orderWaiting(): { ranIn: string } {
      hooks.charges += 1;
      return { ranIn: 'test process' };
    }
  }
  return OrdersController;
}

async function twoApps(t: TopologyContext, hooks: Hooks): Promise<INestApplication[]> {
  const prefix = t.prefix();
  const start = async (): Promise<INestApplication> => {
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })], { controllers: [makeController(hooks)] });
    await app.listen(0, '127.0.0.1');
    return app;
  };
  return [await start(), await start()];
}

function url(app: INestApplication, path: string): string {
  return `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}${path}`;
}

function post(app: INestApplication, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url(app, path), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

describeTopologies('@Idempotent routes', (t) => {
  it('20 concurrent POSTs with one key over 2 instances: the handler runs once, the others get 409; a retry replays it byte for byte', async () => {
    const hooks = new Hooks();
    const apps = await twoApps(t, hooks);
    const key = { 'idempotency-key': 'pay-123' };
    const first = post(apps[0], '/payments', { amount: 5 }, key);
    await hooks.entered.promise;
    const others = await Promise.all(Array.from({ length: 19 }, (_, i) => post(apps[i % 2], '/payments', { amount: 5 }, key)));
    for (const res of others) {
      expect(res.status).toBe(409);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect(await others[0].json()).toEqual({
      statusCode: 409,
      error: 'Conflict',
      message: 'A request with this idempotency key is still being processed; retry later',
      retryAfter: Number(others[0].headers.get('retry-after')),
    });
    hooks.gate.resolve();
    const done = await first;
    expect(done.status).toBe(201);
    expect(done.headers.get('idempotent-replayed')).toBeNull();
    const original = await done.text();
    expect(JSON.parse(original)).toEqual({ id: 'ch_1', amount: 5 });

    const retry = await post(apps[1], '/payments', { amount: 5 }, key);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('content-type')).toBe(done.headers.get('content-type'));
    expect(await retry.text()).toBe(original);
    expect(hooks.charges).toBe(1);

    // Same key, another payload: 422. No key: 400.
    const other = await post(apps[0], '/payments', { amount: 6 }, key);
    expect(other.status).toBe(422);
    expect(await other.json()).toEqual({
      statusCode: 422,
      error: 'Unprocessable Entity',
      message: 'This idempotency key was used with a different request payload',
    });
    const missing = await post(apps[0], '/payments', { amount: 5 });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: 'This request needs an Idempotency-Key header',
    });
    expect(hooks.charges).toBe(1);
  });

  it('with waitMs, 20 concurrent POSTs over 2 instances all get the first answer', async () => {
    const hooks = new Hooks();
    const apps = await twoApps(t, hooks);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post(apps[i % 2], '/waited', { amount: 9 }, { 'idempotency-key': 'w-1' })),
    );
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 201));
    expect(new Set(await Promise.all(answers.map((r) => r.text())))).toEqual(new Set(['charged 9 (#1)']));
    expect(answers.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(19);
    expect(hooks.charges).toBe(1);
  });

  it('a waiting retry whose client goes away stops waiting (uncounted); the first request completes', async () => {
    const hooks = new Hooks();
    const prefix = t.prefix();
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })], { controllers: [makeController(hooks)] });
    await app.listen(0, '127.0.0.1');
    const redis = t.client();
    const record = `${prefix}:idem:{slow-1}`;
    const first = post(app, '/slow', {}, { 'idempotency-key': 'slow-1' });
    await hooks.entered.promise;
    const controller = new AbortController();
    const retry = fetch(url(app, '/slow'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'slow-1' },
      body: '{}',
      signal: controller.signal,
    }).catch((err: Error) => err);
    try {
      await waitFor(async () => (await redis.hget(record, 'w')) === '1', 'the retry counted as a waiter');
      controller.abort();
      expect(((await retry) as Error).name).toBe('AbortError');
      await waitFor(async () => (await redis.hget(record, 'w')) === null, 'the retry uncounted');
    } finally {
      hooks.gate.resolve();
    }
    const done = await first;
    expect(done.status).toBe(201);
    expect(await done.text()).toBe('slow done');
    expect(hooks.charges).toBe(1);
  });

  it('a thrown 4xx is stored and replayed, a 500 is not (the retry runs again); scopes keep tenants apart; required: false', async () => {
    const hooks = new Hooks();
    const [a, b] = await twoApps(t, hooks);
    const headers = (tenant: string, key: string): Record<string, string> => ({ 'idempotency-key': key, 'x-tenant': tenant });

    const bad = await post(a, '/refunds', {}, headers('acme', 'r-1'));
    expect(bad.status).toBe(400);
    const badBody = await bad.text();
    const badAgain = await post(b, '/refunds', {}, headers('acme', 'r-1'));
    expect(badAgain.status).toBe(400);
    expect(badAgain.headers.get('idempotent-replayed')).toBe('true');
    expect(await badAgain.text()).toBe(badBody);
    expect(hooks.refunds).toBe(1);

    expect((await post(a, '/refunds', { amount: -1 }, headers('acme', 'r-2'))).status).toBe(500);
    expect((await post(b, '/refunds', { amount: -1 }, headers('acme', 'r-2'))).status).toBe(500);
    expect(hooks.refunds).toBe(3);

    const acme = await post(a, '/refunds', { amount: 1 }, headers('acme', 'r-3'));
    const globex = await post(b, '/refunds', { amount: 1 }, headers('globex', 'r-3'));
    expect(await acme.json()).toEqual({ tenant: 'acme', n: 4 });
    expect(await globex.json()).toEqual({ tenant: 'globex', n: 5 });

    const own = await post(a, '/own-failure', {}, { 'idempotency-key': 'own-1' });
    expect(own.status).toBe(500);
    expect(hooks.refunds).toBe(6);

    expect(await (await post(a, '/optional', {})).text()).toBe('ran');
    expect(await (await post(a, '/optional', {}, { 'idempotency-key': 'o-1' })).text()).toBe('ran');
    const replayed = await post(b, '/optional', {}, { 'idempotency-key': 'o-1' });
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(hooks.refunds).toBe(8);

    // manual: the handler writes its own 202; the retry is sent by the interceptor, the handler not run.
    const exported = await post(a, '/exports', {}, { 'idempotency-key': 'e-1' });
    const reexported = await post(b, '/exports', {}, { 'idempotency-key': 'e-1' });
    expect([exported.status, reexported.status]).toEqual([202, 202]);
    expect(reexported.headers.get('idempotent-replayed')).toBe('true');
    expect(reexported.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await reexported.json()).toEqual(await exported.json());
    expect(hooks.exports).toBe(1);
  });

  it('works on Fastify: a retry replays status and body with Idempotent-Replayed', async () => {
    const hooks = new Hooks();
    hooks.gate.resolve();
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() })],
      controllers: [makeController(hooks)],
    }).compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    try {
      await app.init();
      await app.getHttpAdapter().getInstance().ready();
      await app.listen(0, '127.0.0.1');
      const first = await post(app, '/payments', { amount: 3 }, { 'idempotency-key': 'f-1' });
      const retry = await post(app, '/payments', { amount: 3 }, { 'idempotency-key': 'f-1' });
      expect([first.status, retry.status]).toEqual([201, 201]);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(await retry.text()).toBe(await first.text());
      expect(hooks.charges).toBe(1);
      const exported = await post(app, '/exports', {}, { 'idempotency-key': 'fe-1' });
      const reexported = await post(app, '/exports', {}, { 'idempotency-key': 'fe-1' });
      expect([exported.status, reexported.status]).toEqual([202, 202]);
      expect(reexported.headers.get('idempotent-replayed')).toBe('true');
      expect(await reexported.json()).toEqual(await exported.json());
      expect(hooks.exports).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('kill -9 the instance running the first request: a retry after its lease runs the handler', async () => {
    const hooks = new Hooks();
    hooks.gate.resolve();
    const prefix = t.prefix();
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })], {
      controllers: [makeOrders(hooks)],
    });
    await app.listen(0, '127.0.0.1');
    const child = spawn(
      process.execPath,
      ['-r', '@swc-node/register', join(__dirname, 'fixtures', 'http-runner.ts'), JSON.stringify(t.connection()), prefix],
      { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    let out = '';
    const printed = (pattern: RegExp): Promise<RegExpMatchArray> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(out);
          if (match) resolve(match);
        };
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          check();
        });
        child.once('exit', () => reject(new Error(`the child app exited: ${out}`)));
        check();
      });
    try {
      const port = Number((await printed(/port (\d+)/))[1]);
      const body = JSON.stringify({ sku: 'x' });
      const init = { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'o-9' }, body };
      void fetch(`http://127.0.0.1:${port}/orders`, init).catch(() => undefined);
      await printed(/entered/);
      // Running in the child: the other instance answers 409.
      expect((await fetch(url(app, '/orders'), init)).status).toBe(409);
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      // The dead instance's claim expires after its 1 s lease; a retry waiting for it then runs.
      const retry = await fetch(url(app, '/orders/waiting'), init);
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBeNull();
      expect(await retry.json()).toEqual({ ranIn: 'test process' });
      expect(hooks.charges).toBe(1);
      // And the answer is now the key's: replayed.
      const again = await fetch(url(app, '/orders'), init);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(hooks.charges).toBe(1);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('boot refuses a handler that writes its own response; options are checked at declaration', async () => {
    @Controller()
    class RawController {
      @Post('raw')
      @Idempotent()
      raw(@Res() res: { send(body: string): void }): void {
        res.send('raw');
      }
    }
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() })],
      controllers: [RawController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await expect(app.init()).rejects.toThrow(
      'nest-redis-lua: @Idempotent on RawController.raw: the handler writes its own response (@Res() without passthrough)',
    );
    await app.close();
    @Controller()
    class ManualReturning {
      @Post('manual')
      @Idempotent({ manual: true })
      manual(): string {
        return 'returned';
      }
    }
    const manualRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() })],
      controllers: [ManualReturning],
    }).compile();
    const manualApp = manualRef.createNestApplication({ logger: false });
    await expect(manualApp.init()).rejects.toThrow(
      'nest-redis-lua: @Idempotent on ManualReturning.manual: option "manual" is for a handler that writes its own response with @Res()',
    );
    await manualApp.close();
    expect(() => {
      class Bad {
        @Idempotent({ waitMs: -1 })
        m(): void {}
      }
      return Bad;
    }).toThrow('nest-redis-lua: @Idempotent on Bad.m: option "waitMs" must be an integer >= 0');
  });
});

describe('@Idempotent when Redis is unavailable', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server.destroy();
  });

  it('answers 503 with Retry-After and a JSON body, and does not run the handler', async () => {
    const hooks = new Hooks();
    hooks.gate.resolve();
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ url: server.url, keyPrefix: 'idem-down' })],
      controllers: [makeController(hooks)],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      await app.listen(0, '127.0.0.1');
      await server.stop();
      const res = await post(app, '/payments', { amount: 1 }, { 'idempotency-key': 'down-1' });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'Idempotency unavailable: Redis did not answer; retry later',
        retryAfter: 1,
      });
      expect(hooks.charges).toBe(0);
      // failMode 'open': the handler runs without the key's protection.
      const open = await post(app, '/open', { amount: 1 }, { 'idempotency-key': 'down-2' });
      expect(open.status).toBe(201);
      expect(await open.text()).toBe('ran without Redis');
      expect(open.headers.get('idempotent-replayed')).toBeNull();
    } finally {
      await app.close();
    }
  });
});
