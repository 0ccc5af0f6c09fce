import { createHash } from 'node:crypto';
import { message } from '../core/messages';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';

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

/** `--- @include "file"` (a file's definitions, once per script) or `--- @inline "file"` (its statements, at each place). */
const DIRECTIVE = /^\s*---\s*@(include|inline)\s+"([^"]+)"\s*$/;

/** SHA1 of a script body, as Redis computes it for EVALSHA. */
export function scriptSha(body: string): string {
  return createHash('sha1').update(body, 'utf8').digest('hex');
}

/**
 * Reads a `.lua` file and resolves its directives (paths relative to the file that has them; `.lua`
 * may be left out):
 * - `--- @include "path"`: the file's lines, the first time it is included in this script (shared
 *   definitions: an include of an include is not repeated);
 * - `--- @inline "path"`: the file's lines at each place (a few statements shared by a fast path and
 *   the function they are also the body of).
 * A cycle is an error. Each line's origin is kept, as a path relative to `root` when given.
 */
export function readScriptFile(file: string, root?: string): ScriptSource {
  const lines: string[] = [];
  const origins: SourceLine[] = [];
  const included = new Set<string>();

  const visit = (path: string, stack: readonly string[], once: boolean): void => {
    if (stack.includes(path)) {
      throw new Error(message('', `include cycle: ${[...stack, path].join(' -> ')}`));
    }
    if (once && included.has(path)) return;
    if (once) included.add(path);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const from = stack.length ? ` (included from ${stack[stack.length - 1]})` : '';
      const hint =
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? '. If the app runs from a build folder (nest build), copy the .lua files there: "compilerOptions": { "assets": ["**/*.lua"] } in nest-cli.json'
          : '';
      throw new Error(message('', `cannot read Lua script ${path}${from}: ${(err as Error).message}${hint}`), { cause: err });
    }
    const origin = root === undefined ? path : relative(root, path);
    text
      .replace(/\r\n/g, '\n')
      .replace(/\n$/, '')
      .split('\n')
      .forEach((line, i) => {
        const directive = DIRECTIVE.exec(line);
        if (directive) {
          const target = directive[2].endsWith('.lua') ? directive[2] : `${directive[2]}.lua`;
          visit(resolve(dirname(path), target), [...stack, path], directive[1] === 'include');
        } else {
          lines.push(line);
          origins.push({ file: origin, line: i + 1 });
        }
      });
  };

  visit(isAbsolute(file) ? file : resolve(file), [], true);
  const body = `${lines.join('\n')}\n`;
  return { body, sha: scriptSha(body), origins };
}

/** An inline script (given as a string): no includes, line numbers are its own. */
export function inlineScript(name: string, lua: string): ScriptSource {
  if (lua.split('\n').some((line) => DIRECTIVE.test(line))) {
    throw new Error(message('', `script "${name}": @include and @inline work only in script files (use "path")`));
  }
  const origins = lua.split('\n').map((_, i) => ({ file: `<inline ${name}>`, line: i + 1 }));
  return { body: lua, sha: scriptSha(lua), origins };
}
