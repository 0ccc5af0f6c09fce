import type { Logger } from '@nestjs/common';
import { Command, type Cluster, type Redis } from 'ioredis';
import { RedisLuaInputError, type RedisLuaUnavailableError } from '../core/errors';
import { message } from '../core/messages';
import { errorType } from '../core/events';
import type { Telemetry } from '../core/telemetry';
import { readFromReplica } from '../module/redis-connection';
import { FUNCTION_ERROR_CODE, isReadOnlyScript } from './function-library';
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
  /** Options `onEvent`, `tracing`, an OpenTelemetry meter provider: script calls are timed, traced, reported. */
  /** @internal */
  readonly telemetry?: Telemetry;
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
  /** How messages and events name it: `script "rate-limit/sliding-log"`. @internal */
  readonly where: string;
  /** The command names for the first attempt and for the resend (`evalsha` / `eval`, `fcall`...). */
  private readonly commands: { readonly first: string; readonly resend: string };
  /** The same in upper case, as spans name them. */
  private readonly operations: { readonly first: string; readonly resend: string };
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
    this.where = `script "${name}"`;
    this.toReplica = this.readOnly && host.replicaReads === true;
    const fcall = this.readOnly ? 'fcall_ro' : 'fcall';
    this.commands = host.functions
      ? { first: fcall, resend: fcall }
      : this.toReplica
        ? { first: 'evalsha_ro', resend: 'eval_ro' }
        : { first: 'evalsha', resend: 'eval' };
    this.operations = { first: this.commands.first.toUpperCase(), resend: this.commands.resend.toUpperCase() };
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
      return Promise.reject(new RedisLuaInputError(message(this.where, `takes ${this.numberOfKeys} keys, got ${keys.length}`), 'keys'));
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
   * objects. With telemetry the call is timed and reported, unless `timedByCaller` (the rate
   * limiter's hot path reports it from its own reply handler: {@link called}). @internal
   */
  send(keys: readonly string[], args: readonly ScriptArg[], timedByCaller = false): Command {
    const { functions, telemetry } = this.host;
    const command = this.command(this.commands.first, functions ? functions.functionName(this.name) : this.source.sha, keys, args);
    if (this.toReplica) readFromReplica(command);
    if (telemetry !== undefined && (!timedByCaller || telemetry.tracing))
      this.observe(command, this.operations.first, telemetry, !timedByCaller);
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
    if (!this.lacksScript(err)) return undefined;
    const { functions, telemetry } = this.host;
    telemetry?.emit({ type: 'script.reload', script: this.name, reason: functions ? 'missing function' : 'NOSCRIPT' });
    if (!functions) {
      const command = this.command(this.commands.resend, this.source.body, keys, args);
      if (this.toReplica) readFromReplica(command);
      if (telemetry !== undefined) this.observe(command, this.operations.resend, telemetry);
      this.write(command);
      return command;
    }
    const command = this.command(this.commands.resend, functions.functionName(this.name), keys, args);
    if (telemetry !== undefined) this.observe(command, this.operations.resend, telemetry);
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
    const unavailable = unavailableError(err, this.where);
    if (unavailable) {
      this.host.telemetry?.unavailable(unavailable, this.where);
      return unavailable;
    }
    const reply = isReplyError(err) ? err : new Error(String(err));
    const { functions } = this.host;
    return LuaScriptError.fromReply(
      this.name,
      this.sha,
      functions ? (line) => functions.origin(line) : (line) => this.source.origins[line - 1],
      reply,
    );
  }

  /**
   * Whether a failure says that the server lacked the script, so that nothing ran: EVALSHA's
   * `NOSCRIPT`, or FCALL's `ERR` in functions mode (see {@link resend}).
   */
  private lacksScript(err: unknown): boolean {
    return this.host.functions ? isReplyError(err) && replyCode(err) === 'ERR' : isNoScriptError(err);
  }

  /**
   * Times a command and, with tracing, spans it, from now until ioredis settles it: one `script.call`
   * event (none for a first attempt that found the script missing: its resend reports the call).
   * The command's own `resolve` / `reject` are wrapped (ioredis calls them as it parses the reply),
   * which costs no promise and no turn of the microtask queue; the first settlement counts (a
   * deadline's rejection, then a late reply, is one call).
   */
  private observe(command: Command, operation: string, telemetry: Telemetry, events = true): void {
    const started = performance.now();
    const span = telemetry.scriptSpan(this.name, operation);
    const { resolve, reject } = command;
    let settled = false;
    command.resolve = (value: unknown): void => {
      if (!settled) {
        settled = true;
        span?.end(undefined);
        if (events) this.called(started, undefined);
      }
      resolve(value);
    };
    command.reject = (error: Error): void => {
      if (!settled) {
        settled = true;
        span?.end(error ?? new Error('rejected'));
        if (events) this.called(started, error ?? new Error('rejected'));
      }
      reject(error);
    };
  }

  /**
   * Reports a call sent at `started` (`performance.now()`) as a `script.call` event, unless it
   * found the script missing (its resend reports the call). Never throws: it may run inside
   * ioredis's reply handling. @internal
   */
  called(started: number, error: unknown): void {
    const { telemetry } = this.host;
    try {
      if (!telemetry?.recording || (error !== undefined && this.lacksScript(error))) return;
      const durationMs = performance.now() - started;
      if (error === undefined) {
        telemetry.emit({ type: 'script.call', script: this.name, outcome: 'ok', durationMs });
        return;
      }
      // A functions-mode script's own ERR travels re-coded (see lib/scripts/function-library.ts).
      const type = errorType(error);
      telemetry.emit({
        type: 'script.call',
        script: this.name,
        outcome: 'error',
        errorType: type === FUNCTION_ERROR_CODE ? 'ERR' : type,
        durationMs,
      });
    } catch {
      // Telemetry never changes a call's outcome.
    }
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
    const { debugLogger, functions, telemetry } = this.host;
    return new LuaScript<TReply>(this.name, this.source, { client, debugLogger, functions, telemetry }, this.numberOfKeys);
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
