/**
 * Functions mode (`forRoot({ scripts: 'functions' })`) on private servers, every feature under load:
 * SCRIPT FLUSH costs nothing (no EVAL at all), a restart with `appendonly yes` needs no reload, and
 * FUNCTION FLUSH is healed by one FUNCTION LOAD per server with no failed call and no call run twice.
 * Also: script errors keep their `.lua` file and line, the library of another version stays, and the
 * mode's options are checked at boot. (The whole feature suite runs in this mode in test/compat's
 * functions sets; the failover under load is in test/cluster/failover.spec.ts.)
 */
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  BoundedCounterService,
  InjectScript,
  LeaderboardService,
  LuaScriptEngine,
  LuaScriptError,
  RateLimiterService,
  REDIS_LUA_KEYS,
  RedisLuaModule,
  type KeyBuilder,
  type LuaScript,
  type RedisLuaModuleOptions,
} from 'nest-redis-lua';
import { commandCalls } from '../harness/commandstats';
import { RedisClusterHarness, RedisServer } from '../harness/redis-server';
import { featureApp, featureOps, newTally, type FeatureTally } from '../reliability/fixtures/features';
import { recordAll, underLoad } from '../reliability/fixtures/scenario';

jest.setTimeout(90_000);

/** Every server's `INFO commandstats`. */
const statsOf = (servers: readonly RedisServer[]): string[] => servers.filter((s) => s.running).map((s) => s.cli('info', 'commandstats'));

/** What the load stored must be what it was told: no call ran twice, none is missing. */
async function expectExact(app: INestApplication, tally: FeatureTally, keys: number): Promise<void> {
  const limiter = app.get(RateLimiterService);
  const rule = { limit: 1_000_000, windowMs: 600_000 };
  let stored = 0;
  for (let k = 0; k < keys; k++) stored += rule.limit - (await limiter.peek(`rl-${k}`, rule)).remaining;
  expect(stored).toBe(tally.rateAllowed);
  const counters = app.get(BoundedCounterService);
  let counted = 0;
  for (let k = 0; k < keys; k++) counted += await counters.get(`ctr-${k}`);
  expect(counted).toBe(tally.counterApplied);
  const engine = app.get(LuaScriptEngine);
  const keyBuilder = app.get<KeyBuilder>(REDIS_LUA_KEYS);
  let bumped = 0;
  for (let k = 0; k < keys; k++) bumped += Number((await engine.client.get(keyBuilder.key('user', [`bump-${k}`]))) ?? 0);
  expect(bumped).toBe(tally.scriptRuns);
}

describe.each(['standalone', 'cluster'] as const)('functions mode under faults [%s]', (topology) => {
  let servers: RedisServer[];
  let cluster: RedisClusterHarness | undefined;
  let app: INestApplication;
  let options: RedisLuaModuleOptions;

  beforeAll(async () => {
    if (topology === 'cluster') {
      cluster = await RedisClusterHarness.start({ masters: 3 });
      servers = cluster.servers;
      options = { cluster: { nodes: cluster.nodes }, scripts: 'functions' };
    } else {
      servers = [await RedisServer.start()];
      options = { url: servers[0].url, scripts: 'functions' };
    }
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
    if (!cluster) await Promise.all(servers.map((s) => s.destroy()));
  });
  beforeEach(async () => {
    app = await featureApp({ ...options, keyPrefix: `fn${Math.random().toString(36).slice(2, 8)}` });
    for (const server of servers) server.cli('config', 'resetstat');
  });
  afterEach(() => app?.close());

  it('SCRIPT FLUSH mid-load: no call fails, no EVAL or EVALSHA at all, nothing loaded again', async () => {
    const tally = newTally();
    const results = await underLoad(featureOps(app, tally, { keys: 4 }), async (progress) => {
      await progress.successes(20);
      for (const server of servers) server.cli('script', 'flush');
      await progress.successes(40);
    });
    for (const [, r] of results) expect({ failures: r.failures, unhandled: r.unhandledRejections }).toEqual({ failures: 0, unhandled: 0 });
    const stats = statsOf(servers);
    expect(commandCalls(stats, 'eval') + commandCalls(stats, 'evalsha') + commandCalls(stats, 'eval_ro')).toBe(0);
    expect(commandCalls(stats, 'function|load')).toBe(0);
    expect(commandCalls(stats, 'fcall')).toBeGreaterThan(0);
    await expectExact(app, tally, 4);
    recordAll('functions: SCRIPT FLUSH', topology, results);
  });

  it('FUNCTION FLUSH mid-load: loaded again once per server, transparently; no call fails or runs twice', async () => {
    const tally = newTally();
    const results = await underLoad(featureOps(app, tally, { keys: 4 }), async (progress) => {
      await progress.successes(20);
      for (const server of servers) server.cli('function', 'flush');
      await progress.successes(40);
    });
    for (const [, r] of results) expect({ failures: r.failures, unhandled: r.unhandledRejections }).toEqual({ failures: 0, unhandled: 0 });
    const engine = app.get(LuaScriptEngine);
    // One check at a time, the next one for calls that failed meanwhile: each server loaded once.
    expect(engine.functions!.loads).toBe(servers.length);
    expect(commandCalls(statsOf(servers), 'function|load')).toBe(servers.length);
    expect(commandCalls(statsOf(servers), 'eval')).toBe(0);
    await expectExact(app, tally, 4);
    recordAll('functions: FUNCTION FLUSH', topology, results, (f) =>
      f === 'rate limit' ? `${engine.functions!.loads} FUNCTION LOADs` : '',
    );
  });
});

describe('functions mode: restart with appendonly yes', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start({ args: ['--appendonly', 'yes'] });
  });
  afterAll(() => server.destroy());

  it('the library comes back from the AOF: the first calls after the restart need no reload', async () => {
    const app = await featureApp({ url: server.url, keyPrefix: 'aof', scripts: 'functions' });
    try {
      const limiter = app.get(RateLimiterService);
      const rule = { limit: 10, windowMs: 600_000 };
      expect((await limiter.consume('a', rule)).remaining).toBe(9);
      const engine = app.get(LuaScriptEngine);
      const ready = new Promise<void>((resolve) => engine.client.once('ready', () => resolve()));
      await server.stop('SIGTERM'); // a clean shutdown: the AOF is complete
      await server.restart();
      await ready;
      // The hit of before the restart is in the AOF too.
      expect((await limiter.consume('a', rule)).remaining).toBe(8);
      expect(engine.functions!.loads).toBe(0);
      const stats = statsOf([server]);
      expect(commandCalls(stats, 'function|load')).toBe(0);
      expect(commandCalls(stats, 'fcall')).toBe(1);
    } finally {
      await app.close();
    }
  });
});

const ERRORING = { name: 'functions-erroring', path: join(__dirname, '..', 'fixtures', 'erroring.lua'), numberOfKeys: 1 };

class Erroring {
  constructor(@InjectScript(ERRORING.name) readonly script: LuaScript<number>) {}
}

describe('functions mode: errors, libraries and options', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(() => server.destroy());

  /** An app with `options` and the erroring script; `logger: true` logs through Nest's Logger. */
  const bootApp = async (options: RedisLuaModuleOptions, logger = false): Promise<INestApplication> => {
    @Module({ imports: [RedisLuaModule.forRoot(options), RedisLuaModule.forFeature([ERRORING])], providers: [Erroring] })
    class AppModule {}
    const app = await NestFactory.create(AppModule, { abortOnError: false, ...(logger ? {} : { logger: false }) });
    await app.init();
    return app;
  };
  /** The message boot fails with, or undefined when it succeeds. */
  const bootError = (options: object): Promise<string | undefined> =>
    bootApp(options as RedisLuaModuleOptions).then(
      (app) => app.close().then(() => undefined),
      (err: Error) => err.message,
    );

  it.each(['eval', 'functions'] as const)(
    'scripts: %s: a script error names the .lua file and line it came from (includes mapped), with code ERR',
    async (scripts) => {
      const app = await bootApp({ url: server.url, keyPrefix: `err-${scripts}`, scripts });
      try {
        const { script } = app.get(Erroring);
        const raised = (await script.run(['k'], ['raise']).catch((e: unknown) => e)) as LuaScriptError;
        expect(raised).toBeInstanceOf(LuaScriptError);
        expect(raised.location).toEqual({ file: join(__dirname, '..', 'fixtures', 'includes', 'to-int.lua'), line: 5 });
        expect(raised.redisMessage).toMatch(/^ERR .*not an integer: raise/);
        const replied = (await script.run(['k'], ['reply']).catch((e: unknown) => e)) as LuaScriptError;
        expect(replied).toBeInstanceOf(LuaScriptError);
        expect(replied.redisMessage).toBe('ERR erroring: asked to');
        // A failing redis.call keeps its own code.
        server.cli('set', 'k', 'text');
        const wrongType = (await script.run(['k'], ['incr']).catch((e: unknown) => e)) as LuaScriptError;
        expect(wrongType.redisMessage).toMatch(/^ERR value is not an integer/);
        expect(await script.run([`n-${scripts}`], ['incr'])).toBe(1);
      } finally {
        await app.close();
      }
    },
  );

  it('another version of the library stays for the instances that run it, and boot names it', async () => {
    const old = '#!lua name=nrl_0_0_1_0123456789\nredis.register_function("nrl_0_0_1_0123456789__0_x", function() return 1 end)';
    server.cli('function', 'load', 'replace', old);
    const logged: string[] = [];
    const spy = jest.spyOn(Logger.prototype, 'log').mockImplementation(function (this: Logger, message: unknown) {
      if ((this as unknown as { context?: string }).context === 'RedisLua') logged.push(String(message));
    });
    let app: INestApplication;
    try {
      app = await bootApp({ url: server.url, keyPrefix: 'lib', scripts: 'functions' }, true);
    } finally {
      spy.mockRestore();
    }
    try {
      const name = app.get(LuaScriptEngine).functions!.current().name;
      expect(name).toMatch(/^nrl_0_1_0_[0-9a-f]{10}$/);
      expect(logged).toEqual(
        expect.arrayContaining([
          expect.stringMatching(new RegExp(`Lua scripts loaded as Redis Functions library ${name}$`)),
          expect.stringMatching(
            /other nest-redis-lua versions or apps are loaded too \(.*nrl_0_0_1_0123456789.*\).*safe to remove with FUNCTION DELETE/,
          ),
        ]),
      );
      expect(server.cli('fcall', 'nrl_0_0_1_0123456789__0_x', '0')).toBe('1');
      // The same scripts give the same library: a second instance loads nothing.
      server.cli('config', 'resetstat');
      const second = await bootApp({ url: server.url, keyPrefix: 'lib', scripts: 'functions' });
      expect(second.get(LuaScriptEngine).functions!.current().name).toBe(name);
      await second.close();
      expect(commandCalls(statsOf([server]), 'function|load')).toBe(0);
    } finally {
      await app.close();
      server.cli('function', 'delete', 'nrl_0_0_1_0123456789');
    }
  });

  it('with lazyConnect the library loads on the first call (one FUNCTION LOAD), which succeeds', async () => {
    server.cli('function', 'flush');
    server.cli('config', 'resetstat');
    const app = await bootApp({ url: server.url, keyPrefix: 'lazy', scripts: 'functions', lazyConnect: true });
    try {
      const { script } = app.get(Erroring);
      const all = await Promise.all(Array.from({ length: 20 }, () => script.run(['lazy-n'], ['incr'])));
      expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(commandCalls(statsOf([server]), 'function|load')).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('a server that refuses the FUNCTION commands (an ACL) fails boot, saying what the mode needs', async () => {
    server.cli('acl', 'setuser', 'nofunctions', 'on', '>pw', '~*', '&*', '+@all', '-function');
    const err = await bootError({ url: `redis://nofunctions:pw@${server.host}:${server.port}`, scripts: 'functions' });
    expect(err).toMatch(/^nest-redis-lua: cannot load Lua scripts into Redis at .*: NOPERM .*function/);
    expect(err).toContain(`Option "scripts": 'functions' needs Redis 7 or later and the FUNCTION LIST and FUNCTION LOAD commands.`);
    server.cli('acl', 'deluser', 'nofunctions');
  });

  it('checks the options at boot, naming them', async () => {
    expect(await bootError({ url: server.url, scripts: 'function' })).toBe(
      'nest-redis-lua: option "scripts" must be one of eval, functions, got "function"',
    );
    expect(await bootError({ url: server.url, readFrom: 'slave' })).toBe(
      'nest-redis-lua: option "readFrom" must be one of master, replica, got "slave"',
    );
    expect(await bootError({ url: server.url, readFrom: 'replica' })).toBe(
      `nest-redis-lua: option "readFrom": 'replica' sends read-only calls to the replicas of a Redis Cluster the module connects to itself: give option "cluster", got "url"`,
    );
    expect(
      await bootError({ cluster: { nodes: [{ host: '127.0.0.1', port: 1 }], options: { scaleReads: 'slave' } }, readFrom: 'replica' }),
    ).toBe(
      `nest-redis-lua: option "cluster.options.scaleReads" cannot be combined with option "readFrom": 'replica' (which routes the module's read-only calls itself); leave one out`,
    );
  });
});

describe.each(['eval', 'functions'] as const)("readFrom: 'replica' on a 3+3 cluster, scripts: %s", (scripts) => {
  let cluster: RedisClusterHarness;
  let app: INestApplication;

  beforeAll(async () => {
    cluster = await RedisClusterHarness.start({ masters: 3, replicasPerMaster: 1 });
    app = await featureApp({ cluster: { nodes: cluster.nodes }, keyPrefix: 'rf', scripts, readFrom: 'replica' });
    for (const server of cluster.servers) server.cli('config', 'resetstat');
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await cluster?.destroy();
  });

  it('leaderboard reads and counter get run on replicas; every write on the masters', async () => {
    const boards = app.get(LeaderboardService);
    const counters = app.get(BoundedCounterService);
    for (let b = 0; b < 6; b++) for (let p = 0; p < 5; p++) await boards.submit(`b${b}`, `p${p}`, p * 10);
    await counters.increment('c', 3, 100);
    // Replication is asynchronous: the first reads may see an older board (the documented staleness).
    for (let b = 0; b < 6; b++) {
      let top = await boards.top(`b${b}`, 5);
      for (let i = 0; top.length < 5 && i < 100; i++) top = await boards.top(`b${b}`, 5);
      expect(top.map((e) => e.member)).toEqual(['p4', 'p3', 'p2', 'p1', 'p0']);
      expect(await boards.rank(`b${b}`, 'p4')).toBe(1);
      expect(await boards.around(`b${b}`, 'p2', 1)).toHaveLength(3);
      expect(await boards.score(`b${b}`, 'p1')).toBe(10);
      expect(await boards.count(`b${b}`)).toBe(5);
    }
    let value = await counters.get('c');
    for (let i = 0; value !== 3 && i < 100; i++) value = await counters.get('c');
    expect(value).toBe(3);

    const masters = cluster.masters();
    const replicas = cluster.servers.filter((s) => s.running && !masters.includes(s));
    expect(replicas).toHaveLength(3);
    const onMasters = statsOf(masters);
    const onReplicas = statsOf(replicas);
    const readScript = scripts === 'functions' ? 'fcall_ro' : 'evalsha_ro';
    // The reads: read-only scripts (top / around / rank) and plain reads (score, count, get).
    // (Under EVAL a replica's first EVALSHA_RO of a script finds no cached script: EVAL_RO then.)
    expect(commandCalls(onReplicas, readScript) + commandCalls(onReplicas, 'eval_ro')).toBeGreaterThanOrEqual(6 * 3);
    expect(commandCalls(onReplicas, 'zscore')).toBeGreaterThanOrEqual(6);
    expect(commandCalls(onReplicas, 'zcard')).toBeGreaterThanOrEqual(6);
    expect(commandCalls(onReplicas, 'get')).toBeGreaterThanOrEqual(1);
    // (commandstats count the commands a script runs too: the masters' ZSCORE are the submit script's.)
    expect(commandCalls(onMasters, readScript) + commandCalls(onMasters, 'eval_ro')).toBe(0);
    // The writes ran on the masters only (replicas apply their effects, never a script call).
    const writeScript = scripts === 'functions' ? 'fcall' : 'evalsha';
    expect(commandCalls(onMasters, writeScript)).toBeGreaterThanOrEqual(6 * 5 + 1);
    expect(commandCalls(onReplicas, 'fcall') + commandCalls(onReplicas, 'evalsha') + commandCalls(onReplicas, 'eval')).toBe(0);
  });
});
