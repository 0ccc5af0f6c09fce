import { Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { Cluster, Redis } from 'ioredis';
import {
  RedisLuaInputError,
  InjectRedis,
  KeyBuilder,
  LuaScriptEngine,
  REDIS_LUA_KEYS,
  RateLimiterService,
  RedisLuaModule,
  type RedisLuaModuleOptions,
} from 'nest-redis-lua';
import { validateConnectionOptions } from '../../lib/module/redis-connection';
import { bootError } from '../harness/boot';
import { harnessAddresses } from '../harness/harness-env';
import { describeTopologies } from '../harness/topologies';
import { boundFor, timeCall } from '../harness/timing';

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
    const client =
      t.topology === 'standalone'
        ? new Redis({ ...addresses.standalone, keyPrefix: ioPrefix })
        : new Cluster(addresses.cluster, { keyPrefix: ioPrefix });
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

  // Typically an unset environment variable: boot fails naming the option, never falls back to localhost.
  it.each<[string, RedisLuaModuleOptions, RegExp]>([
    [
      'url: undefined',
      { url: undefined },
      /option "url" is undefined \(an unset environment variable\?\): give a value, or leave the option out/,
    ],
    ["url: ''", { url: '' }, /option "url" is an empty string/],
    ['redis: undefined', { redis: undefined }, /option "redis" is undefined/],
    ['cluster: null', { cluster: null as unknown as RedisLuaModuleOptions['cluster'] }, /option "cluster" is null/],
    ['client: undefined', { client: undefined }, /option "client" is undefined/],
    ['a URL without a host', { url: 'redis:///2' }, /option "url" names no host: "redis:\/\/\/2"/],
    ['a URL that does not parse', { url: 'redis://:secret@:6380' }, /option "url" is not a valid URL: "redis:\/\/\*\*\*@:6380"/],
    ['redis.host undefined', { redis: { host: undefined, port: 6380 } }, /option "redis.host" is undefined/],
    [
      'redis.port NaN',
      { redis: { host: '127.0.0.1', port: Number('x') } },
      /option "redis.port" must be a port number \(1-65535\), got null/,
    ],
    ['redis.path empty', { redis: { path: '' } }, /option "redis.path" is an empty string/],
    [
      'a cluster node without host',
      { cluster: { nodes: [{ host: undefined, port: 7000 }] } },
      /option "cluster.nodes\[0\].host" is undefined/,
    ],
    [
      'a cluster node "host:"',
      { cluster: { nodes: ['127.0.0.1:7000', 'redis-b:'] } },
      /option "cluster.nodes\[1\]" must name a node \(a redis:\/\/ URL, "host:port", a port or \{ host, port \}\), got "redis-b:"/,
    ],
  ])('fails at boot on %s, naming the option', async (_, options, message) => {
    const err = await bootError(options);
    expect(err?.message).toMatch(message);
    expect(err?.message).not.toContain('secret');
    // The library's one input error, with the option at fault as its field.
    expect(err).toBeInstanceOf(RedisLuaInputError);
    expect(err?.message).toContain(`option "${(err as RedisLuaInputError).field}"`);
  });

  it('accepts every cluster node form ioredis parses (a port, a host, host:port, IPv6, a URL)', () => {
    const nodes = [
      '7000',
      'redis-node-1',
      '127.0.0.1:7000',
      '[::1]:7000',
      'redis://:pw@127.0.0.1:7001',
      7002,
      { host: '127.0.0.1', port: 7003 },
    ];
    expect(() => validateConnectionOptions({ cluster: { nodes } })).not.toThrow();
  });

  it('logs one line at boot: where, which topology, the server version and how many scripts were loaded', async () => {
    const lines: string[] = [];
    const logger = {
      log: (m: string) => lines.push(m),
      error: () => undefined,
      warn: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    };
    @Module({ imports: [RedisLuaModule.forRoot({ url: `redis://:pw@${standalone.host}:${standalone.port}` })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger });
    const scripts = app.get(LuaScriptEngine).scripts.length;
    await app.close();
    const probe = new Redis(standalone);
    const version = /redis_version:(\S+)/.exec(await probe.info('server'))![1];
    probe.disconnect();
    expect(lines.filter((l) => l.startsWith('Connected to'))).toEqual([
      `Connected to redis://***@${standalone.host}:${standalone.port} (standalone, Redis ${version}): ${scripts} Lua scripts loaded`,
    ]);
  });

  it.each([['a{b'], [''], ['with space']])('rejects keyPrefix %j', async (keyPrefix) => {
    const err = await bootError({ url: `redis://${standalone.host}:${standalone.port}`, keyPrefix });
    expect(err?.message).toContain('option "keyPrefix"');
  });

  it('fails at boot with a clear message when Redis is unreachable, and does not hang', async () => {
    const call = await timeCall(() => bootError({ url: 'redis://127.0.0.1:1', bootTimeoutMs: 500 }));
    expect(call.value?.message).toMatch(/cannot load Lua scripts into Redis at redis:\/\/127\.0\.0\.1:1/);
    expect(call.ms).toBeLessThan(boundFor(500, call.lateMs, 2_000));
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
