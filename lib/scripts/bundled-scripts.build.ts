/**
 * The build step that ships the bundled Lua as data: reads every entry script of lua/ (includes and
 * inlines resolved by the same reader as application scripts), and writes
 * lib/scripts/bundled-scripts.generated.ts with each script's body, SHA1 and line origins, and the
 * numbers the Lua marks `--- @export` and the package version, so that the installed package reads no `.lua` file at run time
 * and the TypeScript side takes those numbers from the Lua. The `.lua` files stay the source of truth:
 * test/scripts/bundled-scripts.spec.ts fails when the generated file is not what this step makes now.
 *
 *   npm run build:lua
 *
 * Not part of the published build (tsconfig.build.json leaves `*.build.ts` out).
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { readScriptFile } from './script-source';

const ROOT = join(__dirname, '..', '..');
const LUA = join(ROOT, 'lua');
/** Where the generated module goes. */
export const GENERATED = join(__dirname, 'bundled-scripts.generated.ts');
/** `local NAME = 123 --- @export`: a number the TypeScript side needs too. */
const EXPORT = /^local ([A-Z][A-Z0-9_]*) = (-?\d+) --- @export$/;

/** Every `.lua` file below `dir`, sorted. */
function luaFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      return statSync(path).isDirectory() ? luaFiles(path) : entry.endsWith('.lua') ? [path] : [];
    });
}

/** Origins as runs `[file, first line, count]` (consecutive lines of one file), in body order. */
function originRuns(origins: ReadonlyArray<{ file: string; line: number }>): Array<[string, number, number]> {
  const runs: Array<[string, number, number]> = [];
  for (const { file, line } of origins) {
    const last = runs[runs.length - 1];
    if (last && last[0] === file && last[1] + last[2] === line) last[2] += 1;
    else runs.push([file, line, 1]);
  }
  return runs;
}

/** The generated module's text, from the `.lua` files as they are now. */
export function renderBundledScripts(): string {
  const files = luaFiles(LUA);
  const entries = files.filter((file) => !relative(LUA, file).startsWith('includes/'));
  const scripts = entries.map((file) => {
    const name = relative(LUA, file).replace(/\.lua$/, '');
    const source = readScriptFile(file, ROOT);
    return `  ${JSON.stringify(name)}: {\n    sha: ${JSON.stringify(source.sha)},\n    body: ${JSON.stringify(source.body)},\n    origins: ${JSON.stringify(originRuns(source.origins))},\n  },`;
  });
  const constants: string[] = [];
  for (const file of files) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const match = EXPORT.exec(line.trim());
      if (match) constants.push(`  /** From ${relative(ROOT, file)}. */\n  ${match[1]}: ${match[2]},`);
    }
  }
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return [
    '/* Generated from lua/ by `npm run build:lua` (lib/scripts/bundled-scripts.build.ts): do not edit. */',
    "import type { BundledScript } from './bundled-script';",
    '',
    '/** The package version these scripts ship with (names the Redis Functions library, option `scripts`). */',
    `export const PACKAGE_VERSION = ${JSON.stringify(version)};`,
    '',
    '/** Every bundled script by name (its path under lua/ without `.lua`): body with includes resolved, SHA1, line origins. */',
    'export const BUNDLED_SCRIPTS: Readonly<Record<string, BundledScript>> = {',
    ...scripts,
    '};',
    '',
    '/** Numbers the Lua marks `--- @export`, for the TypeScript side. */',
    'export const LUA_CONSTANTS = {',
    ...constants,
    '} as const;',
    '',
  ].join('\n');
}

if (require.main === module) {
  writeFileSync(GENERATED, renderBundledScripts());
  console.log(`wrote ${relative(ROOT, GENERATED)}`);
}
