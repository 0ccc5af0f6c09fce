import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { LuaScriptEngine, RedisLuaHealthIndicator, RedisLuaModule } from 'nest-redis-lua';
import request from 'supertest';
import { RedisServer } from '../harness/redis-server';
import { describeTopologies, uniquePrefix } from '../harness/topologies';
import { boundFor, timeCall } from '../harness/timing';

@Controller()
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly redis: RedisLuaHealthIndicator,
  ) {}

  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.redis.isHealthy('redis', { timeoutMs: 300 })]);
  }
}

const withFeatureScript = RedisLuaModule.forFeature([{ name: 'health-probe', lua: 'return 7' }]);

describeTopologies('RedisLuaHealthIndicator with @nestjs/terminus', (t) => {
  it('reports up with every node, and reloads what a SCRIPT FLUSH (functions mode: FUNCTION DELETE) removed', async () => {
    const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix() }), withFeatureScript, TerminusModule], {
      controllers: [HealthController],
    });
    const up = await request(app.getHttpServer()).get('/health').expect(200);
    expect(up.body.status).toBe('ok');
    expect(up.body.info.redis).toMatchObject({ status: 'up', nodes: t.topology === 'cluster' ? 3 : 1, scriptsReloaded: 0 });

    const masters = await t.masters();
    const engine = app.get(LuaScriptEngine);
    const library = engine.functions?.current().name;
    // Functions mode: only this app's library (FUNCTION FLUSH would take the other suites' too).
    for (const master of masters) await (library ? master.call('FUNCTION', 'DELETE', library) : master.script('FLUSH'));
    const healed = await request(app.getHttpServer()).get('/health').expect(200);
    const scripts = engine.scripts;
    // Other suites share this server and may cache a script again before the check runs (their
    // NOSCRIPT fallback, or their own boot), so the count is bounded; every script is back afterwards.
    expect(healed.body.info.redis.scriptsReloaded).toBeGreaterThan(0);
    expect(healed.body.info.redis.scriptsReloaded).toBeLessThanOrEqual(library ? masters.length : scripts.length * masters.length);
    for (const master of masters) {
      if (library) expect(await master.call('FUNCTION', 'LIST', 'LIBRARYNAME', library)).toHaveLength(1);
      else expect(await master.script('EXISTS', ...scripts.map((s) => s.sha))).toEqual(scripts.map(() => 1));
    }
  });
});

describe('RedisLuaHealthIndicator when Redis is down', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(() => server.destroy());

  it('answers 503 with the reason, within its timeout', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLuaModule.forRoot({ url: server.url, keyPrefix: uniquePrefix() }), TerminusModule],
      controllers: [HealthController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      await server.stop();
      const call = await timeCall(() => request(app.getHttpServer()).get('/health').expect(503));
      if (call.error) throw call.error;
      const down = call.value!;
      // Its timeoutMs (1000 by default) bounds it, plus the measured timer lateness.
      expect(call.ms).toBeLessThan(boundFor(1_000, call.lateMs, 1_000));
      expect(down.body.status).toBe('error');
      expect(down.body.error.redis.status).toBe('down');
      expect(down.body.error.redis.message).toEqual(expect.any(String));
    } finally {
      await app.close();
    }
  });
});
