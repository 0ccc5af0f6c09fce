import { Injectable, Logger, Module } from '@nestjs/common';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  InjectScript,
  KeyBuilder,
  LuaScript,
  LuaScriptEngine,
  LuaScriptError,
  REDIS_LUA_KEYS,
  RedisLuaInputError,
  RedisLuaModule,
} from 'nest-redis-lua';
import { NestFactory } from '@nestjs/core';
import { harnessAddresses } from '../harness/harness-env';
import { describeTopologies } from '../harness/topologies';

const FIXTURES = join(__dirname, '..', 'fixtures');
const LUA_DIR = join(__dirname, '..', '..', 'lua');

type TransferReply = [0 | 1, number, number];

@Injectable()
class Bank {
  constructor(
    @InjectScript('transfer') readonly transfer: LuaScript<TransferReply>,
    @InjectScript('fail') readonly fail: LuaScript<never>,
    @InjectScript('count-calls') readonly countCalls: LuaScript<number>,
  ) {}
}

@Module({
  imports: [
    RedisLuaModule.forFeature([
      { name: 'transfer', path: join(FIXTURES, 'transfer.lua'), numberOfKeys: 2 },
      { name: 'fail', lua: "local x = 1\nerror('insufficient funds for ' .. ARGV[1])\n" },
      // INCR returns how often the script ran for this key: a run-exactly-once probe.
      { name: 'count-calls', lua: "return redis.call('INCR', KEYS[1])", numberOfKeys: 1 },
    ]),
  ],
  providers: [Bank],
})
class BankModule {}

/** Every bundled script: lua/<feature>/<name>.lua, shared includes excluded. */
function bundledScriptNames(dir = LUA_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return entry === 'includes' ? [] : bundledScriptNames(path);
    return entry.endsWith('.lua') ? [relative(LUA_DIR, path).replace(/\.lua$/, '')] : [];
  });
}

describeTopologies('script engine', (t) => {
  const boot = () => t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() }), BankModule]);

  it('loads every registered script, bundled ones included, on the server or every master at boot (SCRIPT LOAD, or the functions library)', async () => {
    const app = await boot();
    const engine = app.get(LuaScriptEngine);
    const registered = engine.scripts.map((s) => s.name);
    for (const name of bundledScriptNames()) expect(registered).toContain(name);
    expect(registered).toEqual(expect.arrayContaining(['transfer', 'fail', 'count-calls']));
    const masters = await t.masters();
    expect(masters.length).toBe(t.topology === 'cluster' ? 3 : 1);
    for (const master of masters) {
      if (engine.functions) {
        const library = engine.functions.current();
        const listed = (await master.call('FUNCTION', 'LIST', 'LIBRARYNAME', library.name)) as unknown[][];
        expect(listed).toHaveLength(1);
        const functions = (listed[0][listed[0].indexOf('functions') + 1] as unknown[][]).map((f) => f[1]);
        expect(functions.sort()).toEqual([...library.functions.values()].sort());
      } else {
        const exists = await master.script('EXISTS', ...engine.scripts.map((s) => s.sha));
        expect(exists).toEqual(engine.scripts.map(() => 1));
      }
    }
  });

  it('runs a forFeature script with includes, typed, injected with @InjectScript', async () => {
    const app = await boot();
    const bank = app.get(Bank);
    const keys = app.get<KeyBuilder>(REDIS_LUA_KEYS);
    const from = keys.key('test', ['acct:1'], 'from');
    const to = keys.key('test', ['acct:1'], 'to');
    const redis = t.client();
    await redis.set(from, 10);
    expect(await bank.transfer.run([from, to], [7])).toEqual([1, 3, 7]);
    expect(await bank.transfer.run([from, to], [7])).toEqual([0, 3, 7]);
    await expect(bank.transfer.run([from], [1])).rejects.toThrow(RedisLuaInputError);
    await expect(bank.transfer.run([from], [1])).rejects.toMatchObject({
      field: 'keys',
      message: expect.stringContaining('takes 2 keys, got 1'),
    });
  });

  it('reports Lua errors as LuaScriptError naming the script, its SHA and the line (includes mapped)', async () => {
    const app = await boot();
    const bank = app.get(Bank);
    const err = await bank.fail.run([], ['order 42']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LuaScriptError);
    const luaErr = err as LuaScriptError;
    expect(luaErr.script).toBe('fail');
    expect(luaErr.sha).toBe(bank.fail.sha);
    expect(luaErr.location).toEqual({ file: '<inline fail>', line: 2 });
    expect(luaErr.message).toContain('insufficient funds for order 42');
    expect(luaErr.message).toContain('Lua script "fail"');

    const keys = app.get<KeyBuilder>(REDIS_LUA_KEYS);
    const from = keys.key('test', ['acct:2'], 'from');
    const includeErr = (await bank.transfer
      .run([from, keys.key('test', ['acct:2'], 'to')], ['1.5'])
      .catch((e: unknown) => e)) as LuaScriptError;
    expect(includeErr).toBeInstanceOf(LuaScriptError);
    expect(includeErr.location).toEqual({ file: join(FIXTURES, 'includes', 'to-int.lua'), line: 5 });
  });

  it('after SCRIPT FLUSH on every node, a call succeeds and runs exactly once', async () => {
    const app = await boot();
    const bank = app.get(Bank);
    const keys = app.get<KeyBuilder>(REDIS_LUA_KEYS);
    const counters = Array.from({ length: 30 }, (_, i) => keys.key('test', [`flush-${i}`]));
    for (const master of await t.masters()) await master.script('FLUSH');
    const results = await Promise.all(counters.map((key) => bank.countCalls.run([key])));
    expect(results).toEqual(counters.map(() => 1));
    const redis = t.client();
    for (const key of counters) expect(await redis.get(key)).toBe('1');
  });
  it("with debug: true logs every call (script name, keys, duration) through Nest's Logger", async () => {
    const logged: string[] = [];
    const spy = jest.spyOn(Logger.prototype, 'log').mockImplementation(function (this: Logger, message: unknown) {
      if ((this as unknown as { context?: string }).context === 'RedisLua') logged.push(String(message));
    });
    try {
      const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix(), debug: true }), BankModule]);
      const keys = app.get<KeyBuilder>(REDIS_LUA_KEYS);
      const key = keys.key('test', ['debug']);
      await app.get(Bank).countCalls.run([key]);
      // Functions mode: the libraries other tests' apps left on the shared servers are listed at boot.
      const lines = logged.filter((line) => !line.startsWith('Redis Functions libraries of other'));
      // debug implies the boot report (its order against the connection line depends on Nest's init order).
      expect(lines).toHaveLength(3);
      expect(lines).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^Connected to .* Lua scripts loaded/),
          expect.stringMatching(/^Boot report:\n(.|\n)*\nscript +count-calls +[0-9a-f]{12} /),
        ]),
      );
      expect(lines[2]).toMatch(new RegExp(`^count-calls keys=\\[${JSON.stringify(key).replace(/[{}[\]]/g, '\\$&')}\\] \\d+\\.\\d{2}ms$`));
    } finally {
      spy.mockRestore();
    }
  });
});

describe('forFeature script paths', () => {
  const { standalone } = harnessAddresses();
  const connection = { url: `redis://${standalone.host}:${standalone.port}` };
  const bootWith = async (path: string): Promise<Error | undefined> => {
    @Module({ imports: [RedisLuaModule.forRoot(connection), RedisLuaModule.forFeature([{ name: 'transfer', path }])] })
    class AppModule {}
    return NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false }).then(
      (app) => app.close().then(() => undefined),
      (err: Error) => err,
    );
  };

  it('a relative path fails boot: it would depend on the working directory', async () => {
    const err = await bootWith('test/fixtures/transfer.lua');
    expect(err?.message).toContain('forFeature script "transfer": "path" must be absolute, got "test/fixtures/transfer.lua"');
    expect(err?.message).toContain(`relative to the working directory ${process.cwd()}`);
    expect(err?.message).toContain("join(__dirname, 'test/fixtures/transfer.lua')");
    expect(err?.message).toContain('"assets": ["**/*.lua"]');
  });

  it('a missing file fails boot naming it, with the nest build hint', async () => {
    const missing = join(FIXTURES, 'not-copied.lua');
    const err = await bootWith(missing);
    expect(err?.message).toContain(`cannot read Lua script ${missing}`);
    expect(err?.message).toContain('"compilerOptions": { "assets": ["**/*.lua"] } in nest-cli.json');
  });
});
