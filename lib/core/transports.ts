import { IntrinsicException, type ExecutionContext } from '@nestjs/common';
import { RedisLuaHttpException, RedisLuaUnavailableException, type HeaderTarget } from './http';

/**
 * What the library reads of GraphQL resolver calls and WebSocket messages, and how it answers them:
 * the HTTP request behind a GraphQL call (for the client address and the response headers), the
 * address of a WebSocket client, and the transport's own error for a library HTTP exception (429,
 * 409, 503): a GraphQL error with `extensions.code`, a `WsException`. Read from the execution
 * context's arguments, without importing @nestjs/graphql or @nestjs/websockets (optional for apps).
 */

/** The parts of an HTTP request the library reads (Express or Fastify). */
export interface AddressedRequest {
  ip?: string;
  socket?: { remoteAddress?: string };
}

/** The GraphQL context of Nest's drivers: Apollo `{ req }` (and `res` or `reply` when the app's context adds them), Mercurius `{ req, reply }`. */
interface GraphQLContext {
  req?: AddressedRequest & { res?: HeaderTarget };
  res?: HeaderTarget;
  reply?: HeaderTarget & { request?: AddressedRequest };
}

/** The HTTP request and response behind a GraphQL resolver call (context argument 2), where the driver gives them. */
export function graphqlHttp(context: ExecutionContext): { req?: AddressedRequest; res?: HeaderTarget } {
  const graphql = context.getArgByIndex<GraphQLContext | undefined>(2);
  const req = graphql?.req ?? graphql?.reply?.request;
  // Express behind Apollo: the response hangs on the request (`req.res`).
  return { req, res: graphql?.res ?? graphql?.reply ?? graphql?.req?.res };
}

/** A socket.io `Socket` (its handshake's address) or a `ws` WebSocket (its underlying socket). */
interface WsClient {
  handshake?: { address?: string };
  conn?: { remoteAddress?: string };
  _socket?: { remoteAddress?: string };
}

/** The peer address of a WebSocket message's client: socket.io's handshake address, or a `ws` client's socket. */
export function wsAddress(context: ExecutionContext): string | undefined {
  const client = context.switchToWs().getClient<WsClient | undefined>();
  return client?.handshake?.address ?? client?.conn?.remoteAddress ?? client?._socket?.remoteAddress;
}

/** GraphQL error codes of the statuses the library answers (`extensions.code`). */
const GRAPHQL_CODES: Readonly<Record<number, string>> = {
  400: 'BAD_REQUEST',
  409: 'CONFLICT',
  429: 'TOO_MANY_REQUESTS',
  503: 'SERVICE_UNAVAILABLE',
};

/**
 * A GraphQL error of the library: graphql-js copies `extensions` into the response's error. An
 * IntrinsicException, so Nest does not log it as a fault (it is an answer, like the 429 it stands for).
 */
export class RedisLuaGraphQLError extends IntrinsicException {
  override readonly name = 'RedisLuaGraphQLError';

  constructor(
    message: string,
    /** `{ code, statusCode, ... }`: the code (`TOO_MANY_REQUESTS`, ...) and the HTTP answer's body fields. */
    readonly extensions: Readonly<Record<string, unknown>>,
  ) {
    super(message);
  }
}

/** `WsException` of @nestjs/websockets, loaded on the first WebSocket answer (every gateway app has the package). */
let wsException: (new (error: object) => Error) | undefined;

function newWsException(error: object): Error {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional for apps without gateways: loaded only when one answers
  wsException ??= (require('@nestjs/websockets') as { WsException: new (error: object) => Error }).WsException;
  return new wsException(error);
}

/**
 * The transport's answer for an error of a guard or interceptor: in a GraphQL resolver, one of the
 * library's HTTP exceptions (429, 409, 503, ...; never the application's own) becomes a {@link RedisLuaGraphQLError} (message, `extensions: { code, statusCode, ... }`);
 * in a WebSocket gateway, a `WsException` whose error is `{ status: 'error', statusCode, message, ... }`
 * (what Nest's gateway filter emits as `exception`). Anything else, and every error over HTTP, as it is.
 */
export function transportAnswer(context: ExecutionContext, err: unknown): unknown {
  if (!(err instanceof RedisLuaHttpException || err instanceof RedisLuaUnavailableException)) return err;
  const type = context.getType<string>();
  if (type !== 'graphql' && type !== 'ws') return err;
  const { message, ...details } = err.getResponse() as { message: string; statusCode: number };
  if (type === 'ws') return newWsException({ status: 'error', message, ...details });
  return new RedisLuaGraphQLError(message, { code: GRAPHQL_CODES[err.getStatus()] ?? 'INTERNAL_SERVER_ERROR', ...details });
}
