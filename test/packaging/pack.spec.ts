import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');

function luaFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? luaFiles(path) : entry.endsWith('.lua') ? [path] : [];
  });
}

describe('npm pack', () => {
  const work = mkdtempSync(join(tmpdir(), 'nrl-pack-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('ships dist/ (JS + declarations) and every lua/ file, and the runtime finds lua/ in the installed package', () => {
    const output = execFileSync('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [pack] = JSON.parse(output.slice(output.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = pack.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts']));
    expect(files.filter((f) => !/^(dist|lua)\//.test(f)).sort()).toEqual(['LICENSE', 'README.md', 'package.json']);
    const repoLua = luaFiles(join(ROOT, 'lua')).map((f) => relative(ROOT, f));
    expect(files.filter((f) => f.startsWith('lua/')).sort()).toEqual(repoLua.sort());

    // Unpack as an installed dependency and ask the built runtime where it reads the scripts from.
    const installed = join(work, 'app', 'node_modules', 'nest-redis-lua');
    mkdirSync(installed, { recursive: true });
    execFileSync('tar', ['-xzf', join(work, pack.filename), '-C', installed, '--strip-components=1']);
    const runtime = require(join(installed, 'dist', 'scripts', 'script-source.js')) as { BUNDLED_LUA_DIR: string };
    expect(runtime.BUNDLED_LUA_DIR).toBe(join(installed, 'lua'));
    for (const file of repoLua) expect(existsSync(join(installed, file))).toBe(true);
  });
});
