import { Module } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { Writable } from 'node:stream';
import { InjectScript, KeyBuilder, LuaScript, LuaScriptEngine, REDIS_LUA_KEYS, RedisLuaModule } from 'nest-redis-lua';
import { bootError } from '../harness/boot';
import { describeTopologies } from '../harness/topologies';

/** Appends ARGV[1] to the list KEYS[1] and returns the list's length: the order calls ran in. */
const APPEND = "return redis.call('RPUSH', KEYS[1], ARGV[1])";

class Probe {
  constructor(@InjectScript('append') readonly append: LuaScript<number>) {}
}

@Module({ imports: [RedisLuaModule.forFeature([{ name: 'append', lua: APPEND, numberOfKeys: 1 }])], providers: [Probe] })
class ProbeModule {}

/** The sockets the module's connection writes scripts to: the server's, or each master's. */
function sockets(client: Redis | Cluster): Writable[] {
  const nodes = 'nodes' in client && typeof client.nodes === 'function' && client.isCluster ? client.nodes('master') : [client as Redis];
  return nodes.map((node) => node.stream);
}

/**
 * Counts the writes handed to the operating system (Writable `_write` and `_writev` calls: one
 * system call each) on `targets` until the returned `stop` is called.
 */
function countSocketWrites(targets: Writable[]): { count(): number; stop(): void } {
  let writes = 0;
  const restore: Array<() => void> = [];
  for (const socket of targets) {
    const s = socket as Writable & { _writev?: Writable['_writev'] };
    const { _write, _writev } = s;
    s._write = function (this: Writable, ...args: Parameters<Writable['_write']>) {
      writes++;
      return _write.apply(this, args);
    };
    if (_writev) {
      s._writev = function (this: Writable, ...args: Parameters<NonNullable<Writable['_writev']>>) {
        writes++;
        return _writev.apply(this, args);
      };
    }
    restore.push(() => {
      s._write = _write;
      s._writev = _writev;
    });
  }
  return { count: () => writes, stop: () => restore.forEach((r) => r()) };
}

const CALLS = 200;

describeTopologies('write coalescing', (t) => {
  const boot = (coalesceWrites?: boolean) =>
    t.app([
      RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: t.prefix(), ...(coalesceWrites === undefined ? {} : { coalesceWrites }) }),
      ProbeModule,
    ]);

  /** CALLS script calls and plain commands in one callback, alternating on one list; the socket writes they took. */
  async function burst(coalesceWrites?: boolean): Promise<{ writes: number; list: string[]; replies: number[] }> {
    const app = await boot(coalesceWrites);
    const { append } = app.get(Probe);
    const client = app.get(LuaScriptEngine).client;
    const list = app.get<KeyBuilder>(REDIS_LUA_KEYS).key('test', ['burst']);
    const counter = countSocketWrites(sockets(client));
    try {
      const calls: Array<Promise<number>> = [];
      for (let i = 0; i < CALLS; i++) {
        // The application's own commands share the connection: they keep their place in the order.
        calls.push(i % 10 === 9 ? client.rpush(list, `app${i}`) : append.run([list], [`s${i}`]));
      }
      const replies = await Promise.all(calls);
      return { writes: counter.count(), list: await client.lrange(list, 0, -1), replies };
    } finally {
      counter.stop();
    }
  }

  const expectedList = Array.from({ length: CALLS }, (_, i) => (i % 10 === 9 ? `app${i}` : `s${i}`));

  it('sends the calls of one callback in batches of 16, in order, each answered', async () => {
    const { writes, list, replies } = await burst();
    expect(list).toEqual(expectedList);
    expect(replies).toEqual(Array.from({ length: CALLS }, (_, i) => i + 1));
    // 180 script calls cork the socket; the 20 plain commands ride in the open batch. One write per
    // 16 script calls, and one once the callback is done.
    expect(writes).toBeLessThanOrEqual(Math.ceil((CALLS * 0.9) / 16) + 1);
    expect(writes).toBeGreaterThanOrEqual(Math.ceil((CALLS * 0.9) / 16) - 1);
  });

  it('coalesceWrites: false writes every command on its own', async () => {
    const { writes, list } = await burst(false);
    expect(list).toEqual(expectedList);
    // Node writes each command at once while the kernel accepts it (a few may share a write if the
    // socket buffer fills): far more writes than with coalescing.
    expect(writes).toBeGreaterThan(CALLS / 2);
  });

  it('a lone call is written once its callback is done (nothing waits for a later call)', async () => {
    const app = await boot();
    const { append } = app.get(Probe);
    const list = app.get<KeyBuilder>(REDIS_LUA_KEYS).key('test', ['lone']);
    const counter = countSocketWrites(sockets(app.get(LuaScriptEngine).client));
    try {
      for (let i = 1; i <= 3; i++) {
        expect(await append.run([list], [`call${i}`])).toBe(i);
        expect(counter.count()).toBe(i);
      }
    } finally {
      counter.stop();
    }
  });

  it('calls made in several callbacks of one pass of the event loop share one write', async () => {
    const app = await boot();
    const { append } = app.get(Probe);
    const list = app.get<KeyBuilder>(REDIS_LUA_KEYS).key('test', ['pass']);
    const counter = countSocketWrites(sockets(app.get(LuaScriptEngine).client));
    try {
      // Five immediates queued together run in one check phase, each in its own callback (as the
      // requests an HTTP server reads in one poll phase): the flush, queued from the first of them,
      // runs in the next pass, after all of them. (Not five setTimeout(0): Node reads the clock for
      // each timer it creates, so on a loaded machine they may fall due in two passes.)
      const replies = await Promise.all(
        Array.from(
          { length: 5 },
          (_, i) => new Promise<number>((resolve, reject) => setImmediate(() => append.run([list], [`t${i}`]).then(resolve, reject))),
        ),
      );
      expect(replies.sort()).toEqual([1, 2, 3, 4, 5]);
      expect(counter.count()).toBe(1);
    } finally {
      counter.stop();
    }
  });
});

describe('option coalesceWrites', () => {
  it('must be a boolean', async () => {
    const error = await bootError({ coalesceWrites: 'yes' as unknown as boolean });
    expect(error?.message).toBe('nest-redis-lua: option "coalesceWrites" must be true or false, got "yes"');
  });
});
