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

  /** Builds the error from Redis's reply, locating the `user_script:<line>` Redis names. */
  static fromReply(script: string, sha: string, origins: readonly SourceLine[], err: Error): LuaScriptError {
    const match = /user_script:(\d+):/.exec(err.message);
    const location = match ? origins[Number(match[1]) - 1] : undefined;
    return new LuaScriptError(script, sha, err.message, location, { cause: err });
  }
}

/** Redis appends " script: <sha>, on @user_script:<n>." to script errors; the error already names both. */
function cleanMessage(message: string): string {
  return message.replace(/\s*script: [0-9a-f]{40}, on @user_script:\d+\.?$/, '');
}

/** True for the reply Redis gives when a script SHA is not in its cache. */
export function isNoScriptError(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/**
 * Error replies that describe the server's state, not the script: the server is busy running another
 * script (BUSY), loading its data (LOADING), out of memory (OOM), a replica or a master without its
 * replicas (READONLY, MASTERDOWN, NOREPLICAS), unable to persist (MISCONF), or a cluster that is down or
 * resharding (CLUSTERDOWN, TRYAGAIN). They are passed through as they are, not as {@link LuaScriptError}:
 * callers treat them like an unreachable Redis (the rate limiter's `failMode` decides).
 */
const SERVER_STATE_REPLY = /^(BUSY|LOADING|OOM|READONLY|MASTERDOWN|NOREPLICAS|MISCONF|CLUSTERDOWN|TRYAGAIN)\b/;

/** True for an error reply about the server's state (see {@link SERVER_STATE_REPLY}). */
export function isServerStateError(err: unknown): boolean {
  return err instanceof Error && SERVER_STATE_REPLY.test(err.message);
}

/**
 * True when a failed script call may still have run on the server: the connection dropped after the
 * call was written, or no reply came in time (a timed-out call can still run when a frozen server
 * resumes). False for any error reply (the script ran and raised an error, or the server refused it
 * without running it: NOSCRIPT, BUSY, OOM...). Callers that took a lease in such a call undo it.
 */
export function outcomeUnknown(err: unknown): boolean {
  return !(err instanceof LuaScriptError) && !(err instanceof Error && err.name === 'ReplyError');
}
