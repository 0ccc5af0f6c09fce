/**
 * A bench-like loop for profiling one contender in isolation:
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof -r @swc-node/register bench/tools/profile.ts <limiter|limiter-literal|log|lib-ceiling|lib-ceiling-args|lib-int|cmd-int|cmd-fw|evalsha|evalsha-ceiling|ceiling|lock|lock-plain|lock-acquire> [ops]
 * Environment: NO_COALESCE=1 (coalesceWrites: false), NO_COMMAND_TIMEOUT=1 (no ioredis commandTimeout).
 * Prints ops/s and client CPU µs/op; summarise the profile with bench/tools/profile-summary.ts.
 */
import 'reflect-metadata';
import { Command, type Redis } from 'ioredis';

const CMD_OPTIONS = { replyEncoding: 'utf8' as const };
/** ARGV[1] of the rate-limit scripts called directly: a deadline no call reaches (see lua/includes/rate-limit-deadline.lua). */
const NO_DEADLINE = '9007199254740991';
import { RedisServer } from '../../test/harness/redis-server';
import { LockService, LuaScriptEngine, RateLimiterService } from '../../lib';
import { libraryContext } from '../harness/app';
import { ceilingScript } from '../harness/clients';
import { rotatingKeys } from '../suites/limiter';

async function main(): Promise<void> {
  const [what = 'limiter', opsArg = '200000'] = process.argv.slice(2);
  const ops = Number(opsArg);
  const server = await RedisServer.start();
  const app = await libraryContext(server.port, {
    ...(process.env.NO_COALESCE ? { coalesceWrites: false } : {}),
    ...(process.env.NO_COMMAND_TIMEOUT ? { redis: { host: '127.0.0.1', port: server.port, commandTimeout: undefined } } : {}),
  });
  const limiter = app.get(RateLimiterService);
  const locks = app.get(LockService);
  const ceiling = ceilingScript(app.get(LuaScriptEngine).client as Redis);
  const fixedSha = app.get(LuaScriptEngine).get('rate-limit/fixed-window')!.sha;
  const ceilingSha = (await (app.get(LuaScriptEngine).client as Redis).script('LOAD', 'return 1')) as string;
  const rule = { limit: 1_000_000, windowMs: 60_000, algorithm: 'fixed-window' as const };
  const logRule = { limit: 100, windowMs: 60_000, algorithm: 'sliding-log' as const };
  const logKey = rotatingKeys('p');
  const engine = app.get(LuaScriptEngine);
  const libCeiling = engine.register({ name: 'profile/return-1', lua: 'return 1' });
  const libInt = engine.register({ name: 'profile/return-int', lua: 'return 999 * 8589934592 + ARGV[2]' });
  await engine.loadAll();
  const op: (k: number) => Promise<unknown> =
    what === 'limiter'
      ? (k) => limiter.consume(`k${k}`, rule)
      : what === 'limiter-literal'
        ? (k) => limiter.consume(`k${k}`, { limit: 1_000_000, windowMs: 60_000, algorithm: 'fixed-window' })
        : what === 'log'
          ? (k) => limiter.consume(logKey(k), logRule)
          : what === 'lib-ceiling'
            ? (k) => libCeiling.run([`c${k}`])
            : what === 'lib-ceiling-args'
              ? (k) => libCeiling.run([`bench:rl:{k${k}}:f:60000:1000000`], ['1000000', '60000'])
              : what === 'lib-int'
                ? (k) => libInt.run([`bench:rl:{k${k}}:f:60000:1000000`], ['1000000', '60000'])
                : what === 'cmd-fw'
                  ? (k) => {
                      engine.coalescer?.beforeWrite();
                      const command = new Command(
                        'evalsha',
                        [fixedSha, '1', `bench:rl:{k${k}}:f:60000:1000000`, NO_DEADLINE, '1000000', '60000'],
                        CMD_OPTIONS,
                      );
                      (engine.client as Redis).sendCommand(command);
                      return command.promise;
                    }
                  : what === 'cmd-int'
                    ? (k) => {
                        engine.coalescer?.beforeWrite();
                        const command = new Command(
                          'evalsha',
                          [libInt.sha, '1', `bench:rl:{k${k}}:f:60000:1000000`, '1000000', '60000'],
                          CMD_OPTIONS,
                        );
                        (engine.client as Redis).sendCommand(command);
                        return command.promise;
                      }
                    : what === 'ceiling'
                      ? (k) => ceiling(`c${k}`)
                      : what === 'evalsha'
                        ? (k) =>
                            (app.get(LuaScriptEngine).client as Redis).evalsha(
                              fixedSha,
                              1,
                              `bench:rl:{k${k}}:f:60000:1000000`,
                              NO_DEADLINE,
                              'c',
                              1,
                              'f',
                              1_000_000,
                              60_000,
                            )
                        : what === 'evalsha-ceiling'
                          ? (k) => (app.get(LuaScriptEngine).client as Redis).evalsha(ceilingSha, 1, `c${k}`)
                          : what === 'lock-acquire'
                            ? async (k) => {
                                // The README's shape: acquire with a fresh options literal, default waitMs.
                                const lock = await locks.acquire(`r${k}`, { ttlMs: 10_000 });
                                await lock.release();
                              }
                            : async (k) => {
                                const lock = await locks.tryAcquire(`r${k}`, {
                                  ttlMs: 10_000,
                                  autoExtend: what === 'lock' ? undefined : false,
                                });
                                if (lock) await lock.release();
                              };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ops) await op(next++ % 1000);
  };
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: 64 }, worker));
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  console.log(`${what}: ${Math.round(ops / (ms / 1000))} ops/s, ${((used.user + used.system) / ops).toFixed(1)} µs CPU/op`);
  await app.close();
  await server.destroy();
}
main().then(
  () => process.exit(),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
