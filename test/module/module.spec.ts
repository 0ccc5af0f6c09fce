import { Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { Cluster, Redis } from 'ioredis';
import { InjectRedis, KeyBuilder, REDIS_LUA_KEYS, RateLimiterService, RedisLuaModule, type RedisLuaModuleOptions } from 'nest-redis-lua';
import { bootError } from '../harness/boot';
import { harnessAddresses } from '../harness/harness-env';
import { describeTopologies } from '../harness/topologies';

@Injectable()
class UsesRedis {
  constructor(@InjectRedis() readonly redis: Redis | Cluster) {}
}

describeTopologies('RedisLuaModule connection', (t) => {
  it('boots from connection options and injects the client with @InjectRedis', async () => {
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() })], {
      providers: [UsesRedis],
    });
    const { redis } = app.get(UsesRedis);
    expect(redis.isCluster).toBe(t.topology === 'cluster');
    expect(await redis.ping()).toBe('PONG');
  });

  it('uses an existing client and leaves it open on shutdown', async () => {
    const client = t.client();
    const app = await t.app([RedisLuaModule.forRoot({ client, keyPrefix: t.prefix() })], { providers: [UsesRedis] });
    expect(app.get(UsesRedis).redis).toBe(client);
    await app.close();
    expect(await client.ping()).toBe('PONG');
  });

  it("applies an existing client's ioredis keyPrefix to script calls, as the client does to its own commands", async () => {
    const prefix = t.prefix();
    const addresses = harnessAddresses();
    const ioPrefix = `${prefix}-io:`;
    const client = t.topology === 'standalone' ? new Redis({ ...addresses.standalone, keyPrefix: ioPrefix }) : new Cluster(addresses.cluster, { keyPrefix: ioPrefix });
    try {
      const app = await t.app([RedisLuaModule.forRoot({ client, keyPrefix: prefix })]);
      const rule = { limit: 5, windowMs: 60_000, algorithm: 'fixed-window' as const };
      await app.get(RateLimiterService).consume('user', rule);
      const key = `${prefix}:rl:{user}:f:60000:5`;
      expect(await client.get(key)).toBe('1');
      expect(await t.client().get(`${ioPrefix}${key}`)).toBe('1');
      await app.close();
    } finally {
      client.disconnect();
    }
  });

  it('boots with forRootAsync + ConfigService', async () => {
    const connection = t.connection();
    const app = await t.app(
      [
        ConfigModule.forRoot({
          ignoreEnvFile: true,
          load: [() => ({ REDIS_URL: connection.url, REDIS_CLUSTER: connection.cluster?.nodes })],
        }),
        RedisLuaModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService): RedisLuaModuleOptions => {
            const nodes = config.get<NonNullable<RedisLuaModuleOptions['cluster']>['nodes']>('REDIS_CLUSTER');
            return nodes ? { cluster: { nodes }, keyPrefix: 'cfg' } : { url: config.get('REDIS_URL'), keyPrefix: 'cfg' };
          },
        }),
      ],
      { providers: [UsesRedis] },
    );
    expect(await app.get(UsesRedis).redis.ping()).toBe('PONG');
    expect(app.get<KeyBuilder>(REDIS_LUA_KEYS).prefix).toBe('cfg');
  });
});

describe('RedisLuaModule.forRootAsync with useClass', () => {
  const { standalone } = harnessAddresses();

  @Injectable()
  class RedisLuaConfig {
    create(): RedisLuaModuleOptions {
      return { url: `redis://${standalone.host}:${standalone.port}`, keyPrefix: 'from-class' };
    }
  }

  it('builds the options with a factory class', async () => {
    @Module({ imports: [RedisLuaModule.forRootAsync({ useClass: RedisLuaConfig })], providers: [UsesRedis] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      expect(app.get<KeyBuilder>(REDIS_LUA_KEYS).prefix).toBe('from-class');
      expect(await app.get(UsesRedis).redis.ping()).toBe('PONG');
    } finally {
      await app.close();
    }
  });
});

describe('RedisLuaModule options', () => {
  const { standalone } = harnessAddresses();

  it('boots from ioredis RedisOptions', async () => {
    expect(await bootError({ redis: { host: standalone.host, port: standalone.port } })).toBeUndefined();
  });

  it('fails at boot when two connection kinds are given', async () => {
    const err = await bootError({ url: `redis://${standalone.host}:${standalone.port}`, redis: { port: standalone.port } });
    expect(err?.message).toMatch(/give exactly one connection option, got "url" and "redis"/);
  });

  it('rejects a URL that is not redis:// or rediss://, hiding the password', async () => {
    const err = await bootError({ url: 'http://user:secret@127.0.0.1:1' });
    expect(err?.message).toContain('option "url" must start with redis:// or rediss://');
    expect(err?.message).not.toContain('secret');
  });

  it.each([['a{b'], [''], ['with space']])('rejects keyPrefix %j', async (keyPrefix) => {
    const err = await bootError({ url: `redis://${standalone.host}:${standalone.port}`, keyPrefix });
    expect(err?.message).toContain('option "keyPrefix"');
  });

  it('fails at boot with a clear message when Redis is unreachable, and does not hang', async () => {
    const started = Date.now();
    const err = await bootError({ url: 'redis://127.0.0.1:1', bootTimeoutMs: 500 });
    expect(err?.message).toMatch(/cannot load Lua scripts into Redis at redis:\/\/127\.0\.0\.1:1/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('boots without Redis when lazyConnect is set', async () => {
    expect(await bootError({ url: 'redis://127.0.0.1:1', lazyConnect: true })).toBeUndefined();
  });

  it('uses "nrl" as the default key prefix', async () => {
    @Module({ imports: [RedisLuaModule.forRoot({ url: `redis://${standalone.host}:${standalone.port}` })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    expect(app.get<KeyBuilder>(REDIS_LUA_KEYS).key('x', ['id'])).toBe('nrl:x:{id}');
    await app.close();
  });
});
