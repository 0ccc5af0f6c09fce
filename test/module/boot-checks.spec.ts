/**
 * What boot refuses instead of doing nothing (issue 13): handlers a decorator cannot work on, option
 * keys nobody reads, and the optional boot report of what the module applies.
 */
import { Controller, Get, Logger, type MessageEvent, Module, Param, Post, SetMetadata, Sse, type Type } from '@nestjs/common';
import { of, type Observable } from 'rxjs';
import { NestFactory, RouterModule } from '@nestjs/core';
import { Injectable } from '@nestjs/common';
import {
  Idempotent,
  IdempotencyInputError,
  InjectScript,
  LockInputError,
  LockService,
  LuaScript,
  RateLimit,
  RateLimitInputError,
  RateLimiterService,
  RedisLuaModule,
  WithLock,
  WithSemaphore,
  type RedisLuaModuleOptions,
} from 'nest-redis-lua';
import { bootError } from '../harness/boot';
import { harnessAddresses } from '../harness/harness-env';

const { standalone } = harnessAddresses();
const url = `redis://${standalone.host}:${standalone.port}`;

/** Boots an application with these controllers / providers / imports and returns the boot error, if any. */
async function bootWith(parts: {
  controllers?: Type[];
  providers?: Type[];
  imports?: unknown[];
  options?: object;
}): Promise<Error | undefined> {
  @Module({
    imports: [RedisLuaModule.forRoot({ url, ...parts.options }), ...((parts.imports ?? []) as Type[])],
    controllers: parts.controllers ?? [],
    providers: parts.providers ?? [],
  })
  class AppModule {}
  try {
    const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
    await app.init();
    await app.close();
    return undefined;
  } catch (err) {
    return err as Error;
  }
}

/** `@MessagePattern` / `@Query` / `@SubscribeMessage` write these markers (the packages are not installed here). */
const MessagePattern = (pattern: string) => SetMetadata('microservices:pattern', [pattern]);
const GraphQLQuery = () => SetMetadata('graphql:resolver_type', 'Query');
const SubscribeMessage = (message: string) => SetMetadata('websockets:message_mapping', message);

describe('boot checks of every handler', () => {
  it('a @WithLock {params.x} that names no route parameter fails app.init(), naming the parameter and the handler', async () => {
    @Controller('orders')
    class OrdersController {
      @Get(':id/pay')
      @WithLock('order:{params.orderId}')
      pay(@Param('id') id: string): string {
        return id;
      }
    }
    const err = await bootWith({ controllers: [OrdersController] });
    expect(err).toBeInstanceOf(LockInputError);
    expect(err?.message).toBe(
      'nest-redis-lua: @WithLock on OrdersController.pay: placeholder {params.orderId} names no parameter of the route path "/orders/:id/pay" (its parameters: id)',
    );
  });

  it('@WithSemaphore and every resource of @WithLock([...]) are checked the same way', async () => {
    @Controller('jobs')
    class JobsController {
      @Post(':tenant/render')
      @WithSemaphore('gpu:{params.tenantId}', { permits: 2 })
      render(): string {
        return 'ok';
      }
    }
    expect((await bootWith({ controllers: [JobsController] }))?.message).toBe(
      'nest-redis-lua: @WithSemaphore on JobsController.render: placeholder {params.tenantId} names no parameter of the route path "/jobs/:tenant/render" (its parameters: tenant)',
    );
    @Controller('transfers')
    class TransfersController {
      @Post(':from')
      @WithLock(['account:{params.from}', 'account:{params.to}'])
      transfer(): string {
        return 'ok';
      }
    }
    expect((await bootWith({ controllers: [TransfersController] }))?.message).toMatch(
      /@WithLock on TransfersController\.transfer: placeholder \{params\.to\} names no parameter/,
    );
  });

  it('parameters of the controller path, a RouterModule path and every path of the handler count', async () => {
    @Controller('tenants/:tenant/orders')
    class TenantOrders {
      @Get([':id', ':id/again'])
      @WithLock('order:{params.tenant}:{params.id}:{params.region}')
      get(): string {
        return 'ok';
      }
    }
    @Module({ controllers: [TenantOrders] })
    class OrdersModule {}
    expect(
      await bootWith({ imports: [OrdersModule, RouterModule.register([{ path: 'regions/:region', module: OrdersModule }])] }),
    ).toBeUndefined();

    @Controller('orders')
    class SomePaths {
      @Get([':id', 'latest'])
      @WithLock('order:{params.id}')
      get(): string {
        return 'ok';
      }
    }
    expect((await bootWith({ controllers: [SomePaths] }))?.message).toMatch(
      /SomePaths\.get: placeholder \{params\.id\} names no parameter of the route path "\/orders\/latest" \(it has no parameters\)/,
    );
  });

  it('outside HTTP: @RateLimit needs a key function in message patterns, @WithLock a resource function (message patterns, resolvers, gateways)', async () => {
    @Controller()
    class Rpc {
      @MessagePattern('orders.create')
      @RateLimit({ limit: 5, windowMs: 1000 })
      create(): string {
        return 'ok';
      }
    }
    const rpc = await bootWith({ controllers: [Rpc] });
    expect(rpc).toBeInstanceOf(RateLimitInputError);
    expect(rpc?.message).toMatch(
      /@RateLimit on Rpc\.create: a microservice message handler has no client IP to limit by: give a "key" function/,
    );

    @Controller()
    class EarlyRpc {
      @MessagePattern('orders.early')
      @RateLimit({ limit: 5, windowMs: 1000, key: () => 'client', earlyDeny: true })
      create(): string {
        return 'ok';
      }
    }
    const early = await bootWith({ controllers: [EarlyRpc] });
    expect(early).toBeInstanceOf(RateLimitInputError);
    expect(early?.message).toMatch(
      /@RateLimit on EarlyRpc\.create: a microservice message handler does not pass RateLimitMiddleware: drop "earlyDeny"/,
    );

    @Controller()
    class CountingRpc {
      @MessagePattern('orders.counted')
      @RateLimit({ limit: 5, windowMs: 1000, key: () => 'client', countOnly: 'failed' })
      create(): string {
        return 'ok';
      }
    }
    const counting = await bootWith({ controllers: [CountingRpc] });
    expect(counting).toBeInstanceOf(RateLimitInputError);
    expect(counting?.message).toMatch(
      /@RateLimit on CountingRpc\.create: a microservice message handler has no response status to count by: drop "countOnly"/,
    );

    @Injectable()
    class OrdersResolver {
      @GraphQLQuery()
      @WithLock('order:{params.id}')
      order(): string {
        return 'ok';
      }
    }
    expect((await bootWith({ providers: [OrdersResolver] }))?.message).toMatch(
      /@WithLock on OrdersResolver\.order: placeholder \{params\.id\} reads the HTTP request, but this is a GraphQL resolver: give a function/,
    );

    @Injectable()
    class ChatGateway {
      @SubscribeMessage('say')
      @RateLimit({ limit: 5, windowMs: 1000 })
      say(): string {
        return 'ok';
      }

      @SubscribeMessage('keyed')
      @RateLimit({ limit: 5, windowMs: 1000, key: () => 'socket' })
      @WithLock(() => 'room', { waitMs: 0 })
      keyed(): string {
        return 'ok';
      }
    }
    // A gateway's @RateLimit limits by the client's address: no key function needed.
    expect(await bootWith({ providers: [ChatGateway] })).toBeUndefined();

    @Injectable()
    class KeyedGateway {
      @SubscribeMessage('keyed')
      @RateLimit({ limit: 5, windowMs: 1000, key: () => 'socket' })
      @WithLock(() => 'room', { waitMs: 0 })
      keyed(): string {
        return 'ok';
      }

      /** A helper, not a handler: a class-level decorator would not apply to it. */
      helper(): string {
        return 'ok';
      }
    }
    expect(await bootWith({ providers: [KeyedGateway] })).toBeUndefined();

    // @Idempotent replays HTTP answers: a message handler or an SSE stream fails boot, naming it.
    @Controller()
    class IdempotentRpc {
      @MessagePattern('payments.create')
      @Idempotent()
      create(): string {
        return 'ok';
      }
    }
    const idempotentRpc = await bootWith({ controllers: [IdempotentRpc] });
    expect(idempotentRpc).toBeInstanceOf(IdempotencyInputError);
    expect(idempotentRpc?.message).toBe(
      'nest-redis-lua: @Idempotent on IdempotentRpc.create: it answers HTTP requests with the Idempotency-Key header; this is a microservice message handler',
    );
    @Controller()
    class IdempotentStream {
      @Sse('events')
      @Idempotent()
      events(): Observable<MessageEvent> {
        return of({ data: 'x' } as MessageEvent);
      }
    }
    expect((await bootWith({ controllers: [IdempotentStream] }))?.message).toBe(
      'nest-redis-lua: @Idempotent on IdempotentStream.events: a server-sent events (@Sse) stream cannot be stored and replayed',
    );
  });
});

describe('unknown option keys fail, naming the key and the nearest known one', () => {
  it('module options, feature sections and their sub-objects', async () => {
    const boot = (options: object) => bootError({ url, ...options } as RedisLuaModuleOptions);
    expect((await boot({ ratelimit: { limit: 5 } }))?.message).toBe(
      'nest-redis-lua: unknown option "ratelimit" (did you mean "rateLimit"?)',
    );
    expect((await boot({ transport: 'tcp' }))?.message).toMatch(
      /^nest-redis-lua: unknown option "transport" \(known: url, redis, cluster, client, keyPrefix/,
    );
    expect((await boot({ keyprefix: 'x' }))?.message).toMatch(/unknown option "keyprefix" \(did you mean "keyPrefix"\?\)/);
    expect((await boot({ rateLimit: { windowMS: 1000 } }))?.message).toMatch(
      /unknown option "rateLimit\.windowMS" \(did you mean "rateLimit\.windowMs"\?\)/,
    );
    expect((await boot({ rateLimit: { headers: { legacyHeaders: true } } }))?.message).toMatch(
      /unknown option "rateLimit\.headers\.legacyHeaders"/,
    );
    expect((await boot({ rateLimit: { headers: { legacy: 'yes' } } }))?.message).toMatch(
      /option "rateLimit\.headers\.legacy" must be true or false/,
    );
    expect((await boot({ lock: { ttl: 5000 } }))?.message).toMatch(
      /forRoot\(\{ lock \}\): unknown option "ttl" \(did you mean "ttlMs"\?\)/,
    );
    expect((await boot({ rateLimit: { ipv6Subnet: 129 } }))?.message).toMatch(
      /option "rateLimit\.ipv6Subnet" must be an integer between 1 and 128/,
    );
    // isGlobal is forRoot's own extra, not an option of the connection.
    expect(await bootError({ url, isGlobal: true } as RedisLuaModuleOptions)).toBeUndefined();
  });

  it('decorator options, at decoration time', () => {
    const declare = (decorator: MethodDecorator): void => {
      class Orders {
        create(): void {}
      }
      decorator(Orders.prototype, 'create', Object.getOwnPropertyDescriptor(Orders.prototype, 'create')!);
    };
    expect(() => declare(RateLimit({ limit: 5, windowMs: 1000, keys: () => 'x' } as never))).toThrow(
      /@RateLimit on Orders\.create: unknown option "keys" \(did you mean "key"\?\)/,
    );
    expect(() => declare(RateLimit([{ limit: 5, window: 1000 } as never]))).toThrow(
      /unknown option "rules\[0\]\.window" \(did you mean "rules\[0\]\.windowMs"\?\)/,
    );
    expect(() => declare(WithLock('r', { waitMS: 0 } as never))).toThrow(
      /@WithLock on Orders\.create: unknown option "waitMS" \(did you mean "waitMs"\?\)/,
    );
  });

  it('service call options and script definitions', async () => {
    const app = await NestFactory.createApplicationContext(
      (() => {
        @Module({ imports: [RedisLuaModule.forRoot({ url, lazyConnect: true })] })
        class M {}
        return M;
      })(),
      { logger: false },
    );
    try {
      await expect(app.get(LockService).acquire('r', { wait: 10 } as never)).rejects.toThrow(/LockService\.acquire: unknown option "wait"/);
      await expect(app.get(LockService).tryAcquire('r', { waitMs: 10 } as never)).rejects.toThrow(/tryAcquire: unknown option "waitMs"/);
      await expect(app.get(LockService).acquire('r', { autoExtend: 'no' } as never)).rejects.toThrow(
        /option "autoExtend" must be true or false/,
      );
      await expect(
        app.get(RateLimiterService).consume('k', { limit: 1, windowMs: 1000, algoritm: 'fixed-window' } as never),
      ).rejects.toThrow(/unknown option "algoritm" \(did you mean "algorithm"\?\)/);
    } finally {
      await app.close();
    }
    @Module({
      imports: [RedisLuaModule.forRoot({ url }), RedisLuaModule.forFeature([{ name: 's', lua: 'return 1', numberofKeys: 1 } as never])],
    })
    class WithScript {}
    const err = await NestFactory.createApplicationContext(WithScript, { logger: false, abortOnError: false }).then(
      (app) => app.close().then(() => undefined),
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/forFeature script "s": unknown option "numberofKeys" \(did you mean "numberOfKeys"\?\)/);
  });
});

describe('boot report', () => {
  @Injectable()
  class UsesScript {
    constructor(@InjectScript('double') readonly script: LuaScript) {}
  }

  @Controller('r')
  class Reported {
    @Get(':id')
    @RateLimit([
      { limit: 10, windowMs: 1000, name: 'burst' },
      { limit: 100, windowMs: 60_000, algorithm: 'fixed-window' },
    ])
    @WithLock('item:{params.id}', { ttlMs: 2000 })
    get(): string {
      return 'ok';
    }
  }

  const bootLogged = async (options: object): Promise<string[]> => {
    const logged: string[] = [];
    const spy = jest.spyOn(Logger.prototype, 'log').mockImplementation(function (this: Logger, message: unknown) {
      if ((this as unknown as { context?: string }).context === 'RedisLua') logged.push(String(message));
    });
    try {
      expect(
        await bootWith({
          controllers: [Reported],
          providers: [UsesScript],
          imports: [RedisLuaModule.forFeature([{ name: 'double', lua: 'return 2 * ARGV[1]', numberOfKeys: 0 }])],
          options,
        }),
      ).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
    return logged;
  };

  it('report: true logs one table of limited and locked handlers and of the scripts; off by default', async () => {
    const [report, ...others] = (await bootLogged({ report: true })).filter((line) => line.startsWith('Boot report'));
    expect(others).toEqual([]);
    const lines = report.split('\n');
    expect(lines[1]).toMatch(/^feature +handler +route +applies$/);
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^rate limiting +Reported\.get +\/r\/:id +10 \/ 1000 ms sliding-log "burst" \+ 100 \/ 60000 ms fixed-window; key: client IP$/,
      ),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^locks +Reported\.get +\/r\/:id +resource "item:\{params\.id\}", ttl 2000 ms, wait 5000 ms$/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^script +double +[0-9a-f]{12} +0 keys$/));
    expect(lines).toContainEqual(expect.stringMatching(/^script +rate-limit\/sliding-log +[0-9a-f]{12} /));
    expect((await bootLogged({})).filter((line) => line.startsWith('Boot report'))).toEqual([]);
  });
});
