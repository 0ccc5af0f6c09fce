import { isAbsolute } from 'node:path';
import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { Command, type Cluster, type Redis } from 'ioredis';
import { message } from '../core/messages';
import { Telemetry } from '../core/telemetry';
import { checkInteger, checkKnownKeys, checkObject, checkText, fail, inputSite, keysOf } from '../core/validation';
import { isCluster, readFromReplica, type RedisConnection } from '../module/redis-connection';
import { REDIS_LUA_CONNECTION, REDIS_LUA_OPTIONS } from '../module/redis-lua.constants';
import { DEFAULT_BOOT_TIMEOUT_MS, type RedisLuaModuleOptions } from '../module/redis-lua-options.interface';
import { LuaScript, type ScriptHost } from './lua-script';
import { RedisLuaUnavailableError } from '../core/errors';
import { redisFailure } from './lua-script.errors';
import type { LuaScriptDefinition } from './script-definition.interface';
import { WriteCoalescer } from './write-coalescer';
import { bundledSource } from './bundled-script';
import { BUNDLED_SCRIPTS, PACKAGE_VERSION } from './bundled-scripts.generated';
import { FunctionsRuntime } from './function-loader';
import { inlineScript, readScriptFile, type ScriptSource } from './script-source';

/**
 * Holds every script (bundled and `forFeature`), loads them into Redis at boot and hands out
 * {@link LuaScript} objects. One per application, shared by all features.
 */
@Injectable()
export class LuaScriptEngine implements OnModuleInit, ScriptHost {
  private readonly logger = new Logger('RedisLua');
  private readonly registered = new Map<string, LuaScript>();
  readonly client: Redis | Cluster;
  readonly debugLogger?: Logger;
  /** Batches the socket writes of one pass of the event loop, unless `coalesceWrites: false`. */
  /** @internal */
  readonly coalescer?: WriteCoalescer;
  /** Functions mode (`scripts: 'functions'`): the library of every registered script; undefined under EVAL. */
  /** @internal */
  readonly functions?: FunctionsRuntime;
  /** `readFrom: 'replica'`. */
  /** @internal */
  readonly replicaReads: boolean;
  /** Where every feature reports its events (`onEvent`, OpenTelemetry); undefined when nothing listens. */
  /** @internal */
  readonly telemetry?: Telemetry;
  private readonly readOptions: { replyEncoding: 'utf8'; keyPrefix?: string };

  constructor(
    @Inject(REDIS_LUA_CONNECTION) private readonly connection: RedisConnection,
    @Inject(REDIS_LUA_OPTIONS) private readonly options: RedisLuaModuleOptions,
  ) {
    this.client = connection.client;
    this.debugLogger = options.debug ? this.logger : undefined;
    this.coalescer = options.coalesceWrites === false ? undefined : new WriteCoalescer(this.client);
    this.replicaReads = options.readFrom === 'replica';
    this.telemetry = Telemetry.create(options);
    if (options.scripts === 'functions') {
      this.functions = new FunctionsRuntime(
        () => this.scripts,
        () => this.registered.size,
        () => this.scriptNodes(),
        PACKAGE_VERSION,
      );
    }
    const { keyPrefix } = (this.client as { options?: { keyPrefix?: string } }).options ?? {};
    this.readOptions = keyPrefix ? { replyEncoding: 'utf8', keyPrefix } : { replyEncoding: 'utf8' };
  }

  /**
   * A bundled script, by its path under `lua/` without `.lua`, e.g. `rate-limit/sliding-log`, as the
   * package ships it (bundled-scripts.generated.ts: no file is read). Registered on first request;
   * loaded at boot with the others.
   */
  bundled<TReply>(name: string, numberOfKeys?: number): LuaScript<TReply> {
    const script = BUNDLED_SCRIPTS[name];
    if (!script) throw new Error(message('', `no bundled script "${name}" (lua/${name}.lua; rebuild with npm run build:lua)`));
    return this.add<TReply>(name, () => bundledSource(script), numberOfKeys);
  }

  /** Registers an application script (what `RedisLuaModule.forFeature` does). */
  register<TReply>(definition: LuaScriptDefinition): LuaScript<TReply> {
    validateDefinition(definition);
    const { name, path, lua, numberOfKeys } = definition;
    return this.add<TReply>(name, () => (path !== undefined ? readScriptFile(path) : inlineScript(name, lua!)), numberOfKeys);
  }

  /**
   * Sends one of the few plain commands the services use (GET, ZSCORE, DEL) with the failure mapping
   * of scripts: {@link RedisLuaUnavailableError} for a connection failure, a time-out or a refusal
   * (OOM, ...). `where` names the public method. @internal
   */
  command<T>(where: string, send: (client: Redis | Cluster) => Promise<T>): Promise<T> {
    return send(this.client).catch((err: unknown) => {
      const failure = redisFailure(err, where);
      if (failure instanceof RedisLuaUnavailableError) this.telemetry?.unavailable(failure, where);
      throw failure;
    });
  }

  /**
   * Sends a plain read-only command (ZSCORE, LRANGE, ZCARD, GET) that `readFrom: 'replica'` sends to a
   * replica, with the failure mapping of {@link command}. `where` names the public method. @internal
   */
  read<T>(where: string, name: string, args: ReadonlyArray<string | number>): Promise<T> {
    const command = new Command(name, [...args], this.readOptions);
    if (this.replicaReads) readFromReplica(command);
    return this.command(where, (client) => client.sendCommand(command) as Promise<T>);
  }

  /** Every registered script. */
  get scripts(): readonly LuaScript[] {
    return [...this.registered.values()];
  }

  /** A registered script by name, or undefined. */
  get<TReply>(name: string): LuaScript<TReply> | undefined {
    return this.registered.get(name) as LuaScript<TReply> | undefined;
  }

  async onModuleInit(): Promise<void> {
    const { description } = this.connection;
    if (this.options.lazyConnect) {
      this.logger.log(
        `Redis at ${description}: lazyConnect, boot does not wait for it; ${this.registered.size} Lua scripts load on first use${this.reportingTo()}`,
      );
      return;
    }
    const timeoutMs = this.options.bootTimeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms (option "bootTimeoutMs")`)), timeoutMs);
    });
    try {
      const nodes = await Promise.race([this.loadAll(), timeout]);
      const version = await Promise.race([serverVersion(nodes[0]), timeout]);
      const kind = isCluster(this.client) ? `Redis Cluster, ${nodes.length} masters` : 'standalone';
      const loaded = this.functions
        ? `${this.registered.size} Lua scripts loaded as Redis Functions library ${this.functions.current().name}`
        : `${this.registered.size} Lua scripts loaded`;
      this.logger.log(
        `Connected to ${description} (${kind}, Redis ${version}): ${loaded}${isCluster(this.client) ? ' on every master' : ''}${this.reportingTo()}`,
      );
    } catch (err) {
      // Boot fails: nothing will call the shutdown hooks, so stop reconnecting now.
      if (this.connection.owned) this.connection.client.disconnect();
      throw new Error(
        `nest-redis-lua: cannot load Lua scripts into Redis at ${this.connection.description}: ${(err as Error).message}. ` +
          'Check that Redis is running and reachable, or set lazyConnect: true to connect on first use.' +
          (this.functions ? ` Option "scripts": 'functions' needs Redis 7 or later and the FUNCTION LIST and FUNCTION LOAD commands.` : ''),
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** The boot line's mention of telemetry: `; events to OpenTelemetry metrics and onEvent`, or nothing. */
  private reportingTo(): string {
    return this.telemetry ? `; events to ${this.telemetry.summary}` : '';
  }

  /**
   * SCRIPT LOADs every registered script on the server, or on every master of a cluster (after a
   * PING, so that boot checks the connection even when no script is registered); in functions mode,
   * FUNCTION LOADs the library where it is missing (see {@link FunctionsRuntime.boot}).
   */
  async loadAll(): Promise<Redis[]> {
    const nodes = await this.scriptNodes();
    await Promise.all(nodes.map((node) => node.ping()));
    if (this.functions) {
      if (this.registered.size === 0) return nodes;
      const states = await this.functions.boot(nodes);
      const others = [...new Set(states.flatMap((state) => state.others))];
      if (others.length > 0) {
        this.logger.log(
          `Redis Functions libraries of other nest-redis-lua versions or apps are loaded too (${others.join(', ')}): ` +
            'they serve the instances still running them; one that nothing runs any more is safe to remove with FUNCTION DELETE',
        );
      }
      return nodes;
    }
    const bodies = this.scripts.map((s) => s.body);
    await Promise.all(nodes.map((node) => Promise.all(bodies.map((body) => node.script('LOAD', body)))));
    return nodes;
  }

  /**
   * Loads what a server lacks, on the server or every master: the scripts not in a script cache
   * (SCRIPT EXISTS, then SCRIPT LOAD), or the library where it is missing. Resolves with how many
   * scripts (libraries) it loaded. For the health indicator.
   */
  async reloadMissing(): Promise<{ nodes: number; reloaded: number }> {
    const nodes = await this.scriptNodes();
    await Promise.all(nodes.map((node) => node.ping()));
    const scripts = this.scripts;
    if (scripts.length === 0) return { nodes: nodes.length, reloaded: 0 };
    if (this.functions) return { nodes: nodes.length, reloaded: await this.functions.loadMissing() };
    const reloaded = await Promise.all(
      nodes.map(async (node) => {
        const exists = (await node.script('EXISTS', ...scripts.map((s) => s.sha))) as number[];
        const missing = scripts.filter((_, i) => exists[i] !== 1);
        await Promise.all(missing.map((s) => node.script('LOAD', s.body)));
        return missing.length;
      }),
    );
    return { nodes: nodes.length, reloaded: reloaded.reduce((a, b) => a + b, 0) };
  }

  /** The servers that must hold the scripts: the client itself, or each cluster master once ready. */
  async scriptNodes(): Promise<Redis[]> {
    const { client } = this;
    // Wait for the connection (a server still starting): commands sent before it is up would be
    // rejected at the first refused attempt (maxRetriesPerRequest: 0), not after bootTimeoutMs.
    if (client.status === 'wait') client.connect().catch(() => undefined); // ioredis lazyConnect: its errors come as events
    if (client.status !== 'ready') await waitForReady(client);
    return isCluster(client) ? client.nodes('master') : [client];
  }

  private add<TReply>(name: string, read: () => ScriptSource, numberOfKeys?: number): LuaScript<TReply> {
    const existing = this.registered.get(name);
    const source = read();
    if (existing) {
      if (existing.sha !== source.sha) {
        throw new Error(`nest-redis-lua: two different scripts are registered as "${name}"`);
      }
      return existing as LuaScript<TReply>;
    }
    const script = new LuaScript<TReply>(name, source, this, numberOfKeys);
    this.registered.set(name, script);
    return script;
  }
}

const DEFINITION_KEYS = keysOf<LuaScriptDefinition>({ name: true, path: true, lua: true, numberOfKeys: true });

function validateDefinition(definition: LuaScriptDefinition): void {
  checkObject(definition, 'script', inputSite('forFeature'), 'a script definition { name, path | lua, numberOfKeys? }');
  const { name, path, lua, numberOfKeys } = definition;
  checkText(typeof name === 'string' ? name.trim() : name, 'name', inputSite('forFeature script'), {}, 'option');
  const site = inputSite(`forFeature script "${name}"`);
  checkKnownKeys(definition, DEFINITION_KEYS, site);
  if ((path === undefined) === (lua === undefined)) fail(site, 'path', 'give exactly one of option "path" or option "lua"');
  if (path !== undefined) {
    checkText(path, 'path', site, {}, 'option');
    // Resolved against the working directory, the script would load or not depending on where the app is
    // started from (and after `nest build` the .lua file is not next to the compiled code unless copied).
    if (!isAbsolute(path)) {
      fail(
        site,
        'path',
        `"path" must be absolute, got "${path}" (relative to the working directory ${process.cwd()}, it would depend on where the app is started). ` +
          `Build it from the module's own folder, e.g. join(__dirname, '${path.replace(/^(\.\/)+/, '')}'), ` +
          'and have `nest build` copy the .lua files next to the compiled code: "compilerOptions": { "assets": ["**/*.lua"] } in nest-cli.json.',
      );
    }
  }
  if (lua !== undefined) checkText(typeof lua === 'string' ? lua.trim() : lua, 'lua', site, {}, 'option');
  if (numberOfKeys !== undefined) checkInteger(numberOfKeys, 'numberOfKeys', site, 0, Number.MAX_SAFE_INTEGER);
}

/**
 * `redis_version` from INFO server (a string, or a RESP3 verbatim string), e.g. `7.0.15`. Only for the
 * boot log line: a server that refuses INFO (an ACL without `@dangerous`, a renamed command) or
 * names no version gives `of unknown version`, never a boot failure.
 */
async function serverVersion(node: Redis): Promise<string> {
  try {
    return /^redis_version:(\S+)/m.exec(String(await node.info('server')))?.[1] ?? 'of unknown version';
  } catch {
    return 'of unknown version';
  }
}

function waitForReady(cluster: Redis | Cluster): Promise<void> {
  return new Promise((resolve, reject) => {
    const onReady = (): void => {
      cluster.off('end', onEnd);
      resolve();
    };
    const onEnd = (): void => {
      cluster.off('ready', onReady);
      reject(new Error('the connection ended before it was ready'));
    };
    cluster.once('ready', onReady);
    cluster.once('end', onEnd);
  });
}
