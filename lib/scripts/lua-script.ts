import type { Logger } from '@nestjs/common';
import { Command, type Cluster, type Redis } from 'ioredis';
import { RedisLuaInputError, type RedisLuaUnavailableError } from '../core/errors';
import { message } from '../core/messages';
import { isNoScriptError, isReplyError, LuaScriptError, unavailableError } from './lua-script.errors';
import type { ScriptSource } from './script-source';

/** A value passed to a script as ARGV: numbers are sent in decimal. */
export type ScriptArg = string | number | Buffer;

/** What a script run needs from the engine: the client and, when `debug` is on, a logger. */
export interface ScriptHost {
  readonly client: Redis | Cluster;
  readonly debugLogger?: Logger;
  /** Batches the socket writes of one pass of the event loop (option `coalesceWrites`). */
  /** @internal */
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
  /** ioredis command options: string replies, and the client's own `keyPrefix` (as its methods apply it). */
  private readonly commandOptions: { replyEncoding: 'utf8'; keyPrefix?: string };
  private readonly friendlyErrorStacks: boolean;

  constructor(
    /** Registered name, e.g. `rate-limit/sliding-log`. */
    readonly name: string,
    private readonly source: ScriptSource,
    private readonly host: ScriptHost,
    /** If set, `run` checks that exactly this many keys are given. */
    readonly numberOfKeys?: number,
  ) {
    const options = (host.client as { options?: { keyPrefix?: string; showFriendlyErrorStack?: boolean } }).options ?? {};
    this.commandOptions = options.keyPrefix ? { replyEncoding: 'utf8', keyPrefix: options.keyPrefix } : { replyEncoding: 'utf8' };
    this.friendlyErrorStacks = options.showFriendlyErrorStack === true;
  }

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
   * @throws RedisLuaInputError when the script was registered with `numberOfKeys` and `keys` has another length.
   * @throws LuaScriptError when the script raises an error or a command inside it fails.
   * @throws RedisLuaUnavailableError when Redis is unreachable, gives no reply within
   *   `commandTimeout`, or refuses the call (OOM, BUSY, READONLY, ...).
   * @example
   * const views = await this.countViews.run([keys.key('pages', [pageId], 'views')], [1]);
   */
  run(keys: readonly string[], args: readonly ScriptArg[] = []): Promise<TReply> {
    if (this.numberOfKeys !== undefined && keys.length !== this.numberOfKeys) {
      return Promise.reject(
        new RedisLuaInputError(message(`script "${this.name}"`, `takes ${this.numberOfKeys} keys, got ${keys.length}`), 'keys'),
      );
    }
    if (this.host.debugLogger) return this.runLogged(keys, args);
    return this.evaluate(keys, args);
  }

  /** EVALSHA, then EVAL once on NOSCRIPT; failures mapped by {@link scriptError}. */
  private evaluate(keys: readonly string[], args: readonly ScriptArg[]): Promise<TReply> {
    return (this.send(keys, args).promise as Promise<TReply>).then(undefined, (err: unknown) => {
      const retry = this.resendAfterNoScript(err, keys, args);
      if (!retry) throw this.scriptError(err);
      return (retry.promise as Promise<TReply>).then(undefined, (failure: unknown) => {
        throw this.scriptError(failure);
      });
    });
  }

  /**
   * Writes EVALSHA and returns its ioredis `Command` (its `promise` settles with the reply; a caller
   * may `reject` it, e.g. at a deadline). NOSCRIPT is not handled here: see {@link resendAfterNoScript}. The hot
   * path of `run` and of the rate limiter: one Command, no wrapper objects. @internal
   */
  send(keys: readonly string[], args: readonly ScriptArg[]): Command {
    return this.write('evalsha', this.source.sha, keys, args);
  }

  /**
   * After a failed EVALSHA: when it failed with NOSCRIPT (the script did not run), writes the same call
   * as EVAL of the whole body, which runs it and caches it on that node, and returns that Command;
   * otherwise undefined (the failure stands). @internal
   */
  resendAfterNoScript(err: unknown, keys: readonly string[], args: readonly ScriptArg[]): Command | undefined {
    return isNoScriptError(err) ? this.write('eval', this.source.body, keys, args) : undefined;
  }

  /**
   * What a failed EVALSHA or EVAL becomes: error replies raised by the script (or a command in it)
   * become {@link LuaScriptError}; replies about the server's state (BUSY, LOADING, OOM...),
   * connection errors and time-outs become {@link RedisLuaUnavailableError}. @internal
   */
  scriptError(err: unknown): LuaScriptError | RedisLuaUnavailableError {
    return (
      unavailableError(err, `script "${this.name}"`) ??
      LuaScriptError.fromReply(this.name, this.sha, this.source.origins, isReplyError(err) ? err : new Error(String(err)))
    );
  }

  private write(name: 'evalsha' | 'eval', script: string, keys: readonly string[], args: readonly ScriptArg[]): Command {
    this.host.coalescer?.beforeWrite();
    const options = this.friendlyErrorStacks ? { ...this.commandOptions, errorStack: new Error() } : this.commandOptions;
    const command = new Command(name, [script, keys.length, ...keys, ...args], options);
    // What the client's `evalsha(...)` does, without its per-call wrapper: it routes the command
    // (cluster slot, offline queue) and applies commandTimeout.
    void this.host.client.sendCommand(command);
    return command;
  }

  /**
   * The same script sent on another connection (same SHA and error mapping; its writes are not
   * coalesced): for calls that must be followed by a command on the connection that ran them (WAIT).
   * @internal
   */
  onClient(client: Redis | Cluster): LuaScript<TReply> {
    return new LuaScript<TReply>(this.name, this.source, { client, debugLogger: this.host.debugLogger }, this.numberOfKeys);
  }

  /** `run` with the `debug` log line (keys and duration). */
  private async runLogged(keys: readonly string[], args: readonly ScriptArg[]): Promise<TReply> {
    const started = performance.now();
    try {
      return await this.evaluate(keys, args);
    } finally {
      this.host.debugLogger?.log(`${this.name} keys=${JSON.stringify(keys)} ${(performance.now() - started).toFixed(2)}ms`);
    }
  }
}
