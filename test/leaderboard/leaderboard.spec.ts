import calculateSlot from 'cluster-key-slot';
import type { INestApplication } from '@nestjs/common';
import {
  KeyBuilder,
  LeaderboardInputError,
  LeaderboardService,
  REDIS_LUA_KEYS,
  RedisLuaModule,
  type LeaderboardEntry,
} from 'nest-redis-lua';
import { describeTopologies } from '../harness/topologies';

describeTopologies('LeaderboardService', (t) => {
  let app: INestApplication;
  let boards: LeaderboardService;
  let keys: KeyBuilder;

  const boot = async (prefix = t.prefix()): Promise<INestApplication> =>
    t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })]);

  beforeEach(async () => {
    app = await boot();
    boards = app.get(LeaderboardService);
    keys = app.get<KeyBuilder>(REDIS_LUA_KEYS);
  });

  const ranks = (entries: LeaderboardEntry[]) => entries.map((e) => [e.member, e.score, e.rank]);

  it('maxEntries 3: a fourth, lowest score gets rank null (no error); a higher one enters and the lowest is trimmed', async () => {
    for (const [member, score] of [
      ['a', 100],
      ['b', 90],
      ['c', 80],
    ] as const) {
      await boards.submit('b1', member, score, { maxEntries: 3 });
    }
    expect(await boards.submit('b1', 'd', 70, { maxEntries: 3 })).toEqual({
      rank: null,
      score: null,
      personalBest: false,
      previousBest: null,
    });
    expect(await boards.count('b1')).toBe(3);
    expect(await boards.rank('b1', 'd')).toBeNull();

    expect(await boards.submit('b1', 'e', 95, { maxEntries: 3 })).toEqual({
      rank: 2,
      score: 95,
      personalBest: true,
      previousBest: null,
    });
    expect(ranks(await boards.top('b1', 10))).toEqual([
      ['a', 100, 1],
      ['e', 95, 2],
      ['b', 90, 3],
    ]);
    expect(await boards.score('b1', 'c')).toBeNull();
    // The trimmed member's submission is still in its history.
    expect((await boards.history('b1', 'd')).map((h) => h.score)).toEqual([70]);
  });

  it('a full board: a newcomer that only ties the worst entry stays off (the incumbent keeps its place), whatever its name', async () => {
    for (const [member, score] of [
      ['alice', 100],
      ['bob', 90],
      ['zoe', 80],
    ] as const) {
      await boards.submit('ties', member, score, { maxEntries: 3 });
    }
    expect((await boards.submit('ties', 'zz', 80, { maxEntries: 3 })).rank).toBeNull();
    expect((await boards.submit('ties', 'carl', 80, { maxEntries: 3 })).rank).toBeNull();
    expect(ranks(await boards.top('ties', 10))).toEqual([
      ['alice', 100, 1],
      ['bob', 90, 2],
      ['zoe', 80, 3],
    ]);
    await boards.configure('ties-asc', { order: 'asc', maxEntries: 2 });
    await boards.submit('ties-asc', 'm', 10);
    await boards.submit('ties-asc', 'n', 20);
    expect((await boards.submit('ties-asc', 'a', 20)).rank).toBeNull();
    expect(ranks(await boards.top('ties-asc', 10))).toEqual([
      ['m', 10, 1],
      ['n', 20, 2],
    ]);
  });

  it('maxEntries on an asc board (configured) trims the highest scores', async () => {
    await boards.configure('laps', { order: 'asc', maxEntries: 2 });
    await boards.submit('laps', 'x', 61.5);
    await boards.submit('laps', 'y', 59.25);
    expect((await boards.submit('laps', 'z', 70)).rank).toBeNull();
    expect((await boards.submit('laps', 'w', 58)).rank).toBe(1);
    expect(ranks(await boards.top('laps', 5))).toEqual([
      ['w', 58, 1],
      ['y', 59.25, 2],
    ]);
  });

  it('best mode keeps the better score and reports personalBest; history records every submission', async () => {
    expect(await boards.submit('best', 'p', 50)).toEqual({ rank: 1, score: 50, personalBest: true, previousBest: null });
    expect(await boards.submit('best', 'p', 40)).toEqual({ rank: 1, score: 50, personalBest: false, previousBest: 50 });
    expect(await boards.score('best', 'p')).toBe(50);
    expect(await boards.submit('best', 'p', 60.5)).toEqual({ rank: 1, score: 60.5, personalBest: true, previousBest: 50 });
    const history = await boards.history('best', 'p');
    expect(history.map((h) => h.score)).toEqual([60.5, 40, 50]);
    const now = Date.now();
    for (const h of history) expect(Math.abs(h.at - now)).toBeLessThan(60_000);
    expect((await boards.history('best', 'p', 2)).map((h) => h.score)).toEqual([60.5, 40]);

    // asc: lower is better
    await boards.submit('best-asc', 'p', 50, { order: 'asc' });
    expect(await boards.submit('best-asc', 'p', 60, { order: 'asc' })).toMatchObject({ score: 50, personalBest: false });
    expect(await boards.submit('best-asc', 'p', 45, { order: 'asc' })).toMatchObject({ score: 45, personalBest: true, previousBest: 50 });
  });

  it('latest overwrites and increment adds (fractional scores survive)', async () => {
    await boards.submit('latest', 'p', 50, { mode: 'latest' });
    expect(await boards.submit('latest', 'p', 40, { mode: 'latest' })).toEqual({
      rank: 1,
      score: 40,
      personalBest: false,
      previousBest: 50,
    });
    expect(await boards.score('latest', 'p')).toBe(40);

    await boards.submit('inc', 'p', 10, { mode: 'increment' });
    expect(await boards.submit('inc', 'p', 0.25, { mode: 'increment' })).toEqual({
      rank: 1,
      score: 10.25,
      personalBest: true,
      previousBest: 10,
    });
    expect(await boards.submit('inc', 'p', -5, { mode: 'increment' })).toMatchObject({ score: 5.25, personalBest: false });
    expect((await boards.history('inc', 'p')).map((h) => h.score)).toEqual([-5, 0.25, 10]);
  });

  it('an increment that would overflow to ±infinity is refused with LeaderboardInputError and changes nothing', async () => {
    await boards.submit('overflow', 'p', 1e308, { mode: 'increment' });
    const err = await boards.submit('overflow', 'p', 1e308, { mode: 'increment' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaderboardInputError);
    expect(err).toMatchObject({
      field: 'score',
      message: expect.stringMatching(
        /^nest-redis-lua: LeaderboardService\.submit: adding 1e\+308 to the score of "p" would take it beyond/,
      ),
    });
    expect(await boards.score('overflow', 'p')).toBe(1e308);
    expect((await boards.history('overflow', 'p')).map((h) => h.score)).toEqual([1e308]);
    // The other way too, and a sum that stays finite still works.
    await boards.submit('overflow', 'n', -1e308, { mode: 'increment' });
    await expect(boards.submit('overflow', 'n', -1e308, { mode: 'increment' })).rejects.toThrow(LeaderboardInputError);
    expect(await boards.submit('overflow', 'p', -1e308, { mode: 'increment' })).toMatchObject({ score: 0 });
  });

  it('historyLength keeps the last N submissions; 0 keeps none', async () => {
    for (let i = 1; i <= 5; i++) await boards.submit('h', 'p', i, { historyLength: 3 });
    expect((await boards.history('h', 'p')).map((h) => h.score)).toEqual([5, 4, 3]);
    await boards.submit('h0', 'p', 1, { historyLength: 0 });
    expect(await boards.history('h0', 'p')).toEqual([]);
    expect(await t.client().exists(keys.key('lb', ['h0'], 'h', 'p'))).toBe(0);
  });

  it('ties share a rank: 100, 90, 90, 80 → 1, 2, 2, 4 via top and rank; asc boards rank the lowest first', async () => {
    for (const [member, score] of [
      ['d', 80],
      ['b', 90],
      ['a', 100],
      ['c', 90],
    ] as const) {
      await boards.submit('ties', member, score);
    }
    expect(ranks(await boards.top('ties', 10))).toEqual([
      ['a', 100, 1],
      ['c', 90, 2],
      ['b', 90, 2],
      ['d', 80, 4],
    ]);
    expect(await Promise.all(['a', 'b', 'c', 'd'].map((m) => boards.rank('ties', m)))).toEqual([1, 2, 2, 4]);
    // From an offset inside a tie, the first entry's rank is still its competition rank.
    expect(ranks(await boards.top('ties', 2, 2))).toEqual([
      ['b', 90, 2],
      ['d', 80, 4],
    ]);
    expect(await boards.top('ties', 5, 10)).toEqual([]);

    await boards.configure('ties-asc', { order: 'asc' });
    for (const [member, score] of [
      ['d', 80],
      ['b', 90],
      ['a', 100],
      ['c', 90],
    ] as const) {
      await boards.submit('ties-asc', member, score);
    }
    expect(ranks(await boards.top('ties-asc', 10))).toEqual([
      ['d', 80, 1],
      ['b', 90, 2],
      ['c', 90, 2],
      ['a', 100, 4],
    ]);
    expect(await Promise.all(['a', 'b', 'c', 'd'].map((m) => boards.rank('ties-asc', m)))).toEqual([4, 2, 2, 1]);
    // A per-call order overrides the stored one.
    expect(await boards.rank('ties-asc', 'a', { order: 'desc' })).toBe(1);
    expect(await boards.rank('ties', 'nobody')).toBeNull();
  });

  it('around returns the radius on both sides, clipped at the ends', async () => {
    for (let i = 1; i <= 10; i++) await boards.submit('ar', `m${i}`, i * 10);
    const members = async (member: string, radius: number) => (await boards.around('ar', member, radius)).map((e) => e.member);
    expect(await members('m5', 2)).toEqual(['m7', 'm6', 'm5', 'm4', 'm3']);
    expect(await members('m10', 2)).toEqual(['m10', 'm9', 'm8']);
    expect(await members('m1', 2)).toEqual(['m3', 'm2', 'm1']);
    expect(await members('m5', 0)).toEqual(['m5']);
    expect(await boards.around('ar', 'm9', 1)).toEqual([
      { member: 'm10', score: 100, rank: 1 },
      { member: 'm9', score: 90, rank: 2 },
      { member: 'm8', score: 80, rank: 3 },
    ]);
    expect(await boards.around('ar', 'nobody', 3)).toEqual([]);
  });

  it('remove deletes the entry and its history; reset empties the board and every history but keeps the config', async () => {
    await boards.configure('rm', { order: 'asc' });
    for (const m of ['a', 'b', 'c']) await boards.submit('rm', m, 1);
    const redis = t.client();
    const history = (m: string) => keys.key('lb', ['rm'], 'h', m);
    expect(await redis.exists(history('a'))).toBe(1);

    expect(await boards.remove('rm', 'a')).toBe(true);
    expect(await boards.remove('rm', 'a')).toBe(false);
    expect(await boards.score('rm', 'a')).toBeNull();
    expect(await redis.exists(history('a'))).toBe(0);
    expect(await boards.count('rm')).toBe(2);

    expect(await boards.reset('rm')).toBe(2);
    expect(await boards.count('rm')).toBe(0);
    for (const m of ['b', 'c']) expect(await redis.exists(history(m))).toBe(0);
    expect(await redis.exists(keys.key('lb', ['rm'], 'scores'), keys.key('lb', ['rm'], 'histories'))).toBe(0);
    expect(await redis.hget(keys.key('lb', ['rm'], 'config'), 'order')).toBe('asc');
  });

  it('puts every key of a board in one slot, whatever the member names', async () => {
    const members = ['a', 'user:{42}', 'x'.repeat(500), 'ünï cødé', '%7B'];
    for (const m of members) await boards.submit('slots {board}', m, 1);
    const all = [
      keys.key('lb', ['slots {board}'], 'scores'),
      keys.key('lb', ['slots {board}'], 'config'),
      keys.key('lb', ['slots {board}'], 'histories'),
      ...members.map((m) => keys.key('lb', ['slots {board}'], 'h', m)),
    ];
    expect(new Set(all.map((k) => calculateSlot(k))).size).toBe(1);
    expect(await boards.count('slots {board}')).toBe(members.length);
    expect((await boards.top('slots {board}', 10)).map((e) => e.member).sort()).toEqual([...members].sort());
  });

  it('configuration stored by one instance is used by another', async () => {
    const prefix = t.prefix();
    const [one, two] = await Promise.all([boot(prefix), boot(prefix)]);
    await one.get(LeaderboardService).configure('shared', { order: 'asc', maxEntries: 2, historyLength: 1 });
    const other = two.get(LeaderboardService);
    for (const [m, s] of [
      ['a', 3],
      ['b', 1],
      ['c', 2],
    ] as const)
      await other.submit('shared', m, s);
    expect(ranks(await other.top('shared', 10))).toEqual([
      ['b', 1, 1],
      ['c', 2, 2],
    ]);
    await other.submit('shared', 'b', 0.5);
    expect((await other.history('shared', 'b')).map((h) => h.score)).toEqual([0.5]);
  });

  it('1000 concurrent submits of distinct members: count, order and ranks exact', async () => {
    const scores = Array.from({ length: 1000 }, (_, i) => (i * 7919) % 400); // ties included
    const results = await Promise.all(scores.map((s, i) => boards.submit('crowd', `player-${i}`, s)));
    expect(results.every((r) => r.rank !== null && r.personalBest)).toBe(true);
    expect(await boards.count('crowd')).toBe(1000);

    const top = await boards.top('crowd', 1000);
    expect(top).toHaveLength(1000);
    const sorted = [...scores].sort((a, b) => b - a);
    expect(top.map((e) => e.score)).toEqual(sorted);
    for (const entry of top) {
      expect(entry.rank).toBe(1 + sorted.filter((s) => s > entry.score).length);
      expect(entry.score).toBe(scores[Number(entry.member.slice('player-'.length))]);
    }
  });

  it('NaN / Infinity scores, empty or over-long members and wrong options: clear errors, nothing written', async () => {
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => boards.submit('bad', 'p', Number.NaN), 'score'],
      [() => boards.submit('bad', 'p', Infinity), 'score'],
      [() => boards.submit('bad', 'p', -Infinity), 'score'],
      [() => boards.submit('bad', 'p', '5' as unknown as number), 'score'],
      [() => boards.submit('bad', '', 1), 'member'],
      [() => boards.submit('bad', 'é'.repeat(257), 1), 'member'],
      [() => boards.submit('', 'p', 1), 'board'],
      [() => boards.submit('bad', 'p', 1, { maxEntries: 0 }), 'maxEntries'],
      [() => boards.submit('bad', 'p', 1, { maxEntries: 2.5 }), 'maxEntries'],
      [() => boards.submit('bad', 'p', 1, { historyLength: -1 }), 'historyLength'],
      [() => boards.submit('bad', 'p', 1, { mode: 'worst' as 'best' }), 'mode'],
      [() => boards.submit('bad', 'p', 1, { order: 'up' as 'asc' }), 'order'],
      [() => boards.configure('bad', { maxEntries: -3 }), 'maxEntries'],
      [() => boards.top('bad', 0), 'n'],
      [() => boards.top('bad', 10, -1), 'offset'],
      [() => boards.around('bad', 'p', -1), 'radius'],
    ];
    for (const [call, field] of cases) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LeaderboardInputError);
      expect((err as LeaderboardInputError).field).toBe(field);
      expect((err as Error).message).toContain(field);
    }
    const written = ['scores', 'config', 'histories'].map((s) => keys.key('lb', ['bad'], s));
    written.push(keys.key('lb', ['bad'], 'h', 'p'), keys.key('lb', [''], 'scores'));
    const redis = t.client();
    for (const key of written) expect(await redis.exists(key)).toBe(0);
    expect(await boards.submit('bad', 'é'.repeat(256), 1)).toMatchObject({ rank: 1 });
  });
});
