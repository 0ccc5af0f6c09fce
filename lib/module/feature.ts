import type { Provider } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';
import type { RedisLuaModuleOptions } from './redis-lua-options.interface';

/** What calls a handler: an HTTP route, a microservice message pattern, a GraphQL resolver, a WebSocket gateway. */
export type BootTransport = 'http' | 'rpc' | 'graphql' | 'ws';

/** How messages name a handler of each transport. */
export const TRANSPORT_NAMES: Readonly<Record<BootTransport, string>> = {
  http: 'HTTP route',
  rpc: 'microservice message handler',
  graphql: 'GraphQL resolver',
  ws: 'WebSocket gateway handler',
};

/** One handler (a controller route, a message pattern, a resolver or gateway method), as a feature's boot check sees it. */
export interface BootRoute {
  /** The controller (or resolver, gateway) class. */
  readonly controller: abstract new (...args: never[]) => unknown;
  /** The handler method. */
  readonly handler: (...args: unknown[]) => unknown;
  readonly transport: BootTransport;
  /**
   * HTTP routes: every path pattern the handler answers on (global prefix, RouterModule path,
   * controller and handler paths joined, e.g. `/api/orders/:id`); empty for other transports.
   */
  readonly paths: readonly string[];
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
  /** Run at boot for every handler of the application: throws (naming `route.where`) on one that cannot work. */
  checkRoute?(route: BootRoute): void;
  /** For the boot report (`forRoot({ report: true })`): what the feature applies to a handler, if anything (e.g. its rules). */
  describeRoute?(route: BootRoute): string | undefined;
}
