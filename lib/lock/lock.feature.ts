import { TRANSPORT_NAMES, type BootRoute, type RedisLuaFeature } from '../module/feature';
import { fail, inputSite } from '../core/validation';
import { WITH_LOCK_METADATA, WITH_SEMAPHORE_METADATA, type CompiledLockResource, type WithLockMetadata } from './lock-resource';
import { LockInputError } from './lock.errors';
import { DEFAULT_LOCK_TTL_MS, DEFAULT_LOCK_WAIT_MS, LOCK_OPTION_KEYS, validateLockOptions, type LockModuleOptions } from './lock.options';
import { LockService } from './lock.service';
import { SemaphoreService } from './semaphore.service';

/** Locks as a feature of the module: `LockService`, `SemaphoreService` and the `lock` section of the module options. */
export const lockFeature: RedisLuaFeature = {
  name: 'locks',
  options: {
    key: 'lock',
    validate: (section) => validateLockOptions(section as LockModuleOptions | undefined, MODULE_SITE, LOCK_OPTION_KEYS.module),
  },
  providers: [LockService, SemaphoreService],
  checkRoute: checkLockRoute,
  describeRoute: describeLockRoute,
};

/** The route's `@WithLock` and `@WithSemaphore` metadata. */
function routeLeases({ handler, reflector }: BootRoute): WithLockMetadata[] {
  return [WITH_LOCK_METADATA, WITH_SEMAPHORE_METADATA].flatMap((key) => reflector.get<WithLockMetadata | undefined>(key, handler) ?? []);
}

function describeResource({ resource }: CompiledLockResource): string {
  return typeof resource === 'function' ? 'a resource function' : `"${resource.map((p) => (typeof p === 'string' ? p : p.text)).join('')}"`;
}

/** `resource "order:{params.id}", ttl 30000 ms, wait 5000 ms` (a semaphore's with its permits) for the boot report. */
function describeLockRoute(route: BootRoute): string | undefined {
  const { options } = route;
  const parts = routeLeases(route).map((meta) => {
    const what = meta.options.permits
      ? `semaphore ${describeResource(meta.resources[0])} (${meta.options.permits} permits)`
      : `${meta.options.mode === 'read' ? 'read lock on' : 'resource'} ${meta.resources.map(describeResource).join(' + ')}`;
    const ttl = meta.options.ttlMs ?? options.lock?.ttlMs ?? DEFAULT_LOCK_TTL_MS;
    const wait = meta.options.waitMs ?? options.lock?.waitMs ?? DEFAULT_LOCK_WAIT_MS;
    return `${what}, ttl ${ttl} ms, wait ${wait} ms`;
  });
  return parts.length === 0 ? undefined : parts.join('; ');
}

/** A path parameter in Nest's route syntax (`:id`, `:id?`, `*path`), for Express and Fastify alike. */
const PATH_PARAM = /[:*]([A-Za-z_$][\w$]*)/g;

/**
 * Checks the resource templates of `@WithLock` and `@WithSemaphore`: their placeholders read the
 * HTTP request, so they need an HTTP route, and a `{params.x}` must be a parameter of every path the
 * route answers on (a misspelt one would answer every request 400, blaming the client).
 */
function checkLockRoute(route: BootRoute): void {
  const { transport, paths } = route;
  for (const meta of routeLeases(route)) {
    const site = inputSite(meta.label, LockInputError);
    for (const { resource } of meta.resources) {
      if (typeof resource === 'function') continue;
      for (const part of resource) {
        if (typeof part === 'string') continue;
        if (transport !== 'http') {
          fail(
            site,
            'resource',
            `placeholder ${part.text} reads the HTTP request, but this is a ${TRANSPORT_NAMES[transport]}: give a function of the ExecutionContext as the resource`,
          );
        }
        if (part.source !== 'params') continue;
        for (const path of paths) {
          const params = [...path.matchAll(PATH_PARAM)].map((match) => match[1]);
          if (!params.includes(part.path[0])) {
            const known = params.length === 0 ? 'it has no parameters' : `its parameters: ${params.join(', ')}`;
            fail(site, 'resource', `placeholder ${part.text} names no parameter of the route path "${path}" (${known})`);
          }
        }
      }
    }
  }
}

const MODULE_SITE = inputSite('RedisLuaModule.forRoot({ lock })', LockInputError);
