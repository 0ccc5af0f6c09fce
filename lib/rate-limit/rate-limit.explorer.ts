import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { RedisConnection } from '../module/redis-connection';
import { REDIS_LUA_CONNECTION, REDIS_LUA_OPTIONS } from '../module/redis-lua.constants';
import type { RedisLuaModuleOptions } from '../module/redis-lua-options.interface';
import { RATE_LIMIT_METADATA, SKIP_RATE_LIMIT_METADATA, type RateLimitMetadata } from './rate-limit.decorator';
import { resolveRules } from './rate-limit.options';

/**
 * Checks every `@RateLimit` route of the application at boot, with the module's defaults filled in:
 * a rule without a `limit` or `windowMs` needs a default in `forRoot({ rateLimit })`; rules with fixed
 * limits must not repeat each other, and a fixed `cost` must not exceed the smallest limit. A failure
 * stops boot with an error naming the route and the option (instead of the route failing on every
 * request). Values given in `@RateLimit` itself were already checked when the class was declared.
 */
@Injectable()
export class RateLimitRouteExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(REDIS_LUA_OPTIONS) private readonly options: RedisLuaModuleOptions,
    @Inject(REDIS_LUA_CONNECTION) private readonly connection: RedisConnection,
  ) {}

  onModuleInit(): void {
    try {
      this.checkRoutes();
    } catch (err) {
      // Boot fails: no shutdown hook will run, so close the connection the module opened.
      if (this.connection.owned) this.connection.client.disconnect();
      throw err;
    }
  }

  private checkRoutes(): void {
    const defaults = this.options.rateLimit ?? {};
    for (const wrapper of this.discovery.getControllers()) {
      const { metatype, instance } = wrapper;
      if (typeof metatype !== 'function' || !instance) continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const handler = prototype[name] as (...args: unknown[]) => unknown;
        const targets = [handler, metatype];
        if (this.reflector.getAllAndOverride<boolean>(SKIP_RATE_LIMIT_METADATA, targets)) continue;
        const route = this.reflector.getAllAndOverride<RateLimitMetadata | undefined>(RATE_LIMIT_METADATA, targets);
        if (!route) continue;
        const where = `@RateLimit on ${metatype.name}.${name}`;
        route.rules.forEach((rule, i) => {
          const missing =
            rule.limit === undefined && defaults.limit === undefined
              ? 'limit'
              : rule.windowMs === undefined && defaults.windowMs === undefined
                ? 'windowMs'
                : undefined;
          if (missing) {
            const at = route.rules.length === 1 ? '' : `rules[${i}].`;
            throw new Error(`nest-redis-lua: ${where}: option "${at}${missing}" is missing and forRoot({ rateLimit }) has no default`);
          }
        });
        // Rules whose limits are fixed (not functions of the request) are checked as a whole now:
        // duplicates, token-bucket bounds, and a fixed cost above the smallest limit.
        if (route.rules.every((rule) => typeof rule.limit !== 'function')) {
          const rules = route.rules.map((rule) => ({
            ...rule,
            limit: (rule.limit ?? defaults.limit) as number,
            windowMs: (rule.windowMs ?? defaults.windowMs) as number,
          }));
          const resolved = resolveRules(rules, where, defaults);
          const smallest = Math.min(...resolved.map((rule) => rule.limit));
          if (typeof route.cost === 'number' && route.cost > smallest) {
            throw new Error(
              `nest-redis-lua: ${where}: option "cost" (${route.cost}) is above the smallest limit (${smallest}): no request could pass`,
            );
          }
        }
      }
    }
  }
}
