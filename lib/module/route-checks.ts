import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { BootRoute } from './feature';
import { FEATURES } from './features';
import type { RedisConnection } from './redis-connection';
import { REDIS_LUA_CONNECTION, REDIS_LUA_OPTIONS } from './redis-lua.constants';
import type { RedisLuaModuleOptions } from './redis-lua-options.interface';

/**
 * Runs every feature's route check over every route of every controller at boot, so that a route
 * that cannot work stops boot with an error naming it (instead of failing on every request).
 */
@Injectable()
export class RouteChecks implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(REDIS_LUA_OPTIONS) private readonly options: RedisLuaModuleOptions,
    @Inject(REDIS_LUA_CONNECTION) private readonly connection: RedisConnection,
  ) {}

  onModuleInit(): void {
    const checks = FEATURES.flatMap((feature) => (feature.checkRoute ? [feature.checkRoute] : []));
    try {
      for (const route of this.routes()) for (const check of checks) check(route);
    } catch (err) {
      // Boot fails: no shutdown hook will run, so close the connection the module opened.
      if (this.connection.owned) this.connection.client.disconnect();
      throw err;
    }
  }

  private *routes(): Generator<BootRoute> {
    for (const wrapper of this.discovery.getControllers()) {
      const { metatype, instance } = wrapper;
      if (typeof metatype !== 'function' || !instance) continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const handler = prototype[name] as BootRoute['handler'];
        yield {
          controller: metatype as BootRoute['controller'],
          handler,
          where: `${metatype.name}.${name}`,
          reflector: this.reflector,
          options: this.options,
        };
      }
    }
  }
}
