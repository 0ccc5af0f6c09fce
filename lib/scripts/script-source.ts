import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';

/**
 * The folder holding the bundled `.lua` files: `<package root>/lua`. This file sits in
 * `lib/scripts/` (sources) or `dist/scripts/` (the built package), two levels below the root,
 * so the path is right wherever the package is installed.
 */
export const BUNDLED_LUA_DIR = resolve(__dirname, '..', '..', 'lua');

/** Where a line of an assembled script came from: used to report Lua errors against the right file. */
export interface SourceLine {
  readonly file: string;
  readonly line: number;
}

/** A script ready to be sent to Redis: the body with includes resolved, its SHA1 and a line map. */
export interface ScriptSource {
  readonly body: string;
  readonly sha: string;
  /** `origins[i]` is the file and line of line `i + 1` of `body`. */
  readonly origins: readonly SourceLine[];
}

const INCLUDE = /^\s*---\s*@include\s+"([^"]+)"\s*$/;

/** SHA1 of a script body, as Redis computes it for EVALSHA. */
export function scriptSha(body: string): string {
  return createHash('sha1').update(body, 'utf8').digest('hex');
}

/**
 * Reads a `.lua` file and resolves its `--- @include "relative/path"` lines (the path is relative to
 * the including file; `.lua` may be left out). Each file is included once; a cycle is an error.
 */
export function readScriptFile(file: string): ScriptSource {
  const lines: string[] = [];
  const origins: SourceLine[] = [];
  const included = new Set<string>();

  const visit = (path: string, stack: readonly string[]): void => {
    if (stack.includes(path)) {
      throw new Error(`nest-redis-lua: include cycle: ${[...stack, path].join(' -> ')}`);
    }
    if (included.has(path)) return;
    included.add(path);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const from = stack.length ? ` (included from ${stack[stack.length - 1]})` : '';
      const hint =
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? '. If the app runs from a build folder (nest build), copy the .lua files there: "compilerOptions": { "assets": ["**/*.lua"] } in nest-cli.json'
          : '';
      throw new Error(`nest-redis-lua: cannot read Lua script ${path}${from}: ${(err as Error).message}${hint}`, { cause: err });
    }
    text
      .replace(/\r\n/g, '\n')
      .replace(/\n$/, '')
      .split('\n')
      .forEach((line, i) => {
        const include = INCLUDE.exec(line);
        if (include) {
          const target = include[1].endsWith('.lua') ? include[1] : `${include[1]}.lua`;
          visit(resolve(dirname(path), target), [...stack, path]);
        } else {
          lines.push(line);
          origins.push({ file: path, line: i + 1 });
        }
      });
  };

  visit(isAbsolute(file) ? file : resolve(file), []);
  const body = `${lines.join('\n')}\n`;
  return { body, sha: scriptSha(body), origins };
}

/** An inline script (given as a string): no includes, line numbers are its own. */
export function inlineScript(name: string, lua: string): ScriptSource {
  if (lua.split('\n').some((line) => INCLUDE.test(line))) {
    throw new Error(`nest-redis-lua: script "${name}": @include works only in script files (use "path")`);
  }
  const origins = lua.split('\n').map((_, i) => ({ file: `<inline ${name}>`, line: i + 1 }));
  return { body: lua, sha: scriptSha(lua), origins };
}
