/**
 * Acceptance: the `npm pack` tarball in the apps the official Nest CLI generates, outside the
 * repository, with every dependency from the npm registry and no npm flag that relaxes peer
 * dependencies (no --legacy-peer-deps, no --force):
 *
 * - fresh-apps/nest11: `nest new` of @nestjs/cli 11 (CommonJS) + `npm install <tarball> ioredis@5`
 * - fresh-apps/nest12: `nest new` of @nestjs/cli 12 (ES modules) + `npm install <tarball> ioredis@6`
 *
 * Each app passes its own ioredis client to RedisLuaModule (so `nest build` type-checks the shipped
 * declarations against that ioredis major), then serves a rate-limited route, a locked route, a
 * leaderboard and a script of its own (a .lua file that `nest build` copies into dist/).
 *
 * The tarball is packed from a copy of the working tree: pack.spec.ts rebuilds the repository's
 * dist/ at the same time (jest runs the two files in parallel). This file depends on no installed
 * version of the repository but the toolchain that builds the tarball, so `npm run test:compat`
 * skips it (it would test a tarball built against the older types, which is never published).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { harnessAddresses } from '../harness/harness-env';
import { uniquePrefix } from '../harness/topologies';
import { freePort } from '../harness/redis-server';
import { cleanEnv, outputUntilExit, run, terminate, waitForOutput } from './processes';

const ROOT = join(__dirname, '..', '..');
const MINUTES = 60_000;
/** The only npm options used: none of them changes how peer dependencies are resolved. */
const NPM_OPTIONS = ['--no-audit', '--no-fund', '--prefer-offline'];
/** Not copied to pack from: installed or built output, or irrelevant to the package. */
const NOT_PACKED_FROM = new Set(['node_modules', 'dist', 'dist-sample', '.git', 'coverage', '.tmp']);

interface Manifest {
  version: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
}

const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/**
 * A user's shell: no Redis settings, and no peer-relaxing npm setting inherited from an npm that
 * started jest (`npm test --legacy-peer-deps` exports npm_config_legacy_peer_deps to its children).
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = cleanEnv(extra);
  for (const name of Object.keys(env)) if (/^npm_config_(legacy_peer_deps|force)$/i.test(name)) delete env[name];
  return env;
}

const work = mkdtempSync(join(tmpdir(), 'nrl-fresh-apps-'));
const children: ChildProcess[] = [];
let tarball = '';

beforeAll(async () => {
  // Outside the repository, so that nothing in the apps can resolve a module from its node_modules.
  expect(relative(ROOT, work).startsWith('..')).toBe(true);
  const source = join(work, 'package-source');
  mkdirSync(source);
  for (const entry of readdirSync(ROOT)) {
    if (!NOT_PACKED_FROM.has(entry)) cpSync(join(ROOT, entry), join(source, entry), { recursive: true });
  }
  // The build (prepack) uses the repository's toolchain, read-only; the link goes once packed.
  const toolchain = join(source, 'node_modules');
  symlinkSync(join(ROOT, 'node_modules'), toolchain, 'dir');
  let output: string;
  try {
    output = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: source });
  } finally {
    unlinkSync(toolchain);
  }
  const [pack] = JSON.parse(output.slice(output.indexOf('['))) as Array<{ filename: string }>;
  tarball = join(work, pack.filename);
}, 3 * MINUTES);

afterAll(async () => {
  await Promise.all(children.map((child) => terminate(child)));
  rmSync(work, { recursive: true, force: true });
});

describe.each([
  { scaffold: 'nest11', nest: 11, ioredis: 5, install: 'ioredis@5' },
  { scaffold: 'nest12', nest: 12, ioredis: 6, install: 'ioredis@6' },
])('the tarball in the app of `nest new` (CLI $nest) with $install', ({ scaffold, nest, ioredis, install }) => {
  it(
    'installs with plain npm install (and installs again), builds with nest build, and serves rate limit, lock, leaderboard and its own script against Redis',
    async () => {
      const app = join(work, scaffold);
      cpSync(join(__dirname, 'fresh-apps', scaffold), app, { recursive: true });
      const env = userEnv();
      const npm = (args: string[]): Promise<string> => run('npm', args, { cwd: app, env, timeoutMs: 8 * MINUTES });

      // No configuration (~/.npmrc, environment) relaxes peer dependencies for these installs.
      expect((await npm(['config', 'get', 'legacy-peer-deps'])).trim()).toBe('false');
      expect((await npm(['config', 'get', 'force'])).trim()).toBe('false');

      // The scaffold's own dependencies, then the tarball and ioredis as a user adds them (peer ranges
      // that exclude the app's NestJS or this ioredis fail here with ERESOLVE), then a later install.
      await npm(['install', ...NPM_OPTIONS]);
      await npm(['install', tarball, install, ...NPM_OPTIONS]);
      await npm(['install', ...NPM_OPTIONS]);

      const installed = (name: string): string => readManifest(join(app, 'node_modules', name)).version;
      const major = (name: string): number => Number(installed(name).split('.')[0]);
      expect({ common: major('@nestjs/common'), core: major('@nestjs/core'), ioredis: major('ioredis') }).toEqual({
        common: nest,
        core: nest,
        ioredis,
      });
      expect(installed('nest-redis-lua')).toBe(readManifest(ROOT).version);
      expect(readManifest(app).dependencies).toEqual(
        expect.objectContaining({
          'nest-redis-lua': expect.stringMatching(/^file:/),
          ioredis: expect.stringMatching(new RegExp(`^\\^${ioredis}\\.`)),
        }),
      );
      // The library uses the app's own NestJS and ioredis (peers), and npm sees every peer range met: a
      // nested node_modules may hold only the library's own dependencies (ipaddr.js 2 beside Express's 1.x).
      const nested = join(app, 'node_modules', 'nest-redis-lua', 'node_modules');
      const own = Object.keys(readManifest(ROOT).dependencies ?? {});
      expect((existsSync(nested) ? readdirSync(nested) : []).filter((name) => !name.startsWith('.') && !own.includes(name))).toEqual([]);
      await npm(['ls', 'nest-redis-lua', '@nestjs/common', '@nestjs/core', 'ioredis', 'reflect-metadata', 'rxjs']);

      // The package reads no .lua file at run time (its scripts ship as data in dist/): without its
      // lua/ sources everything below works the same.
      rmSync(join(app, 'node_modules', 'nest-redis-lua', 'lua'), { recursive: true });

      // The app's own @nestjs/cli: type-checks against the shipped .d.ts, copies the .lua asset.
      await run('npx', ['--no', 'nest', 'build'], { cwd: app, env, timeoutMs: 4 * MINUTES });
      expect(existsSync(join(app, 'dist', 'lua', 'bump.lua'))).toBe(true);

      // Started as the scaffold's start:prod does.
      const startProd = /^node (\S+)$/.exec(readManifest(app).scripts?.['start:prod'] ?? '');
      expect(startProd).not.toBeNull();
      const start = (extra: Record<string, string>): ChildProcess => {
        const child = spawn(process.execPath, [startProd![1]], {
          cwd: app,
          env: cleanEnv({ NO_COLOR: '1', ...extra }),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(child);
        return child;
      };

      // Without REDIS_URL the app refuses to start (it has no default Redis).
      const unconfigured = start({ PORT: String(await freePort()) });
      const refusal = await outputUntilExit(unconfigured);
      expect(refusal.code).not.toBe(0);
      expect(refusal.output).toContain('REDIS_URL is not set');

      const { standalone } = harnessAddresses();
      const port = await freePort();
      const child = start({
        REDIS_URL: `redis://${standalone.host}:${standalone.port}`,
        REDIS_KEY_PREFIX: uniquePrefix(),
        PORT: String(port),
      });
      const boot = await waitForOutput(child, new RegExp(`fresh app listening on http://127\\.0\\.0\\.1:${port}\\b`));
      // The library runs on the app's client, connected to the harness's private server.
      expect(boot).toContain(`Connected to ${standalone.host}:${standalone.port} via the application's client (standalone`);
      const base = `http://127.0.0.1:${port}`;

      // @RateLimit({ limit: 3, windowMs: 60_000 }) under @UseGuards(RateLimitGuard).
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await fetch(`${base}/limited`)).status);
      expect(statuses).toEqual([200, 200, 200, 429]);

      // @RateLimit alone with a key function (README shape): a request without the header is refused
      // (RateLimitInputError, answered 400 by the app's RedisLuaExceptionFilter) and counted nowhere,
      // never the bucket "undefined" that a client sending that text has.
      const perUser = async (user?: string): Promise<number> =>
        (await fetch(`${base}/per-user`, { headers: user ? { 'x-user': user } : {} })).status;
      expect([await perUser(), await perUser(), await perUser('undefined'), await perUser('undefined'), await perUser('ann')]).toEqual([
        400, 400, 200, 429, 200,
      ]);

      // @RateLimit({ limit: 2, ..., blockMs: 600_000, countOnly: 'failed' }): right passwords are given
      // back, the 2 wrong ones count, and the next attempt is blocked for the penalty, not the window.
      const login = async (password: string): Promise<Response> =>
        fetch(`${base}/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'ann', password }),
        });
      const logins: number[] = [];
      for (const password of ['wonderland', 'wonderland', 'wonderland', 'guess', 'guess']) logins.push((await login(password)).status);
      expect(logins).toEqual([201, 201, 201, 401, 401]);
      const blocked = await login('wonderland');
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(60);

      // @RateLimit({ ..., earlyDeny: true }) + RateLimitMiddleware.install(app) in main.ts: after the guard's 429, the
      // middleware answers the same 429 (headers and body) before routing (without it: an error).
      const search = async (): Promise<Response> => fetch(`${base}/search`);
      expect((await search()).status).toBe(200);
      const byGuard = await search();
      const byMiddleware = await search();
      expect([byGuard.status, byMiddleware.status]).toEqual([429, 429]);
      expect(byMiddleware.headers.get('ratelimit-policy')).toBe(byGuard.headers.get('ratelimit-policy'));
      expect(Number(byMiddleware.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const [guardBody, middlewareBody] = [
        (await byGuard.json()) as Record<string, unknown>,
        (await byMiddleware.json()) as Record<string, unknown>,
      ];
      expect({ ...middlewareBody, retryAfterMs: 0 }).toEqual({ ...guardBody, retryAfterMs: 0 });

      // @WithLock('job:{params.id}', { waitMs: 0 }): each run a larger fence; a run while another
      // holds the lock gets 409 with Retry-After. The holder keeps it for 3 s after saying so, time
      // enough for one request even on a loaded machine.
      const runJob = (id: string, holdMs = 0): Promise<Response> => fetch(`${base}/jobs/${id}/run?holdMs=${holdMs}`, { method: 'POST' });
      const first = await runJob('a');
      const second = await runJob('a');
      expect([first.status, second.status]).toEqual([201, 201]);
      const [fenceA, fenceB] = [((await first.json()) as { fence: number }).fence, ((await second.json()) as { fence: number }).fence];
      expect(fenceB).toBeGreaterThan(fenceA);
      const holding = waitForOutput(child, /holding job b/);
      const long = runJob('b', 3_000);
      await holding;
      const refused = await runJob('b');
      expect(refused.status).toBe(409);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await long).status).toBe(201);

      // @WithLock(..., { mode: 'read' }) on the same job: refused while the run holds it, shared after.
      const holdingC = waitForOutput(child, /holding job c/);
      const longC = runJob('c', 3_000);
      await holdingC;
      expect((await fetch(`${base}/jobs/c/status`)).status).toBe(409);
      expect((await longC).status).toBe(201);
      const reads = await Promise.all([fetch(`${base}/jobs/c/status`), fetch(`${base}/jobs/c/status`)]);
      expect(reads.map((r) => r.status)).toEqual([200, 200]);

      // @WithSemaphore('gpu', { permits: 1, waitMs: 0 }): a second render while one runs gets 409.
      const rendering = waitForOutput(child, /rendering/);
      const render = fetch(`${base}/jobs/renders?holdMs=3000`, { method: 'POST' });
      await rendering;
      const busy = await fetch(`${base}/jobs/renders`, { method: 'POST' });
      expect(busy.status).toBe(409);
      expect(Number(busy.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await render).status).toBe(201);

      // @WithLock([...], { fair: true }) and the services' withLocks / withPermit.
      const transfer = await fetch(`${base}/jobs/transfers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ from: 'ann', to: 'bob' }),
      });
      expect(transfer.status).toBe(201);
      const moved = (await transfer.json()) as { resources: string[]; fences: number[] };
      expect(moved.resources).toEqual(['account:ann', 'account:bob']);
      expect(moved.fences).toHaveLength(2);
      // @Idempotent(): the retry with the same key gets the first answer, replayed.
      const order = (): Promise<Response> =>
        fetch(`${base}/jobs/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'order-1' },
          body: JSON.stringify({ item: 'book' }),
        });
      const firstOrder = await order();
      const retriedOrder = await order();
      expect([firstOrder.status, retriedOrder.status]).toEqual([201, 201]);
      expect(retriedOrder.headers.get('idempotent-replayed')).toBe('true');
      expect(await retriedOrder.json()).toEqual(await firstOrder.json());
      const batch = await fetch(`${base}/jobs/batch`, { method: 'POST' });
      expect(batch.status).toBe(201);
      expect(await batch.json()).toEqual({ locked: ['batch:in', 'batch:out'], permit: expect.any(Number) });

      // LeaderboardService.submit (best score kept): ranks, personal bests, previous bests.
      const submit = async (player: string, score: number): Promise<unknown> => {
        const response = await fetch(`${base}/boards/weekly/scores`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ player, score }),
        });
        expect(response.status).toBe(201);
        return response.json();
      };
      expect(await submit('alice', 100)).toEqual({ rank: 1, score: 100, personalBest: true, previousBest: null });
      expect(await submit('bob', 150)).toEqual({ rank: 1, score: 150, personalBest: true, previousBest: null });
      expect(await submit('alice', 90)).toEqual({ rank: 2, score: 100, personalBest: false, previousBest: 100 });
      // A service input error from the handler's own call: 400 naming the field (RedisLuaExceptionFilter).
      const badScore = await fetch(`${base}/boards/weekly/scores`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ player: 'carol', score: 'lots' }),
      });
      expect(badScore.status).toBe(400);
      expect(await badScore.json()).toMatchObject({ statusCode: 400, error: 'Bad Request', field: 'score' });

      // The app's own script (forFeature + @InjectScript), loaded from dist/lua/bump.lua.
      const bump = async (): Promise<unknown> => (await fetch(`${base}/bump/visits`, { method: 'POST' })).json();
      expect(await bump()).toEqual({ name: 'visits', value: 1 });
      expect(await bump()).toEqual({ name: 'visits', value: 2 });

      // enableShutdownHooks: the hooks run (the app quits its client), then the signal is re-raised.
      const shutdown = outputUntilExit(child);
      expect(await terminate(child)).toEqual({ code: null, signal: 'SIGTERM' });
      expect((await shutdown).output).toContain('Redis client closed (SIGTERM)');
    },
    10 * MINUTES,
  );
});
