/**
 * `@RateLimit` on GraphQL resolvers (@nestjs/graphql with Apollo on Express and on Fastify, and with
 * Mercurius) and on a WebSocket gateway (@nestjs/websockets with socket.io), with the real packages,
 * over real connections, on standalone and cluster: the default key is the client IP from the
 * context, a key function works too, and a denial is the transport's error (a GraphQL error with
 * `extensions.code` `TOO_MANY_REQUESTS`, a `WsException` emitted as `exception`).
 */
import { type INestApplication, Injectable, Module } from '@nestjs/common';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Args, GqlExecutionContext, GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import { MercuriusDriver, type MercuriusDriverConfig } from '@nestjs/mercurius';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import type { AddressInfo } from 'node:net';
import { LockService, RateLimit, RedisLuaModule, WithLock, type RedisLuaModuleOptions } from 'nest-redis-lua';
import { freePort } from '../harness/redis-server';
import { io, type Socket } from 'socket.io-client';
import { describeTopologies } from '../harness/topologies';
import { DECIDED } from '../harness/decided';

const HOUR = 3_600_000;

/** The user a GraphQL request names in its `x-user` header (Apollo's and Mercurius's context both hold `req`). */
const graphqlUser = (ctx: Parameters<NonNullable<import('nest-redis-lua').RateLimitRouteOptions['key']>>[0]): string =>
  String(GqlExecutionContext.create(ctx).getContext<{ req: { headers: Record<string, string | undefined> } }>().req.headers['x-user']);

@Resolver()
class LimitedResolver {
  /** Per client IP (the default key): 2 per hour. */
  @Query(() => String)
  @RateLimit({ limit: 2, windowMs: HOUR })
  ping(): string {
    return 'pong';
  }

  /** Another resolver: its own bucket for the same client. */
  @Query(() => String)
  @RateLimit({ limit: 1, windowMs: HOUR, name: 'search' })
  search(@Args('q', { type: () => String }) q: string): string {
    return `found ${q}`;
  }

  /** Per user, from the request's header. */
  @Query(() => String)
  @RateLimit({ limit: 1, windowMs: HOUR, key: graphqlUser })
  me(): string {
    return 'you';
  }

  /** Under a lock: a held lock is a CONFLICT error. */
  @Query(() => String)
  @WithLock(() => 'report', { waitMs: 0 })
  report(): string {
    return 'report';
  }
}

@Injectable()
@WebSocketGateway()
class LimitedGateway {
  /** Per client address (the default key): 2 per hour. */
  @SubscribeMessage('ping')
  @RateLimit({ limit: 2, windowMs: HOUR })
  ping(): string {
    return 'pong';
  }

  /** Per room named in the message. */
  @SubscribeMessage('say')
  @RateLimit({ limit: 1, windowMs: HOUR, key: (ctx) => String(ctx.switchToWs().getData<{ room?: string }>().room) })
  say(@MessageBody() body: { room: string }): string {
    return `said in ${body.room}`;
  }
}

type Driver = 'apollo-express' | 'apollo-fastify' | 'mercurius';

interface GraphQLAnswer {
  status: number;
  retryAfter: string | null;
  data: Record<string, string> | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

describeTopologies('rate limit over GraphQL and WebSocket', (t) => {
  const apps: INestApplication[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.close();
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  /** An app listening on a free loopback port; resolves with its base URL. */
  async function listen(
    imports: NonNullable<Parameters<typeof Module>[0]>['imports'],
    providers: Array<new () => object>,
    fastify: boolean,
    options: RedisLuaModuleOptions = { ...t.connection(), rateLimit: DECIDED },
  ) {
    @Module({ imports: [RedisLuaModule.forRoot({ ...options, keyPrefix: t.prefix() }), ...(imports ?? [])], providers })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = fastify
      ? moduleRef.createNestApplication(new FastifyAdapter(), { logger: false })
      : moduleRef.createNestApplication({ logger: false });
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  function graphqlModule(driver: Driver) {
    return driver === 'mercurius'
      ? GraphQLModule.forRoot<MercuriusDriverConfig>({ driver: MercuriusDriver, autoSchemaFile: true })
      : GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true, includeStacktraceInErrorResponses: false });
  }

  async function query(base: string, text: string, user?: string): Promise<GraphQLAnswer> {
    const response = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(user ? { 'x-user': user } : {}) },
      body: JSON.stringify({ query: text }),
    });
    const body = (await response.json()) as Omit<GraphQLAnswer, 'status' | 'retryAfter'>;
    return { status: response.status, retryAfter: response.headers.get('retry-after'), ...body };
  }

  /** A connection to a port nothing listens on, failing closed within 100 ms. */
  const unreachable = async (): Promise<RedisLuaModuleOptions> => ({
    url: `redis://127.0.0.1:${await freePort()}`,
    lazyConnect: true,
    rateLimit: { failMode: 'closed', timeoutMs: 100 },
  });

  describe.each<Driver>(['apollo-express', 'apollo-fastify', 'mercurius'])('GraphQL (%s)', (driver) => {
    it('answers SERVICE_UNAVAILABLE when Redis is unavailable and the rule fails closed', async () => {
      const base = await listen([graphqlModule(driver)], [LimitedResolver], driver !== 'apollo-express', await unreachable());
      const answer = await query(base, '{ ping }');
      expect(answer.data).toBeNull();
      expect(answer.errors?.[0]).toMatchObject({
        message: 'Rate limit unavailable, try again later',
        extensions: { code: 'SERVICE_UNAVAILABLE', statusCode: 503, retryAfter: 1 },
      });
    });

    it('limits a resolver by client IP and answers a GraphQL error with extensions.code TOO_MANY_REQUESTS', async () => {
      const base = await listen([graphqlModule(driver)], [LimitedResolver], driver !== 'apollo-express');
      expect((await query(base, '{ ping }')).data).toEqual({ ping: 'pong' });
      expect((await query(base, '{ ping }')).data).toEqual({ ping: 'pong' });
      const denied = await query(base, '{ ping }');
      expect(denied.status).toBe(200); // GraphQL over HTTP: the error is in the body
      expect(denied.data).toBeNull();
      expect(denied.errors).toHaveLength(1);
      expect(denied.errors?.[0]).toMatchObject({
        message: 'Rate limit "default" exceeded: 2 per 3600000 ms',
        extensions: {
          code: 'TOO_MANY_REQUESTS',
          statusCode: 429,
          retryAfterMs: expect.any(Number),
          limit: { name: 'default', limit: 2, windowMs: HOUR, algorithm: 'sliding-log' },
        },
      });
      expect(denied.errors?.[0].extensions?.retryAfterMs).toBeGreaterThan(HOUR - 60_000);
      // Where the driver hands the guard the HTTP response (Apollo on Express, Mercurius), the headers go out too.
      if (driver === 'apollo-fastify') expect(denied.retryAfter).toBeNull();
      else expect(Number(denied.retryAfter)).toBeGreaterThan(3_500);

      // Another resolver of the same client has its own bucket.
      expect((await query(base, '{ search(q: "x") }')).data).toEqual({ search: 'found x' });
      expect((await query(base, '{ search(q: "x") }')).errors?.[0].extensions).toMatchObject({
        code: 'TOO_MANY_REQUESTS',
        limit: { name: 'search' },
      });
    });

    it('@WithLock: a held lock answers a GraphQL error with extensions.code CONFLICT', async () => {
      const base = await listen([graphqlModule(driver)], [LimitedResolver], driver !== 'apollo-express');
      const locks = apps[apps.length - 1].get(LockService);
      const held = await locks.acquire('report');
      const answer = await query(base, '{ report }');
      expect(answer.data).toBeNull();
      expect(answer.errors?.[0].extensions).toMatchObject({ code: 'CONFLICT', statusCode: 409, retryAfter: expect.any(Number) });
      await held.release();
      expect((await query(base, '{ report }')).data).toEqual({ report: 'report' });
    });

    it('limits by a key function reading the request', async () => {
      const base = await listen([graphqlModule(driver)], [LimitedResolver], driver !== 'apollo-express');
      expect((await query(base, '{ me }', 'ann')).data).toEqual({ me: 'you' });
      expect((await query(base, '{ me }', 'bob')).data).toEqual({ me: 'you' });
      expect((await query(base, '{ me }', 'ann')).errors?.[0].extensions).toMatchObject({ code: 'TOO_MANY_REQUESTS', statusCode: 429 });
    });
  });

  describe('WebSocket gateway (socket.io)', () => {
    async function open(base: string): Promise<Socket> {
      const socket = io(base, { transports: ['websocket'], reconnection: false });
      sockets.push(socket);
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      });
      return socket;
    }
    const connect = async (): Promise<{ base: string; socket: Socket }> => {
      const base = await listen([], [LimitedGateway], false);
      return { base, socket: await open(base) };
    };

    /** Emits `event` and resolves with its acknowledgement, or with the `exception` the gateway emitted instead. */
    function send(socket: Socket, event: string, data: object): Promise<{ ack?: unknown; exception?: Record<string, unknown> }> {
      return new Promise((resolve) => {
        const onException = (exception: Record<string, unknown>): void => resolve({ exception });
        socket.once('exception', onException);
        socket.emit(event, data, (ack: unknown) => {
          socket.off('exception', onException);
          resolve({ ack });
        });
      });
    }

    it('limits a message handler by client address and emits a WsException with the 429 body', async () => {
      const { base, socket } = await connect();
      expect(await send(socket, 'ping', {})).toEqual({ ack: 'pong' });
      expect(await send(socket, 'ping', {})).toEqual({ ack: 'pong' });
      const denied = await send(socket, 'ping', {});
      expect(denied.exception).toMatchObject({
        status: 'error',
        statusCode: 429,
        message: 'Rate limit "default" exceeded: 2 per 3600000 ms',
        retryAfterMs: expect.any(Number),
        limit: { name: 'default', limit: 2 },
      });
      // A second connection from the same address shares the bucket (the default key is the client IP).
      expect((await send(await open(base), 'ping', {})).exception).toMatchObject({ statusCode: 429 });
    });

    it('emits a WsException with the 503 body when Redis is unavailable and the rule fails closed', async () => {
      const base = await listen([], [LimitedGateway], false, await unreachable());
      expect((await send(await open(base), 'ping', {})).exception).toMatchObject({
        status: 'error',
        statusCode: 503,
        message: 'Rate limit unavailable, try again later',
      });
    });

    it('limits by a key function reading the message', async () => {
      const { socket } = await connect();
      expect(await send(socket, 'say', { room: 'a' })).toEqual({ ack: 'said in a' });
      expect(await send(socket, 'say', { room: 'b' })).toEqual({ ack: 'said in b' });
      expect((await send(socket, 'say', { room: 'a' })).exception).toMatchObject({ status: 'error', statusCode: 429 });
    });
  });
});
