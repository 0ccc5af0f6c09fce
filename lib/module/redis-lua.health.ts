import { Injectable } from '@nestjs/common';
import { LuaScriptEngine } from '../scripts/lua-script.engine';

/**
 * Details of a health check, in the shape `@nestjs/terminus` expects from an indicator.
 * `scriptsReloaded`: scripts SCRIPT LOADed again by this check, or, in functions mode, the number of
 * servers the library was loaded on again.
 */
export type RedisLuaHealthDetails =
  { status: 'up'; nodes: number; latencyMs: number; scripts: number; scriptsReloaded: number } | { status: 'down'; message: string };

/** `{ [key]: details }`: pass it straight to Terminus's `HealthCheckService.check`. */
export type RedisLuaHealthResult<Key extends string = string> = Record<Key, RedisLuaHealthDetails>;

/**
 * A health indicator for the module's Redis, usable with `@nestjs/terminus` (no import of Terminus
 * needed) or on its own. It PINGs the server, or every master of a cluster, checks with SCRIPT EXISTS
 * that the bundled and application scripts are cached there, and SCRIPT LOADs any that are missing
 * (after a restart or a failover), so the next calls need no NOSCRIPT round trip. In functions mode it
 * checks that the library is there (FUNCTION LIST) and loads it where it is not.
 *
 * ```ts
 * @Get('health') @HealthCheck()
 * check() { return this.health.check([() => this.redisLua.isHealthy('redis')]); }
 * ```
 */
@Injectable()
export class RedisLuaHealthIndicator {
  constructor(private readonly engine: LuaScriptEngine) {}

  /** `up` with node count, round-trip latency and script counts, or `down` with the reason. */
  async isHealthy<Key extends string = 'redis'>(key: Key = 'redis' as Key, { timeoutMs = 1000 } = {}): Promise<RedisLuaHealthResult<Key>> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    const check = this.check();
    try {
      const { nodes, reloaded } = await Promise.race([check, timeout]);
      const details: RedisLuaHealthDetails = {
        status: 'up',
        nodes,
        latencyMs: Math.round((performance.now() - started) * 10) / 10,
        scripts: this.engine.scripts.length,
        scriptsReloaded: reloaded,
      };
      return { [key]: details } as RedisLuaHealthResult<Key>;
    } catch (err) {
      check.catch(() => undefined);
      return { [key]: { status: 'down', message: (err as Error).message } } as RedisLuaHealthResult<Key>;
    } finally {
      clearTimeout(timer);
    }
  }

  private async check(): Promise<{ nodes: number; reloaded: number }> {
    if (this.engine.client.status !== 'ready') {
      throw new Error(`Redis connection is ${this.engine.client.status}`);
    }
    return this.engine.reloadMissing();
  }
}
