import type { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { isNoScriptError, isServerStateError, LuaScriptError } from './lua-script.errors';
import type { ScriptSource } from './script-source';

/** A value passed to a script as ARGV: numbers are sent in decimal. */
export type ScriptArg = string | number | Buffer;

/** What a script run needs from the engine: the client and, when `debug` is on, a logger. */
export interface ScriptHost {
  readonly client: Redis | Cluster;
  readonly debugLogger?: Logger;
  /** Batches the socket writes of one event-loop turn (option `coalesceWrites`). */
  readonly coalescer?: { beforeWrite(): void };
}

/**
 * A Lua script registered with the engine. `run` sends EVALSHA; when the server does not have the
 * script (NOSCRIPT after SCRIPT FLUSH, a restart, a failover or a new node), the same call is sent as
 * EVAL, which runs it and caches it on exactly that node. NOSCRIPT means the script did not run, so
 * the script runs once per call.
 *
 * @typeParam TReply the reply type (what the script returns, as ioredis decodes it).
 */
export class LuaScript<TReply = unknown> {
  constructor(
    /** Registered name, e.g. `rate-limit/sliding-log`. */
    readonly name: string,
    private readonly source: ScriptSource,
    private readonly host: ScriptHost,
    /** If set, `run` checks that exactly this many keys are given. */
    readonly numberOfKeys?: number,
  ) {}

  /** SHA1 of the script body (what EVALSHA and SCRIPT EXISTS take). */
  get sha(): string {
    return this.source.sha;
  }

  /** The script body sent to Redis, includes resolved. */
  get body(): string {
    return this.source.body;
  }

  /**
   * Runs the script. All `keys` must hash to one slot on a cluster (build them with the
   * {@link KeyBuilder} and one tag).
   * @throws LuaScriptError when the script raises an error or a command inside it fails.
   */
  run(keys: readonly string[], args: readonly ScriptArg[] = []): Promise<TReply> {
    if (this.numberOfKeys !== undefined && keys.length !== this.numberOfKeys) {
      return Promise.reject(new TypeError(`Lua script "${this.name}" takes ${this.numberOfKeys} keys, got ${keys.length}`));
    }
    if (this.host.debugLogger) return this.runLogged(keys, args);
    this.host.coalescer?.beforeWrite();
    // The hot path: one EVALSHA promise and one `then`, no async frames (measured in bench/).
    return (this.host.client.evalsha(this.source.sha, keys.length, ...keys, ...args) as Promise<TReply>).then(
      undefined,
      (err: unknown) => this.recover(err, keys, args),
    );
  }

  /** `run` with the `debug` log line (keys and duration). */
  private async runLogged(keys: readonly string[], args: readonly ScriptArg[]): Promise<TReply> {
    const started = performance.now();
    this.host.coalescer?.beforeWrite();
    try {
      return await this.host.client.evalsha(this.source.sha, keys.length, ...keys, ...args).then(
        (reply) => reply as TReply,
        (err: unknown) => this.recover(err, keys, args),
      );
    } finally {
      this.host.debugLogger?.log(`${this.name} keys=${JSON.stringify(keys)} ${(performance.now() - started).toFixed(2)}ms`);
    }
  }

  /**
   * After a failed EVALSHA: EVAL on NOSCRIPT; error replies raised by the script become
   * {@link LuaScriptError}; replies about the server's state (BUSY, LOADING, READONLY...) pass through.
   */
  private async recover(err: unknown, keys: readonly string[], args: readonly ScriptArg[]): Promise<TReply> {
    try {
      if (!isNoScriptError(err)) throw err;
      return (await this.host.client.eval(this.body, keys.length, ...keys, ...args)) as TReply;
    } catch (failure) {
      throw isReplyError(failure) && !isServerStateError(failure)
        ? LuaScriptError.fromReply(this.name, this.sha, this.source.origins, failure)
        : failure;
    }
  }
}

/** An error reply from Redis (as opposed to a connection error or a timeout). */
function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}
