import type { Logger } from '@nestjs/common';
import { Command, type Cluster, type Redis } from 'ioredis';
import { RedisLuaInputError, type RedisLuaUnavailableError } from '../core/errors';
import { message } from '../core/messages';
import { readFromReplica } from '../module/redis-connection';
import { isReadOnlyScript } from './function-library';
import type { FunctionsHost } from './function-loader';
import { isNoScriptError, isReplyError, LuaScriptError, replyCode, unavailableError } from './lua-script.errors';
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
  /** Functions mode (option `scripts: 'functions'`): the library the script is a function of. */
  /** @internal */
  readonly functions?: FunctionsHost;
  /** Option `readFrom: 'replica'`: read-only scripts go to replicas. */
  /** @internal */
  readonly replicaReads?: boolean;
}

/**
 * A Lua script registered with the engine. `run` sends EVALSHA; when the server does not have the
 * script (NOSCRIPT after SCRIPT FLUSH, a restart, a failover or a new node), the same call is sent as
 * EVAL, which runs it and caches it on exactly that node. NOSCRIPT means the script did not run, so
 * the script runs once per call. In functions mode (option `scripts: 'functions'`) `run` sends FCALL
 * of the script's function instead (FCALL_RO for a script declared `no-writes`); when the function is
 * missing, the library is loaded where it is missing and the call sent again, once.
 *
 * @typeParam TReply the reply type (what the script returns, as ioredis decodes it).
 */
export class LuaScript<TReply = unknown> {
  /** ioredis command options: string replies, and the client's own `keyPrefix` (as its methods apply it). */
  private readonly commandOptions: { replyEncoding: 'utf8'; keyPrefix?: string };
  private readonly friendlyErrorStacks: boolean;
  /** Declared `#!lua flags=no-writes`: sent as FCALL_RO, and to a replica with `readFrom: 'replica'`. */
  readonly readOnly: boolean;
  /** The command names for the first attempt and for the resend (`evalsha` / `eval`, `fcall`...). */
  private readonly commands: { readonly first: string; readonly resend: string };
  private readonly toReplica: boolean;

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
    this.readOnly = isReadOnlyScript(source.body);
    this.toReplica = this.readOnly && host.replicaReads === true;
    const fcall = this.readOnly ? 'fcall_ro' : 'fcall';
    this.commands = host.functions
      ? { first: fcall, resend: fcall }
      : this.toReplica
        ? { first: 'evalsha_ro', resend: 'eval_ro' }
        : { first: 'evalsha', resend: 'eval' };
  }

  /** SHA1 of the script body (what EVALSHA and SCRIPT EXISTS take). */
  get sha(): string {
    return this.source.sha;
  }

  /** The script body sent to Redis, includes resolved. */
  get body(): string {
    return this.source.body;
  }

  /** Where each line of {@link body} came from. @internal */
  get origins(): ScriptSource['origins'] {
    return this.source.origins;
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

  /** EVALSHA, then EVAL once on NOSCRIPT (or FCALL, again once the library is loaded); failures mapped by {@link scriptError}. */
  private evaluate(keys: readonly string[], args: readonly ScriptArg[]): Promise<TReply> {
    return (this.send(keys, args).promise as Promise<TReply>).then(undefined, (err: unknown) => {
      const retry = this.resend(err, keys, args);
      if (!retry) throw this.scriptError(err);
      return (retry.promise as Promise<TReply>).then(undefined, (failure: unknown) => {
        throw this.scriptError(failure);
      });
    });
  }

  /**
   * Writes EVALSHA (FCALL in functions mode) and returns its ioredis `Command` (its `promise` settles
   * with the reply; a caller may `reject` it, e.g. at a deadline). A missing script is not handled
   * here: see {@link resend}. The hot path of `run` and of the rate limiter: one Command, no wrapper
   * objects. @internal
   */
  send(keys: readonly string[], args: readonly ScriptArg[]): Command {
    const { functions } = this.host;
    const command = this.command(this.commands.first, functions ? functions.functionName(this.name) : this.source.sha, keys, args);
    if (this.toReplica) readFromReplica(command);
    this.write(command);
    return command;
  }

  /**
   * After a failed first attempt, the same call sent again when the failure says that the server
   * lacked the script, so that nothing ran; otherwise undefined (the failure stands). The failure is
   * recognised by its error code alone, never by the rest of its text (Valkey 8 shortened NOSCRIPT's):
   * - EVALSHA's `NOSCRIPT`: the call goes out as EVAL of the whole body, which runs the script and
   *   caches it on that node;
   * - FCALL's `ERR` (functions mode): no error from inside the library's functions has that code (see
   *   lib/scripts/function-library.ts), so the function was not there. The returned Command is written
   *   once the library is loaded on every master that lacks it, to the master (a replica may not have
   *   the library yet); if loading fails, it is rejected with that failure. A Command rejected before
   *   (a caller's deadline) is not written. @internal
   */
  resend(err: unknown, keys: readonly string[], args: readonly ScriptArg[]): Command | undefined {
    const { functions } = this.host;
    if (!functions) {
      if (!isNoScriptError(err)) return undefined;
      const command = this.command(this.commands.resend, this.source.body, keys, args);
      if (this.toReplica) readFromReplica(command);
      this.write(command);
      return command;
    }
    if (!isReplyError(err) || replyCode(err) !== 'ERR') return undefined;
    const command = this.command(this.commands.resend, functions.functionName(this.name), keys, args);
    let abandoned = false;
    command.promise.catch(() => {
      abandoned = true;
    });
    functions.ensureLoaded().then(
      () => {
        if (!abandoned) this.write(command);
      },
      (failure: unknown) => command.reject(failure instanceof Error ? failure : new Error(String(failure))),
    );
    return command;
  }

  /**
   * What a failed EVALSHA or EVAL becomes: error replies raised by the script (or a command in it)
   * become {@link LuaScriptError}; replies about the server's state (BUSY, LOADING, OOM...),
   * connection errors and time-outs become {@link RedisLuaUnavailableError}. @internal
   */
  scriptError(err: unknown): LuaScriptError | RedisLuaUnavailableError {
    const unavailable = unavailableError(err, `script "${this.name}"`);
    if (unavailable) return unavailable;
    const reply = isReplyError(err) ? err : new Error(String(err));
    const { functions } = this.host;
    return LuaScriptError.fromReply(
      this.name,
      this.sha,
      functions ? (line) => functions.origin(line) : (line) => this.source.origins[line - 1],
      reply,
    );
  }

  private command(name: string, script: string, keys: readonly string[], args: readonly ScriptArg[]): Command {
    const options = this.friendlyErrorStacks ? { ...this.commandOptions, errorStack: new Error() } : this.commandOptions;
    return new Command(name, [script, keys.length, ...keys, ...args], options);
  }

  private write(command: Command): void {
    this.host.coalescer?.beforeWrite();
    // What the client's `evalsha(...)` does, without its per-call wrapper: it routes the command
    // (cluster slot, offline queue) and applies commandTimeout.
    void this.host.client.sendCommand(command);
  }

  /**
   * The same script sent on another connection (same SHA and error mapping; its writes are not
   * coalesced): for calls that must be followed by a command on the connection that ran them (WAIT).
   * @internal
   */
  onClient(client: Redis | Cluster): LuaScript<TReply> {
    const { debugLogger, functions } = this.host;
    return new LuaScript<TReply>(this.name, this.source, { client, debugLogger, functions }, this.numberOfKeys);
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
