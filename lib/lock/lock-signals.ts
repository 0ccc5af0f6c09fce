import { setMaxListeners } from 'node:events';

/**
 * A signal that aborts when `caller` (if any) or `shutdown` does, and the function that detaches it.
 * Not `AbortSignal.any`, whose dependents some Node.js 20 releases keep alive as long as the
 * long-lived source (the service's shutdown signal).
 */
export function eitherSignal(caller: AbortSignal | undefined, shutdown: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  if (!caller) return { signal: shutdown, dispose: () => undefined };
  const controller = new AbortController();
  const sources = [caller, shutdown];
  const onAbort = function (this: AbortSignal): void {
    controller.abort(this.reason);
  };
  for (const source of sources) {
    if (source.aborted) controller.abort(source.reason);
    else source.addEventListener('abort', onAbort, { once: true });
  }
  return { signal: controller.signal, dispose: () => sources.forEach((source) => source.removeEventListener('abort', onAbort)) };
}

/**
 * An AbortController whose signal may have any number of listeners: every concurrent waiter listens to
 * the shutdown signal until it is done, which is normal, not a leak (Node warns above 10).
 */
export function withUnlimitedListeners(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}
