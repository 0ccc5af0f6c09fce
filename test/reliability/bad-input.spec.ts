/**
 * The bad-input matrix: every public method and option, fed NaN, negatives, zero, Infinity, huge
 * numbers, empty and 10 kB strings. Each bad value must raise a typed error before any Redis write
 * (the key space under the app's prefix stays empty). Awkward identifiers (braces, colons, `*`,
 * newlines, unicode, 10 kB) must work and stay isolated from each other: no cross-tenant collision.
 */
import type { INestApplication } from '@nestjs/common';
import type { Redis } from 'ioredis';
import {
  BoundedCounterService,
  CacheAsideService,
  CacheInputError,
  CounterInputError,
  LeaderboardInputError,
  LeaderboardService,
  LockService,
  RateLimitInputError,
  RateLimiterService,
  RedisLuaModule,
  WithLock,
  RateLimit,
} from 'nest-redis-lua';
import { describeTopologies } from '../harness/topologies';
import { recordScenario } from '../harness/scenario-summary';

const BAD_NUMBERS = [NaN, -1, 0, Infinity, -Infinity, 1e308, 1.5] as const;
const BAD_NUMBERS_ZERO_OK = [NaN, -1, Infinity, -Infinity, 1e308, 1.5] as const;
const HUGE = 'x'.repeat(10_240);

interface Services {
  limiter: RateLimiterService;
  locks: LockService;
  boards: LeaderboardService;
  counters: BoundedCounterService;
  cache: CacheAsideService;
}

type Case = [label: string, call: (s: Services) => Promise<unknown>, error: new (...args: never[]) => Error];

const rule = { limit: 10, windowMs: 1000 };
const cases: Case[] = [
  // Rate limiting.
  ['consume key ""', (s) => s.limiter.consume('', rule), RateLimitInputError],
  ...BAD_NUMBERS.map((v): Case => [`consume limit ${v}`, (s) => s.limiter.consume('k', { limit: v, windowMs: 1000 }), RateLimitInputError]),
  ...BAD_NUMBERS.map((v): Case => [
    `consume windowMs ${v}`,
    (s) => s.limiter.consume('k', { limit: 10, windowMs: v }),
    RateLimitInputError,
  ]),
  ...[...BAD_NUMBERS, 11].map((v): Case => [`consume cost ${v}`, (s) => s.limiter.consume('k', rule, { cost: v }), RateLimitInputError]),
  ...BAD_NUMBERS.map((v): Case => [`consume timeoutMs ${v}`, (s) => s.limiter.consume('k', rule, { timeoutMs: v }), RateLimitInputError]),
  ['consume algorithm "nope"', (s) => s.limiter.consume('k', { ...rule, algorithm: 'nope' as never }), RateLimitInputError],
  ['consume failMode "maybe"', (s) => s.limiter.consume('k', rule, { failMode: 'maybe' as never }), RateLimitInputError],
  ['consume rules []', (s) => s.limiter.consume('k', []), RateLimitInputError],
  ['peek key ""', (s) => s.limiter.peek('', rule), RateLimitInputError],
  ['reset key ""', (s) => s.limiter.reset('', rule), RateLimitInputError],
  ...BAD_NUMBERS.map((v): Case => [`reset limit ${v}`, (s) => s.limiter.reset('k', { limit: v, windowMs: 1000 }), RateLimitInputError]),
  // Locks.
  ['acquire resource ""', (s) => s.locks.acquire(''), TypeError],
  ...BAD_NUMBERS.map((v): Case => [`acquire ttlMs ${v}`, (s) => s.locks.acquire('r', { ttlMs: v }), TypeError]),
  ...BAD_NUMBERS_ZERO_OK.map((v): Case => [`acquire waitMs ${v}`, (s) => s.locks.acquire('r', { waitMs: v }), TypeError]),
  ...BAD_NUMBERS.map((v): Case => [`tryAcquire ttlMs ${v}`, (s) => s.locks.tryAcquire('r', { ttlMs: v }), TypeError]),
  ['withLock resource ""', (s) => s.locks.withLock('', () => 1), TypeError],
  ['release token ""', (s) => s.locks.release('r', ''), TypeError],
  ['release token 10 kB', (s) => s.locks.release('r', HUGE), TypeError],
  ...BAD_NUMBERS.map((v): Case => [`extend ttlMs ${v}`, (s) => s.locks.extend('r', 'token', v), TypeError]),
  // Leaderboards.
  ['submit board ""', (s) => s.boards.submit('', 'm', 1), LeaderboardInputError],
  ['submit member ""', (s) => s.boards.submit('b', '', 1), LeaderboardInputError],
  ['submit member 10 kB', (s) => s.boards.submit('b', HUGE, 1), LeaderboardInputError],
  ['submit board 10 kB', (s) => s.boards.submit(HUGE, 'm', 1), LeaderboardInputError],
  ...[NaN, Infinity, -Infinity].map((v): Case => [`submit score ${v}`, (s) => s.boards.submit('b', 'm', v), LeaderboardInputError]),
  ['submit mode "max"', (s) => s.boards.submit('b', 'm', 1, { mode: 'max' as never }), LeaderboardInputError],
  ...BAD_NUMBERS.map((v): Case => [`configure maxEntries ${v}`, (s) => s.boards.configure('b', { maxEntries: v }), LeaderboardInputError]),
  ...[NaN, -1, Infinity, 1e308, 1.5].map((v): Case => [
    `configure historyLength ${v}`,
    (s) => s.boards.configure('b', { historyLength: v }),
    LeaderboardInputError,
  ]),
  ...[NaN, -1, 0, Infinity, 1.5].map((v): Case => [`top n ${v}`, (s) => s.boards.top('b', v), LeaderboardInputError]),
  ...[NaN, -1, Infinity, 1.5].map((v): Case => [`around radius ${v}`, (s) => s.boards.around('b', 'm', v), LeaderboardInputError]),
  ['remove member ""', (s) => s.boards.remove('b', ''), LeaderboardInputError],
  ['reset board ""', (s) => s.boards.reset(''), LeaderboardInputError],
  // Bounded counters.
  ['increment key ""', (s) => s.counters.increment('', 1, 10), CounterInputError],
  ...BAD_NUMBERS.map((v): Case => [`increment amount ${v}`, (s) => s.counters.increment('c', v, 10), CounterInputError]),
  ...[NaN, Infinity, -Infinity, 1e308, 1.5].map((v): Case => [
    `increment max ${v}`,
    (s) => s.counters.increment('c', 1, v),
    CounterInputError,
  ]),
  ...BAD_NUMBERS.map((v): Case => [`increment ttlMs ${v}`, (s) => s.counters.increment('c', 1, 10, { ttlMs: v }), CounterInputError]),
  ...BAD_NUMBERS.map((v): Case => [`decrement amount ${v}`, (s) => s.counters.decrement('c', v), CounterInputError]),
  ...[NaN, Infinity, 1e308, 1.5].map((v): Case => [`set value ${v}`, (s) => s.counters.set('c', v), CounterInputError]),
  ['get key ""', (s) => s.counters.get(''), CounterInputError],
  // Cache-aside.
  ['getOrLoad key ""', (s) => s.cache.getOrLoad('', 1000, () => 1), CacheInputError],
  ...BAD_NUMBERS.map((v): Case => [`getOrLoad ttlMs ${v}`, (s) => s.cache.getOrLoad('k', v, () => 1), CacheInputError]),
  ...BAD_NUMBERS.map((v): Case => [
    `getOrLoad lockTtlMs ${v}`,
    (s) => s.cache.getOrLoad('k', 1000, () => 1, { lockTtlMs: v }),
    CacheInputError,
  ]),
  ...BAD_NUMBERS_ZERO_OK.map((v): Case => [
    `getOrLoad waitMs ${v}`,
    (s) => s.cache.getOrLoad('k', 1000, () => 1, { waitMs: v }),
    CacheInputError,
  ]),
  ['invalidate key ""', (s) => s.cache.invalidate(''), CacheInputError],
];

/** Every key under `prefix`, on every master. */
async function keysUnder(masters: Redis[], prefix: string): Promise<string[]> {
  const found = await Promise.all(masters.map((m) => m.keys(`${prefix}:*`)));
  return found.flat();
}

describeTopologies('bad input matrix', (t) => {
  let app: INestApplication;
  let services: Services;
  let prefix: string;
  let masters: Redis[];

  beforeAll(async () => {
    masters = await t.masters();
  });
  beforeEach(async () => {
    prefix = t.prefix();
    app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix, rateLimit: { failMode: 'closed' } })]);
    services = {
      limiter: app.get(RateLimiterService),
      locks: app.get(LockService),
      boards: app.get(LeaderboardService),
      counters: app.get(BoundedCounterService),
      cache: app.get(CacheAsideService),
    };
  });

  it.each(cases)('%s → a typed error before any Redis write', async (_label, call, error) => {
    await expect(call(services)).rejects.toBeInstanceOf(error);
    expect(await keysUnder(masters, prefix)).toEqual([]);
  });

  it(`records the matrix (${cases.length} cases)`, () => {
    recordScenario({
      scenario: 'bad input matrix (typed error, nothing written)',
      topology: t.topology,
      operations: cases.length,
      failures: 0,
      unhandledRejections: 0,
      maxLatencyMs: 0,
      note: `${cases.length} cases`,
    });
  });

  const AWKWARD = ['a', 'a:b', 'a}', '{a}', 'a*', '*', 'a\nb', 'a b', 'ключ', '🔑', 'a%3Ab', HUGE, `${HUGE}y`];

  it('awkward identifiers work and never collide (rate limit, lock, counter, cache, leaderboard)', async () => {
    const { limiter, locks, counters, cache, boards } = services;
    const one = { limit: 1, windowMs: 60_000 };
    // Each identifier gets its own single slot: the first hit passes, the second is denied.
    for (const id of AWKWARD) expect((await limiter.consume(id, one)).allowed).toBe(true);
    for (const id of AWKWARD) expect((await limiter.consume(id, one)).allowed).toBe(false);
    // One lock per identifier, all held at once.
    const held = await Promise.all(AWKWARD.map((id) => locks.tryAcquire(id, { ttlMs: 5_000, autoExtend: false })));
    expect(held.every((l) => l !== null)).toBe(true);
    await Promise.all(held.map((l) => l!.release()));
    // Counters: the i-th identifier is incremented i+1 times.
    for (const [i, id] of AWKWARD.entries()) for (let n = 0; n <= i; n++) await counters.increment(id, 1, 1000);
    for (const [i, id] of AWKWARD.entries()) expect(await counters.get(id)).toBe(i + 1);
    // Cache: each identifier keeps its own value.
    for (const id of AWKWARD) await cache.getOrLoad(id, 60_000, () => `value of ${id}`);
    for (const id of AWKWARD) expect(await cache.getOrLoad(id, 60_000, () => 'reloaded')).toBe(`value of ${id}`);
    // Leaderboards: awkward (but ≤ 512-byte) board and member names are distinct.
    const names = AWKWARD.filter((id) => Buffer.byteLength(id) <= 512);
    for (const [i, id] of names.entries()) await boards.submit(id, id, i + 1);
    for (const [i, id] of names.entries()) expect(await boards.score(id, id)).toBe(i + 1);
    expect(await boards.count(names[0])).toBe(1);
    // Every key stays under the app's prefix, each identifier in its own hash tag.
    const keys = await keysUnder(masters, prefix);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key.startsWith(`${prefix}:`)).toBe(true);
  });
});

describe('bad decorator options fail at decoration time, naming the handler', () => {
  it.each([
    ['@RateLimit limit NaN', () => RateLimit({ limit: NaN, windowMs: 1000 })],
    ['@RateLimit limit -1', () => RateLimit({ limit: -1, windowMs: 1000 })],
    ['@RateLimit limit 0', () => RateLimit({ limit: 0, windowMs: 1000 })],
    ['@RateLimit limit Infinity', () => RateLimit({ limit: Infinity, windowMs: 1000 })],
    ['@RateLimit limit 1e308', () => RateLimit({ limit: 1e308, windowMs: 1000 })],
    ['@RateLimit windowMs 1.5', () => RateLimit({ limit: 1, windowMs: 1.5 })],
    ['@RateLimit windowMs 0', () => RateLimit({ limit: 1, windowMs: 0 })],
    ['@RateLimit algorithm', () => RateLimit({ limit: 1, windowMs: 1000, algorithm: 'nope' as never })],
    ['@RateLimit cost -1', () => RateLimit({ limit: 1, windowMs: 1000, cost: -1 })],
    ['@RateLimit failMode', () => RateLimit({ limit: 1, windowMs: 1000, failMode: 'maybe' as never })],
    ['@RateLimit timeoutMs NaN', () => RateLimit({ limit: 1, windowMs: 1000, timeoutMs: NaN })],
    ['@WithLock resource ""', () => WithLock('')],
    ['@WithLock unknown placeholder', () => WithLock('x:{cookies.id}')],
    ['@WithLock unmatched brace', () => WithLock('x:{params.id')],
    ['@WithLock ttlMs 0', () => WithLock('x', { ttlMs: 0 })],
    ['@WithLock ttlMs NaN', () => WithLock('x', { ttlMs: NaN })],
    ['@WithLock waitMs -1', () => WithLock('x', { waitMs: -1 })],
    ['@WithLock waitMs Infinity', () => WithLock('x', { waitMs: Infinity })],
    ['@WithLock conflictStatus 200', () => WithLock('x', { conflictStatus: 200 })],
  ])('%s', (_label, decorator) => {
    expect(() => {
      class Handlers {
        handler(): void {}
      }
      const descriptor = Object.getOwnPropertyDescriptor(Handlers.prototype, 'handler')!;
      (decorator() as MethodDecorator)(Handlers.prototype, 'handler', descriptor);
    }).toThrow(/Handlers\.handler|handler/);
  });
});
