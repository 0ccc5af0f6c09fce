/**
 * IdempotencyService.run: one run per key across instances, replays, conflicts and waiting,
 * fingerprint mismatches, failed runs that run again, scopes, a runner killed with -9; standalone
 * and cluster.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  IdempotencyConflictError,
  IdempotencyInputError,
  IdempotencyMismatchError,
  IdempotencyService,
  Lock,
  RedisLuaModule,
} from 'nest-redis-lua';
import { describeTopologies, type TopologyContext } from '../harness/topologies';
import { deferred } from '../lock/lock-test-utils';

jest.setTimeout(60_000);

async function service(t: TopologyContext, prefix: string): Promise<IdempotencyService> {
  const app = await t.app([RedisLuaModule.forRoot({ ...t.connection(), keyPrefix: prefix })]);
  return app.get(IdempotencyService);
}

describeTopologies('IdempotencyService', (t) => {
  it('20 concurrent calls with one key over 2 instances: fn runs once, the others get IdempotencyConflictError; a retry replays', async () => {
    const prefix = t.prefix();
    const instances = [await service(t, prefix), await service(t, prefix)];
    let runs = 0;
    const release = deferred();
    const outcomes = Array.from({ length: 20 }, (_, i) =>
      instances[i % 2].run('pay-1', 'fp', async (claim) => {
        expect(claim).toBeInstanceOf(Lock);
        runs += 1;
        await release.promise;
        return { charged: 42 };
      }),
    );
    // The run holds until every other call has been answered (refused while it runs).
    let refusals = 0;
    const allRefused = deferred();
    const settled = outcomes.map((p) =>
      p.then(
        () => 'ok',
        (err: unknown) => {
          refusals += 1;
          if (refusals === 19) allRefused.resolve();
          return err;
        },
      ),
    );
    await allRefused.promise;
    release.resolve();
    const results = await Promise.all(settled);
    const conflicts = results.filter((r) => r instanceof IdempotencyConflictError).length;
    expect(runs).toBe(1);
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(conflicts).toBe(19);
    const conflict = results.find((r) => r instanceof IdempotencyConflictError) as IdempotencyConflictError;
    expect(conflict.key).toBe('pay-1');
    expect(conflict.retryAfterMs).toBeGreaterThan(0);
    expect(conflict.message).toBe(
      'nest-redis-lua: IdempotencyService.run: a run with idempotency key "pay-1" is in progress (waited 0 ms)',
    );
    // A retry after completion: the stored result, fn not run.
    const retry = await instances[1].run('pay-1', 'fp', () => {
      runs += 1;
      return { charged: 0 };
    });
    expect(retry).toEqual({ value: { charged: 42 }, replayed: true });
    expect(runs).toBe(1);
  });

  it("with waitMs, 20 concurrent calls over 2 instances all get the one run's result", async () => {
    const prefix = t.prefix();
    const instances = [await service(t, prefix), await service(t, prefix)];
    let runs = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        instances[i % 2].run(
          'order-7',
          'fp',
          async () => {
            runs += 1;
            await new Promise((r) => setTimeout(r, 50));
            return `order ${runs}`;
          },
          { waitMs: 60_000 },
        ),
      ),
    );
    expect(runs).toBe(1);
    expect(results.map((r) => r.value)).toEqual(Array.from({ length: 20 }, () => 'order 1'));
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
  });

  it('another fingerprint is IdempotencyMismatchError, running or done; a run that throws stores nothing and a retry runs again', async () => {
    const idem = await service(t, t.prefix());
    const inside = deferred();
    const finish = deferred();
    const first = idem.run('k', 'body-a', async () => {
      inside.resolve();
      await finish.promise;
      return 1;
    });
    await inside.promise;
    await expect(idem.run('k', 'body-b', () => 2)).rejects.toBeInstanceOf(IdempotencyMismatchError);
    finish.resolve();
    expect(await first).toEqual({ value: 1, replayed: false });
    const mismatch = (await idem.run('k', 'body-b', () => 2).catch((e: unknown) => e)) as IdempotencyMismatchError;
    expect(mismatch).toBeInstanceOf(IdempotencyMismatchError);
    expect(mismatch.message).toBe(
      'nest-redis-lua: IdempotencyService.run: idempotency key "k" was used with another fingerprint (another request payload)',
    );

    let attempts = 0;
    const failing = (): Promise<string> => {
      attempts += 1;
      return Promise.reject(new Error(`declined ${attempts}`));
    };
    await expect(idem.run('charge', 'fp', failing)).rejects.toThrow('declined 1');
    await expect(idem.run('charge', 'fp', failing)).rejects.toThrow('declined 2');
    expect(await idem.run('charge', 'fp', () => 'captured')).toEqual({ value: 'captured', replayed: false });
    expect(await idem.run('charge', 'fp', () => 'again')).toEqual({ value: 'captured', replayed: true });
    // undefined and objects come back as they went in.
    expect(await idem.run('none', 'fp', () => undefined)).toEqual({ value: undefined, replayed: false });
    expect(await idem.run('none', 'fp', () => 'x')).toEqual({ value: undefined, replayed: true });
  });

  it('a waiter whose run fails claims the key and runs itself; two scopes with one key do not meet', async () => {
    const prefix = t.prefix();
    const [a, b] = [await service(t, prefix), await service(t, prefix)];
    const inside = deferred();
    const fail = deferred();
    const first = a.run('job', 'fp', async () => {
      inside.resolve();
      await fail.promise;
      throw new Error('crashed');
    });
    await inside.promise;
    const waiting = b.run('job', 'fp', () => 'second run', { waitMs: 30_000 });
    fail.resolve();
    await expect(first).rejects.toThrow('crashed');
    expect(await waiting).toEqual({ value: 'second run', replayed: false });

    expect(await a.run('same', 'fp', () => 'tenant 1', { scope: 'tenant-1' })).toEqual({ value: 'tenant 1', replayed: false });
    expect(await b.run('same', 'fp', () => 'tenant 2', { scope: 'tenant-2' })).toEqual({ value: 'tenant 2', replayed: false });
    expect(await b.run('same', 'fp', () => 'none')).toEqual({ value: 'none', replayed: false });
    expect(await a.run('same', 'fp', () => 'x', { scope: 'tenant-1' })).toEqual({ value: 'tenant 1', replayed: true });
  });

  it('a runner process killed with -9: a retry runs fn once the lease has run out', async () => {
    const prefix = t.prefix();
    const idem = await service(t, prefix);
    const child = spawn(
      process.execPath,
      ['-r', '@swc-node/register', join(__dirname, 'fixtures', 'runner.ts'), JSON.stringify(t.connection()), prefix, 'webhook-9', '1000'],
      { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('running')) resolve();
        });
        child.once('exit', () => reject(new Error(`the runner exited before running: ${out}`)));
      });
      await expect(idem.run('webhook-9', 'fp', () => 'too early')).rejects.toBeInstanceOf(IdempotencyConflictError);
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      expect(await idem.run('webhook-9', 'fp', () => 'ran after the crash', { waitMs: 30_000 })).toEqual({
        value: 'ran after the crash',
        replayed: false,
      });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a result over maxResultBytes is not stored: a retry runs again; validation before any Redis call', async () => {
    const idem = await service(t, t.prefix());
    let runs = 0;
    const big = (): string => {
      runs += 1;
      return 'x'.repeat(100);
    };
    expect(await idem.run('big', 'fp', big, { maxResultBytes: 50 })).toEqual({ value: 'x'.repeat(100), replayed: false });
    expect(await idem.run('big', 'fp', big, { maxResultBytes: 50 })).toEqual({ value: 'x'.repeat(100), replayed: false });
    expect(runs).toBe(2);

    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => idem.run('', 'fp', () => 1), 'key must be a non-empty string, got ""'],
      [() => idem.run('k', '', () => 1), 'fingerprint must be a non-empty string, got ""'],
      [() => idem.run('k', 'fp', () => 1, { waitMs: -1 }), 'option "waitMs" must be an integer >= 0'],
      [() => idem.run('k', 'fp', () => 1, { leaseMs: 0 }), 'option "leaseMs" must be a positive integer'],
      [() => idem.run('k', 'fp', () => 1, { scope: '' }), 'option "scope" must be a non-empty string, got ""'],
      [() => idem.run('k', 'fp', () => 1, { tllMs: 5 } as never), 'unknown option "tllMs" (did you mean "ttlMs"?)'],
    ];
    for (const [call, text] of cases) {
      const err = (await call().catch((e: unknown) => e)) as IdempotencyInputError;
      expect(err).toBeInstanceOf(IdempotencyInputError);
      expect(err.message).toContain(`nest-redis-lua: IdempotencyService.run: ${text}`);
    }
  });
});
