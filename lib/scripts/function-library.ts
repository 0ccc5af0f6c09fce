import { createHash } from 'node:crypto';
import type { SourceLine } from './script-source';

/**
 * Functions mode (`forRoot({ scripts: 'functions' })`): every registered script becomes one function
 * of a single Redis Functions library, loaded with FUNCTION LOAD. Functions live in the dataset, so
 * they are persisted (RDB / AOF) and replicated: after a restart, a `SCRIPT FLUSH` or a failover to a
 * replica, nothing has to be sent again (EVALSHA's script cache is empty in each of these cases).
 *
 * The library is named `nrl_<package version>_<content hash>` (e.g. `nrl_0_1_0_3fa9c2d1e0`): the same
 * package version with the same application scripts gives the same library, which every instance
 * shares; another version, or an app with other `forFeature` scripts, gives another library beside
 * it, with function names of its own (function names are global on a server, so each carries its
 * library's name). A library no running instance uses is safe to remove with `FUNCTION DELETE`.
 *
 * Each script body (its `#!lua` line dropped) becomes `function(KEYS, ARGV) <body> end`, registered
 * with the flags of its shebang (`#!lua flags=no-writes,allow-oom`). The function runs inside
 * `pcall`: an error it raises, or an error reply it returns, whose code is the generic `ERR`, reaches
 * the client under the code {@link FUNCTION_ERROR_CODE} instead (a Lua runtime error `user_function:12:
 * boom`, which Redis would report as `ERR ...`, too). So a reply coded `ERR` to FCALL never comes from
 * inside one of these functions: it is Redis refusing the call before running anything, above all
 * "function not found" (a `FUNCTION FLUSH`, an empty node), whose only distinctive part is its wording.
 * The engine recognises it by that code alone, loads the library where it is missing and sends the
 * call again, once. {@link restoreFunctionError} gives the error its `ERR` back for the application.
 */
export const FUNCTION_ERROR_CODE = 'NRLERR';

/** What the library needs of a script: its registered name and body (includes resolved). */
export interface LibraryScript {
  readonly name: string;
  readonly body: string;
  readonly origins: readonly SourceLine[];
}

/** A built library: its name and code, each script's function name, and where each code line came from. */
export interface FunctionLibrary {
  readonly name: string;
  readonly code: string;
  /** Function name of each script, by registered name. */
  readonly functions: ReadonlyMap<string, string>;
  /** `origins[i]` is the `.lua` file and line of line `i + 1` of `code` (undefined: generated). */
  readonly origins: ReadonlyArray<SourceLine | undefined>;
}

/** Libraries this package made, of any version: what the boot log lists as left by other deployments. */
export const LIBRARY_PATTERN = 'nrl_*';

/** `#!lua` or `#!lua flags=a,b` (EVAL's shebang): the script's flags, or undefined without a shebang. */
export function scriptFlags(body: string): string[] | undefined {
  const first = body.slice(0, body.indexOf('\n') === -1 ? body.length : body.indexOf('\n'));
  if (!first.startsWith('#!')) return undefined;
  const flags = /\sflags=(\S*)/.exec(first)?.[1];
  return flags ? flags.split(',').filter((flag) => flag !== '') : [];
}

/** True for a script that declares `no-writes`: it may run on a replica (EVALSHA_RO / FCALL_RO). */
export function isReadOnlyScript(body: string): boolean {
  return scriptFlags(body)?.includes('no-writes') === true;
}

/**
 * The runtime part of the library: runs a function's body under `pcall` and re-codes the errors
 * whose code is `ERR` (see {@link FUNCTION_ERROR_CODE}). An error raised by `redis.call` arrives as
 * its reply text (`ERR ...`, `WRONGTYPE ...`), one raised by Lua code as `user_function:<line>: ...`
 * (no code); other codes pass unchanged. A killed function (FUNCTION KILL) is not caught by `pcall`.
 */
const RUNTIME = [
  `local function nrl_error(e)`,
  `  local text = tostring(e)`,
  `  if type(e) == 'table' and type(e.err) == 'string' then text = e.err end`,
  `  if string.sub(text, 1, 4) == 'ERR ' then text = string.sub(text, 5)`,
  `  elseif string.find(text, '^[A-Z][A-Z0-9_]* ') then return redis.error_reply(text) end`,
  `  return redis.error_reply('${FUNCTION_ERROR_CODE} ' .. text)`,
  `end`,
  `local function nrl_wrap(body)`,
  `  return function(KEYS, ARGV)`,
  `    local ok, reply = pcall(body, KEYS, ARGV)`,
  `    if not ok then return nrl_error(reply) end`,
  `    if type(reply) == 'table' and type(reply.err) == 'string' and string.sub(reply.err, 1, 4) == 'ERR ' then return nrl_error(reply) end`,
  `    return reply`,
  `  end`,
  `end`,
];

/** A function name part from a script name: `rate-limit/sliding-log` -> `rate_limit_sliding_log`. */
function identifier(name: string): string {
  return name
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 48);
}

/**
 * Builds the library of `scripts` (in registration order) for package `version`. The content hash
 * covers the code without its name line, so the name follows from the content.
 */
export function buildFunctionLibrary(scripts: readonly LibraryScript[], version: string): FunctionLibrary {
  const lines: string[] = [...RUNTIME];
  const origins: Array<SourceLine | undefined> = RUNTIME.map(() => undefined);
  const registered = scripts.map((script, i) => {
    const bodyLines = script.body.replace(/\n$/, '').split('\n');
    const flags = scriptFlags(script.body);
    lines.push(`local nrl_f${i} = nrl_wrap(function(KEYS, ARGV)`);
    origins.push(undefined);
    // The shebang line is EVAL's: a function's flags are given to register_function.
    for (let l = flags === undefined ? 0 : 1; l < bodyLines.length; l++) {
      lines.push(bodyLines[l]);
      origins.push(script.origins[l]);
    }
    lines.push('end)');
    origins.push(undefined);
    return {
      suffix: `${i}_${identifier(script.name)}`,
      flags: (flags ?? []).map((flag) => `'${flag.replace(/[^a-z-]/g, '')}'`).join(', '),
    };
  });
  const hash = createHash('sha1')
    .update(lines.join('\n'))
    .update(registered.map((r) => `${r.suffix}{${r.flags}}`).join('\n'))
    .digest('hex')
    .slice(0, 10);
  const name = `nrl_${version.replace(/[^A-Za-z0-9]+/g, '_')}_${hash}`;
  const functions = new Map<string, string>();
  scripts.forEach((script, i) => {
    const fn = `${name}__${registered[i].suffix}`;
    functions.set(script.name, fn);
    lines.push(`redis.register_function{function_name='${fn}', callback=nrl_f${i}, flags={${registered[i].flags}}}`);
    origins.push(undefined);
  });
  // The name line comes first (FUNCTION LOAD reads it there).
  return { name, code: `#!lua name=${name}\n${lines.join('\n')}\n`, functions, origins: [undefined, ...origins] };
}

/**
 * The error text the application sees for a function's error reply: {@link FUNCTION_ERROR_CODE}
 * back to `ERR` (what the same script reports under EVAL). Other texts are returned unchanged.
 */
export function restoreFunctionError(message: string): string {
  return message.startsWith(`${FUNCTION_ERROR_CODE} `) ? `ERR ${message.slice(FUNCTION_ERROR_CODE.length + 1)}` : message;
}
