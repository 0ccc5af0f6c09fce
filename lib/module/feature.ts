import type { Provider } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';
import type { RedisLuaModuleOptions } from './redis-lua-options.interface';

/** One controller route, as a feature's boot check sees it. */
export interface BootRoute {
  /** The controller class. */
  readonly controller: abstract new (...args: never[]) => unknown;
  /** The handler method. */
  readonly handler: (...args: unknown[]) => unknown;
  /** `Controller.method`, for messages. */
  readonly where: string;
  /** Nest's reflector, to read the route's metadata (handler over class). */
  readonly reflector: Reflector;
  /** The module's options (feature sections included). */
  readonly options: RedisLuaModuleOptions;
}

/**
 * What a feature brings to the module: its providers, its section of the module options with the
 * check run at boot, and a check of every controller route. The module composes the list in
 * ./features.ts and imports nothing else of any feature.
 */
export interface RedisLuaFeature {
  /** Shown in messages, e.g. `rate limiting`. */
  readonly name: string;
  /** Its section of `forRoot({ ... })`, e.g. `rateLimit`, and the check of that section (at boot, before the connection opens). */
  readonly options?: { readonly key: string; validate(section: unknown): void };
  /** Registered by the module and exported to the application (the module is global by default). */
  readonly providers: readonly Provider[];
  /** Run at boot for every route of every controller: throws (naming `route.where`) on a route that cannot work. */
  checkRoute?(route: BootRoute): void;
}
