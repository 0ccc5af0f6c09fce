import { Inject, Injectable, Logger, Optional, type OnModuleInit } from '@nestjs/common';
import { ApplicationConfig, DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { BootRoute, BootTransport } from './feature';
import { FEATURES } from './features';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import type { RedisConnection } from './redis-connection';
import { REDIS_LUA_CONNECTION, REDIS_LUA_OPTIONS } from './redis-lua.constants';
import type { RedisLuaModuleOptions } from './redis-lua-options.interface';

/**
 * Metadata keys of Nest's packages (their values are part of Nest's stable metadata): the HTTP path
 * of a controller or handler (`@nestjs/common`), a RouterModule path (suffixed with the application
 * id), and the markers of the other kinds of handlers, whose packages the library does not depend on.
 */
const PATH = 'path';
const MODULE_PATH = '__module_path__';
const HANDLER_MARKERS: ReadonlyArray<readonly [string, BootTransport]> = [
  ['microservices:pattern', 'rpc'],
  ['graphql:resolver_type', 'graphql'],
  ['websockets:message_mapping', 'ws'],
];

/**
 * Runs every feature's check over every handler of the application at boot (controller routes,
 * message patterns, GraphQL resolvers, WebSocket gateways), so that a handler that cannot work stops
 * boot with an error naming it, instead of failing on every request.
 */
@Injectable()
export class RouteChecks implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(REDIS_LUA_OPTIONS) private readonly options: RedisLuaModuleOptions,
    @Inject(REDIS_LUA_CONNECTION) private readonly connection: RedisConnection,
    private readonly engine: LuaScriptEngine,
    @Optional() private readonly config?: ApplicationConfig,
  ) {}

  onModuleInit(): void {
    const checks = FEATURES.flatMap((feature) => (feature.checkRoute ? [feature.checkRoute] : []));
    let routes: BootRoute[];
    try {
      routes = [...this.routes()];
      for (const route of routes) for (const check of checks) check(route);
    } catch (err) {
      // Boot fails: no shutdown hook will run, so close the connection the module opened.
      if (this.connection.owned) this.connection.client.disconnect();
      throw err;
    }
    if (this.options.report === true || this.options.debug === true) new Logger('RedisLua').log(this.report(routes));
  }

  /** The boot report: one table of the handlers each feature applies to, and the registered scripts. */
  private report(routes: readonly BootRoute[]): string {
    const rows: string[][] = [];
    for (const feature of FEATURES) {
      if (!feature.describeRoute) continue;
      for (const route of routes) {
        const text = feature.describeRoute(route);
        if (text !== undefined) rows.push([feature.name, route.where, route.paths.join(', ') || route.transport, text]);
      }
    }
    for (const script of this.engine.scripts) {
      rows.push([
        'script',
        script.name,
        script.sha.slice(0, 12),
        script.numberOfKeys === undefined ? 'any number of keys' : `${script.numberOfKeys} key${script.numberOfKeys === 1 ? '' : 's'}`,
      ]);
    }
    return `Boot report:\n${table(['feature', 'handler', 'route', 'applies'], rows)}`;
  }

  private *routes(): Generator<BootRoute> {
    const prefix = this.config?.getGlobalPrefix() ?? '';
    const controllers = new Set(this.discovery.getControllers());
    for (const wrapper of [...controllers, ...this.discovery.getProviders()]) {
      const { metatype } = wrapper;
      if (typeof metatype !== 'function' || typeof metatype.prototype !== 'object') continue;
      const prototype = metatype.prototype as Record<string, unknown>;
      const isController = controllers.has(wrapper);
      for (const name of this.scanner.getAllMethodNames(prototype)) {
        const handler = prototype[name] as BootRoute['handler'];
        const transport = transportOf(handler, isController);
        if (!transport) continue;
        yield {
          controller: metatype as BootRoute['controller'],
          handler,
          transport,
          paths: transport === 'http' ? httpPaths(prefix, modulePaths(wrapper), metatype, handler) : [],
          where: `${metatype.name}.${name}`,
          reflector: this.reflector,
          options: this.options,
        };
      }
    }
  }
}

/** Rows under a header, columns padded to their widest cell. */
function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  return all.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n');
}

type Wrapper = ReturnType<DiscoveryService['getControllers']>[number];

/** What calls `handler`, or `undefined` for a method that is no handler (a helper). */
function transportOf(handler: object, isController: boolean): BootTransport | undefined {
  if (isController && Reflect.getMetadata(PATH, handler) !== undefined) return 'http';
  return HANDLER_MARKERS.find(([key]) => Reflect.getMetadata(key, handler) !== undefined)?.[1];
}

/** The RouterModule paths of the controller's module (`[]` when it has none). */
function modulePaths(wrapper: Wrapper): string[] {
  const module = wrapper.host?.metatype;
  if (!module) return [];
  return Reflect.getMetadataKeys(module)
    .filter((key): key is string => typeof key === 'string' && key.startsWith(MODULE_PATH))
    .map((key) => String(Reflect.getMetadata(key, module)));
}

/** Every path pattern of a route: the prefixes and the controller's paths times the handler's paths. */
function httpPaths(prefix: string, modules: string[], controller: object, handler: object): string[] {
  const list = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : value === undefined ? [''] : [String(value)]);
  const head = [prefix, ...modules].filter((part) => part !== '').join('/');
  const paths: string[] = [];
  for (const base of list(Reflect.getMetadata(PATH, controller)))
    for (const own of list(Reflect.getMetadata(PATH, handler)))
      paths.push(`/${[head, base, own].filter((p) => p !== '').join('/')}`.replace(/\/{2,}/g, '/'));
  return paths;
}
