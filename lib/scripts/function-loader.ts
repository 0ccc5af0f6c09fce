import type { Redis } from 'ioredis';
import { buildFunctionLibrary, LIBRARY_PATTERN, type FunctionLibrary, type LibraryScript } from './function-library';
import type { SourceLine } from './script-source';

/** What a {@link LuaScript} needs in functions mode. */
export interface FunctionsHost {
  /** The function name of a registered script in the current library. */
  functionName(script: string): string;
  /**
   * Loads the current library on every master that lacks it (a `FUNCTION FLUSH`, an empty node);
   * concurrent callers share one check, and a caller that comes while one is under way gets the next.
   */
  ensureLoaded(): Promise<void>;
  /** Where line `line` of the library's code came from. */
  origin(line: number): SourceLine | undefined;
}

/** What boot found and did on one server. */
export interface LibraryBootState {
  /** FUNCTION LOAD sent (the library was missing, or its code differed: REPLACE). */
  readonly loaded: boolean;
  /** Other libraries of this package on the server (other versions or scripts): safe to delete once unused. */
  readonly others: readonly string[];
}

/**
 * Builds the library from the registered scripts (rebuilt when one is added) and loads it: at boot
 * (FUNCTION LOAD where it is missing, REPLACE where its code differs) and again when a call finds it
 * missing. {@link FunctionsRuntime.loads} counts the FUNCTION LOADs sent after boot.
 */
export class FunctionsRuntime implements FunctionsHost {
  private library?: FunctionLibrary;
  private builtFrom = -1;
  /** The check under way, and the one that runs after it for callers that came meanwhile. */
  private running?: Promise<number>;
  private queued?: Promise<number>;
  /** FUNCTION LOADs sent after boot (the library was missing on a node). */
  loads = 0;

  constructor(
    private readonly scripts: () => readonly LibraryScript[],
    /** How many scripts are registered (cheap: asked on every call, the library is rebuilt when it grows). */
    private readonly registered: () => number,
    /** The masters, once the connection is ready. */
    private readonly masters: () => Promise<Redis[]>,
    private readonly version: string,
  ) {}

  /** The library of the scripts registered now. */
  current(): FunctionLibrary {
    if (!this.library || this.builtFrom !== this.registered()) {
      const scripts = this.scripts();
      this.library = buildFunctionLibrary(scripts, this.version);
      this.builtFrom = scripts.length;
    }
    return this.library;
  }

  functionName(script: string): string {
    const name = this.current().functions.get(script);
    if (name === undefined) throw new Error(`nest-redis-lua: script "${script}" is not registered`);
    return name;
  }

  origin(line: number): SourceLine | undefined {
    return this.current().origins[line - 1];
  }

  ensureLoaded(): Promise<void> {
    return this.loadMissing().then(() => undefined);
  }

  /** {@link ensureLoaded}, resolving with how many servers it loaded the library on. */
  loadMissing(): Promise<number> {
    if (!this.running) return this.start();
    // A check under way may have looked at a node before the failure that brings this caller: the next one.
    this.queued ??= this.running.then(noop, noop).then(() => {
      this.queued = undefined;
      return this.running ?? this.start();
    });
    return this.queued;
  }

  private start(): Promise<number> {
    const run = this.check().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  /** Boot: the library on every master, replaced where its code differs; other libraries of this package listed. */
  async boot(nodes: readonly Redis[]): Promise<LibraryBootState[]> {
    const library = this.current();
    return Promise.all(
      nodes.map(async (node) => {
        const names = libraryNames(await node.call('FUNCTION', 'LIST', 'LIBRARYNAME', LIBRARY_PATTERN));
        const others = names.filter((name) => name !== library.name);
        if (names.includes(library.name)) {
          const [entry] = libraryEntries(await node.call('FUNCTION', 'LIST', 'LIBRARYNAME', library.name, 'WITHCODE'));
          if (entry?.get('library_code') === library.code) return { loaded: false, others };
        }
        // REPLACE also when it was missing: another instance may be loading it (same name, same code) now.
        await node.call('FUNCTION', 'LOAD', 'REPLACE', library.code);
        return { loaded: true, others };
      }),
    );
  }

  private async check(): Promise<number> {
    const library = this.current();
    const nodes = await this.masters();
    const loaded = await Promise.all(
      nodes.map(async (node) => {
        if (libraryNames(await node.call('FUNCTION', 'LIST', 'LIBRARYNAME', library.name)).includes(library.name)) return 0;
        await node.call('FUNCTION', 'LOAD', 'REPLACE', library.code);
        this.loads += 1;
        return 1;
      }),
    );
    return loaded.reduce((a: number, b: number) => a + b, 0);
  }
}

/** FUNCTION LIST's entries as maps (RESP2: flat key/value arrays; RESP3: maps). */
function libraryEntries(reply: unknown): Array<Map<string, unknown>> {
  if (!Array.isArray(reply)) return [];
  return reply.map((entry: unknown) => {
    if (entry instanceof Map) return new Map([...entry].map(([k, v]) => [String(k), v]));
    if (Array.isArray(entry)) {
      const map = new Map<string, unknown>();
      for (let i = 0; i + 1 < entry.length; i += 2) map.set(String(entry[i]), entry[i + 1]);
      return map;
    }
    if (typeof entry === 'object' && entry !== null) return new Map(Object.entries(entry));
    return new Map<string, unknown>();
  });
}

function libraryNames(reply: unknown): string[] {
  return libraryEntries(reply).map((entry) => String(entry.get('library_name')));
}

function noop(): void {}
