import {
  applyDecorators,
  SetMetadata,
  UseGuards,
  UseInterceptors,
  type CanActivate,
  type ExecutionContext,
  type NestInterceptor,
  type Type,
} from '@nestjs/common';

/**
 * The one rule of the library's route decorators: a decorator stores its metadata and applies the
 * guard or interceptor that acts on it, so that it works on its own (no `@UseGuards`, no global
 * registration needed); the guard or interceptor reads the metadata once per route and keeps it.
 */

/** What a route decorator applies with its metadata. */
export interface RouteBehaviour {
  readonly guard?: Type<CanActivate>;
  readonly interceptor?: Type<NestInterceptor>;
}

/** Metadata under `key` plus the behaviour that acts on it, on a handler or a controller class. */
export function routeDecorator(key: string, metadata: unknown, behaviour: RouteBehaviour): MethodDecorator & ClassDecorator {
  const decorators: Array<ClassDecorator | MethodDecorator> = [SetMetadata(key, metadata)];
  if (behaviour.guard) decorators.push(UseGuards(behaviour.guard));
  if (behaviour.interceptor) decorators.push(UseInterceptors(behaviour.interceptor));
  return applyDecorators(...decorators);
}

type Target = object;

/**
 * A value per route (handler and class), computed on a route's first request and kept: the
 * reflector walks the metadata on every call otherwise, and route metadata is static once the
 * application is up. A handler inherited by several controller classes gets one entry per class.
 */
export class RouteCache<T> {
  private readonly routes = new WeakMap<Target, Map<Target, T>>();

  /** `build` makes a route's value from its handler and controller class (called once per route). */
  constructor(private readonly build: (handler: Target, controller: Target) => T) {}

  /** The value of the context's route (no allocation once the route is known: it runs on every request). */
  get(context: ExecutionContext): T {
    const handler = context.getHandler();
    const controller = context.getClass();
    let byClass = this.routes.get(handler);
    const known = byClass?.get(controller);
    if (known !== undefined) return known;
    const value = this.build(handler, controller);
    if (!byClass) {
      byClass = new Map();
      this.routes.set(handler, byClass);
    }
    byClass.set(controller, value);
    return value;
  }
}
