import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Redis } from 'ioredis';

/** A promise with its resolve function exposed. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` until it holds (for states no event announces, e.g. a subscription on the server).
 * Fails after `timeoutMs`.
 */
export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** Subscribers of `channel` on the server or across the cluster's masters (PUBSUB NUMSUB is per node). */
export async function subscribers(masters: Redis[], channel: string): Promise<number> {
  const counts = await Promise.all(masters.map((m) => m.pubsub('NUMSUB', channel) as Promise<[string, number]>));
  return counts.reduce((sum, [, n]) => sum + Number(n), 0);
}

/**
 * A child process holding a lease (test/lock/fixtures/semaphore-holder.ts): a permit of the semaphore
 * `held-by-child`, or with `kind` 'read' a read lock of that resource, renewed while it lives.
 * Resolves once it holds it; `kill()` sends SIGKILL and resolves with the signal it died of.
 */
export async function startHolder(
  connection: object,
  prefix: string,
  ttlMs: number,
  kind: 'semaphore' | 'read' = 'semaphore',
): Promise<{ fence: number; kill: () => Promise<NodeJS.Signals | null> }> {
  const child = spawn(
    process.execPath,
    [
      '-r',
      '@swc-node/register',
      join(__dirname, 'fixtures', 'semaphore-holder.ts'),
      JSON.stringify(connection),
      prefix,
      String(ttlMs),
      kind,
    ],
    { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  const kill = (): Promise<NodeJS.Signals | null> => {
    child.kill('SIGKILL');
    return exited;
  };
  try {
    const held = await new Promise<{ fence: number }>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(JSON.parse(out) as { fence: number });
      });
      child.once('exit', () => reject(new Error(`the holder exited before taking its lease: ${out}`)));
    });
    return { fence: held.fence, kill };
  } catch (err) {
    await kill();
    throw err;
  }
}
