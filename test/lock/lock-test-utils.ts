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
