/**
 * Redis-side cost of one script call, isolated from Node: loads bundled script <name> (or a .lua file), then
 * redis-benchmark sends EVALSHA with random keys; prints INFO commandstats usec_per_call of evalsha.
 * Usage: node -r @swc-node/register bench/tools/lua-cost.ts <port> <script name|path.lua> <n> -- <args after the key...>
 */
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { BUNDLED_SCRIPTS } from '../../lib/scripts/bundled-scripts.generated';
import { readScriptFile } from '../../lib/scripts/script-source';

async function main(): Promise<void> {
  const [port, name, n, , ...args] = process.argv.slice(2);
  const body = name.endsWith('.lua') ? readScriptFile(name).body : BUNDLED_SCRIPTS[name].body;
  const redis = new Redis({ port: Number(port) });
  const sha = (await redis.script('LOAD', body)) as string;
  await redis.config('RESETSTAT');
  execFileSync(
    'redis-benchmark',
    ['-p', port, '-n', n, '-c', '32', '-r', '1000', 'evalsha', sha, '1', `lc:${name}:__rand_int__`, ...args],
    { stdio: 'ignore' },
  );
  const info = await redis.info('commandstats');
  console.log(name, args.join(' '), /cmdstat_evalsha:[^\r\n]*/.exec(info)?.[0]);
  await redis.quit();
}
main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
