import { checkInteger, checkText, fail, type InputSite } from '../core/validation';
import type { KeyBuilder } from '../scripts/key-builder';
import type { LuaScript } from '../scripts/lua-script';
import type { LuaScriptEngine } from '../scripts/lua-script.engine';
import { banKeyFactory } from './rule-plan';

/** The longest ban `block` accepts: 365 days. */
export const MAX_BAN_MS = 365 * 24 * 3600 * 1000;
/** The longest reason `block` keeps, in UTF-8 bytes. */
export const MAX_BAN_REASON_BYTES = 512;
/**
 * How long a process's deny cache keeps a denial by a ban at most: `unblock` on one instance reaches
 * the others' cached denials within this time (a denial by a rule is cached until it may pass).
 */
export const BAN_CACHE_MS = 1_000;

/** A manual ban's state, as {@link RateLimiterService.isBlocked} reads it. */
export interface RateLimitBanStatus {
  /** True while the identifier is banned. */
  readonly blocked: boolean;
  /** Milliseconds until the ban ends (0 when not banned). */
  readonly retryAfterMs: number;
  /** The reason given to `block`, if any. */
  readonly reason?: string;
}

/** What lua/rate-limit/ban.lua answers to 's': `[ms left, reason]`. */
type StatusReply = [number, string];

/**
 * Manual bans of identifiers (`forRoot({ rateLimit: { bans: true } })`): one key per identifier,
 * `<prefix>:rl:{<identifier>}:ban`, in the hash tag of its limits, so that every consume and peek
 * checks it in the same script (lua/includes/rate-limit-ban.lua). Reads and writes go through
 * lua/rate-limit/ban.lua.
 */
export class RateLimitBans {
  /** The ban key of an identifier. */
  readonly keyOf: (identifier: string) => string;
  private readonly script: LuaScript<number | StatusReply>;

  constructor(
    engine: LuaScriptEngine,
    keys: KeyBuilder,
    /** `rateLimit.bans`: without it no call checks bans, so writing one would do nothing. */
    private readonly enabled: boolean,
  ) {
    this.keyOf = banKeyFactory(keys);
    this.script = engine.bundled<number | StatusReply>('rate-limit/ban');
  }

  async block(identifier: string, durationMs: number, reason: string | undefined, site: InputSite): Promise<void> {
    const key = this.checked(identifier, site);
    checkInteger(durationMs, 'durationMs', site, 1, MAX_BAN_MS, 'argument');
    if (reason !== undefined) checkText(reason, 'reason', site, { maxBytes: MAX_BAN_REASON_BYTES });
    await this.script.run([key], ['b', String(durationMs), reason ?? '']);
  }

  /** True if a ban was lifted. */
  async unblock(identifier: string, site: InputSite): Promise<boolean> {
    return (await this.script.run([this.checked(identifier, site)], ['u'])) === 1;
  }

  async status(identifier: string, site: InputSite): Promise<RateLimitBanStatus> {
    const [left, reason] = (await this.script.run([this.checked(identifier, site)], ['s'])) as StatusReply;
    if (left <= 0) return { blocked: false, retryAfterMs: 0 };
    return reason === '' ? { blocked: true, retryAfterMs: left } : { blocked: true, retryAfterMs: left, reason };
  }

  /** The ban key of `identifier`, after checking that bans are on and that it is one identifier. */
  private checked(identifier: string, site: InputSite): string {
    if (!this.enabled) {
      fail(
        site,
        'rateLimit.bans',
        'bans are off, so no limit would check this one: enable them with forRoot({ rateLimit: { bans: true } })',
      );
    }
    checkText(identifier, 'key', site);
    if (identifier.includes('\n')) {
      fail(
        site,
        'key',
        'key must be an identifier without a line break: a ban covers every scope of an identifier (a limiter key "<identifier>\\n<scope>" is banned by its first line)',
      );
    }
    return this.keyOf(identifier);
  }
}
