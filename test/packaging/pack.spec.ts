/**
 * The published artefacts, end to end. These tests share `dist/` (npm pack and build:sample both
 * rebuild it), so they live in one file and run one after another. The tarball in freshly generated
 * Nest apps is fresh-apps.spec.ts, which packs from a copy of the working tree instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { harnessAddresses } from '../harness/harness-env';
import { uniquePrefix } from '../harness/topologies';
import { freePort } from '../harness/redis-server';
import { cleanEnv, processExists, run, terminate, waitForOutput } from './processes';

const ROOT = join(__dirname, '..', '..');
const MINUTES = 60_000;

function luaFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? luaFiles(path) : entry.endsWith('.lua') ? [path] : [];
  });
}

const work = mkdtempSync(join(tmpdir(), 'nrl-pack-'));
const children: ChildProcess[] = [];
let tarball = '';
let packedFiles: string[] = [];

beforeAll(async () => {
  const output = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT });
  const [pack] = JSON.parse(output.slice(output.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(work, pack.filename);
  packedFiles = pack.files.map((f) => f.path);
}, 3 * MINUTES);

afterAll(async () => {
  await Promise.all(children.map((child) => terminate(child)));
  rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships dist/ (JS + declarations, the scripts as data) and the lua/ sources, which the runtime never reads', async () => {
    expect(packedFiles).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/scripts/bundled-scripts.generated.js',
      ]),
    );
    expect(packedFiles.filter((f) => !/^(dist|lua)\//.test(f)).sort()).toEqual(['LICENSE', 'README.md', 'package.json']);
    const repoLua = luaFiles(join(ROOT, 'lua')).map((f) => relative(ROOT, f));
    expect(packedFiles.filter((f) => f.startsWith('lua/')).sort()).toEqual(repoLua.sort());
    // The build step's own module and the generator are not shipped.
    expect(packedFiles.filter((f) => /\.build\.(js|d\.ts)$/.test(f))).toEqual([]);

    // Unpacked as an installed dependency, without its lua/ sources: the built runtime boots, loads
    // every script into Redis and runs one (the scripts ship as data in dist/).
    const installed = join(work, 'unpacked', 'node_modules', 'nest-redis-lua');
    mkdirSync(installed, { recursive: true });
    await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'], { cwd: work });
    rmSync(join(installed, 'lua'), { recursive: true });
    const { standalone } = harnessAddresses();
    const probe = [
      "require('reflect-metadata');",
      "const { Module } = require('@nestjs/common');",
      "const { NestFactory } = require('@nestjs/core');",
      `const lib = require(${JSON.stringify(installed)});`,
      `const imports = [lib.RedisLuaModule.forRoot({ url: ${JSON.stringify(`redis://${standalone.host}:${standalone.port}`)}, keyPrefix: ${JSON.stringify(uniquePrefix())} })];`,
      'class App {}',
      'Module({ imports })(App);',
      '(async () => {',
      '  const app = await NestFactory.createApplicationContext(App, { logger: false });',
      '  const result = await app.get(lib.RateLimiterService).consume("u", { limit: 2, windowMs: 60000 });',
      '  console.log(JSON.stringify({ scripts: app.get(lib.LuaScriptEngine).scripts.length, remaining: result.remaining }));',
      '  await app.close();',
      '})().catch((err) => { console.error(err); process.exit(1); });',
    ].join('\n');
    const output = await run(process.execPath, ['-e', probe], {
      cwd: work,
      env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') },
    });
    expect(JSON.parse(output)).toEqual({ scripts: repoLua.filter((f) => !f.startsWith('lua/includes/')).length, remaining: 1 });
  });
});

describe('the shipped declarations', () => {
  it('compile on their own (skipLibCheck off) and hold none of the members marked @internal', async () => {
    // npm pack (beforeAll) built dist/ with stripInternal.
    const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
    const flags = ['--noEmit', '--strict', '--skipLibCheck', 'false', '--module', 'node20', '--moduleResolution', 'node16'];
    await run(tsc, [...flags, '--target', 'es2022', '--experimentalDecorators', '--types', 'node', join(ROOT, 'dist', 'index.d.ts')], {
      cwd: ROOT,
    });
    const luaScript = readFileSync(join(ROOT, 'dist', 'scripts', 'lua-script.d.ts'), 'utf8');
    expect(luaScript).not.toMatch(/\b(send|resendAfterNoScript|scriptError)\(/);
    expect(readFileSync(join(ROOT, 'dist', 'lock', 'lock.d.ts'), 'utf8')).not.toMatch(/abandon\(/);
  });
});

describe('npm run sample without REDIS_URL', () => {
  it(
    'starts a private redis-server (never whatever listens on 6379) and says so, serves /hello, and stops the redis-server on SIGTERM',
    async () => {
      await run('npm', ['run', 'build:sample'], { cwd: ROOT });
      const port = await freePort();
      const child = spawn(process.execPath, ['dist-sample/run-sample.js'], {
        cwd: ROOT,
        env: cleanEnv({ PORT: String(port) }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      const output = await waitForOutput(child, /listening on http:\/\/127\.0\.0\.1:\d+/);
      const started =
        /No REDIS_URL or REDIS_CLUSTER_NODES given: started a private redis-server \(pid (\d+)\) at redis:\/\/127\.0\.0\.1:(\d+)/.exec(
          output,
        );
      expect(started).not.toBeNull();
      const [redisPid, redisPort] = [Number(started![1]), Number(started![2])];
      expect(redisPort).not.toBe(6379);
      // The module's boot line names the private server.
      expect(output).toContain(`Connected to redis://127.0.0.1:${redisPort} (standalone`);
      expect(output).toContain(`curl http://127.0.0.1:${port}/hello`);

      const hello = await fetch(`http://127.0.0.1:${port}/hello`);
      expect(hello.status).toBe(200);
      expect(await hello.json()).toEqual({ message: 'Hello from nest-redis-lua' });
      expect(processExists(redisPid)).toBe(true);

      expect(await terminate(child)).toEqual({ code: 0, signal: null });
      expect(processExists(redisPid)).toBe(false);
    },
    4 * MINUTES,
  );

  it('with REDIS_URL given, uses that server and says so', async () => {
    const { standalone } = harnessAddresses();
    const port = await freePort();
    const url = `redis://${standalone.host}:${standalone.port}`;
    const child = spawn(process.execPath, ['dist-sample/run-sample.js'], {
      cwd: ROOT,
      env: cleanEnv({ PORT: String(port), REDIS_URL: url, REDIS_KEY_PREFIX: uniquePrefix() }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const output = await waitForOutput(child, /listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(output).toContain(`Using the Redis of REDIS_URL: ${url}`);
    expect(output).not.toContain('private redis-server');
    expect((await fetch(`http://127.0.0.1:${port}/hello`)).status).toBe(200);
    expect(await terminate(child)).toEqual({ code: 0, signal: null });
  });
});
