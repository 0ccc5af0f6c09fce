import { LockService, RateLimiterService, REDIS_LUA_KEYS, RedisLuaHealthIndicator, type KeyBuilder } from 'nest-redis-lua';
import request from 'supertest';
import { ProductCatalog } from '../../sample-app/products/product-catalog';
import { describeTopologies } from '../harness/topologies';
import { startSampleApp } from './sample-app.harness';

describeTopologies('sample app', (t) => {
  it('GET /hello: 5 per 10 s per IP, then 429 with Retry-After; then the same 429 before Nest, no limiter call', async () => {
    const app = await startSampleApp(t);
    const server = app.getHttpServer();
    for (let i = 0; i < 5; i++) {
      const ok = await request(server).get('/hello').expect(200);
      expect(ok.body).toEqual({ message: 'Hello from nest-redis-lua' });
      expect(ok.headers['ratelimit']).toMatch(new RegExp(`^"default";r=${4 - i};t=\\d+$`));
    }
    const denied = await request(server).get('/hello').expect(429);
    expect(Number(denied.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(denied.headers['retry-after'])).toBeLessThanOrEqual(10);
    expect(denied.body.limit).toMatchObject({ limit: 5, windowMs: 10_000 });

    const consume = jest.spyOn(app.get(RateLimiterService), 'consume');
    const early = await request(server).get('/hello').expect(429);
    expect(consume).not.toHaveBeenCalled();
    expect(early.body).toEqual({ ...denied.body, retryAfterMs: expect.any(Number) });
    expect(Number(early.headers['retry-after'])).toBe(Math.max(1, Math.ceil(early.body.retryAfterMs / 1000)));
  });

  it('POST /login: 5 failed attempts per minute per IP + username (right passwords do not count), other usernames unaffected', async () => {
    const server = (await startSampleApp(t)).getHttpServer();
    const login = (username: string, password: string) => request(server).post('/login').send({ username, password });

    const first = await login('alice', 'wonderland').expect(200);
    expect(first.body).toMatchObject({ username: 'alice', token: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(first.headers['ratelimit-policy']).toBe('"per-minute";q=5;w=60, "per-hour";q=20;w=3600');
    for (let i = 0; i < 4; i++) await login('alice', 'guess').expect(401);
    // The right password before did not count, nor does this one: 4 failures so far.
    await login('alice', 'wonderland').expect(200);
    await login('alice', 'guess').expect(401);
    const denied = await login('alice', 'wonderland').expect(429);
    expect(denied.body.limit).toMatchObject({ name: 'per-minute', limit: 5 });
    // The same address trying another account has its own count.
    await login('bob', 'builder').expect(401);
  });

  it('POST /login: the 20 per hour rule is checked and recorded together with the minute rule', async () => {
    const app = await startSampleApp(t);
    const server = app.getHttpServer();
    const hourly = { limit: 20, windowMs: 3_600_000, name: 'per-hour' };
    const key = '127.0.0.1|carol\nPOST /login';
    const limiter = app.get(RateLimiterService);

    await request(server).post('/login').send({ username: 'carol', password: 'x' }).expect(401);
    expect((await limiter.peek(key, [hourly])).remaining).toBe(19);

    // 16 earlier attempts this hour (e.g. from three minutes ago): 3 more pass, the 4th is refused
    // by the hourly rule although the minute rule still has room.
    await limiter.consume(key, hourly, { cost: 16 });
    for (let i = 0; i < 3; i++) await request(server).post('/login').send({ username: 'carol', password: 'x' }).expect(401);
    const denied = await request(server).post('/login').send({ username: 'carol', password: 'x' }).expect(429);
    expect(denied.body.limit).toMatchObject({ name: 'per-hour', limit: 20 });
    expect((await limiter.peek(key, [hourly])).remaining).toBe(0);
  });

  it('POST /inventory/:sku/reserve: 100 concurrent reservations of 30 units never take the stock below 0', async () => {
    const server = (await startSampleApp(t)).getHttpServer();
    await request(server).put('/inventory/widget').send({ stock: 30 }).expect(200, { sku: 'widget', stock: 30, reserved: 0 });

    const replies = await Promise.all(
      Array.from({ length: 100 }, () => request(server).post('/inventory/widget/reserve').send({ quantity: 1 })),
    );
    const count = (status: number): number => replies.filter((r) => r.status === status).length;
    const reserved = count(201);
    expect(count(201) + count(409) + count(422)).toBe(100);
    expect(reserved).toBeGreaterThan(0);
    // A refusal for lack of stock means the stock had run out: all 30 were reserved.
    if (count(422) > 0) expect(reserved).toBe(30);
    const levels = (await request(server).get('/inventory/widget').expect(200)).body;
    expect(levels).toEqual({ sku: 'widget', stock: 30 - reserved, reserved });
    expect(levels.stock).toBeGreaterThanOrEqual(0);
    // Each reservation ran under its own acquisition: distinct, increasing fences.
    const fences = replies.filter((r) => r.status === 201).map((r) => r.body.fence as number);
    expect(new Set(fences).size).toBe(reserved);
    await request(server).post('/inventory/widget/reserve').send({ quantity: 1000 }).expect(422);
    await request(server).post('/inventory/widget/reserve').send({ quantity: -1 }).expect(400);
  });

  it('POST /inventory/:sku/reserve with an Idempotency-Key: a retry gets the first answer, nothing reserved twice', async () => {
    const server = (await startSampleApp(t)).getHttpServer();
    await request(server).put('/inventory/widget').send({ stock: 5 }).expect(200);
    const first = await request(server).post('/inventory/widget/reserve').set('Idempotency-Key', 'r-1').send({ quantity: 2 }).expect(201);
    const retry = await request(server).post('/inventory/widget/reserve').set('Idempotency-Key', 'r-1').send({ quantity: 2 }).expect(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.text).toBe(first.text);
    expect((await request(server).get('/inventory/widget').expect(200)).body).toMatchObject({ stock: 3, reserved: 2 });
  });

  it('POST /inventory/:sku/reserve: 409 with Retry-After while another holder keeps the SKU locked', async () => {
    const app = await startSampleApp(t);
    const server = app.getHttpServer();
    await request(server).put('/inventory/gadget').send({ stock: 5 }).expect(200);

    const held = await app.get(LockService).acquire('sku:gadget', { ttlMs: 30_000 });
    try {
      const refused = await request(server).post('/inventory/gadget/reserve').send({ quantity: 1 }).expect(409);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(refused.body).toMatchObject({ statusCode: 409, error: 'Conflict' });
      // A waiting request gets the lock as soon as the holder releases it.
      const waiting = request(server)
        .post('/inventory/gadget/reserve')
        .send({ quantity: 2 })
        .then((r) => r);
      await held.release();
      const reply = await waiting;
      expect(reply.status).toBe(201);
      expect(reply.body).toMatchObject({ sku: 'gadget', quantity: 2, remaining: 3 });
      expect(reply.body.fence).toBeGreaterThan(held.fence);
    } finally {
      await held.release();
    }
  });

  it('games: scores, leaderboard ranks (ties share a rank), a player page with neighbours and history', async () => {
    const server = (await startSampleApp(t)).getHttpServer();
    const submit = (player: string, score: number) => request(server).post('/games/tetris/scores').send({ player, score });

    expect((await submit('ada', 100).expect(201)).body).toEqual({ rank: 1, score: 100, personalBest: true, previousBest: null });
    await submit('bob', 300).expect(201);
    await submit('cy', 200).expect(201);
    await submit('dee', 200).expect(201);
    await submit('eve', 50).expect(201);
    // A worse score keeps the best one.
    expect((await submit('bob', 10).expect(201)).body).toEqual({ rank: 1, score: 300, personalBest: false, previousBest: 300 });
    expect((await submit('ada', 250).expect(201)).body).toEqual({ rank: 2, score: 250, personalBest: true, previousBest: 100 });

    const board = await request(server).get('/games/tetris/leaderboard?top=10').expect(200);
    expect(board.body).toEqual([
      { member: 'bob', score: 300, rank: 1 },
      { member: 'ada', score: 250, rank: 2 },
      // Equal scores share a rank; among them Redis's order (reverse by name on a descending board).
      { member: 'dee', score: 200, rank: 3 },
      { member: 'cy', score: 200, rank: 3 },
      { member: 'eve', score: 50, rank: 5 },
    ]);
    expect(
      (await request(server).get('/games/tetris/leaderboard?top=2').expect(200)).body.map((e: { member: string }) => e.member),
    ).toEqual(['bob', 'ada']);
    expect((await request(server).get('/games/tetris/leaderboard').expect(200)).body).toHaveLength(5);

    const page = await request(server).get('/games/tetris/players/ada').expect(200);
    expect(page.body).toMatchObject({ player: 'ada', rank: 2, score: 250 });
    expect(page.body.around.map((e: { member: string }) => e.member)).toEqual(['bob', 'ada', 'dee', 'cy']);
    expect(page.body.history.map((h: { score: number }) => h.score)).toEqual([250, 100]);

    await request(server).get('/games/tetris/players/nobody').expect(404);
    await request(server).get('/games/other/leaderboard').expect(200, []);
    await request(server).get('/games/tetris/leaderboard?top=0').expect(400);
    await request(server).post('/games/tetris/scores').send({ player: 'ada', score: 'lots' }).expect(400);
    // The library refuses an empty member before writing: 400, not 500.
    const empty = await submit('', 5).expect(400);
    expect(empty.body.field).toBe('member');
  });

  it('GET /products/:id: 20 concurrent requests on a cold key run the slow loader once; then served from Redis', async () => {
    const app = await startSampleApp(t);
    const server = app.getHttpServer();
    const catalog = app.get(ProductCatalog);

    const replies = await Promise.all(Array.from({ length: 20 }, () => request(server).get('/products/42').expect(200)));
    expect(catalog.loads).toBe(1);
    const first = replies[0].body;
    expect(first).toMatchObject({ id: '42', name: 'Product 42' });
    for (const reply of replies) expect(reply.body).toEqual(first);

    expect((await request(server).get('/products/42').expect(200)).body).toEqual(first);
    expect(catalog.loads).toBe(1);

    await request(server).delete('/products/42/cache').expect(200, { invalidated: true });
    await request(server).get('/products/42').expect(200);
    expect(catalog.loads).toBe(2);
    await request(server).get('/products/not%20valid').expect(400);
  });

  it('GET /products/:id: a burst of cold products is loaded at the catalog rate (5 per second), every request answered', async () => {
    const app = await startSampleApp(t);
    const server = app.getHttpServer();
    const ids = Array.from({ length: 8 }, (_, i) => `burst-${i}`);
    const replies = await Promise.all(ids.map((id) => request(server).get(`/products/${id}`)));
    expect(replies.map((reply) => reply.status)).toEqual(ids.map(() => 200));
    expect(app.get(ProductCatalog).loads).toBe(8);
    // The catalog's sliding log, scored by Redis TIME (µs): 5 loads at once, 3 a second after the first.
    const key = `${app.get<KeyBuilder>(REDIS_LUA_KEYS).prefix}:rl:{product-catalog}:l:1000:5`;
    const flat = await t.client().zrange(key, '0', '-1', 'WITHSCORES');
    const scores = flat.filter((_, i) => i % 2 === 1).map(Number);
    expect(scores).toHaveLength(8);
    for (let i = 0; i + 5 < scores.length; i++) expect(scores[i + 5] - scores[i]).toBeGreaterThanOrEqual(1_000_000);
  });

  it('POST /pages/:id/views: the forFeature script counts views and ranks pages', async () => {
    const server = (await startSampleApp(t)).getHttpServer();
    expect((await request(server).post('/pages/home/views').expect(201)).body).toEqual({ page: 'home', views: 1, rank: 1 });
    await request(server).post('/pages/about/views').expect(201);
    await request(server).post('/pages/about/views').expect(201);
    expect((await request(server).post('/pages/about/views').expect(201)).body).toEqual({ page: 'about', views: 3, rank: 1 });
    expect((await request(server).post('/pages/home/views').expect(201)).body).toEqual({ page: 'home', views: 2, rank: 2 });
  });

  it('GET /health: Terminus reports the module Redis up on every node', async () => {
    const app = await startSampleApp(t);
    expect(app.get(RedisLuaHealthIndicator)).toBeDefined();
    const health = await request(app.getHttpServer()).get('/health').expect(200);
    expect(health.body).toMatchObject({
      status: 'ok',
      info: { redis: { status: 'up', nodes: t.topology === 'cluster' ? 3 : 1, scriptsReloaded: 0 } },
    });
  });

  it("GET /metrics: the OpenTelemetry Prometheus exporter shows the library's series, the decisions of /hello counted", async () => {
    const server = (await startSampleApp(t)).getHttpServer();
    // Other tests of this file ran /hello on the same meter provider: count the change.
    const series = 'nest_redis_lua_rate_limit_decisions_total{outcome="allowed",rule="default",route="GET /hello",';
    const allowed = (text: string): number =>
      Number(
        text
          .split('\n')
          .find((line) => line.startsWith(series))
          ?.split(' ')
          .at(-1) ?? 0,
      );
    const before = allowed((await request(server).get('/metrics').expect(200)).text);
    await request(server).get('/hello').expect(200);
    await request(server).get('/hello').expect(200);
    const scraped = await request(server).get('/metrics').expect(200);
    expect(scraped.headers['content-type']).toMatch(/^text\/plain/);
    expect(allowed(scraped.text) - before).toBe(2);
    expect(scraped.text).toContain('# TYPE nest_redis_lua_script_duration histogram');
    expect(scraped.text).toMatch(
      /nest_redis_lua_script_duration_count\{script="rate-limit\/[a-z-]+",otel_scope_name="nest-redis-lua"\} \d+/,
    );
  });
});
