/**
 * The bundled Lua ships as data (lib/scripts/bundled-scripts.generated.ts): the generated module must
 * be exactly what the build step makes from lua/ now, so that the package never ships scripts that
 * differ from their sources.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { GENERATED, renderBundledScripts } from '../../lib/scripts/bundled-scripts.build';
import { BUNDLED_SCRIPTS, LUA_CONSTANTS } from '../../lib/scripts/bundled-scripts.generated';
import { scriptSha } from '../../lib/scripts/script-source';

const LUA = join(__dirname, '..', '..', 'lua');

function entryScripts(dir = LUA): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return entry === 'includes' ? [] : entryScripts(path);
    return entry.endsWith('.lua') ? [relative(LUA, path).replace(/\.lua$/, '')] : [];
  });
}

describe('bundled scripts', () => {
  it('the generated module is what npm run build:lua makes from lua/ now (run it after editing a .lua file)', () => {
    expect(readFileSync(GENERATED, 'utf8')).toBe(renderBundledScripts());
  });

  it('holds every entry script of lua/ with the SHA1 of its body, and no directive is left unresolved', () => {
    expect(Object.keys(BUNDLED_SCRIPTS).sort()).toEqual(entryScripts().sort());
    for (const [name, script] of Object.entries(BUNDLED_SCRIPTS)) {
      expect({ name, sha: script.sha }).toEqual({ name, sha: scriptSha(script.body) });
      expect(script.body).not.toMatch(/^\s*---\s*@(include|inline)\s/m);
      const lines = script.origins.reduce((n, [, , count]) => n + count, 0);
      expect({ name, lines }).toEqual({ name, lines: script.body.split('\n').length - 1 });
    }
  });

  it('exports the numbers the TypeScript side shares with the Lua', () => {
    expect(LUA_CONSTANTS).toEqual({
      LB_OVERFLOW: -1,
      RL_LATE: -1,
      RL_REMAINING_UNIT: 2 ** 33,
      RL_SW_INDEX_UNIT: 2 ** 42,
      RL_SW_COUNT_UNIT: 2 ** 21,
    });
  });
});
