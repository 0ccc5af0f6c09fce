import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { checkFunction, checkText, inputSite } from '../core/validation';
import { REDIS_LUA_KEYS } from '../module/redis-lua.constants';
import { RedisLuaSubscriber } from '../module/redis-subscriber';
import type { KeyBuilder } from '../scripts/key-builder';
import type { LuaScript } from '../scripts/lua-script';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import { outcomeUnknown } from '../scripts/lua-script.errors';
import { Lock, type LockBackend } from '../lock/lock';
import { eitherSignal, withUnlimitedListeners } from '../lock/lock-signals';
import { LockTokens } from '../lock/lock-tokens';
import { LockWaitQueues, retryAfterExpiry } from '../lock/lock-waiters';
import { IdempotencyConflictError, IdempotencyInputError, IdempotencyMismatchError } from './idempotency.errors';
import {
  DEFAULT_IDEMPOTENCY_LEASE_MS,
  DEFAULT_IDEMPOTENCY_TTL_MS,
  DEFAULT_MAX_RESULT_BYTES,
  FINGERPRINT,
  IDEMPOTENCY_KEY,
  validateRunOptions,
  type IdempotencyRunOptions,
  type IdempotentResult,
} from './idempotency.options';

const RUN = inputSite('IdempotencyService.run', IdempotencyInputError);

/** claim.lua's reply. */
type ClaimReply = ['claimed'] | ['mismatch'] | ['done', string] | ['running', number];

/** One run's settings, options resolved. @internal */
export interface RunSettings {
  readonly key: string;
  readonly record: string;
  readonly channel: string;
  readonly fingerprint: string;
  readonly ttlMs: number;
  readonly leaseMs: number;
  readonly waitMs: number;
  readonly maxResultBytes: number;
}

/**
 * How a run's result becomes the stored text and back: `encode` returns undefined for a result not
 * to be stored (the claim is then dropped, so that a retry runs again). @internal
 */
export interface ResultCodec<T> {
  encode(value: T): string | undefined;
  decode(stored: string): T;
}

/** Results as JSON (`undefined` kept as such). */
const JSON_CODEC: ResultCodec<unknown> = {
  encode: (value) => JSON.stringify(value === undefined ? {} : { v: value }),
  decode: (stored) => (JSON.parse(stored) as { v?: unknown }).v,
};

/**
 * Runs an operation at most once per idempotency key, across every instance: the first call with a
 * key claims it in one script step (no check-then-set race), runs `fn` while its claim is renewed,
 * and stores the result in the same step that ends the claim; a retry with the same key and
 * fingerprint gets the stored result without running `fn`; a call while the first still runs gets
 * {@link IdempotencyConflictError} (or waits for it, `waitMs`); the same key with another
 * fingerprint gets {@link IdempotencyMismatchError}. A run that throws stores nothing: a retry runs
 * again. For queue consumers, webhooks and other non-HTTP callers.
 *
 * ```ts
 * const { value, replayed } = await idempotency.run(event.id, sha256(event.body), () => payments.capture(event));
 * ```
 */
@Injectable()
export class IdempotencyService implements OnModuleDestroy {
  private readonly log = new Logger('RedisLua');
  private readonly claimScript: LuaScript<ClaimReply>;
  private readonly completeScript: LuaScript<0 | 1>;
  private readonly abandonScript: LuaScript<0 | 1>;
  private readonly renewScript: LuaScript<0 | 1>;
  private readonly unwaitScript: LuaScript<number>;
  private readonly tokens = new LockTokens();
  private readonly waiters: LockWaitQueues;
  private readonly running = new Set<Lock>();
  /** Aborted on shutdown; every waiter listens to it. */
  private readonly closing = withUnlimitedListeners(new AbortController());

  constructor(
    engine: LuaScriptEngine,
    @Inject(REDIS_LUA_KEYS) private readonly keys: KeyBuilder,
    subscriber: RedisLuaSubscriber,
  ) {
    this.claimScript = engine.bundled<ClaimReply>('idempotency/claim', 1);
    this.completeScript = engine.bundled<0 | 1>('idempotency/complete', 1);
    this.abandonScript = engine.bundled<0 | 1>('idempotency/abandon', 1);
    this.renewScript = engine.bundled<0 | 1>('idempotency/renew', 1);
    this.unwaitScript = engine.bundled<number>('idempotency/unwait', 1);
    this.waiters = new LockWaitQueues(subscriber, this.log);
  }

  /**
   * Runs `fn` once for `key` (within `scope`): see the class. `fn` gets the claim (a {@link Lock}:
   * its `signal` aborts if the claim is lost, e.g. renewals failed for a whole lease); its result is
   * stored as JSON for `ttlMs` and returned to every retry with the same `fingerprint`.
   * @throws IdempotencyConflictError when a run with this key is in progress and did not end within `waitMs`.
   * @throws IdempotencyMismatchError when the key was used with another fingerprint.
   * @throws IdempotencyInputError on an empty key or fingerprint, or invalid options, before any Redis call.
   * @throws `fn`'s own error, unchanged (nothing is stored: a retry runs `fn` again).
   * @throws the `signal`'s reason when it aborts while waiting.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the claim (then `fn` did not run).
   * @example
   * const { value, replayed } = await idempotency.run(
   *   message.headers['idempotency-key'],
   *   sha256(message.body),
   *   () => payments.capture(message.body),
   *   { scope: message.tenant },
   * );
   */
  async run<T>(
    key: string,
    fingerprint: string,
    fn: (claim: Lock) => T | Promise<T>,
    options: IdempotencyRunOptions = {},
  ): Promise<IdempotentResult<Awaited<T>>> {
    checkText(key, 'key', RUN, IDEMPOTENCY_KEY);
    checkText(fingerprint, 'fingerprint', RUN, FINGERPRINT);
    checkFunction(fn, 'fn', RUN, 'a function', 'argument');
    validateRunOptions(options, RUN);
    return this.execute(this.settings(key, fingerprint, options), fn, JSON_CODEC as ResultCodec<Awaited<T>>, options.signal);
  }

  /** Stops waiting calls and the renewal of running claims (they expire by their lease). */
  onModuleDestroy(): void {
    this.closing.abort(new Error('nest-redis-lua: IdempotencyService is shutting down'));
    for (const claim of [...this.running]) claim.abandon('the application is shutting down; it is no longer renewed');
  }

  /**
   * The claim-run-store cycle with a result codec (the JSON of {@link run}, or an HTTP response).
   * @internal
   */
  async execute<T>(
    settings: RunSettings,
    fn: (claim: Lock) => T | Promise<T>,
    codec: ResultCodec<Awaited<T>>,
    caller: AbortSignal | undefined,
  ): Promise<IdempotentResult<Awaited<T>>> {
    this.closing.signal.throwIfAborted();
    caller?.throwIfAborted();
    const deadline = performance.now() + settings.waitMs;
    let token = this.tokens.next();
    let sentAt = Date.now();
    let reply = await this.claim(settings, token, false);
    if (reply[0] === 'running') {
      if (settings.waitMs === 0) throw new IdempotencyConflictError(settings.key, 0, reply[1]);
      const { signal, dispose } = eitherSignal(caller, this.closing.signal);
      try {
        ({ reply, token, sentAt } = await this.waitForRun(settings, deadline, signal));
      } finally {
        dispose();
      }
    }
    switch (reply[0]) {
      case 'claimed':
        return { value: await this.runClaimed(settings, token, sentAt, fn, codec), replayed: false };
      case 'done':
        return { value: codec.decode(reply[1]), replayed: true };
      default:
        throw new IdempotencyMismatchError(settings.key);
    }
  }

  /** The resolved settings of a run of `key` (validated). @internal */
  settings(key: string, fingerprint: string, options: IdempotencyRunOptions): RunSettings {
    const tag = options.scope === undefined ? [key] : [options.scope, key];
    return {
      key,
      record: this.keys.key('idem', tag),
      channel: this.keys.key('idem', tag, 'ended'),
      fingerprint,
      ttlMs: options.ttlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS,
      leaseMs: options.leaseMs ?? DEFAULT_IDEMPOTENCY_LEASE_MS,
      waitMs: options.waitMs ?? 0,
      maxResultBytes: options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES,
    };
  }

  /**
   * While another run holds the key: waits for its end (a notice on the key's channel, or its lease
   * running out), then claims again, until `deadline`. Resolves with the first reply that is not
   * 'running' (and the token of that attempt).
   */
  private async waitForRun(
    settings: RunSettings,
    deadline: number,
    signal: AbortSignal,
  ): Promise<{ reply: Exclude<ClaimReply, ['running', number]>; token: string; sentAt: number }> {
    const waiter = await this.waiters.join(settings.channel);
    let counted = false;
    let claimed = false;
    /** The last attempt was made on a notice. */
    let woken = false;
    try {
      for (;;) {
        signal.throwIfAborted();
        woken = waiter.takeNotice();
        const token = this.tokens.next();
        const sentAt = Date.now();
        const reply = await this.claim(settings, token, true);
        if (reply[0] !== 'running') {
          claimed = reply[0] === 'claimed';
          // A claim or a result: the record the waiter was counted in is gone or done.
          counted = false;
          return { reply, token, sentAt };
        }
        counted = true;
        const remaining = deadline - performance.now();
        if (remaining <= 0) throw new IdempotencyConflictError(settings.key, settings.waitMs, reply[1]);
        if (waiter.notified) continue;
        // No notice comes if the runner died: claim again when its lease runs out.
        await waiter.wait(Math.ceil(Math.min(retryAfterExpiry(reply[1]), remaining)), signal);
      }
    } finally {
      // A notice acted on serves the next waiter here too: a stored result answers it; after this
      // waiter claimed the key, the next one's attempt counts it for this run's end.
      this.waiters.leave(settings.channel, waiter, claimed, woken);
      if (counted) {
        this.unwaitScript.run([settings.record]).catch((err: Error) => {
          this.log.debug(`IdempotencyService: cannot uncount a waiter of "${settings.key}" (one needless notice): ${err.message}`);
        });
      }
    }
  }

  /** One claim attempt; a claim whose reply was lost is dropped again by its token. */
  private async claim(settings: RunSettings, token: string, waiting: boolean): Promise<ClaimReply> {
    try {
      return await this.claimScript.run([settings.record], [token, settings.fingerprint, settings.leaseMs, waiting ? '1' : '0']);
    } catch (err) {
      if (outcomeUnknown(err)) this.dropQuietly(settings, token, 'its claim reply was lost');
      throw err;
    }
  }

  /** Runs `fn` under a claimed key, then stores its result (or drops the claim when it throws or is not to be stored). */
  private async runClaimed<T>(
    settings: RunSettings,
    token: string,
    sentAt: number,
    fn: (claim: Lock) => T | Promise<T>,
    codec: ResultCodec<Awaited<T>>,
  ): Promise<Awaited<T>> {
    const claim = new Lock(this.backendOf(settings), settings.key, token, 0, sentAt, settings.leaseMs, true);
    this.running.add(claim);
    let value: Awaited<T>;
    let stored: string | undefined;
    try {
      value = await fn(claim);
      stored = codec.encode(value);
    } catch (err) {
      await this.dropClaim(settings, claim);
      throw err;
    }
    const bytes = stored === undefined ? 0 : Buffer.byteLength(stored, 'utf8');
    if (stored === undefined || bytes > settings.maxResultBytes) {
      if (stored !== undefined) {
        this.log.warn(
          `IdempotencyService: the result of "${settings.key}" is ${bytes} bytes, over option "maxResultBytes" (${settings.maxResultBytes}): not stored, a retry runs again`,
        );
      }
      await this.dropClaim(settings, claim);
      return value;
    }
    try {
      const done = await this.completeScript.run([settings.record], [token, stored, settings.ttlMs, settings.channel]);
      if (done === 0) {
        this.log.warn(
          `IdempotencyService: the claim of "${settings.key}" was lost before its result was stored (its lease ran out): a retry may run again`,
        );
      }
    } catch (err) {
      // The run happened; only its record failed: answer with its result, and say so.
      this.log.warn(
        `IdempotencyService: the result of "${settings.key}" could not be stored (a retry runs again once the claim expires): ${(err as Error).message}`,
      );
    } finally {
      claim.settle();
    }
    return value;
  }

  /** Drops a claim (the run failed): release() of the claim runs abandon.lua; failures are logged. */
  private async dropClaim(settings: RunSettings, claim: Lock): Promise<void> {
    try {
      await claim.release();
    } catch (err) {
      this.log.warn(
        `IdempotencyService: cannot drop the claim of "${settings.key}" (it expires within its lease): ${(err as Error).message}`,
      );
    }
  }

  private dropQuietly(settings: RunSettings, token: string, why: string): void {
    this.abandonScript.run([settings.record], [token, settings.channel]).then(
      (dropped) => {
        if (dropped === 1)
          this.log.warn(`IdempotencyService: dropped a claim of "${settings.key}" this process took but could not use (${why})`);
      },
      (err: Error) => this.log.warn(`IdempotencyService: ${why}; the claim of "${settings.key}" expires within its lease (${err.message})`),
    );
  }

  /** The claim's renewal and release (abandon) on its record. */
  private backendOf(settings: RunSettings): LockBackend {
    return {
      logger: this.log,
      extend: async (_key, token, ttlMs) => (await this.renewScript.run([settings.record], [token, ttlMs])) === 1,
      release: async (_key, token) => (await this.abandonScript.run([settings.record], [token, settings.channel])) === 1,
      forget: (claim) => this.running.delete(claim),
    };
  }
}
