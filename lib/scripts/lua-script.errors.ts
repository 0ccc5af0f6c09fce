import { RedisLuaUnavailableError } from '../core/errors';
import { message } from '../core/messages';
import { restoreFunctionError } from './function-library';
import type { SourceLine } from './script-source';

/**
 * An error raised by Redis while running a script: a Lua `error()`, a failed `redis.call`, a wrong
 * argument. Carries the script's name and SHA and, when Redis reports it, the Lua line, mapped back
 * to the `.lua` file it came from (includes resolved).
 */
export class LuaScriptError extends Error {
  override readonly name = 'LuaScriptError';

  constructor(
    /** The script's registered name, e.g. `rate-limit/sliding-log` or a `forFeature` name. */
    readonly script: string,
    /** The SHA1 the script runs under. */
    readonly sha: string,
    /** Redis's own error text, unchanged. */
    readonly redisMessage: string,
    /** Where in the source the error was raised, if Redis said which line. */
    readonly location: SourceLine | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      `Lua script "${script}" (sha ${sha})${location ? ` failed at ${location.file}:${location.line}` : ' failed'}: ${cleanMessage(redisMessage)}`,
      options,
    );
  }

  /**
   * Builds the error from Redis's reply, locating the line Redis names (`user_script:<line>` under
   * EVAL, `user_function:<line>` of the library in functions mode) with `locate`.
   */
  static fromReply(script: string, sha: string, locate: (line: number) => SourceLine | undefined, err: Error): LuaScriptError {
    const text = restoreFunctionError(err.message);
    const match = /user_(?:script|function):(\d+):/.exec(text);
    const location = match ? locate(Number(match[1])) : undefined;
    return new LuaScriptError(script, sha, text, location, { cause: err });
  }
}

/**
 * Redis appends " script: <sha or function>, on @user_script:<n>." (`@user_function:<n>` for a function)
 * to script errors; the error already names both.
 */
function cleanMessage(message: string): string {
  return message.replace(/\s*script: \S+, on @user_(?:script|function):\d+\.?$/, '');
}

/** The error code of a reply: its first word (`NOSCRIPT`, `ERR`, `OOM`...). */
export function replyCode(err: Error): string {
  const space = err.message.indexOf(' ');
  return space === -1 ? err.message : err.message.slice(0, space);
}

/**
 * True for the reply Redis gives when a script SHA is not in its cache: code `NOSCRIPT`, whatever
 * follows (Redis says "No matching script. Please use EVAL.", Valkey 8 only "No matching script.").
 */
export function isNoScriptError(err: unknown): boolean {
  return isReplyError(err) && replyCode(err) === 'NOSCRIPT';
}

/**
 * Error replies that describe the server's state, not the script: the server is busy running another
 * script (BUSY), loading its data (LOADING), out of memory (OOM), a replica or a master without its
 * replicas (READONLY, MASTERDOWN, NOREPLICAS), unable to persist (MISCONF), a cluster that is down or
 * resharding (CLUSTERDOWN, TRYAGAIN), or a slot that moved once more than ioredis follows (MOVED, ASK).
 * They become {@link RedisLuaUnavailableError} (reason `refused`), not {@link LuaScriptError}.
 */
const SERVER_STATE_REPLY = /^(BUSY|LOADING|OOM|READONLY|MASTERDOWN|NOREPLICAS|MISCONF|CLUSTERDOWN|TRYAGAIN|MOVED|ASK)\b/;

/** An error reply from Redis (as opposed to a connection error or a timeout). */
export function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

/**
 * The {@link RedisLuaUnavailableError} a failed Redis call stands for, or undefined when the failure
 * is not about availability (an error reply raised by a script or a command). Anything ioredis
 * rejects a call with that is not an error reply is a connection failure or a time-out. `where`
 * names the call in the message (`script "lock/acquire"`, `GET`).
 */
export function unavailableError(err: unknown, where: string): RedisLuaUnavailableError | undefined {
  if (err instanceof RedisLuaUnavailableError) return err;
  const text = err instanceof Error ? err.message : String(err);
  if (isReplyError(err)) {
    if (!SERVER_STATE_REPLY.test(text)) return undefined;
    const redisCode = text.split(' ', 1)[0];
    return new RedisLuaUnavailableError(unavailableMessage(where, `it refused the call (${cleanMessage(text)})`), 'refused', redisCode, {
      cause: err,
    });
  }
  const timedOut = text === 'Command timed out';
  return new RedisLuaUnavailableError(
    unavailableMessage(where, timedOut ? 'no reply within option "commandTimeout"' : text),
    timedOut ? 'timeout' : 'unreachable',
    undefined,
    { cause: err },
  );
}

/** `nest-redis-lua: <where>: Redis is unavailable: <why>`. */
export function unavailableMessage(where: string, why: string): string {
  return message(where, `Redis is unavailable: ${why}`);
}

/**
 * A failed call to Redis as the library reports it: {@link RedisLuaUnavailableError} when Redis could
 * not decide, otherwise the error as it is. For the few plain commands services send (GET, ZSCORE, DEL).
 */
export function redisFailure(err: unknown, where: string): unknown {
  return unavailableError(err, where) ?? err;
}

/**
 * True when a failed script call may still have run on the server: the connection dropped after the
 * call was written, or no reply came in time (a timed-out call can still run when a frozen server
 * resumes). False for any error reply (the script ran and raised an error, or the server refused it
 * without running it: NOSCRIPT, BUSY, OOM...). Callers that took a lease in such a call undo it.
 */
export function outcomeUnknown(err: unknown): boolean {
  if (err instanceof RedisLuaUnavailableError) return err.reason !== 'refused';
  return !(err instanceof LuaScriptError) && !isReplyError(err);
}
