import { Inject, Injectable } from '@nestjs/common';
import { REDIS_LUA_KEYS } from '../module/redis-lua.constants';
import type { KeyBuilder } from '../scripts/key-builder';
import type { LuaScript } from '../scripts/lua-script';
import { LuaScriptEngine } from '../scripts/lua-script.engine';
import { inputSite, type InputSite } from '../core/validation';
import { CounterInputError } from './counter.errors';
import {
  checkCounterInteger,
  checkCounterKey,
  ttlArg,
  type CounterChangeOptions,
  type CounterChangeResult,
  type CounterSetOptions,
} from './counter.options';

/** Key feature name: keys look like `<prefix>:counter:{<key>}`. */
const FEATURE = 'counter';

const site = (method: string): InputSite => inputSite(`BoundedCounterService.${method}`, CounterInputError);
const INCREMENT = site('increment');
const DECREMENT = site('decrement');
const GET = site('get');
const SET = site('set');
const DELETE = site('delete');

/**
 * Integer counters that never pass a bound, exact under any concurrency: the check and the change
 * run in one script (the seed guide's "atomic counter with limit", in both directions).
 *
 * Values, amounts and bounds are safe integers (|n| <= 2^53 - 1); amounts are positive, the direction
 * is the method. Fractional amounts are refused rather than rounded.
 */
@Injectable()
export class BoundedCounterService {
  private readonly changeScript: LuaScript<[0 | 1, string]>;

  constructor(
    private readonly engine: LuaScriptEngine,
    @Inject(REDIS_LUA_KEYS) private readonly keys: KeyBuilder,
  ) {
    this.changeScript = engine.bundled('counter/change', 1);
  }

  /**
   * Adds `amount` unless the result would exceed `max`; then nothing changes and `applied` is false.
   * A missing counter counts as 0.
   * @throws CounterInputError unless `amount` is a positive safe integer and `max` a safe integer.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const { applied, value } = await counters.increment(`seats:${showId}`, 2, 100);
   * if (!applied) throw new ConflictException(`only ${100 - value} seats left`);
   */
  async increment(key: string, amount: number, max: number, options: CounterChangeOptions = {}): Promise<CounterChangeResult> {
    checkCounterInteger(amount, 'amount', INCREMENT, true);
    checkCounterInteger(max, 'max', INCREMENT);
    return this.change(key, this.counterKey(key, INCREMENT), amount, max, ttlArg(options, INCREMENT));
  }

  /**
   * Subtracts `amount` unless the result would go below `min` (default 0); then nothing changes and
   * `applied` is false.
   * @throws CounterInputError unless `amount` is a positive safe integer and `min` a safe integer.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const { applied } = await counters.decrement(`stock:${sku}`, quantity); // never below 0
   */
  async decrement(key: string, amount: number, min = 0, options: CounterChangeOptions = {}): Promise<CounterChangeResult> {
    checkCounterInteger(amount, 'amount', DECREMENT, true);
    checkCounterInteger(min, 'min', DECREMENT);
    return this.change(key, this.counterKey(key, DECREMENT), -amount, min, ttlArg(options, DECREMENT));
  }

  /**
   * The counter's value (0 when it does not exist).
   * @throws CounterInputError for an empty or over-long key.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * const left = await counters.get(`stock:${sku}`);
   */
  async get(key: string): Promise<number> {
    const counterKey = this.counterKey(key, GET);
    const value = await this.engine.read<string | null>('BoundedCounterService.get', 'get', [counterKey]);
    return value === null ? 0 : Number(value);
  }

  /**
   * Sets the counter to `value` (a safe integer), with an expiry if `ttlMs` is given. No bound is checked.
   * @throws CounterInputError unless `value` is a safe integer and `ttlMs` a positive integer.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * await counters.set(`stock:${sku}`, 25);
   */
  async set(key: string, value: number, options: CounterSetOptions = {}): Promise<void> {
    const counterKey = this.counterKey(key, SET);
    checkCounterInteger(value, 'value', SET);
    const ttl = ttlArg(options, SET);
    await this.engine.command('BoundedCounterService.set', (client) =>
      ttl === '' ? client.set(counterKey, String(value)) : client.set(counterKey, String(value), 'PX', ttl),
    );
  }

  /**
   * Deletes the counter. True if it existed.
   * @throws CounterInputError for an empty or over-long key.
   * @throws RedisLuaUnavailableError when Redis is unreachable, does not answer within `commandTimeout`,
   *   or refuses the call (out of memory, ...).
   * @example
   * await counters.delete(`stock:${sku}`);
   */
  async delete(key: string): Promise<boolean> {
    const counterKey = this.counterKey(key, DELETE);
    return (await this.engine.command('BoundedCounterService.delete', (client) => client.del(counterKey))) === 1;
  }

  /** The change of `delta` within `bound`; a refused one is reported as a `counter.rejection` event. */
  private async change(key: string, counterKey: string, delta: number, bound: number, ttl: string): Promise<CounterChangeResult> {
    const [applied, value] = await this.changeScript.run([counterKey], [String(delta), String(bound), ttl]);
    if (applied !== 1 && this.engine.telemetry?.recording) {
      this.engine.telemetry.emit({ type: 'counter.rejection', operation: delta > 0 ? 'increment' : 'decrement', key });
    }
    return { applied: applied === 1, value: Number(value) };
  }

  private counterKey(key: string, site: InputSite): string {
    return this.keys.key(FEATURE, [checkCounterKey(key, site)]);
  }
}
