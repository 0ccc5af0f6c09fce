import { RESPONSE_PASSTHROUGH_METADATA, ROUTE_ARGS_METADATA, SSE_METADATA } from '@nestjs/common/constants';
import { TRANSPORT_NAMES, type BootRoute, type RedisLuaFeature } from '../module/feature';
import { fail, inputSite } from '../core/validation';
import { IdempotencyInputError } from './idempotency.errors';
import { IDEMPOTENT_METADATA, type IdempotentMetadata } from './idempotency.interceptor';
import { IdempotencyService } from './idempotency.service';

/** Nest's `RouteParamtypes.RESPONSE` (the `@Res()` parameter), as its route-arguments metadata keys it. */
const RESPONSE_PARAM = 1;

/** Idempotency keys as a feature of the module: `IdempotencyService` and the boot check of `@Idempotent()` routes. */
export const idempotencyFeature: RedisLuaFeature = {
  name: 'idempotency keys',
  providers: [IdempotencyService],
  checkRoute: checkIdempotentRoute,
  describeRoute: (route) => (metaOf(route) ? `idempotent (header ${metaOf(route)!.options.header ?? 'Idempotency-Key'})` : undefined),
};

function metaOf({ handler, reflector }: BootRoute): IdempotentMetadata | undefined {
  return reflector.get<IdempotentMetadata | undefined>(IDEMPOTENT_METADATA, handler);
}

/**
 * `@Idempotent()` captures the answer the handler returns: a handler that is not an HTTP route, or
 * writes its own response (`@Res()` without `passthrough`, `@Sse()`), cannot be replayed.
 */
function checkIdempotentRoute(route: BootRoute): void {
  const meta = metaOf(route);
  if (!meta) return;
  const site = inputSite(`@Idempotent on ${route.where}`, IdempotencyInputError);
  if (route.transport !== 'http') {
    fail(site, 'handler', `it answers HTTP requests with the Idempotency-Key header; this is a ${TRANSPORT_NAMES[route.transport]}`);
  }
  const { handler, reflector } = route;
  if (reflector.get<boolean | undefined>(SSE_METADATA, handler)) {
    fail(site, 'handler', 'a server-sent events (@Sse) stream cannot be stored and replayed');
  }
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, route.controller, handler.name) ?? {}) as Record<string, unknown>;
  const writesResponse = Object.keys(args).some((k) => k.split(':')[0] === String(RESPONSE_PARAM));
  const ownResponse = writesResponse && !reflector.get<boolean | undefined>(RESPONSE_PASSTHROUGH_METADATA, handler);
  if (ownResponse && !meta.options.manual) {
    fail(
      site,
      'handler',
      'the handler writes its own response (@Res() without passthrough), which cannot be stored and replayed: return the body, use @Res({ passthrough: true }), or option "manual" with @CurrentIdempotency()',
    );
  }
  if (meta.options.manual && !ownResponse) {
    fail(
      site,
      'manual',
      'option "manual" is for a handler that writes its own response with @Res() (without passthrough); this one returns its answer',
    );
  }
}
